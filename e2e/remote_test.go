//go:build linux

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Off the LAN, on loopback: `peerdrop serve`, a receiver that shows a
// pairing code through it (and listens on the LAN too, hidden here) and a
// sender that types the code. The PAKE runs through the server, then the handshake, then WebRTC.

// startLoopbackServe runs `peerdrop serve` on loopback and returns its WebSocket URL.
func startLoopbackServe(t *testing.T, ctx context.Context) string {
	t.Helper()
	p := start(t, ctx, "serve", false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0")
	return p.await("serving", nil).str("url")
}

// startRemoteReceiver runs `receive --server URL --yes --once` and returns
// it with the pairing code it shows.
func startRemoteReceiver(t *testing.T, ctx context.Context, url, dir string, extra ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"--config-dir", t.TempDir(), "--name", receiverName, "--json",
		"receive", "--server", url, "--hidden", "--yes", "--once", "--dir", dir}, extra...)
	r := start(t, ctx, "receiver", false, args...)
	ev := r.await("pairing-code", nil)
	code := ev.str("code")
	require.Regexp(t, regexp.MustCompile(`^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$`), code, "pairing-code event: %s", ev)
	assert.Equal(t, url, ev.str("url"))
	expires, err := time.Parse(time.RFC3339, ev.str("expires"))
	require.NoError(t, err, "pairing-code expires: %s", ev)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), expires, time.Minute)
	lan := r.awaitAny("listening", nil)
	assert.False(t, lan.flag("discoverable"), "--hidden: the LAN listener is not advertised")
	assert.Positive(t, lan.num("port"))
	assert.NotEqual(t, int64(53318), lan.num("port"), "on a free port unless --port says so")
	return r, code
}

var candidateTypes = []string{"host", "srflx", "prflx", "relay"}

// A folder arrives intact through the server; the sender says how it is
// connected.
func TestRemoteFolder(t *testing.T) {
	ctx := testContext(t)
	url := startLoopbackServe(t, ctx)
	src := t.TempDir()
	writeFile(t, src, "trip/day1/notes.txt", "met at the rendezvous\n")
	writeFile(t, src, "trip/day2/empty.txt", "")
	mkdir(t, src, "trip/empty-dir")
	writeRandomFile(t, filepath.Join(src, "trip", "photo.raw"), 3*MiB+7, 7)
	want := snapshot(t, filepath.Join(src))

	dl := t.TempDir()
	r, code := startRemoteReceiver(t, ctx, url, dl)
	s := startSender(t, ctx, "--server", url, "--code", code, filepath.Join(src, "trip"))

	conn := s.await("connected", nil)
	assert.Equal(t, "server", conn.str("via"), "connected: %s", conn)
	assert.Equal(t, receiverName, conn.str("peer"))
	assert.Contains(t, candidateTypes, conn.str("route_local"), "connected: %s", conn)
	assert.Contains(t, candidateTypes, conn.str("route_remote"), "connected: %s", conn)
	assert.Regexp(t, `^\d{3} \d{3}$`, conn.str("code"))
	offer := r.await("offer", nil)
	assert.Equal(t, senderName, offer.str("from"))
	assert.Equal(t, conn.str("code"), offer.str("code"), "both ends show one verification code")

	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())
	assert.Equal(t, files(want), files(snapshot(t, dl)), "files in the download folder (path -> SHA-256)")
	assert.ElementsMatch(t, dirs(want), dirs(snapshot(t, dl)))
	requireNoLeftovers(t, dl)
}

// --relay-only: the bytes go through the server's TURN relay.
func TestRemoteRelayOnly(t *testing.T) {
	ctx := testContext(t)
	url := startLoopbackServe(t, ctx)
	src := t.TempDir()
	file := writeFile(t, src, "secret-plans.txt", "through the relay, encrypted end to end\n")
	dl := t.TempDir()
	r, code := startRemoteReceiver(t, ctx, url, dl, "--relay-only")
	s := startSender(t, ctx, "--server", url, "--code", code, "--relay-only", "--text", "relayed", file)
	conn := s.await("connected", nil)
	assert.Equal(t, "relay", conn.str("route_local"), "connected: %s", conn)
	assert.Equal(t, "relay", conn.str("route_remote"), "connected: %s", conn)
	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())
	assert.Equal(t, files(snapshot(t, src)), files(snapshot(t, dl)))
}

// A wrong code fails on both sides, in plain words; an unknown one too.
func TestRemoteWrongCode(t *testing.T) {
	ctx := testContext(t)
	url := startLoopbackServe(t, ctx)
	src := t.TempDir()
	file := writeFile(t, src, "a.txt", "a\n")

	t.Run("wrong secret", func(t *testing.T) {
		dl := t.TempDir()
		r, code := startRemoteReceiver(t, ctx, url, dl)
		wrong := code[:12] + "00000"
		if wrong == code {
			wrong = code[:12] + "11111"
		}
		s := startSender(t, ctx, "--server", url, "--code", wrong, file)
		assert.Equal(t, 1, s.wait())
		assert.Contains(t, s.stderr.String(), "the pairing code did not match")
		assert.Empty(t, s.all("connected"))
		start := time.Now()
		assert.NotEqual(t, 0, r.wait(), "receive --once ends with the failed pairing")
		assert.Less(t, time.Since(start), 3*time.Second, "at once")
		assert.Contains(t, r.stderr.String(), "the pairing code did not match")
		errs := r.all("error")
		require.NotEmpty(t, errs)
		assert.Contains(t, errs[0].str("message"), "the pairing code did not match")
		assert.Empty(t, snapshot(t, dl))
	})

	t.Run("unknown code", func(t *testing.T) {
		s := startSender(t, ctx, "--server", url, "--code", "7KQ2M-XW4PD-R8T3Z", file)
		assert.Equal(t, 1, s.wait())
		assert.Contains(t, s.stderr.String(), "no such pairing code (expired or already used?)")
	})

	t.Run("bad usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"--server", url, file},                                       // no code
			{"--code", "7KQ2M-XW4PD-R8T3Z", file},                         // no server
			{"--server", url, "--code", "7KQ2M-XW4PD", file},              // the server's part only
			{"--server", url, "--code", "7KQ2M-XW4PD-R8T3Z", "--to", "x"}, // both
			{"--to", "127.0.0.1:1", "--relay-only", file},
		} {
			s := startSender(t, ctx, args...)
			assert.Equal(t, 2, s.wait(), "%v: %s", args, s.stderr.String())
		}
	})
}

// The receiver's connection to the server drops (the server restarts): it
// connects again by itself and shows a new code, with which a sender pairs.
func TestRemoteReceiverReconnectsToServer(t *testing.T) {
	ctx := testContext(t)
	port := freePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	serveCtx, stopServe := context.WithCancel(ctx)
	first := start(t, serveCtx, "serve-1", false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", listen, "--turn-listen", "127.0.0.1:0")
	url := first.await("serving", nil).str("url")

	dl := t.TempDir()
	r, code := startRemoteReceiver(t, ctx, url, dl)
	first.signal(syscall.SIGTERM)
	first.wait()
	stopServe()
	lost := r.await("server-reconnecting", nil)
	t.Logf("receiver: %s", lost)
	assert.NotEmpty(t, lost.str("error"))

	second := start(t, ctx, "serve-2", false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", listen, "--turn-listen", "127.0.0.1:0")
	require.Equal(t, url, second.await("serving", nil).str("url"))
	again := r.await("pairing-code", nil)
	require.NotEqual(t, code, again.str("code"), "a new code on the new connection")

	note := writeFile(t, t.TempDir(), "note.txt", "after the server came back")
	s := startSender(t, ctx, "--server", url, "--code", again.str("code"), note)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	require.Equal(t, 0, r.wait(), "receiver stderr: %s", r.stderr.String())
	assert.Equal(t, sha256File(t, note), sha256File(t, filepath.Join(dl, "note.txt")))
}
