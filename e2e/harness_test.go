//go:build linux

// Package e2e runs the real peerdrop binary: a receiver and a sender as two
// processes on loopback, talking WebRTC to each other, observed through their
// --json events, exit statuses and the files they leave on disk.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	MiB = 1 << 20

	// testTimeout bounds one test: every wait in it ends by then, and every
	// process it started is killed.
	testTimeout = 2 * time.Minute

	senderName   = "alice"
	receiverName = "bob"
)

// peerdropBin is the binary TestMain built.
var peerdropBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	// No process scans the machine's own network (discovery's subnet
	// scan); the tests that scan turn it on inside their namespaces.
	_ = os.Setenv("PEERDROP_SCAN", "off")
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "peerdrop-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	peerdropBin = filepath.Join(tmp, "peerdrop")
	build := exec.Command("go", "build", "-o", peerdropBin, "./cmd/peerdrop")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/peerdrop: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot is the parent of the test's working directory (e2e/).
func moduleRoot() (string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("no go.mod above the test directory: %w", err)
	}
	if !bytes.Contains(mod, []byte("module github.com/thepeerdrop/peerdrop")) {
		return "", fmt.Errorf("%s is not the peerdrop module", root)
	}
	return root, nil
}

// Set PEERDROP_E2E_DUMP=1 to log every process's events and stderr even when
// its test passes.

// testContext bounds a test; it ends when the test does.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// event is one decoded --json line. Numbers stay json.Number (exact int64s).
type event map[string]any

func (e event) name() string { return e.str("event") }

func (e event) str(key string) string {
	s, _ := e[key].(string)
	return s
}

func (e event) num(key string) int64 {
	n, ok := e[key].(json.Number)
	if !ok {
		return -1
	}
	v, err := n.Int64()
	if err != nil {
		return -1
	}
	return v
}

func (e event) flag(key string) bool {
	b, _ := e[key].(bool)
	return b
}

func (e event) list(key string) []any {
	l, _ := e[key].([]any)
	return l
}

func (e event) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running peerdrop process. A goroutine decodes its stdout into
// events; the test goroutine waits for them with await.
type proc struct {
	t     *testing.T
	label string
	args  []string
	ctx   context.Context
	cmd   *exec.Cmd
	stdin io.WriteCloser // nil unless asked for

	stderr lockedBuffer

	mu       sync.Mutex
	events   []event
	nonJSON  []string
	changed  chan struct{} // closed and replaced on every new event
	exitCode int

	done chan struct{} // closed once the process has exited and stdout is drained

	cursor int // await's position in events; used by the test goroutine only
}

// start runs peerdrop with args. The process is killed when ctx ends or the
// test is over; either way the test waits for it.
func start(t *testing.T, ctx context.Context, label string, withStdin bool, args ...string) *proc {
	t.Helper()
	return startCmd(t, ctx, label, withStdin, exec.CommandContext(ctx, peerdropBin, args...), args)
}

// startCmd is start for a prepared command (one that runs peerdrop inside a
// network namespace, say); args are peerdrop's arguments, for the logs.
func startCmd(t *testing.T, ctx context.Context, label string, withStdin bool, cmd *exec.Cmd, args []string) *proc {
	t.Helper()
	cmd.WaitDelay = 10 * time.Second
	p := &proc{t: t, label: label, args: args, ctx: ctx, cmd: cmd, changed: make(chan struct{}), done: make(chan struct{}), exitCode: -1}
	cmd.Stderr = &p.stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	if withStdin {
		p.stdin, err = cmd.StdinPipe()
		require.NoError(t, err)
	}
	require.NoError(t, cmd.Start(), "start %s", label)
	go p.read(stdout)
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		p.mu.Lock()
		bad := p.nonJSON
		p.mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("%s wrote lines to stdout that are not JSON events despite --json: %q", label, bad)
		}
		if t.Failed() || os.Getenv("PEERDROP_E2E_DUMP") != "" {
			p.dump()
		}
	})
	return p
}

func (p *proc) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 4*MiB)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		err := dec.Decode(&ev)
		p.mu.Lock()
		if err != nil || ev.name() == "" {
			p.nonJSON = append(p.nonJSON, string(line))
		} else {
			p.events = append(p.events, ev)
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, stdout) // after a scanner error, still drain
	_ = p.cmd.Wait()
	p.mu.Lock()
	if p.cmd.ProcessState != nil {
		p.exitCode = p.cmd.ProcessState.ExitCode()
	}
	p.mu.Unlock()
	close(p.done)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// find returns the next event named name (and accepted by match, if given)
// after the one the previous find returned.
func (p *proc) find(name string, match func(event) bool) (event, error) {
	for {
		gone := p.exited() // before the scan: every event is in by then
		p.mu.Lock()
		for ; p.cursor < len(p.events); p.cursor++ {
			ev := p.events[p.cursor]
			if ev.name() == name && (match == nil || match(ev)) {
				p.cursor++
				p.mu.Unlock()
				return ev, nil
			}
		}
		changed, code := p.changed, p.exitCode
		p.mu.Unlock()
		if gone {
			return nil, fmt.Errorf("%s exited (status %d) without a %q event; stderr: %s", p.label, code, name, p.stderr.String())
		}
		select {
		case <-changed:
		case <-p.done:
		case <-p.ctx.Done():
			return nil, fmt.Errorf("%s: no %q event within the test's time limit", p.label, name)
		}
	}
}

// await is find that fails the test.
func (p *proc) await(name string, match func(event) bool) event {
	p.t.Helper()
	ev, err := p.find(name, match)
	require.NoError(p.t, err)
	return ev
}

// awaitAny waits for an event named name accepted by match, among all the
// events so far and to come, whatever find has passed over: for events
// whose order does not matter.
func (p *proc) awaitAny(name string, match func(event) bool) event {
	p.t.Helper()
	for {
		gone := p.exited()
		p.mu.Lock()
		for _, ev := range p.events {
			if ev.name() == name && (match == nil || match(ev)) {
				p.mu.Unlock()
				return ev
			}
		}
		changed, code := p.changed, p.exitCode
		p.mu.Unlock()
		if gone {
			require.FailNowf(p.t, "no event", "%s exited (status %d) without a matching %q event; stderr: %s", p.label, code, name, p.stderr.String())
		}
		select {
		case <-changed:
		case <-p.done:
		case <-p.ctx.Done():
			require.FailNowf(p.t, "no event", "%s: no matching %q event within the test's time limit", p.label, name)
		}
	}
}

// all returns every event named name so far.
func (p *proc) all(name string) []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []event
	for _, ev := range p.events {
		if ev.name() == name {
			out = append(out, ev)
		}
	}
	return out
}

// wait waits for the process to exit and returns its exit status (-1 when
// a signal ended it).
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-p.ctx.Done():
		<-p.done // the context kills it
		require.FailNowf(p.t, "process did not exit", "%s did not exit within the test's time limit", p.label)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig), "signal %s", p.label)
}

// stderrLines is stderr without its trailing newline, split into lines.
func (p *proc) stderrLines() []string {
	s := strings.TrimRight(p.stderr.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// dump logs what the process did, for a failed test.
func (p *proc) dump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s: peerdrop %s (exit status %d)\n", p.label, strings.Join(p.args, " "), p.exitCode)
	progress := 0
	for i, ev := range p.events {
		if ev.name() == "progress" {
			progress++
			// The last progress before another event is the telling one.
			if i+1 < len(p.events) && p.events[i+1].name() == "progress" {
				continue
			}
		}
		fmt.Fprintf(&b, "  %s\n", ev)
	}
	fmt.Fprintf(&b, "  (%d progress events)\n", progress)
	fmt.Fprintf(&b, "  stderr: %s", p.stderr.String())
	p.t.Log(b.String())
}

// receiver is a running `peerdrop receive`.
type receiver struct {
	*proc
	port int
	dir  string
}

type receiverOpts struct {
	configDir string // default: a new temporary folder
	dir       string // the download folder (required)
	port      int    // 0: any free port
	yes       bool
	once      bool
	stdin     bool // give the process a pipe for its prompt answers
	label     string
	// Loopback tests keep receivers --hidden: their mDNS announcements
	// would otherwise go out on the test machine's real network.
}

// startReceiver starts a receiver and waits until it listens.
func startReceiver(t *testing.T, ctx context.Context, o receiverOpts) *receiver {
	t.Helper()
	require.NotEmpty(t, o.dir, "receiverOpts.dir")
	if o.configDir == "" {
		o.configDir = t.TempDir()
	}
	if o.label == "" {
		o.label = "receiver"
	}
	args := []string{"--config-dir", o.configDir, "--name", receiverName, "--json",
		"receive", "--hidden", "--dir", o.dir, "--port", strconv.Itoa(o.port)}
	if o.yes {
		args = append(args, "--yes")
	}
	if o.once {
		args = append(args, "--once")
	}
	p := start(t, ctx, o.label, o.stdin, args...)
	l := p.await("listening", nil)
	port := int(l.num("port"))
	require.Positive(t, port, "listening event without a port: %s", l)
	if o.port != 0 {
		require.Equal(t, o.port, port, "the receiver listens on another port than --port asked")
	}
	return &receiver{proc: p, port: port, dir: o.dir}
}

func (r *receiver) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// startSender starts `peerdrop --json send` with args (in the background).
func startSender(t *testing.T, ctx context.Context, args ...string) *proc {
	t.Helper()
	full := append([]string{"--config-dir", t.TempDir(), "--name", senderName, "--json", "send"}, args...)
	return start(t, ctx, "sender", false, full...)
}

// runPeerdrop runs peerdrop with args to the end and returns the process.
func runPeerdrop(t *testing.T, ctx context.Context, label string, args ...string) *proc {
	t.Helper()
	p := start(t, ctx, label, false, args...)
	p.wait()
	return p
}

// freePort returns a TCP port that was free on loopback a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// --- files ---

// writeFile creates dir/rel (slash-separated) with content, and its folders.
func writeFile(t *testing.T, dir, rel, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func mkdir(t *testing.T, dir, rel string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(p, 0o755))
	return p
}

// writeRandomFile writes size pseudo-random bytes (ChaCha8, seeded by seed)
// to path in 1 MiB chunks and returns their SHA-256 in hex.
func writeRandomFile(t *testing.T, path string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	rng := rand.NewChaCha8(s)
	h := sha256.New()
	w := io.MultiWriter(f, h)
	buf := make([]byte, MiB)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		_, _ = rng.Read(buf[:n])
		_, err := w.Write(buf[:n])
		require.NoError(t, err)
		left -= n
	}
	require.NoError(t, f.Close())
	return hex.EncodeToString(h.Sum(nil))
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// node is one file or folder found by snapshot.
type node struct {
	Dir    bool
	Size   int64
	SHA256 string // files only
}

// snapshot walks root and describes everything below it (not root itself),
// keyed by slash-separated relative path. Hidden entries are included.
func snapshot(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			out[rel] = node{Dir: true}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[rel] = node{Size: info.Size(), SHA256: sha256File(t, p)}
		default:
			return fmt.Errorf("%s: unexpected file type %s", p, d.Type())
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// requireNoLeftovers fails if dir holds resume state or partial files.
func requireNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Name() == ".peerdrop" || strings.HasSuffix(d.Name(), ".part") {
			found = append(found, p)
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, found, "resume state or partial files left in the download folder")
}

// files and dirs split a snapshot.
func files(s map[string]node) map[string]string {
	out := map[string]string{}
	for p, n := range s {
		if !n.Dir {
			out[p] = n.SHA256
		}
	}
	return out
}

func dirs(s map[string]node) []string {
	var out []string
	for p, n := range s {
		if n.Dir {
			out = append(out, p)
		}
	}
	return out
}

// dirNames lists the names in dir (none when it cannot be read: a folder
// not made yet has nothing).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
