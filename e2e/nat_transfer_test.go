//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// natSend pairs Bob (receiving, showing a code) and Alice (sending with it)
// through the server on the NAT topology, sends a folder, and returns
// Alice's connected event after checking the folder arrived intact.
func natSend(t *testing.T, ctx context.Context, l *lan, aliceExtra ...string) event {
	t.Helper()
	src := t.TempDir()
	writeFile(t, src, "trip/notes.txt", "across two NATs\n")
	writeRandomFile(t, filepath.Join(src, "trip", "photo.bin"), 3*MiB+5, 21)
	dl := t.TempDir()
	bob := l.hosts["b"].device("Bob")
	alice := l.hosts["a"].device("Alice")
	bp := bob.run(ctx, "bob-receive", "receive", "--server", natServeURL, "--dir", dl, "--yes", "--once")
	code := bp.await("pairing-code", nil).str("code")
	require.NotEmpty(t, code)
	args := append([]string{"send", "--server", natServeURL, "--code", code}, aliceExtra...)
	s := alice.run(ctx, "alice-send", append(args, filepath.Join(src, "trip"))...)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	require.Equal(t, 0, bp.wait(), "receiver stderr: %s", bp.stderr.String())
	assert.Equal(t, files(snapshot(t, src)), files(snapshot(t, dl)), "the folder arrived intact")
	requireNoLeftovers(t, dl)
	c := s.await("connected", nil)
	assert.Equal(t, "server", c.str("via"))
	t.Logf("route: local %s, remote %s", c.str("route_local"), c.str("route_remote"))
	return c
}

func natContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Endpoint-independent NAT on both sides: the peers punch through and the
// bytes go directly, not through the relay.
func TestNATDirect(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	c := natSend(t, ctx, l)
	assert.NotEqual(t, "relay", c.str("route_local"), "a direct path, not the relay")
	assert.NotEqual(t, "relay", c.str("route_remote"), "a direct path, not the relay")
}

// Symmetric NAT on both sides: no direct path exists; TURN carries it.
func TestNATSymmetricGoesThroughTURN(t *testing.T) {
	l := newNAT(t, natSymmetric)
	ctx := natContext(t)
	startServe(t, ctx, l)
	c := natSend(t, ctx, l)
	assert.True(t, c.str("route_local") == "relay" || c.str("route_remote") == "relay",
		"through TURN: local %s, remote %s", c.str("route_local"), c.str("route_remote"))
}

// --relay-only forces TURN even where a direct path exists.
func TestNATRelayOnly(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	c := natSend(t, ctx, l, "--relay-only")
	assert.Equal(t, "relay", c.str("route_local"))
}

// TURN credentials the relay does not accept (an external TURN with another
// secret) make --relay-only fail with a clear error, and nothing arrives.
func TestNATRelayOnlyWrongCredentials(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(right, []byte("the-secret-of-the-embedded-turn\n"), 0o600))
	require.NoError(t, os.WriteFile(wrong, []byte("another-secret-entirely-wrong\n"), 0o600))
	startServe(t, ctx, l, "--turn-secret-file", right)
	// A second signaling server hands out credentials made with the wrong
	// secret for the same TURN server (its metrics off: the first server
	// has the default metrics address).
	bad := l.hosts["s"].peerdrop(ctx, "serve-wrong", "--config-dir", t.TempDir(), "--json", "serve",
		"--listen", natServerIP+":8081", "--turn-secret-file", wrong, "--external-turn", "turn:"+natServerIP+":3478",
		"--metrics-listen", "")
	bad.await("serving", nil)
	badURL := "ws://" + natServerIP + ":8081/ws"

	dl := t.TempDir()
	bp := l.hosts["b"].device("Bob").run(ctx, "bob-receive", "receive", "--server", badURL, "--dir", dl, "--yes", "--once", "--relay-only")
	code := bp.await("pairing-code", nil).str("code")
	note := writeFile(t, t.TempDir(), "note.txt", "never")
	s := l.hosts["a"].device("Alice").run(ctx, "alice-send", "send", "--server", badURL, "--code", code, "--relay-only", note)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "credentials", "a clear error: %s", s.stderr.String())
	assertEmptyDir(t, dl)
}

// A code nobody created is refused with a clear error.
func TestNATUnknownCode(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	note := writeFile(t, t.TempDir(), "note.txt", "to nobody")
	s := l.hosts["a"].device("Alice").run(ctx, "alice-send", "send", "--server", natServeURL, "--code", "ABCDE-FGHJK-MNPQR", note)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "pairing code")
}

// bigNATTransfer starts the server, Bob receiving with a code and Alice
// sending him a 96 MiB file (random, from seed), and returns once 4 MiB
// have gone: the sender, the receiver, the file's SHA-256 and Bob's folder.
func bigNATTransfer(t *testing.T, l *lan, seed uint64) (s, bp *proc, want, dl string) {
	t.Helper()
	ctx := natContext(t)
	startServe(t, ctx, l)
	big := filepath.Join(t.TempDir(), "big.bin")
	want = writeRandomFile(t, big, 96*MiB, seed)
	dl = t.TempDir()
	bp = l.hosts["b"].device("Bob").run(ctx, "bob-receive", "receive", "--server", natServeURL, "--dir", dl, "--yes", "--once")
	code := bp.await("pairing-code", nil).str("code")
	s = l.hosts["a"].device("Alice").run(ctx, "alice-send", "send", "--server", natServeURL, "--code", code, big)
	s.await("progress", func(ev event) bool { return ev.num("bytes") > 4*MiB })
	return s, bp, want, dl
}

// The path breaks mid-transfer (Alice's router loses its WAN link): the
// transfer resumes and finishes intact. A 5 s outage is bridged on the same
// path (SCTP retransmits); a 12 s one outlasts ICE's failure timeout (7 s),
// so the sender restarts ICE over the signaling pipe, which survives the
// outage in the server's TCP connections, and the same connection carries
// on: no reconnect, nothing sent twice.
func TestNATLinkDownResumes(t *testing.T) {
	for _, tc := range []struct {
		outage  time.Duration
		restart bool
	}{{5 * time.Second, false}, {12 * time.Second, true}} {
		t.Run(tc.outage.String(), func(t *testing.T) {
			l := newNAT(t, natPortPreserving)
			s, bp, want, dl := bigNATTransfer(t, l, 31)
			l.hosts["ra"].linkNamed("wan", false)
			time.Sleep(tc.outage) // the outage itself, not a timing assertion
			require.False(t, s.exited(), "the outage came mid-transfer")
			l.hosts["ra"].linkNamed("wan", true)

			require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
			require.Equal(t, 0, bp.wait(), "receiver stderr: %s", bp.stderr.String())
			reconnects, lost, restored := len(s.all("reconnecting")), s.all("path-lost"), s.all("path-restored")
			t.Logf("reconnects: %d, paths lost: %d, restored: %d", reconnects, len(lost), len(restored))
			if tc.restart {
				require.NotEmpty(t, lost, "the sender noticed the broken path")
				require.NotEmpty(t, restored, "an ICE restart brought the path back")
				assert.Positive(t, restored[len(restored)-1].num("restarts"))
				assert.Zero(t, reconnects, "the same connection carried on")
			}
			assert.Equal(t, want, sha256File(t, filepath.Join(dl, "big.bin")), "the file is intact")
			requireNoLeftovers(t, dl)
		})
	}
}

// Alice's router gets a new public address mid-transfer (an ISP renumbers
// it, a phone hops to another mast): every NAT mapping is gone, the old
// candidate pair and Alice's server connection with it. The sender notices,
// connects to the server again, finds Bob by his id (no code: they paired)
// and resumes from what arrived; the file is intact.
func TestNATAddressChangeResumes(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	s, bp, want, dl := bigNATTransfer(t, l, 37)
	ra := l.hosts["ra"]
	// Removing the primary address would take secondaries with it: swap.
	l.in(ra.ns, "ip", "addr", "del", ra.ip+"/24", "dev", "wan")
	l.in(ra.ns, "ip", "addr", "add", "203.0.113.21/24", "dev", "wan")
	require.False(t, s.exited(), "the change came mid-transfer")

	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	require.Equal(t, 0, bp.wait(), "receiver stderr: %s", bp.stderr.String())
	t.Logf("reconnects: %d, paths lost: %d, restored: %d", len(s.all("reconnecting")), len(s.all("path-lost")), len(s.all("path-restored")))
	assert.True(t, len(s.all("reconnecting")) > 0 || len(s.all("path-restored")) > 0, "the sender found a new path")
	done := bp.await("file-done", nil)
	assert.Positive(t, done.num("resumed_from")+int64(len(s.all("path-restored"))), "nothing was sent twice from the start")
	assert.Equal(t, want, sha256File(t, filepath.Join(dl, "big.bin")), "the file is intact")
	requireNoLeftovers(t, dl)
}

// Guessing codes from one address is cut off by the server's rate limit,
// while devices behind other addresses still pair. (The guesser sits on the
// public network, at its own address.)
func TestNATCodeGuessingIsRateLimited(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	note := writeFile(t, t.TempDir(), "note.txt", "guess")
	mallory := l.hosts["s"].device("Mallory")
	limited := false
	for i := range 14 {
		guess := fmt.Sprintf("ABCDE-FGH%02d-MNPQR", i)
		s := mallory.run(ctx, fmt.Sprintf("guess-%d", i), "send", "--server", natServeURL, "--code", guess, note)
		require.NotEqual(t, 0, s.wait(), "a made-up code never works")
		if strings.Contains(strings.ToLower(s.stderr.String()), "rate") {
			limited = true
			break
		}
	}
	assert.True(t, limited, "the server cut the guesses off")
	// Alice and Bob, behind their routers, are not affected.
	c := natSend(t, ctx, l)
	assert.Equal(t, "server", c.str("via"))
}
