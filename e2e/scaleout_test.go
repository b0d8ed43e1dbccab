//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/redistest"
)

// instance is one `peerdrop serve --redis` process.
type instance struct {
	p                  *proc
	url, addr, metrics string
}

// startInstance runs `peerdrop serve` on loopback sharing redisURL, on
// listen ("127.0.0.1:0": a free port).
func startInstance(t *testing.T, ctx context.Context, label, redisURL, listen string) *instance {
	t.Helper()
	p := start(t, ctx, label, false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", listen, "--turn-listen", "off", "--metrics-listen", "127.0.0.1:0", "--redis", redisURL)
	ev := p.await("serving", nil)
	return &instance{p: p, url: ev.str("url"), addr: ev.str("address"), metrics: ev.str("metrics")}
}

// httpStatus is the status of a GET of url, 0 when it cannot be reached.
func httpStatus(url string) int {
	resp, err := http.Get(url) //nolint:noctx // loopback, short
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// device is a CLI with a config folder of its own and a name.
func runDevice(t *testing.T, ctx context.Context, label, config, name string, args ...string) *proc {
	t.Helper()
	return start(t, ctx, label, false, append([]string{"--config-dir", config, "--name", name, "--json"}, args...)...)
}

// Two `serve` instances on one Redis act as one server: a device on A
// shows a code, a device on B pairs with it and sends a file; then, by
// presence, the device on B finds the one on A by name and sends again.
// Redis restarts: the instances recover by themselves.
func TestServeScalesOutOnRedis(t *testing.T) {
	ctx := testContext(t)
	r := redistest.Start(t)
	a := startInstance(t, ctx, "serve-a", r.URL(), "127.0.0.1:0")
	b := startInstance(t, ctx, "serve-b", r.URL(), "127.0.0.1:0")

	bobCfg, aliceCfg, dl := t.TempDir(), t.TempDir(), t.TempDir()
	bob := runDevice(t, ctx, "bob", bobCfg, "Bob", "receive", "--server", a.url, "--hidden", "--yes", "--dir", dl)
	code := bob.await("pairing-code", nil).str("code")

	src := t.TempDir()
	first := writeFile(t, src, "first.txt", "paired across two instances\n")
	s := runDevice(t, ctx, "alice-pair", aliceCfg, "Alice", "send", "--server", b.url, "--code", code, first)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	bob.await("file-done", func(ev event) bool { return ev.str("name") == "first.txt" })

	second := filepath.Join(src, "second.bin")
	want := writeRandomFile(t, second, 1*MiB+5, 3)
	s = runDevice(t, ctx, "alice-presence", aliceCfg, "Alice", "send", "--server", b.url, "--to", "Bob", second)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	assert.Equal(t, "server", s.await("connected", nil).str("via"))
	bob.await("file-done", func(ev event) bool { return ev.str("name") == "second.bin" })
	assert.Equal(t, want, sha256File(t, filepath.Join(dl, "second.bin")))

	// Redis goes away and comes back: both instances say so on /healthz
	// and recover without a restart of their own.
	r.Stop()
	for _, in := range []*instance{a, b} {
		require.Eventually(t, func() bool { return httpStatus("http://"+in.addr+"/healthz") == http.StatusServiceUnavailable },
			10*time.Second, 100*time.Millisecond, "not ready while Redis is down")
	}
	r.Restart()
	for _, in := range []*instance{a, b} {
		require.Eventually(t, func() bool { return httpStatus("http://"+in.addr+"/healthz") == http.StatusOK },
			10*time.Second, 100*time.Millisecond, "ready again")
	}
	third := writeFile(t, src, "third.txt", "after Redis came back\n")
	require.Eventually(t, func() bool {
		s = runDevice(t, ctx, "alice-after", aliceCfg, "Alice", "send", "--server", b.url, "--to", "Bob", third)
		return s.wait() == 0
	}, 40*time.Second, time.Second, "Bob re-announced himself and is found again")
	bob.await("file-done", func(ev event) bool { return ev.str("name") == "third.txt" })
}

// Behind one URL (the shipped nginx site, over TLS, in front of two
// instances), the instance holding a paired, idle receiver is killed
// (SIGKILL) while a transfer runs peer to peer: the transfer completes,
// the receiver reconnects through the same URL to the other instance
// within its retry window, and a new send by name goes through.
func TestServeInstanceKilled(t *testing.T) {
	nginx := nginxBinary(t)
	ctx := testContext(t)
	r := redistest.Start(t)
	a := startInstance(t, ctx, "serve-a", r.URL(), "127.0.0.1:0")
	b := startInstance(t, ctx, "serve-b", r.URL(), "127.0.0.1:0")

	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir)
	httpPort, httpsPort := freePort(t), freePort(t)
	conf := nginxMainConf(t, dir, nginxSite(t, httpPort, httpsPort, a.addr, b.addr, certFile, keyFile))
	startNginx(t, ctx, nginx, dir, conf, httpsPort)
	url := fmt.Sprintf("wss://127.0.0.1:%d/ws", httpsPort)
	// The devices trust the test's certificate as a public one.
	device := func(label, config, name string, args ...string) *proc {
		cmd := exec.CommandContext(ctx, peerdropBin, append([]string{"--config-dir", config, "--name", name, "--json"}, args...)...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile)
		return startCmd(t, ctx, label, false, cmd, cmd.Args[1:])
	}

	bobCfg, aliceCfg, dl := t.TempDir(), t.TempDir(), t.TempDir()
	bob := device("bob", bobCfg, "Bob", "receive", "--server", url, "--hidden", "--yes", "--dir", dl)
	code := bob.await("pairing-code", nil).str("code")
	// Bob's instance: the one the balancer gave his connection.
	held, other := a, b
	if connections(t, a) == 0 {
		held, other = b, a
	}
	require.Positive(t, connections(t, held), "Bob is on an instance")

	src := t.TempDir()
	first := writeFile(t, src, "first.txt", "paired through the load balancer\n")
	s := device("alice-pair", aliceCfg, "Alice", "send", "--server", url, "--code", code, first)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	bob.await("file-done", func(ev event) bool { return ev.str("name") == "first.txt" })

	// A transfer that runs peer to peer while Bob's instance dies is
	// untouched.
	big := filepath.Join(src, "big.bin")
	bigSum := writeRandomFile(t, big, 128*MiB, 9)
	running := device("alice-big", aliceCfg, "Alice", "send", "--server", url, "--to", "Bob", big)
	running.await("progress", func(ev event) bool { return ev.num("bytes") > 0 })
	require.False(t, running.exited(), "the transfer still runs when the instance dies")
	held.p.signal(syscall.SIGKILL)
	held.p.wait()
	// Bob reconnects (a new connection shows a new code) to the other,
	// while the file arrives.
	bob.await("server-reconnecting", nil)
	bob.await("pairing-code", nil)
	assert.Positive(t, connections(t, other), "Bob reconnected to the other instance")
	require.Equal(t, 0, running.wait(), "the running send: %s", running.stderr.String())
	// The file may have arrived before Bob reconnected: its order with
	// the reconnect's events is not the point.
	bob.awaitAny("file-done", func(ev event) bool { return ev.str("name") == "big.bin" })
	assert.Equal(t, bigSum, sha256File(t, filepath.Join(dl, "big.bin")), "the file is intact")

	second := writeFile(t, src, "second.txt", "after an instance died\n")
	s = device("alice-after", aliceCfg, "Alice", "send", "--server", url, "--to", "Bob", second)
	require.Equal(t, 0, s.wait(), "a send by name goes through: %s", s.stderr.String())
	bob.await("file-done", func(ev event) bool { return ev.str("name") == "second.txt" })
}

// connections is an instance's open WebSocket connections, from /metrics.
func connections(t *testing.T, in *instance) int {
	t.Helper()
	resp, err := http.Get(in.metrics) //nolint:noctx // loopback
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(body), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "peerdrop_rendezvous_connections %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("no connections gauge in %s", body)
	return 0
}
