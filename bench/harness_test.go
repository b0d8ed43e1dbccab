//go:build unix

package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Binaries: built once per `go test` run into a temporary folder.

var (
	binOnce  sync.Once
	binDir   string
	binErr   error
	binPaths struct{ peerdrop, barepion, linkpeer string }
)

func TestMain(m *testing.M) {
	_ = os.Setenv("PEERDROP_SCAN", "off") // never scan the machine's own network
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds cmd/peerdrop, bench/barepion and bench/linkpeer (without -race, whatever
// the test binary was built with: they are what is being measured).
func binaries(b *testing.B) (peerdrop, barepion string) {
	b.Helper()
	binOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if binDir, binErr = os.MkdirTemp("", "peerdrop-bench-bin-"); binErr != nil {
			return
		}
		binPaths.peerdrop = filepath.Join(binDir, "peerdrop")
		binPaths.barepion = filepath.Join(binDir, "barepion")
		binPaths.linkpeer = filepath.Join(binDir, "linkpeer")
		for _, t := range []struct{ out, pkg string }{
			{binPaths.peerdrop, "github.com/thepeerdrop/peerdrop/cmd/peerdrop"},
			{binPaths.barepion, "github.com/thepeerdrop/peerdrop/bench/barepion"},
			{binPaths.linkpeer, "github.com/thepeerdrop/peerdrop/bench/linkpeer"},
		} {
			cmd := exec.Command(goBin, "build", "-o", t.out, t.pkg)
			out, err := cmd.CombinedOutput()
			if err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", t.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		b.Fatal(binErr)
	}
	return binPaths.peerdrop, binPaths.barepion
}

// ---------------------------------------------------------------------------
// Test data.

// randomWriter writes n pseudo-random bytes (ChaCha8, seeded) to w and
// returns their SHA-256.
func randomWriter(w io.Writer, n int64, seed byte) ([32]byte, error) {
	var s [32]byte
	s[0] = seed
	rng := rand.NewChaCha8(s)
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		_, _ = rng.Read(chunk)
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return [32]byte{}, err
		}
		n -= int64(len(chunk))
	}
	return [32]byte(h.Sum(nil)), nil
}

// genFile writes a file of size pseudo-random bytes and returns its SHA-256.
func genFile(b *testing.B, path string, size int64, seed byte) [32]byte {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := randomWriter(f, size, seed)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatalf("generate %s: %v", path, err)
	}
	return sum
}

// hashFile returns the SHA-256 and size of a file.
func hashFile(path string) ([32]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return [32]byte{}, n, err
	}
	return [32]byte(h.Sum(nil)), n, nil
}

// verifyFile checks that got has the size and SHA-256 of the source.
func verifyFile(b *testing.B, got string, size int64, sum [32]byte) {
	b.Helper()
	st, err := os.Stat(got)
	if err != nil {
		b.Fatalf("received file: %v", err)
	}
	if st.Size() != size {
		b.Fatalf("received file %s has %d bytes, want %d", got, st.Size(), size)
	}
	gsum, _, err := hashFile(got)
	if err != nil {
		b.Fatalf("hash %s: %v", got, err)
	}
	if gsum != sum {
		b.Fatalf("received file %s: SHA-256 %x, want %x", got, gsum, sum)
	}
}

// ---------------------------------------------------------------------------
// Processes.

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(t.buf), "\n")
	if s == "" {
		return "(empty)"
	}
	if t.cut {
		s = "…" + s
	}
	return s
}

// lineWriter calls fn for every complete line written to it.
type lineWriter struct {
	partial []byte
	fn      func(line []byte, at time.Time)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	at := time.Now()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.fn(w.partial[:i], at)
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil // let a large buffer go
	}
	return len(p), nil
}

// proc is one running process whose stdout carries JSON events, one a line.
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time

	stderr   *tailBuffer
	lastOut  *tailBuffer // recent stdout lines, progress events left out
	exited   chan struct{}
	exitAt   time.Time
	waitErr  error
	portCh   chan int
	portOnce sync.Once

	mu     sync.Mutex
	first  map[string]time.Time // when each event was first seen (our clock)
	counts map[string]int
	errs   []string // "error" and "file-error" events
	hwmKiB int64    // the child's VmHWM, sampled

	floorKiB int64 // our own VmHWM at the spawn (see usage)
}

type procEvent struct {
	Event   string `json:"event"`
	Port    int    `json:"port"`
	Message string `json:"message"`
	Name    string `json:"name"`
}

// startProc starts bin with args; b.Cleanup kills it if it is still running.
func startProc(b *testing.B, name, bin string, args ...string) *proc {
	b.Helper()
	p := &proc{
		name:    name,
		stderr:  &tailBuffer{max: 4096},
		lastOut: &tailBuffer{max: 2048},
		exited:  make(chan struct{}),
		portCh:  make(chan int, 1),
		first:   map[string]time.Time{},
		counts:  map[string]int{},
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = &lineWriter{fn: p.line}
	p.cmd.Stderr = p.stderr
	p.cmd.Stdin = nil
	p.floorKiB = readVmHWM(os.Getpid())
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitAt = time.Now()
		close(p.exited)
	}()
	go p.sampleHWM()
	b.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			b.Logf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
		}
	})
	return p
}

func (p *proc) line(line []byte, at time.Time) {
	var ev procEvent
	if json.Unmarshal(line, &ev) != nil || ev.Event == "" {
		_, _ = fmt.Fprintf(p.lastOut, "%s\n", line)
		return
	}
	if ev.Event != "progress" {
		_, _ = fmt.Fprintf(p.lastOut, "%s\n", line)
	}
	p.mu.Lock()
	if _, ok := p.first[ev.Event]; !ok {
		p.first[ev.Event] = at
	}
	p.counts[ev.Event]++
	if (ev.Event == "error" || ev.Event == "file-error") && len(p.errs) < 20 {
		p.errs = append(p.errs, fmt.Sprintf("%s %s %s", ev.Event, ev.Name, ev.Message))
	}
	p.mu.Unlock()
	if ev.Event == "listening" {
		p.portOnce.Do(func() { p.portCh <- ev.Port })
	}
}

func (p *proc) isDone() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *proc) kill() {
	if !p.isDone() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// firstEvent returns when the event was first seen.
func (p *proc) firstEvent(name string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.first[name]
	return t, ok
}

func (p *proc) count(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[name]
}

// report describes the process for an error message: exit status, stderr
// tail, last events.
func (p *proc) report() string {
	status := "still running"
	if p.isDone() {
		status = "exit status 0"
		if p.waitErr != nil {
			status = p.waitErr.Error()
		}
	}
	p.mu.Lock()
	errs := strings.Join(p.errs, "\n    ")
	p.mu.Unlock()
	s := fmt.Sprintf("--- %s: %s (%s)\n  stderr tail:\n    %s\n  last stdout lines (progress left out):\n    %s",
		p.name, strings.Join(p.cmd.Args, " "), status,
		strings.ReplaceAll(p.stderr.String(), "\n", "\n    "),
		strings.ReplaceAll(p.lastOut.String(), "\n", "\n    "))
	if errs != "" {
		s += "\n  error events:\n    " + errs
	}
	return s
}

// usage is what the kernel counted for a finished process.
//
// Peak RSS comes from rusage Maxrss (KiB on Linux). Linux folds the peak RSS
// of the address space a process leaves at exec into its Maxrss, and os/exec
// starts children with vfork semantics, so a child's Maxrss is never below the
// benchmark process's own peak RSS at the time of the spawn (floorKiB). When
// Maxrss is above that floor it is the child's own peak; when it is not, the
// child's own peak is lower than the floor and we use its VmHWM from
// /proc/PID/status, sampled while it runs.
type usage struct {
	maxRSSKiB int64 // rusage Maxrss
	floorKiB  int64 // this process's VmHWM when the child was started
	hwmKiB    int64 // the child's VmHWM, sampled every hwmEvery (0: never read)
	user, sys time.Duration
	nvcsw     int64 // voluntary context switches (waiting: I/O, locks, network)
	nivcsw    int64 // involuntary ones (preempted: CPU contention)
}

// ownKiB is the child's own peak RSS; sampled is set when it comes from VmHWM.
func (u usage) ownKiB() (kib int64, sampled bool) {
	if u.maxRSSKiB > u.floorKiB+1024 || u.hwmKiB == 0 {
		return u.maxRSSKiB, false
	}
	return u.hwmKiB, true
}

func (u usage) rssMiB() float64 {
	k, _ := u.ownKiB()
	return float64(k) / 1024
}

// rssString is the own peak in MiB, with a * when it was sampled from VmHWM.
func (u usage) rssString() string {
	k, sampled := u.ownKiB()
	s := fmt.Sprintf("%.1f", float64(k)/1024)
	if sampled {
		s += "*"
	}
	return s
}

func (u usage) cpu() time.Duration     { return u.user + u.sys }
func (u usage) cpuString() string      { return fmt.Sprintf("%.2f+%.2f", u.user.Seconds(), u.sys.Seconds()) }
func (u usage) switchesString() string { return fmt.Sprintf("%d/%d", u.nvcsw, u.nivcsw) }

func (p *proc) usage() usage {
	st := p.cmd.ProcessState
	u := usage{user: st.UserTime(), sys: st.SystemTime(), floorKiB: p.floorKiB}
	p.mu.Lock()
	u.hwmKiB = p.hwmKiB
	p.mu.Unlock()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		u.maxRSSKiB = int64(ru.Maxrss) // KiB on Linux
		if runtime.GOOS == "darwin" {
			u.maxRSSKiB /= 1024 // bytes there
		}
		u.nvcsw, u.nivcsw = int64(ru.Nvcsw), int64(ru.Nivcsw)
	}
	return u
}

const hwmEvery = 50 * time.Millisecond

// readVmHWM returns the VmHWM of a process in KiB, or 0 (no /proc, gone).
func readVmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// sampleHWM records the child's VmHWM until it exits.
func (p *proc) sampleHWM() {
	t := time.NewTicker(hwmEvery)
	defer t.Stop()
	for {
		if k := readVmHWM(p.cmd.Process.Pid); k > 0 {
			p.mu.Lock()
			p.hwmKiB = max(p.hwmKiB, k)
			p.mu.Unlock()
		}
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
	}
}

// ---------------------------------------------------------------------------
// One transfer between two processes.

// pairSpec says how to run one receiver/sender pair.
type pairSpec struct {
	impl     string
	bin      string
	recvArgs []string
	sendArgs func(port int) []string
	// Receiver events that bound the transfer phase: from start (the data
	// channel is open and data is about to flow) to end (everything on disk).
	startEvent, endEvent string
	timeout              time.Duration // the whole pair, from the sender's start
	// fileEvents, when set, is how many "file-done" events the receiver must report.
	fileEvents int
}

// pairResult is what one run measured.
type pairResult struct {
	impl       string
	connect    time.Duration // sender start → receiver's start event
	phase      time.Duration // receiver's start event → its end event
	total      time.Duration // sender start → both processes exited
	send, recv usage
}

// runPair starts the receiver, waits for its port, starts the sender, waits
// for both to exit successfully and returns the timings.
func runPair(b *testing.B, spec pairSpec) pairResult {
	b.Helper()
	recv := startProc(b, spec.impl+" receiver", spec.bin, spec.recvArgs...)
	var port int
	select {
	case port = <-recv.portCh:
	case <-recv.exited:
		b.Fatalf("%s: the receiver exited before listening\n%s", spec.impl, recv.report())
	case <-time.After(30 * time.Second):
		recv.kill()
		b.Fatalf("%s: the receiver did not report its port within 30 s\n%s", spec.impl, recv.report())
	}
	send := startProc(b, spec.impl+" sender", spec.bin, spec.sendArgs(port)...)
	t0 := send.start

	fail := func(format string, args ...any) {
		b.Helper()
		send.kill()
		recv.kill()
		b.Fatalf("%s: %s\n%s\n%s", spec.impl, fmt.Sprintf(format, args...), send.report(), recv.report())
	}
	deadline := time.NewTimer(spec.timeout)
	defer deadline.Stop()
	// Once one side is done, the other gets this long to follow.
	const grace = 30 * time.Second
	var graceC <-chan time.Time
	sendC, recvC := send.exited, recv.exited
	for sendC != nil || recvC != nil {
		select {
		case <-sendC:
			sendC = nil
			if send.waitErr != nil {
				fail("the sender failed")
			}
		case <-recvC:
			recvC = nil
			if recv.waitErr != nil {
				fail("the receiver failed")
			}
		case <-deadline.C:
			fail("no result within %s", spec.timeout)
		case <-graceC:
			fail("one process ended, the other was still running %s later", grace)
		}
		if graceC == nil && (sendC == nil || recvC == nil) {
			graceC = time.After(grace)
		}
	}
	start, ok1 := recv.firstEvent(spec.startEvent)
	end, ok2 := recv.firstEvent(spec.endEvent)
	if !ok1 || !ok2 || end.Before(start) {
		b.Fatalf("%s: the receiver did not report %q and %q\n%s\n%s", spec.impl, spec.startEvent, spec.endEvent, send.report(), recv.report())
	}
	if n := recv.count("file-done"); spec.fileEvents > 0 && n != spec.fileEvents {
		b.Fatalf("%s: the receiver reported %d files done, want %d\n%s", spec.impl, n, spec.fileEvents, recv.report())
	}
	last := send.exitAt
	if recv.exitAt.After(last) {
		last = recv.exitAt
	}
	return pairResult{
		impl:    spec.impl,
		connect: start.Sub(t0),
		phase:   end.Sub(start),
		total:   last.Sub(t0),
		send:    send.usage(),
		recv:    recv.usage(),
	}
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
