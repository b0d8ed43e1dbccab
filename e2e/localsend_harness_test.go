//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An independent implementation of LocalSend protocol v2 for the
// interoperability tests: the npm package localsend@0.1.2 (CrossCopy's
// localsend-ts), a Node CLI bundled into one file, pinned in
// testdata/localsend/package-lock.json and installed by `make npm-deps`
// (part of `make test`). What the tests rely on, read from its bundle
// (node_modules/localsend/dist/cli.js) and checked by
// TestLocalSendNpmSelfCheck where marked (checked):
//
// Every command prints to stdout as it goes, and after its own output the
// root command's usage too ("Please use a subcommand: send | receive |
// discover" and three example lines): a quirk of its argument parser, not
// an error. Errors go to stderr. Its device info: version "2.1", a random
// 64-hex fingerprint per run (no certificate behind it), deviceType
// "desktop" ("headless" if $HEADLESS is set, "server" if $SERVER is),
// deviceModel "Linux <kernel release>", protocol "http", download false.
//
// receive [--alias A] [--port P] [--saveDir D] [--pin X] [--autoAccept]
//
//   - Serves plain HTTP only (never TLS), on all addresses (IPv4 and IPv6),
//     port 53317 or --port (checked). It prints "Server started on port P"
//     and, once it also listens for multicast, "Receiver is running. Press
//     Ctrl+C to stop." (localSendReceive waits for that).
//   - Without --autoAccept and without --pin, each prepare-upload asks on
//     stdin: it prints "\n📩 Incoming transfer request from <alias>:",
//     "Files: <name> (<size>), ..." and then the prompt
//     "Accept transfer? (y/N): " (no newline). "y" or "Y" accepts ("Transfer
//     accepted, downloading..."); any other line declines ("Transfer
//     rejected", and the sender gets 403 {"message":"Transfer rejected by
//     user"}) (checked). It reads nothing until a request comes, and a
//     closed stdin leaves the request waiting for ever: give it a pipe and
//     answer. With --autoAccept it prints "Auto-accepting transfer..." and
//     "Downloading..." instead.
//   - With --pin X there is no prompt at all: a prepare-upload whose ?pin=
//     is missing or differs gets 401 {"message":"PIN required"}, one with the
//     right PIN is accepted at once.
//   - Files are written to <saveDir>/<fileName> (path.join, not sanitised;
//     an existing file is overwritten; saveDir is created). The sha256 the
//     sender declared is not checked. Each file ends with "✅ Transfer
//     complete:" and a table whose "Saved to" row is the path; the response
//     to the last upload may come before the file is flushed, so wait for
//     the size (awaitLocalSendFile).
//   - An upload with X-Content-Range: bytes a-b/total is a chunk: a = 0
//     starts the file, a > 0 appends; total must equal the declared size.
//   - At start it announces itself on multicast (below) and scans the /24
//     over HTTP every 30 s (--discoveryInterval), only to log what it finds
//     with --verbose. SIGINT stops it ("Shutting down...", "Server
//     stopped", status 0).
//
// send [--protocol http|https] [--port P] [--pin X] [--alias A] IP FILE
//
//   - GET /api/localsend/v2/info at IP:P (P = 53317 or --port; the same P is
//     announced as its own port), trying --protocol first (default http)
//     and then the other one, but only after an HTTP error status: a
//     failure to connect or a failed TLS handshake on the first gives up
//     at once. So against an HTTPS-only receiver pass --protocol https,
//     unless that receiver answers plain HTTP with an error status (Go's
//     TLS server answers 400). HTTPS skips certificate checks unless
//     $LOCALSEND_INSECURE_TLS is set to something other than 1 (checked
//     against a self-signed server while this harness was written). The
//     protocol the info came over (or the "protocol" field of the info
//     response, when present) is used for the rest.
//   - POST prepare-upload?pin=X with one file: id = md5 of the path given,
//     fileName = its base name, fileType "application/octet-stream", sha256
//     of the content, metadata.modified = now. --pin defaults to 123456:
//     ?pin=123456 is always sent.
//   - POST upload?sessionId&fileId&token with the raw bytes, no
//     Content-Type. A file over 50 MiB (52428800 bytes) goes in 10 MiB
//     (10485760-byte) chunks, one POST each, in order, each with
//     Content-Length and X-Content-Range: bytes a-b/total (b inclusive; the
//     last chunk is the remainder) (checked). The whole file is read into
//     memory first, for its hash.
//   - On success it prints "✅ File uploaded successfully!" and exits 0
//     (checked). Every failure exits 1 (checked), with on stderr:
//     "Failed to get device info for target" (nothing listening, or no
//     2xx /info; preceded by "Error getting device info: ..." when it could
//     not connect); "Failed to prepare upload" for any non-2xx answer to
//     prepare-upload: 403 declined and 401 PIN required alike (checked for
//     both; it does not say which); "No file token returned. Transfer was
//     not accepted." for a 204 or an answer without a token for the file;
//     "❌ Failed to upload file" (after "Failed to upload chunk: a-b,
//     Status: N" for a chunk) when an upload is not 2xx, then it POSTs
//     cancel?sessionId and prints "Session canceled".
//   - Over 50 MiB it fails every time as published: its progress bar
//     divides by the milliseconds since the last callback, 0 on the first
//     chunk, and throws on NaN ("Error uploading file: TypeError: Expected
//     a finite number, got number: NaN"). startLocalSend preloads
//     testdata/localsend/monotonic-clock.cjs, a Date.now that never
//     returns the same millisecond twice; the wire is unchanged.
//
// discover [--json] [--timeout N] [--port P] [--alias A]
//
//   - Starts its own LocalSend HTTP server on P (53317 or --port; a
//     process already listening there makes it crash with EADDRINUSE,
//     status 1: not beside a receiver on the same host and port), joins
//     multicast, announces itself, then scans the /24 of every non-loopback
//     IPv4 address (x.y.z.1-254, whatever the prefix length): GET
//     http://x.y.z.n:P/api/localsend/v2/info, then https (insecure), 1 s
//     each, 50 at a time. It waits for the scan and then N seconds (default
//     5), so on a namespace LAN it takes about 12 s + N. Status 0 whatever
//     it found.
//   - It lists a device when a multicast message (announcement or answer)
//     from it arrives, or when the scan gets its info. Answers that come as
//     POST /register are not listed: on Node its register handler cannot
//     tell the caller's address and drops them. So an implementation is
//     listed if it announces (or answers an announcement over UDP) during
//     the window, or if it serves /info on port P.
//   - Output: "Scanning for devices as '<alias>'...", server lines,
//     "Scanning the network...", then either "No devices found" (even with
//     --json) or, with --json, a JSON array pretty-printed with two spaces,
//     one object per address:port (the last message wins): from multicast
//     {alias, version, deviceModel, deviceType, fingerprint, port, protocol,
//     download, ip (the datagram's source)}; from the scan, the /info
//     response plus port, protocol (the one that answered) and ip (checked).
//     localSendProc.discovered parses it.
//
// Multicast (receive and discover): UDP 224.0.0.167:53317 (never --port),
// a socket bound to 0.0.0.0:53317 with SO_REUSEADDR (another socket on that
// port in the same namespace must set it too, or the CLI crashes), joined
// and sent on each non-loopback IPv4 address; with none, on the default
// interface, which needs a route for 224.0.0.0/4 (else ENODEV, and nothing
// is heard: newLoopbackHost adds one). The announcement is its device info
// plus "announce": true and "announcement": true, sent 0.1, 0.6 and 2.6 s
// after start and never again. To an announcement it answers with POST
// /register to the announcer's ip:port (its protocol), and only if that
// fails with a UDP message with "announce": false. Between namespace hosts
// on one bridge multicast passes both ways with no extra route (checked).
// Set LOCALSEND_DEBUG_DISCOVERY=1 to see it: "[DISCOVER/UDP] Message
// {"from":"<ip>",...}" for each datagram heard.

// localSendDebugEnv makes the CLI log its multicast traffic.
const localSendDebugEnv = "LOCALSEND_DEBUG_DISCOVERY=1"

// localSendCLI returns the node binary and the npm CLI's script, and the
// preload that fixes its clock; it skips t when node or the package is
// missing (make test installs both).
func localSendCLI(t *testing.T) (node, cli, preload string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipped: needs node to run the LocalSend peer (Debian package nodejs; make test installs it)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "localsend"))
	require.NoError(t, err)
	cli = filepath.Join(dir, "node_modules", "localsend", "dist", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		t.Skipf("skipped: the LocalSend peer is not installed (%s missing): run make npm-deps (npm ci in e2e/testdata/localsend; make test does it)", cli)
	}
	preload = filepath.Join(dir, "monotonic-clock.cjs")
	require.FileExists(t, preload)
	return node, cli, preload
}

// newLoopbackHost is a host alone in a namespace of its own: loopback only,
// with multicast on and routed there (the CLI joins and sends on the
// default interface when it has no other), and 10.76.0.1/32 on lo so that
// datagrams have a source address to answer (without one they come from
// 0.0.0.0). Its ip is 10.76.0.1; 127.0.0.1 reaches it too.
func newLoopbackHost(t *testing.T) *host {
	t.Helper()
	requireNetns(t)
	l := &lan{t: t, prefix: newPrefix(), hosts: map[string]*host{}}
	h := &host{lan: l, name: "lo", ns: l.prefix + "-lo", ip: "10.76.0.1"}
	l.ip("netns", "add", h.ns)
	t.Cleanup(func() { l.ipQuiet("netns", "del", h.ns) })
	l.in(h.ns, "ip", "link", "set", "lo", "up")
	l.in(h.ns, "ip", "link", "set", "lo", "multicast", "on")
	l.in(h.ns, "ip", "addr", "add", h.ip+"/32", "dev", "lo")
	l.in(h.ns, "ip", "route", "add", "224.0.0.0/4", "dev", "lo")
	l.hosts[h.name] = h
	return h
}

// localSendProc is a running npm localsend CLI. Its stdout and stderr go
// into one buffer (in the order they arrive), stderr into another too.
type localSendProc struct {
	t     *testing.T
	label string
	args  []string
	ctx   context.Context
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu       sync.Mutex
	out      bytes.Buffer
	stderr   bytes.Buffer
	changed  chan struct{} // closed and replaced on every write
	exitCode int
	done     chan struct{} // closed once the process has exited

	cursor int // waitOutput's position in out; the test goroutine's only
}

// localSendWriter appends to a localSendProc's output.
type localSendWriter struct {
	p      *localSendProc
	stderr bool
}

func (w localSendWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.out.Write(b)
	if w.stderr {
		w.p.stderr.Write(b)
	}
	close(w.p.changed)
	w.p.changed = make(chan struct{})
	return len(b), nil
}

// startLocalSend runs the npm CLI with args on host h, or, with h nil, in
// the test's own network namespace: there only send is allowed, since
// receive and discover announce on multicast and scan the /24 of every
// address, which must stay inside namespaces the test made (newLoopbackHost
// is a namespace with loopback only). Its working directory is a temporary
// folder (receive's default --saveDir is ./received_files) and its stdin a
// pipe (answer). It is killed when ctx ends or the test does.
func startLocalSend(t *testing.T, ctx context.Context, h *host, label string, args ...string) *localSendProc {
	t.Helper()
	return startLocalSendEnv(t, ctx, h, label, nil, args...)
}

// startLocalSendEnv is startLocalSend with env (KEY=VALUE, say
// localSendDebugEnv) added to the environment.
func startLocalSendEnv(t *testing.T, ctx context.Context, h *host, label string, env []string, args ...string) *localSendProc {
	t.Helper()
	node, cli, preload := localSendCLI(t)
	if h == nil && (len(args) == 0 || args[0] != "send") {
		require.FailNow(t, "LocalSend CLI outside a namespace", "%s: only send may run in the test's own namespace (receive and discover announce and scan the network): pass a host (newLAN, newLoopbackHost)", label)
	}
	argv := append([]string{node, "-r", preload, cli}, args...)
	if h != nil {
		// ip netns exec execs node: the process, its signals and its exit
		// status are node's.
		argv = append([]string{"ip", "netns", "exec", h.ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	p := &localSendProc{t: t, label: label, args: args, ctx: ctx, cmd: cmd, changed: make(chan struct{}), done: make(chan struct{}), exitCode: -1}
	cmd.Stdout = localSendWriter{p: p}
	cmd.Stderr = localSendWriter{p: p, stderr: true}
	var err error
	p.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start %s", label)
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		if cmd.ProcessState != nil {
			p.exitCode = cmd.ProcessState.ExitCode()
		}
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() || os.Getenv("PEERDROP_E2E_DUMP") != "" {
			t.Logf("--- %s: localsend %s (exit status %d)\n%s", label, strings.Join(args, " "), p.exitStatus(), p.output())
		}
	})
	return p
}

// runLocalSend runs the CLI to the end (send, discover) and returns it.
func runLocalSend(t *testing.T, ctx context.Context, h *host, label string, args ...string) *localSendProc {
	t.Helper()
	p := startLocalSend(t, ctx, h, label, args...)
	p.wait()
	return p
}

// localSendReceive starts `receive --saveDir dir` with extra flags (such
// as --autoAccept, --pin X, --alias A, --port P) on h and waits until it
// serves and listens for multicast.
func localSendReceive(t *testing.T, ctx context.Context, h *host, label, dir string, extra ...string) *localSendProc {
	t.Helper()
	return localSendReceiveEnv(t, ctx, h, label, nil, dir, extra...)
}

// localSendReceiveEnv is localSendReceive with env added.
func localSendReceiveEnv(t *testing.T, ctx context.Context, h *host, label string, env []string, dir string, extra ...string) *localSendProc {
	t.Helper()
	p := startLocalSendEnv(t, ctx, h, label, env, append([]string{"receive", "--saveDir", dir}, extra...)...)
	p.waitOutput("Receiver is running.", 20*time.Second)
	return p
}

// output is everything the process printed so far, stdout and stderr.
func (p *localSendProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stderrText is what the process printed to stderr so far.
func (p *localSendProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// sawOutput reports whether substr is anywhere in the output so far.
func (p *localSendProc) sawOutput(substr string) bool {
	return strings.Contains(p.output(), substr)
}

// waitOutput waits until substr appears in the output after the end of
// the previous waitOutput's match (so the second prompt is not the first
// one again), and returns the output up to the end of the match. It fails
// the test when timeout passes, the process exits or the test's time is up
// first.
func (p *localSendProc) waitOutput(substr string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		gone := p.exited() // before the look: all output is in by then
		p.mu.Lock()
		out := p.out.String()
		changed := p.changed
		p.mu.Unlock()
		if i := strings.Index(out[p.cursor:], substr); i >= 0 {
			p.cursor += i + len(substr)
			return out[:p.cursor]
		}
		if gone {
			require.FailNowf(p.t, "no output", "%s exited (status %d) without printing %q; output:\n%s", p.label, p.exitStatus(), substr, out)
		}
		select {
		case <-changed:
		case <-p.done:
		case <-deadline.C:
			require.FailNowf(p.t, "no output", "%s did not print %q within %v; output:\n%s", p.label, substr, timeout, out)
		case <-p.ctx.Done():
			require.FailNowf(p.t, "no output", "%s did not print %q within the test's time limit; output:\n%s", p.label, substr, out)
		}
	}
}

// answer writes line and a newline to the process's stdin: "y" accepts
// receive's prompt, "n" declines it. Wait for the prompt first.
func (p *localSendProc) answer(line string) {
	p.t.Helper()
	_, err := io.WriteString(p.stdin, line+"\n")
	require.NoError(p.t, err, "answer %s", p.label)
}

func (p *localSendProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *localSendProc) exitStatus() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode
}

// wait waits for the process to exit and returns its exit status (-1 when
// a signal ended it).
func (p *localSendProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-p.ctx.Done():
		<-p.done // the context kills it
		require.FailNowf(p.t, "process did not exit", "%s did not exit within the test's time limit; output:\n%s", p.label, p.output())
	}
	return p.exitStatus()
}

// interrupt sends SIGINT: receive closes its server and exits 0.
func (p *localSendProc) interrupt() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGINT), "interrupt %s", p.label)
}

// localSendDevice is one entry of `discover --json`.
type localSendDevice struct {
	Alias       string `json:"alias"`
	Version     string `json:"version"`
	DeviceModel string `json:"deviceModel"`
	DeviceType  string `json:"deviceType"`
	Fingerprint string `json:"fingerprint"`
	Port        int    `json:"port"`
	Protocol    string `json:"protocol"`
	Download    bool   `json:"download"`
	IP          string `json:"ip"`
}

// discovered parses what `discover --json` printed: the devices, none for
// "No devices found".
func (p *localSendProc) discovered() []localSendDevice {
	p.t.Helper()
	out := p.output()
	// The array is printed in one piece, "[" on a line of its own, after
	// lines of progress (and of multicast debugging) that are not JSON.
	i := strings.LastIndex(out, "\n[\n")
	if i < 0 {
		require.Contains(p.t, out, "No devices found", "%s printed neither a device list nor \"No devices found\"", p.label)
		return nil
	}
	var list []localSendDevice
	require.NoError(p.t, json.NewDecoder(strings.NewReader(out[i+1:])).Decode(&list), "%s: the device list:\n%s", p.label, out[i+1:])
	return list
}

// awaitLocalSendFile waits until the CLI's receiver has written size bytes
// to path (it answers the last upload before its file is flushed) and
// returns the file's SHA-256.
func awaitLocalSendFile(t *testing.T, path string, size int64) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := os.Stat(path)
		if err == nil && info.Size() == size {
			return sha256File(t, path)
		}
		if time.Now().After(deadline) {
			got := "no file"
			if err == nil {
				got = fmt.Sprintf("%d bytes", info.Size())
			}
			require.FailNowf(t, "file not received", "%s: %s after 30s, want %d bytes", path, got, size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The harness runs the npm LocalSend CLI against itself on a namespace LAN:
// discover lists a receiver heard over multicast, a small file and one sent
// in chunks arrive intact, and receive's prompt is declined and accepted
// through stdin.
func TestLocalSendNpmSelfCheck(t *testing.T) {
	localSendCLI(t)
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	a, b, c := l.hosts["a"], l.hosts["b"], l.hosts["c"]

	// Discover first: its scan has probed A's address before A's receiver
	// listens, so it hears of A through A's multicast announcements (the
	// debug log shows the datagram).
	disc := startLocalSendEnv(t, ctx, b, "b-discover", []string{localSendDebugEnv}, "discover", "--json", "--timeout", "3", "--alias", "Scanner B")
	disc.waitOutput("Scanning the network...", 20*time.Second)
	dlA := t.TempDir()
	recvA := localSendReceiveEnv(t, ctx, a, "a-receive", []string{localSendDebugEnv}, dlA, "--autoAccept", "--alias", "Npm A")
	start := time.Now()
	require.Equal(t, 0, disc.wait(), "discover's exit status; output:\n%s", disc.output())
	t.Logf("discover ran %v after A started", time.Since(start).Round(100*time.Millisecond))
	assert.Contains(t, disc.output(), `[DISCOVER/UDP] Message {"from":"`+a.ip+`"`, "A's multicast announcement reached B")
	var found *localSendDevice
	for _, d := range disc.discovered() {
		if d.Alias == "Npm A" {
			found = &d
		}
	}
	require.NotNil(t, found, "discover lists A; output:\n%s", disc.output())
	assert.Equal(t, a.ip, found.IP)
	assert.Equal(t, 53317, found.Port)
	assert.Equal(t, "http", found.Protocol, "the CLI's receiver serves plain HTTP")
	assert.Equal(t, "2.1", found.Version)
	assert.Len(t, found.Fingerprint, 64)

	// Multicast the other way, to a receiver already running: C's
	// announcements reach A.
	dlC := t.TempDir()
	recvC := localSendReceiveEnv(t, ctx, c, "c-receive", []string{localSendDebugEnv}, dlC, "--alias", "Npm C")
	recvA.waitOutput(`[DISCOVER/UDP] Message {"from":"`+c.ip+`"`, 10*time.Second)

	// B sends A a small file and one over 50 MiB (in 10 MiB chunks).
	src := t.TempDir()
	for _, f := range []struct {
		name string
		size int64
	}{{"small.bin", 1 * MiB}, {"chunked.bin", 60*MiB + 1}} {
		path := filepath.Join(src, f.name)
		sum := writeRandomFile(t, path, f.size, uint64(f.size))
		send := runLocalSend(t, ctx, b, "b-send-"+f.name, "send", a.ip, path)
		require.Equal(t, 0, send.exitStatus(), "send %s; output:\n%s", f.name, send.output())
		assert.Contains(t, send.output(), "✅ File uploaded successfully!")
		if f.size > 50*MiB {
			assert.Contains(t, send.output(), "uploading in chunks...")
			assert.Contains(t, send.output(), "Uploading chunk: 60.00 - 60.00 MB", "the last chunk is the remainder")
		}
		assert.Equal(t, sum, awaitLocalSendFile(t, filepath.Join(dlA, f.name), f.size), "%s arrives intact", f.name)
	}

	// C asks: declined, the sender fails; accepted, the file arrives.
	path := writeFile(t, src, "asked.txt", "asked first\n")
	send := startLocalSend(t, ctx, b, "b-send-declined", "send", c.ip, path)
	recvC.waitOutput("Incoming transfer request from TypeScript Sender:", 20*time.Second)
	recvC.waitOutput("Accept transfer? (y/N): ", 5*time.Second)
	recvC.answer("n")
	require.Equal(t, 1, send.wait(), "a declined send; output:\n%s", send.output())
	assert.Contains(t, send.stderrText(), "Failed to prepare upload")
	recvC.waitOutput("Transfer rejected", 5*time.Second)
	assert.Empty(t, dirNames(t, dlC), "nothing written when declined")

	send = startLocalSend(t, ctx, b, "b-send-accepted", "send", c.ip, path)
	recvC.waitOutput("Accept transfer? (y/N): ", 20*time.Second)
	recvC.answer("y")
	require.Equal(t, 0, send.wait(), "an accepted send; output:\n%s", send.output())
	recvC.waitOutput("Transfer accepted, downloading...", 5*time.Second)
	assert.Equal(t, sha256File(t, path), awaitLocalSendFile(t, filepath.Join(dlC, "asked.txt"), int64(len("asked first\n"))))

	recvA.interrupt()
	assert.Equal(t, 0, recvA.wait(), "receive exits 0 on SIGINT")
	assert.True(t, recvA.sawOutput("Server stopped"))
}
