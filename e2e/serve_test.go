package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

func rendezvousHello(id, name string) rendezvous.Hello {
	return rendezvous.Hello{DeviceID: id, Name: name, Type: "laptop",
		Fingerprint: "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")}
}

// `peerdrop serve` on loopback: healthy, hands every client STUN/TURN entries
// with fresh credentials that its embedded TURN accepts (and refuses when
// tampered with), pairs two clients by code, counts them in /metrics (on
// the metrics listener only), and stops cleanly on SIGTERM.
func TestServe(t *testing.T) {
	ctx := testContext(t)
	p := start(t, ctx, "serve", false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	ev := p.await("serving", nil)
	addr, url, metricsURL := ev.str("address"), ev.str("url"), ev.str("metrics")
	require.Equal(t, "ws://"+addr+"/ws", url)

	getURL := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	get := func(path string) (int, string) { t.Helper(); return getURL("http://" + addr + path) }
	code, body := get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "ok")

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	alice, err := rendezvous.Dial(dctx, url, rendezvousHello("aaaaaaaaaaaaaaaa", "Alice"))
	require.NoError(t, err)
	defer alice.Close()

	// STUN and TURN entries, with coturn-style credentials ("expiry:id").
	var servers []webrtc.ICEServer
	var turnUser string
	for _, s := range alice.ICEServers() {
		servers = append(servers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") {
				turnUser = s.Username
			}
		}
	}
	require.Regexp(t, regexp.MustCompile(`^\d+:`), turnUser, "ICE servers: %+v", alice.ICEServers())
	require.NoError(t, relay.Check(dctx, servers), "the embedded TURN accepts the credentials it handed out")
	for i := range servers {
		if servers[i].Username != "" {
			servers[i].Credential = "not-the-password"
		}
	}
	assert.ErrorIs(t, relay.Check(dctx, servers), relay.ErrCredentialsRefused, "no relay without valid credentials")

	// Pairing by code through the real server.
	room, err := alice.Create(dctx)
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`^[0-9A-Z]{5}-[0-9A-Z]{5}$`), room.Code)
	bob, err := rendezvous.Dial(dctx, url, rendezvousHello("bbbbbbbbbbbbbbbb", "Bob"))
	require.NoError(t, err)
	defer bob.Close()
	_, err = bob.Join(dctx, strings.ToLower(room.Code))
	require.NoError(t, err)
	select {
	case e := <-alice.Events():
		joined, ok := e.(rendezvous.PeerJoined)
		require.True(t, ok, "event %T", e)
		assert.Equal(t, "Bob", joined.Peer.Name)
	case <-dctx.Done():
		t.Fatal("Alice never heard Bob join")
	}

	code, body = getURL(metricsURL)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "peerdrop_rendezvous_connections 2\n")
	_, body = get("/metrics")
	assert.NotContains(t, body, "peerdrop_rendezvous_", "no counters on the public listener")

	p.signal(syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(), "a clean stop on SIGTERM; stderr: %s", p.stderr.String())
}

// Bad serve usage is refused before anything starts.
func TestServeBadUsage(t *testing.T) {
	ctx := testContext(t)
	for _, args := range [][]string{
		{"--tls-cert", "x.pem"},
		{"--public-ip", "not-an-ip"},
		{"--net4-prefix", "33"},
		{"--external-turn", "turn:turn.example.org:3478"},
		{"extra"},
	} {
		p := runPeerdrop(t, ctx, "serve "+strings.Join(args, " "), append([]string{"--config-dir", t.TempDir(), "serve"}, args...)...)
		assert.Equal(t, 2, p.wait(), "%v: %s", args, p.stderr.String())
	}
}
