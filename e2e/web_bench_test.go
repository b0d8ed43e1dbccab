//go:build linux

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestWebThroughput measures how fast the web page moves a file, each way,
// against the CLI-to-CLI transfer on the same machine in the same run (the
// baseline), and prints the figures side by side. It asserts nothing about
// speed: it is a measurement for `make bench` (PEERDROP_BENCH_WEB=1), skipped
// in `make test`. Sizes: PEERDROP_BENCH_WEB_MIB (default 128). It runs twice:
// every process sharing the machine's cores, then (with two cores or more)
// each end on a core of its own, as on two machines: the browser on CPU 1,
// the CLI that talks to it on CPU 0.
func TestWebThroughput(t *testing.T) {
	if os.Getenv("PEERDROP_BENCH_WEB") == "" {
		t.Skip("a measurement: run with PEERDROP_BENCH_WEB=1 (make bench)")
	}
	chromiumPath(t)
	mib := 128
	if v, err := strconv.Atoi(os.Getenv("PEERDROP_BENCH_WEB_MIB")); err == nil && v > 0 {
		mib = v
	}
	out := webThroughput(t, mib, false)
	if runtime.NumCPU() >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			out += webThroughput(t, mib, true)
		}
	}
	fmt.Print(out)
}

// webThroughput measures each direction once and returns the table.
func webThroughput(t *testing.T, mib int, pin bool) string {
	size := int64(mib) * MiB
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	dl := t.TempDir()
	r := start(t, ctx, "receiver", false, "--config-dir", t.TempDir(), "--name", receiverName, "--json",
		"receive", "--hidden", "--yes", "--dir", dl, "--port", "0", "--web", "--web-listen", "127.0.0.1:0")
	cliAddr := "127.0.0.1:" + strconv.Itoa(int(r.await("listening", nil).num("port")))
	pageURL := r.awaitAny("web", nil).str("url")
	downloads := t.TempDir()
	p := openBrowser(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	pageAddr := "127.0.0.1:" + strconv.Itoa(int(r.awaitAny("web-page", nil).num("port")))
	if pin {
		pinChromium(t, 1)
		pinProc(t, r.cmd.Process.Pid, 0)
	}

	src := t.TempDir()
	file := filepath.Join(src, "bench.bin")
	writeRandomFile(t, file, size, 11)

	// span is the time from accept to the end, by the events of proc.
	span := func(proc *proc, from string) time.Duration {
		a := proc.awaitAny(from, nil)
		d := proc.awaitAny("transfer-done", nil)
		t0, err := time.Parse(time.RFC3339Nano, a.str("time"))
		require.NoError(t, err)
		t1, err := time.Parse(time.RFC3339Nano, d.str("time"))
		require.NoError(t, err)
		return t1.Sub(t0)
	}
	// cpu is what each side spent on one direction, in CPU seconds.
	type cpu struct {
		sender, receiver cpuByKind
		udp              udpCounts
	}
	var use [3]cpu
	rcvPid := r.cmd.Process.Pid
	send := func(label, to string, u *cpu) time.Duration {
		r0, b0, n0 := procCPU(rcvPid), chromiumCPU(), readUDP()
		s := start(t, ctx, label, false, "--config-dir", t.TempDir(), "--name", senderName, "--json", "send", "--to", to, file)
		if pin {
			core := 0 // the page's peer
			if to == cliAddr {
				core = 1 // the receiver is on 0
			}
			pinProc(t, s.cmd.Process.Pid, core)
		}
		if to == pageAddr {
			p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
		}
		require.Equal(t, 0, s.wait(), "%s: %s", label, s.stderr.String())
		u.udp = readUDP().minus(n0)
		st := s.cmd.ProcessState
		u.sender = cpuByKind{"peerdrop": (st.UserTime() + st.SystemTime()).Seconds()}
		if to == pageAddr {
			u.receiver = chromiumCPU().minus(b0)
		} else {
			u.receiver = cpuByKind{"peerdrop": procCPU(rcvPid) - r0}
		}
		return span(s, "accepted")
	}

	baseline := send("cli-to-cli", cliAddr, &use[0])
	require.NoError(t, os.Remove(filepath.Join(dl, "bench.bin")))
	// The page's JavaScript is profiled while it receives: where its main
	// thread spends the time (idle is waiting for the network).
	_, err := chromedp.Call(p.ctx, profiler.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(p.ctx, profiler.Start, cdp.Empty{})
	require.NoError(t, err)
	toPage := send("cli-to-page", pageAddr, &use[1])
	res, err := chromedp.Call(p.ctx, profiler.Stop, cdp.Empty{})
	require.NoError(t, err)
	js := jsSelfTime(res.Profile)

	// The page sends to the receiver; the receiver's events time it.
	mark := len(r.all("transfer-done"))
	r0, b0, n0 := procCPU(rcvPid), chromiumCPU(), readUDP()
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
	var fromPage time.Duration
	for fromPage == 0 {
		done := r.all("transfer-done")
		offers := r.all("offer")
		if len(done) > mark && len(offers) > 0 {
			t0, err := time.Parse(time.RFC3339Nano, offers[len(offers)-1].str("time"))
			require.NoError(t, err)
			t1, err := time.Parse(time.RFC3339Nano, done[len(done)-1].str("time"))
			require.NoError(t, err)
			fromPage = t1.Sub(t0)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the page's send did not finish")
		case <-time.After(100 * time.Millisecond):
		}
	}

	use[2].udp = readUDP().minus(n0)
	use[2].sender = chromiumCPU().minus(b0)
	use[2].receiver = cpuByKind{"peerdrop": procCPU(rcvPid) - r0}

	rate := func(d time.Duration) float64 { return float64(size) / MiB / d.Seconds() }
	var out string
	where := fmt.Sprintf("every process sharing this machine's %d cores", runtime.NumCPU())
	if pin {
		where = "each end on a core of its own (the browser on CPU 1, the CLI it talks to on CPU 0)"
	}
	out += fmt.Sprintf("=== web page throughput: %d MiB (random) over loopback, Chromium headless, one run each, %s\n", mib, where)
	out += fmt.Sprintf("  %-22s %8s %8s %6s %9s  %-34s %s\n", "direction", "seconds", "MiB/s", "ratio", "UDP drops", "sender CPU s", "receiver CPU s")
	for i, row := range []struct {
		name string
		d    time.Duration
	}{{"CLI -> CLI (baseline)", baseline}, {"CLI -> page", toPage}, {"page -> CLI", fromPage}} {
		out += fmt.Sprintf("  %-22s %8.2f %8.1f %6.2f %9d  %-34s %s\n", row.name, row.d.Seconds(), rate(row.d), rate(row.d)/rate(baseline),
			use[i].udp.drops, use[i].sender, use[i].receiver)
	}
	out += fmt.Sprintf("  the page's main thread while it received (s): %s\n", js)
	return out
}

// cpuByKind is CPU seconds by kind of process.
type cpuByKind map[string]float64

func (c cpuByKind) minus(before cpuByKind) cpuByKind {
	d := cpuByKind{}
	for k, v := range c {
		d[k] = v - before[k]
	}
	return d
}

// String lists the kinds, largest first, with their total.
func (c cpuByKind) String() string {
	keys := slices.Collect(maps.Keys(c))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(c[b], c[a]) })
	var total float64
	var parts []string
	for _, k := range keys {
		total += c[k]
		if c[k] >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, c[k]))
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return fmt.Sprintf("%.1f (%s)", total, strings.Join(parts, ", "))
}

// procCPU is the CPU seconds process pid has used so far (Linux).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis: state is the
	// first, utime and stime the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// chromiumCPU is the CPU seconds the running Chromium processes have used,
// by their --type (the browser process has none; utility processes by
// sub-type: the network service carries every WebRTC packet).
func chromiumCPU() cpuByKind {
	c := cpuByKind{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || !strings.HasPrefix(string(comm), "chrom") {
			continue
		}
		args, _ := os.ReadFile(d + "/cmdline")
		kind := "browser"
		// Processes forked from the zygote rewrite their command line
		// with spaces between the arguments.
		for _, a := range strings.FieldsFunc(string(args), func(r rune) bool { return r == 0 || r == ' ' }) {
			if v, ok := strings.CutPrefix(a, "--type="); ok {
				kind = v
			}
			if v, ok := strings.CutPrefix(a, "--utility-sub-type="); ok {
				kind = strings.TrimSuffix(strings.TrimPrefix(v, "network.mojom."), "Service") + " service"
			}
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		c[kind] += procCPU(pid)
	}
	return c
}

// jsSelfTime sums a CPU profile's samples: idle, SHA-256, Blobs, the rest.
func jsSelfTime(prof *profiler.Profile) cpuByKind {
	byID := map[int64]*profiler.ProfileNode{}
	for _, n := range prof.Nodes {
		byID[n.ID] = n
	}
	c := cpuByKind{}
	for i, id := range prof.Samples {
		n := byID[id]
		kind := "other JS"
		switch {
		case n.CallFrame.FunctionName == "(idle)":
			kind = "idle"
		case strings.HasSuffix(n.CallFrame.URL, "/sha256.js"):
			kind = "SHA-256"
		case n.CallFrame.FunctionName == "Blob":
			kind = "Blob"
		case n.CallFrame.FunctionName == "(program)" || n.CallFrame.FunctionName == "(garbage collector)":
			kind = "browser work"
		}
		c[kind] += float64(prof.TimeDeltas[i]) / 1e6
	}
	return c
}

// udpCounts are the machine's UDP packets dropped for a full receive
// buffer (IPv4, /proc/net/snmp): both ends run here.
type udpCounts struct{ drops int64 }

func (c udpCounts) minus(b udpCounts) udpCounts { return udpCounts{c.drops - b.drops} }

func readUDP() udpCounts {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return udpCounts{}
	}
	var names, values []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Udp: "); ok {
			if names == nil {
				names = strings.Fields(rest)
			} else {
				values = strings.Fields(rest)
			}
		}
	}
	var c udpCounts
	for i, n := range names {
		if i >= len(values) {
			break
		}
		v, _ := strconv.ParseInt(values[i], 10, 64)
		if n == "RcvbufErrors" {
			c.drops = v
		}
	}
	return c
}

// pinProc keeps every thread of process pid on CPU core (taskset).
func pinProc(t *testing.T, pid, core int) {
	t.Helper()
	out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(core), strconv.Itoa(pid)).CombinedOutput()
	require.NoError(t, err, "taskset: %s", out)
}

// pinChromium keeps every running Chromium process on CPU core; the
// processes they start later inherit it.
func pinChromium(t *testing.T, core int) {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.HasPrefix(string(comm), "chrom") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			_ = exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(core), strconv.Itoa(pid)).Run() // it may have exited
		}
	}
}
