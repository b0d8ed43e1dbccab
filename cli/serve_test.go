package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/redistest"
)

// runServe starts `serve` with args and returns its "serving" event; the
// server stops when the test ends.
func runServe(t *testing.T, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"--config-dir", t.TempDir(), "--json", "serve"}, args...), strings.NewReader(""), pw, &stderr)
		_ = pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		select {
		case err := <-done:
			assert.NoError(t, err, "serve: %s", stderr.String())
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "serve: %s", stderr.String())
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
	require.Equal(t, "serving", ev["event"], line)
	return ev
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test on loopback
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// The counters are on the metrics listener only: the public one, which
// anyone reaches, does not serve them.
func TestServeMetricsListener(t *testing.T) {
	ev := runServe(t, "--listen", "127.0.0.1:0", "--turn-listen", "off", "--metrics-listen", "127.0.0.1:0")
	addr, _ := ev["address"].(string)
	metrics, _ := ev["metrics"].(string)
	require.NotEmpty(t, addr)
	require.True(t, strings.HasPrefix(metrics, "http://127.0.0.1:"), "metrics at %q", metrics)

	code, body := get(t, metrics)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "peerdrop_rendezvous_connections ")

	code, body = get(t, "http://"+addr+"/metrics")
	assert.NotContains(t, body, "peerdrop_rendezvous_", "no counters on the public listener (status %d)", code)
	code, _ = get(t, "http://"+addr+"/healthz")
	assert.Equal(t, http.StatusOK, code, "the public listener still serves")
}

// --metrics-listen "" serves no counters at all.
func TestServeMetricsOff(t *testing.T) {
	ev := runServe(t, "--listen", "127.0.0.1:0", "--turn-listen", "off", "--metrics-listen", "")
	assert.NotContains(t, ev, "metrics")
	addr, _ := ev["address"].(string)
	_, body := get(t, "http://"+addr+"/metrics")
	assert.NotContains(t, body, "peerdrop_rendezvous_")
}

// A TURN secret file that group or others can read is refused, as ssh
// refuses such a private key; once private it is used.
func TestServeTURNSecretFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turn-secret")
	require.NoError(t, os.WriteFile(path, []byte("a secret of at least sixteen characters\n"), 0o600))
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		require.NoError(t, os.Chmod(path, mode))
		// Bounded, so that a serve that starts anyway ends the test.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := run(ctx, []string{"--config-dir", t.TempDir(), "serve", "--listen", "127.0.0.1:0", "--turn-listen", "off",
			"--metrics-listen", "", "--turn-secret-file", path}, strings.NewReader(""), io.Discard, io.Discard)
		cancel()
		var ee *exitError
		require.ErrorAs(t, err, &ee, "mode %04o: refused", mode)
		assert.Equal(t, 2, ee.code)
		assert.Contains(t, err.Error(), path, "mode %04o: the error names the file", mode)
		assert.Contains(t, err.Error(), "chmod 600 "+path, "mode %04o: the error says the fix", mode)
	}

	require.NoError(t, os.Chmod(path, 0o600))
	ev := runServe(t, "--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--metrics-listen", "",
		"--turn-secret-file", path)
	assert.NotEqual(t, "none", ev["turn"], "a private secret file is used")
}

// --redis takes a redis:// URL without a password; the password comes from
// a private file or the environment.
func TestServeRedisFlags(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	require.NoError(t, os.WriteFile(pwFile, []byte("secret\n"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis", "redis://:hunter2@127.0.0.1:6379/0"}, "process list"},
		{[]string{"--redis", "http://127.0.0.1:6379"}, "redis:// or rediss://"},
		{[]string{"--redis-password-file", pwFile}, "needs --redis"},
		{[]string{"--redis", "redis://127.0.0.1:1/0", "--redis-password-file", pwFile}, "chmod 600 " + pwFile},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := run(ctx, append([]string{"--config-dir", t.TempDir(), "serve", "--listen", "127.0.0.1:0", "--turn-listen", "off",
			"--metrics-listen", ""}, tc.args...), strings.NewReader(""), io.Discard, io.Discard)
		cancel()
		var ee *exitError
		if assert.ErrorAs(t, err, &ee, "%v: refused", tc.args) {
			assert.Equal(t, 2, ee.code)
			assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
		}
	}
}

// With --redis the server uses Redis, with the password of the
// environment or of a file: ready with the right one, not with a wrong one.
func TestServeOnRedis(t *testing.T) {
	r := redistest.Start(t)
	_, err := r.Do("CONFIG", "SET", "requirepass", "right password")
	require.NoError(t, err)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	require.NoError(t, os.WriteFile(pwFile, []byte("right password\n"), 0o600))

	t.Setenv("PEERDROP_REDIS_PASSWORD", "wrong password")
	wrong := runServe(t, "--listen", "127.0.0.1:0", "--turn-listen", "off", "--metrics-listen", "", "--redis", r.URL())
	code, body := get(t, "http://"+wrong["address"].(string)+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "the wrong password: not ready")
	assert.Contains(t, body, "redis unreachable")

	ev := runServe(t, "--listen", "127.0.0.1:0", "--turn-listen", "off", "--metrics-listen", "127.0.0.1:0",
		"--redis", r.URL(), "--redis-password-file", pwFile)
	code, body = get(t, "http://"+ev["address"].(string)+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	_, body = get(t, ev["metrics"].(string))
	assert.Contains(t, body, "peerdrop_rendezvous_store_round_trips_total ")
	assert.Contains(t, body, "peerdrop_rendezvous_store_errors_total 0\n")

	t.Setenv("PEERDROP_REDIS_PASSWORD", "right password")
	env := runServe(t, "--listen", "127.0.0.1:0", "--turn-listen", "off", "--metrics-listen", "", "--redis", r.URL())
	code, _ = get(t, "http://"+env["address"].(string)+"/healthz")
	assert.Equal(t, http.StatusOK, code, "the password of the environment")
}
