//go:build linux

package e2e

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// rendezvousHello is a valid hello of a device with a made-up certificate.
func rendezvousHello(t testing.TB, name string) rendezvous.Hello {
	fp := randomFingerprint(t)
	return rendezvous.Hello{ID: identity.DeviceIDFor(fp), Name: name, Type: "laptop", Fingerprint: fp}
}

// deviceHello is the rendezvous hello of a device with a real identity.
func deviceHello(id *identity.Identity, name string) rendezvous.Hello {
	return rendezvous.Hello{ID: id.DeviceID, Name: name, Type: "laptop", Fingerprint: id.Fingerprint}
}

// Issue 11, item 7, presence squatting: anyone could announce another
// device's id under their own key first, and the real device was then told
// its id was bound to another certificate. Now the server takes an
// announce only from the holder of the certificate the id derives from,
// whoever comes first; the real device announces fine and is found.
func TestPresenceSquattingIsRefused(t *testing.T) {
	ctx := testContext(t)
	p := start(t, ctx, "serve", false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0")
	url := p.await("serving", nil).str("url")
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	victim := testkit.Identity(t)
	squatter := testkit.Identity(t)

	// The squatter writes its messages itself: the Go client refuses to
	// send them.
	raw := func(h rendezvous.Hello) (send func(rendezvous.Envelope), read func() rendezvous.Envelope, nonce string) {
		ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{Subprotocols: []string{rendezvous.Subprotocol}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = ws.CloseNow() })
		read = func() rendezvous.Envelope {
			var e rendezvous.Envelope
			_, data, err := ws.Read(dctx)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &e))
			return e
		}
		send = func(e rendezvous.Envelope) {
			data, err := json.Marshal(e)
			require.NoError(t, err)
			require.NoError(t, ws.Write(dctx, websocket.MessageText, data))
		}
		welcome := read()
		require.Equal(t, rendezvous.TypeWelcome, welcome.Type)
		send(rendezvous.Envelope{Type: rendezvous.TypeHello, Req: 1, Device: &h})
		return send, read, welcome.Nonce
	}
	announce := func(key *identity.Identity, cert []byte, nonce string) rendezvous.Envelope {
		sig, err := key.Signer().Sign(rand.Reader, rendezvous.AnnounceDigest(nonce, victim.DeviceID), crypto.SHA256)
		require.NoError(t, err)
		return rendezvous.Envelope{Type: rendezvous.TypeAnnounce, Req: 2, DeviceID: victim.DeviceID,
			Certificate: base64.StdEncoding.EncodeToString(cert), Sig: base64.StdEncoding.EncodeToString(sig)}
	}

	// The victim's id under the squatter's own certificate: the hello is
	// refused before the server stores anything.
	claim := deviceHello(squatter, "Bob")
	claim.ID = victim.DeviceID
	_, read, _ := raw(claim)
	reply := read()
	assert.Equal(t, rendezvous.CodeBadHello, reply.Code, "refused: %s", reply.Message)

	// The victim's whole hello (its id and fingerprint are public), then an
	// announce of the squatter's own certificate and key, or of the
	// victim's certificate signed with the squatter's key: refused.
	send, read, nonce := raw(deviceHello(victim, "Bob"))
	require.Equal(t, rendezvous.TypeOK, read().Type)
	send(announce(squatter, squatter.CertificateDER(), nonce))
	reply = read()
	assert.Equal(t, rendezvous.CodeBadSignature, reply.Code, "refused: %s", reply.Message)
	send(announce(squatter, victim.CertificateDER(), nonce))
	reply = read()
	assert.Equal(t, rendezvous.CodeBadSignature, reply.Code, "refused: %s", reply.Message)

	// The real device comes second and announces fine, and is the one found.
	bob, err := rendezvous.Dial(dctx, url, deviceHello(victim, "Bob"))
	require.NoError(t, err)
	defer bob.Close()
	require.NoError(t, bob.Announce(dctx, victim.Signer(), victim.CertificateDER()))
	finder, err := rendezvous.Dial(dctx, url, rendezvousHello(t, "Alice"))
	require.NoError(t, err)
	defer finder.Close()
	found, err := finder.Find(dctx, victim.DeviceID)
	require.NoError(t, err)
	assert.Equal(t, bob.ClientID(), found.ClientID)
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
	alice, err := rendezvous.Dial(dctx, url, rendezvousHello(t, "Alice"))
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
	bob, err := rendezvous.Dial(dctx, url, rendezvousHello(t, "Bob"))
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
