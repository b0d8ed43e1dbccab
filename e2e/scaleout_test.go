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

// Behind one URL (nginx in front of two instances), the instance holding
// a paired, idle receiver is killed (SIGKILL): the receiver reconnects
// through the same URL to the other instance within its retry window, and
// a new send by name goes through.
func TestServeInstanceKilled(t *testing.T) {
	ctx := testContext(t)
	r := redistest.Start(t)
	pa, pb := freePort(t), freePort(t)
	a := startInstance(t, ctx, "serve-a", r.URL(), fmt.Sprintf("127.0.0.1:%d", pa))
	b := startInstance(t, ctx, "serve-b", r.URL(), fmt.Sprintf("127.0.0.1:%d", pb))
	url := startNginx(t, ctx, pa, pb)

	bobCfg, aliceCfg, dl := t.TempDir(), t.TempDir(), t.TempDir()
	bob := runDevice(t, ctx, "bob", bobCfg, "Bob", "receive", "--server", url, "--hidden", "--yes", "--dir", dl)
	code := bob.await("pairing-code", nil).str("code")
	src := t.TempDir()
	first := writeFile(t, src, "first.txt", "paired through the load balancer\n")
	s := runDevice(t, ctx, "alice-pair", aliceCfg, "Alice", "send", "--server", url, "--code", code, first)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	bob.await("file-done", func(ev event) bool { return ev.str("name") == "first.txt" })

	// Bob is idle on one instance (the balancer hashes the client
	// address): kill that one.
	held, other := a, b
	if connections(t, a) == 0 {
		held, other = b, a
	}
	require.Positive(t, connections(t, held), "Bob's connection is on an instance")
	held.p.signal(syscall.SIGKILL)
	held.p.wait()
	bob.await("server-reconnecting", nil)
	require.Eventually(t, func() bool { return connections(t, other) > 0 }, 30*time.Second, 100*time.Millisecond,
		"Bob reconnected to the other instance")

	second := writeFile(t, src, "second.txt", "after an instance died\n")
	require.Eventually(t, func() bool {
		s = runDevice(t, ctx, "alice-after", aliceCfg, "Alice", "send", "--server", url, "--to", "Bob", second)
		return s.wait() == 0
	}, 30*time.Second, time.Second, "a send by name goes through")
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

// startNginx runs Debian's nginx privately (its files in a temporary
// folder, never the system's) in front of two instances on loopback, and
// returns the WebSocket URL clients use. It hashes the client address, so
// that every process of this test lands on one instance until it dies.
func startNginx(t *testing.T, ctx context.Context, ports ...int) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("skipped: needs nginx (Debian package nginx; make test installs it)")
	}
	dir := t.TempDir()
	port := freePort(t)
	var servers strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&servers, "    server 127.0.0.1:%d max_fails=1 fail_timeout=30s;\n", p)
	}
	// One process (no master): nothing outlives a kill.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream peerdrop {
    hash $remote_addr consistent;
%[2]s  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://peerdrop;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_read_timeout 1h;
    }
  }
}
`, dir, servers.String(), port)
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool { return httpStatus(base+"/healthz") == http.StatusOK }, 10*time.Second, 50*time.Millisecond,
		"nginx answers /healthz")
	return fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
}
