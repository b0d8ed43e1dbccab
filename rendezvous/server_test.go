package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreateJoinRelay(t *testing.T) {
	ice := []ICEServer{{URLs: []string{"turn:203.0.113.1:3478?transport=udp"}, Username: "1700000000:x", Credential: "c2VjcmV0"}}
	var asked []string
	h := newHarness(t, func(c *Config) {
		c.ICEServers = func(id string) []ICEServer { asked = append(asked, id); return ice }
	})
	alice := h.dial("192.0.2.1", testHello("Alice's laptop"))
	bob := h.dial("192.0.2.2", testHello("Bob's phone"))
	assert.Equal(t, ice, alice.ICEServers())
	assert.Contains(t, asked, alice.ClientID())

	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$`, room.Code)
	assert.Equal(t, h.clock.Now().Add(10*time.Minute), room.Expires.UTC())

	// Typed sloppily: lower case, no hyphen, O for 0 and l for 1.
	typed := strings.NewReplacer("-", "", "0", "o", "1", "l").Replace(strings.ToLower(room.Code))
	joined, err := bob.Join(ctxT(t), typed)
	require.NoError(t, err)
	assert.Equal(t, room.Code, joined.Code)

	pj := expectType[PeerJoined](t, alice)
	assert.Equal(t, bob.ClientID(), pj.Peer.ClientID)
	assert.Equal(t, "Bob's phone", pj.Peer.Name)
	assert.Equal(t, room.Code, pj.Code)
	pj = expectType[PeerJoined](t, bob)
	assert.Equal(t, alice.ClientID(), pj.Peer.ClientID)
	assert.Equal(t, alice.hello, pj.Peer.Hello)

	offer := map[string]string{"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "kind": "offer"}
	require.NoError(t, alice.Signal(bob.ClientID(), offer))
	sig := expectType[Signal](t, bob)
	assert.Equal(t, alice.ClientID(), sig.From)
	assert.JSONEq(t, mustJSON(t, offer), string(sig.Payload))

	require.NoError(t, bob.Signal(alice.ClientID(), json.RawMessage(`{"kind":"answer","n":[1,2,3]}`)))
	sig = expectType[Signal](t, alice)
	assert.Equal(t, bob.ClientID(), sig.From)
	assert.JSONEq(t, `{"kind":"answer","n":[1,2,3]}`, string(sig.Payload))

	// Leaving tells the others.
	require.NoError(t, bob.Leave(ctxT(t), room.Code))
	left := expectType[PeerLeft](t, alice)
	assert.Equal(t, PeerLeft{ClientID: bob.ClientID(), Code: room.Code}, left)
	require.NoError(t, alice.Signal(bob.ClientID(), "hello?"))
	assert.ErrorIs(t, expectType[*Error](t, alice), ErrUnknownPeer)
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestThreeMembersPairwise(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial("192.0.2.1", testHello("laptop"))
	b := h.dial("192.0.2.2", testHello("phone"))
	c := h.dial("192.0.2.3", testHello("tablet"))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	_, err = c.Join(ctxT(t), room.Code)
	require.NoError(t, err)

	// Everybody learns about everybody else, once.
	peersOf := func(cl *Client, n int) map[string]bool {
		seen := map[string]bool{}
		for range n {
			seen[expectType[PeerJoined](t, cl).Peer.ClientID] = true
		}
		return seen
	}
	assert.Equal(t, map[string]bool{b.ClientID(): true, c.ClientID(): true}, peersOf(a, 2))
	assert.Equal(t, map[string]bool{a.ClientID(): true, c.ClientID(): true}, peersOf(b, 2))
	assert.Equal(t, map[string]bool{a.ClientID(): true, b.ClientID(): true}, peersOf(c, 2))

	all := []*Client{a, b, c}
	for _, from := range all {
		for _, to := range all {
			if from == to {
				continue
			}
			require.NoError(t, from.Signal(to.ClientID(), from.ClientID()+">"+to.ClientID()))
			sig := expectType[Signal](t, to)
			assert.Equal(t, from.ClientID(), sig.From)
			assert.Equal(t, `"`+from.ClientID()+">"+to.ClientID()+`"`, string(sig.Payload))
		}
	}
	for _, cl := range all {
		noEvent(t, cl, 50*time.Millisecond)
	}
	assert.Equal(t, Stats{Conns: 3, Rooms: 1, OpenCodes: 1}, h.srv.Stats())
}

func TestRoomFull(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxRoomMembers = 2 })
	a := h.dial("192.0.2.1", testHello("a"))
	b := h.dial("192.0.2.2", testHello("b"))
	c := h.dial("192.0.2.3", testHello("c"))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	_, err = c.Join(ctxT(t), room.Code)
	assert.ErrorIs(t, err, ErrRoomFull)
	_, err = b.Join(ctxT(t), room.Code)
	assert.ErrorContains(t, err, "already in this room")
}

func TestExpiredCode(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial("192.0.2.1", testHello("a"))
	b := h.dial("192.0.2.2", testHello("b"))
	early, err := a.Create(ctxT(t))
	require.NoError(t, err)
	h.clock.Advance(9*time.Minute + 59*time.Second)
	late, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), early.Code) // one second left
	require.NoError(t, err)
	expectType[PeerJoined](t, a)
	expectType[PeerJoined](t, b)
	h.clock.Advance(time.Second)
	c := h.dial("192.0.2.3", testHello("c"))
	_, err = c.Join(ctxT(t), early.Code)
	assert.ErrorIs(t, err, ErrBadCode, "expired")
	// Members of an expired code stay paired.
	require.NoError(t, a.Signal(b.ClientID(), 1))
	expectType[Signal](t, b)

	h.clock.Advance(10 * time.Minute)
	_, err = c.Join(ctxT(t), late.Code)
	assert.ErrorIs(t, err, ErrBadCode, "expired")
	assert.Equal(t, 0, h.srv.Stats().OpenCodes)
}

func TestClosedAndReusedCode(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial("192.0.2.1", testHello("a"))
	b := h.dial("192.0.2.2", testHello("b"))
	c := h.dial("192.0.2.3", testHello("c"))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	require.NoError(t, a.CloseRoom(ctxT(t), room.Code))
	_, err = c.Join(ctxT(t), room.Code)
	assert.ErrorIs(t, err, ErrBadCode, "closed")
	assert.ErrorIs(t, b.CloseRoom(ctxT(t), room.Code), ErrBadCode, "only the creator closes")
	// Those inside stay paired.
	expectType[PeerJoined](t, a)
	require.NoError(t, b.Signal(a.ClientID(), "still here"))
	expectType[Signal](t, a)

	// The creator going away kills the code too, for good.
	d := h.dial("192.0.2.4", testHello("d"))
	room2, err := d.Create(ctxT(t))
	require.NoError(t, err)
	_, err = c.Join(ctxT(t), room2.Code)
	require.NoError(t, err)
	expectType[PeerJoined](t, c)
	require.NoError(t, d.Close())
	assert.Equal(t, PeerLeft{ClientID: d.ClientID(), Code: room2.Code}, expectType[PeerLeft](t, c))
	e := h.dial("192.0.2.5", testHello("e"))
	_, err = e.Join(ctxT(t), room2.Code)
	assert.ErrorIs(t, err, ErrBadCode, "creator left")
	_, err = e.Join(ctxT(t), room.Code)
	assert.ErrorIs(t, err, ErrBadCode)
}

func TestDeadCodeNeverReissued(t *testing.T) {
	h := newHarness(t, nil)
	draws := []string{"ABCDE12345", "ABCDE12345", "ABCDE12345", "VWXYZ67890"}
	h.srv.mu.Lock()
	h.srv.newCode = func() (string, error) {
		k := draws[0]
		draws = draws[1:]
		return k, nil
	}
	h.srv.mu.Unlock()
	a := h.dial("192.0.2.1", testHello("a"))
	first, err := a.Create(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, "ABCDE-12345", first.Code)
	require.NoError(t, a.CloseRoom(ctxT(t), ""))
	second, err := a.Create(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, "VWXYZ-67890", second.Code, "the dead code is skipped while its tombstone lasts")
}

func TestUnknownCode(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial("192.0.2.1", testHello("a"))
	_, err := a.Join(ctxT(t), "7KQ2M-XW4PD")
	assert.ErrorIs(t, err, ErrBadCode)
	_, err = a.Join(ctxT(t), "not a code")
	assert.ErrorIs(t, err, ErrBadCode, "refused before asking the server")

	// A malformed code sent anyway gets the same answer as an unknown one.
	r := h.raw("192.0.2.2", new(testHello("raw")))
	r.send(&Envelope{Type: TypeJoin, Req: 2, Code: "UUUUU-UUUUU"})
	got := r.read()
	assert.Equal(t, Envelope{Type: TypeError, Req: 2, Code: CodeBadCode}, got)
	r.send(&Envelope{Type: TypeJoin, Req: 3, Code: "7KQ2M-XW4PD"})
	assert.Equal(t, Envelope{Type: TypeError, Req: 3, Code: CodeBadCode}, r.read())
}

func TestBruteForceIsCutOff(t *testing.T) {
	h := newHarness(t, nil)
	attacker := h.dial("198.51.100.7", testHello("attacker"))
	tried, limited := 0, 0
	for i := 0; ; i++ {
		require.Less(t, i, 100, "never cut off")
		_, err := attacker.Join(ctxT(t), fmt.Sprintf("7KQ2M-XW%03d", i))
		if errors.Is(err, ErrClosed) {
			break
		}
		if errors.Is(err, ErrRateLimited) {
			limited++
			continue
		}
		require.ErrorIs(t, err, ErrBadCode)
		require.Zero(t, limited, "a guess got through after the limit")
		tried++
	}
	assert.Equal(t, 10, tried, "guesses before the limit")
	assert.Equal(t, 5, limited, "rate-limited answers before the connection is closed")
	<-attacker.Done()
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(attacker.Err()))

	// A new connection from the same address is still limited...
	again := h.dial("198.51.100.7", testHello("attacker again"))
	_, err := again.Join(ctxT(t), "7KQ2M-XW4PD")
	assert.ErrorIs(t, err, ErrRateLimited)

	// ...while another address pairs as usual.
	a := h.dial("203.0.113.9", testHello("a"))
	b := h.dial("203.0.113.10", testHello("b"))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), room.Code)
	require.NoError(t, err)

	// A minute later the attacker has a few more guesses, no more.
	h.clock.Advance(time.Minute)
	_, err = again.Join(ctxT(t), "7KQ2M-XW4PD")
	assert.ErrorIs(t, err, ErrBadCode)
	assert.Contains(t, metricsText(t, h), `peerdrop_rendezvous_rate_limited_total{kind="pair"} 6`)
	assert.Contains(t, metricsText(t, h), `peerdrop_rendezvous_closed_total{reason="abuse"} 1`)
}

func TestNoCrossRoomLeak(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial("192.0.2.1", testHello("a"))
	b := h.dial("192.0.2.2", testHello("b"))
	c := h.dial("192.0.2.3", testHello("c"))
	d := h.dial("192.0.2.4", testHello("d"))
	r1, err := a.Create(ctxT(t))
	require.NoError(t, err)
	r2, err := c.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), r1.Code)
	require.NoError(t, err)
	_, err = d.Join(ctxT(t), r2.Code)
	require.NoError(t, err)
	assert.Equal(t, d.ClientID(), expectType[PeerJoined](t, c).Peer.ClientID)
	assert.Equal(t, c.ClientID(), expectType[PeerJoined](t, d).Peer.ClientID)
	assert.Equal(t, b.ClientID(), expectType[PeerJoined](t, a).Peer.ClientID)
	assert.Equal(t, a.ClientID(), expectType[PeerJoined](t, b).Peer.ClientID)

	for _, to := range []string{c.ClientID(), d.ClientID(), a.ClientID(), "0123456789abcdef"} {
		require.NoError(t, a.Signal(to, "secret"))
		assert.ErrorIs(t, expectType[*Error](t, a), ErrUnknownPeer, "to %s", to)
	}
	require.NoError(t, a.Signal(b.ClientID(), "for b"))
	assert.Equal(t, `"for b"`, string(expectType[Signal](t, b).Payload))
	noEvent(t, c, 100*time.Millisecond)
	noEvent(t, d, 0)
	assert.Contains(t, metricsText(t, h), "peerdrop_rendezvous_messages_relayed_total 1\n")
}

func TestMessageSizeCap(t *testing.T) {
	h := newHarness(t, nil)
	hb := testHello("b")
	a := h.raw("192.0.2.1", new(testHello("a")))
	b := h.dial("192.0.2.2", hb)
	a.send(&Envelope{Type: TypeCreate, Req: 2})
	created := a.read()
	_, err := b.Join(ctxT(t), created.Code)
	require.NoError(t, err)
	require.Equal(t, TypePeerJoined, a.read().Type)

	// Just at the cap: relayed.
	big := `"` + strings.Repeat("x", DefaultMaxPayload-2) + `"`
	a.send(&Envelope{Type: TypeSignal, Req: 3, To: b.ClientID(), Payload: json.RawMessage(big)})
	expectType[PeerJoined](t, b)
	assert.Len(t, expectType[Signal](t, b).Payload, DefaultMaxPayload)

	// One byte over: refused, the connection goes on.
	over := `"` + strings.Repeat("x", DefaultMaxPayload-1) + `"`
	a.send(&Envelope{Type: TypeSignal, Req: 4, To: b.ClientID(), Payload: json.RawMessage(over)})
	got := a.read()
	assert.Equal(t, TypeError, got.Type)
	assert.Equal(t, CodeTooLarge, got.Code)
	assert.Equal(t, uint32(4), got.Req)
	assert.ErrorIs(t, b.Signal(a.welcome.ClientID, json.RawMessage(over)), ErrTooLarge, "the client checks first")

	// Far over the read limit: the connection is closed.
	a.sendBytes([]byte(`{"type":"signal","payload":"` + strings.Repeat("x", DefaultMaxPayload+messageOverhead) + `"}`))
	assert.Equal(t, websocket.StatusMessageTooBig, a.closeStatus())
	assert.Equal(t, a.welcome.ClientID, expectType[PeerLeft](t, b).ClientID)
}

func TestProtocolViolations(t *testing.T) {
	h := newHarness(t, nil)

	// Anything before the hello.
	r := h.raw("192.0.2.1", nil)
	r.send(&Envelope{Type: TypeCreate, Req: 7})
	assert.Equal(t, Envelope{Type: TypeError, Req: 7, Code: CodeProtocol, Message: "hello first"}, r.read())

	// A bad hello ends the connection.
	bad := testHello("x")
	bad.Fingerprint = "sha-256 nope"
	r.send(&Envelope{Type: TypeHello, Req: 8, Device: &bad})
	got := r.read()
	assert.Equal(t, CodeBadHello, got.Code)
	assert.Equal(t, websocket.StatusPolicyViolation, r.closeStatus())

	// Binary messages are not part of the protocol.
	r = h.raw("192.0.2.2", new(testHello("y")))
	require.NoError(t, r.ws.Write(ctxT(t), websocket.MessageBinary, []byte("{}")))
	assert.Equal(t, websocket.StatusUnsupportedData, r.closeStatus())

	// Garbage, repeatedly: five strikes and out.
	r = h.raw("192.0.2.3", new(testHello("z")))
	r.send(&Envelope{Type: TypeHello, Req: 2, Device: new(testHello("z2"))})
	assert.Equal(t, CodeProtocol, r.read().Code, "hello twice")
	r.sendBytes([]byte(`{"type":"teleport","req":3}`))
	assert.Equal(t, Envelope{Type: TypeError, Req: 3, Code: CodeBadMessage, Message: "unknown message type"}, r.read())
	r.sendBytes([]byte(`not json {"req":4}`))
	assert.Equal(t, CodeBadMessage, r.read().Code)
	r.sendBytes([]byte(`{"type":"signal","req":5,"to":"x","payload":1}`))
	assert.Equal(t, CodeBadMessage, r.read().Code)
	r.sendBytes([]byte(`{"type":"welcome","req":6}`))
	assert.Equal(t, CodeBadMessage, r.read().Code)
	assert.Equal(t, websocket.StatusPolicyViolation, r.closeStatus())
}

func TestSubprotocolRequired(t *testing.T) {
	h := newHarness(t, nil)
	ws, _, err := websocket.Dial(ctxT(t), h.url, nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	_, _, err = ws.Read(ctxT(t))
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err))
}

func TestConnectionLimitsPerIP(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxConnsPerIP = 2
		c.ConnectRate = Limit{Every: time.Minute, Burst: 3}
	})
	h.dial("192.0.2.1", testHello("a"))
	c2 := h.dial("192.0.2.1", testHello("b"))
	_, err := h.tryDial("192.0.2.1", testHello("c"))
	assert.ErrorIs(t, err, ErrRateLimited, "third connection at once")
	h.dial("192.0.2.2", testHello("other address"))

	require.NoError(t, c2.Close())
	require.Eventually(t, func() bool { return h.srv.Stats().Conns == 2 }, waitFor, 10*time.Millisecond)
	h.dial("192.0.2.1", testHello("d")) // the third token of the burst
	require.NoError(t, h.dial("192.0.2.3", testHello("x")).Close())
	_, err = h.tryDial("192.0.2.1", testHello("e"))
	assert.ErrorIs(t, err, ErrRateLimited, "connection rate")
	assert.Contains(t, metricsText(t, h), `peerdrop_rendezvous_rate_limited_total{kind="connect"} 2`)
}

func TestMessageRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MessageRate = Limit{Every: time.Hour, Burst: 5} })
	a := h.dial("192.0.2.1", testHello("a")) // hello: 1
	for range 4 {
		_, err := a.Create(ctxT(t))
		require.NoError(t, err)
	}
	_, err := a.Create(ctxT(t))
	assert.ErrorIs(t, err, ErrRateLimited)
	var refused *Error
	require.ErrorAs(t, err, &refused)
	assert.Empty(t, refused.To, "it answers no signal")
	// A dropped signal's error names the recipient: the sender's other
	// streams lost nothing.
	const to = "0123456789abcdef"
	require.NoError(t, a.Signal(to, "x"))
	refused = expectType[*Error](t, a)
	assert.ErrorIs(t, refused, ErrRateLimited)
	assert.Equal(t, to, refused.To)
	b := h.dial("192.0.2.2", testHello("b"))
	_, err = b.Create(ctxT(t))
	require.NoError(t, err, "another address has its own budget")
}

func TestIdleAndHelloTimeouts(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.IdleTimeout = 400 * time.Millisecond
		c.PingInterval = 100 * time.Millisecond
		c.HelloTimeout = 300 * time.Millisecond
	})
	// A client that never reads never answers a ping.
	deaf := h.raw("192.0.2.1", new(testHello("deaf")))
	// A client that answers pings but never says hello.
	mute := h.raw("192.0.2.2", nil)
	muteCtx := mute.ws.CloseRead(ctxT(t))
	alive := h.dial("192.0.2.3", testHello("alive"))

	<-muteCtx.Done()
	require.Eventually(t, func() bool { return h.srv.Stats().Conns == 1 }, waitFor, 20*time.Millisecond)
	_ = deaf
	time.Sleep(600 * time.Millisecond) // longer than the idle timeout
	_, err := alive.Create(ctxT(t))
	require.NoError(t, err, "a quiet client that answers pings stays")
	assert.Contains(t, metricsText(t, h), `peerdrop_rendezvous_closed_total{reason="idle"} 1`)
}

func TestSlowReceiver(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.SendQueue = 64 << 10
		c.MessageRate = Limit{Every: time.Microsecond, Burst: 100000}
	})
	a := h.dial("192.0.2.1", testHello("a"))
	slow := h.raw("192.0.2.2", new(testHello("slow")))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	slow.send(&Envelope{Type: TypeJoin, Req: 2, Code: room.Code})
	require.Equal(t, TypeJoined, slow.read().Type)
	expectType[PeerJoined](t, a)
	// slow stops reading; kernel buffers fill, then its queue, then a hears.
	payload := json.RawMessage(`"` + strings.Repeat("s", 32<<10) + `"`)
	for i := 0; ; i++ {
		require.Less(t, i, 5000, "never busy")
		require.NoError(t, a.Signal(slow.welcome.ClientID, payload))
		select {
		case ev := <-a.Events():
			require.ErrorIs(t, ev.(*Error), &Error{Code: CodePeerBusy})
			assert.Equal(t, slow.welcome.ClientID, ev.(*Error).To, "the error names the recipient")
			return
		default:
		}
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial("192.0.2.1", testHello("a"))
	b := h.dial("192.0.2.2", testHello("b"))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), room.Code)
	require.NoError(t, err)

	require.NoError(t, h.srv.Shutdown(ctxT(t)))
	for _, c := range []*Client{a, b} {
		<-c.Done()
		assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(c.Err()))
		_, err := c.Create(ctxT(t))
		assert.ErrorIs(t, err, ErrClosed)
	}
	_, err = h.tryDial("192.0.2.3", testHello("late"))
	assert.Error(t, err, "no new connections")
	code, _ := httpGet(t, h, "/healthz")
	assert.Equal(t, 503, code)
	assert.Equal(t, Stats{}, h.srv.Stats())
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	h.ts.Close()
	assertNoLeak(t)
}

func TestHealthzAndMetrics(t *testing.T) {
	h := newHarness(t, nil)
	code, body := httpGet(t, h, "/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)

	a := h.dial("192.0.2.1", testHello("a"))
	b := h.dial("192.0.2.2", testHello("b"))
	room, err := a.Create(ctxT(t))
	require.NoError(t, err)
	_, err = b.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	expectType[PeerJoined](t, b)
	require.NoError(t, b.Signal(a.ClientID(), json.RawMessage(`{"sdp":"v=0"}`)))
	expectType[PeerJoined](t, a)
	expectType[Signal](t, a)
	_, err = a.Join(ctxT(t), "7KQ2M-XW4PD")
	require.Error(t, err)

	m := metricsText(t, h)
	for _, want := range []string{
		"# HELP peerdrop_rendezvous_connections Open WebSocket connections.\n# TYPE peerdrop_rendezvous_connections gauge\npeerdrop_rendezvous_connections 2\n",
		"# TYPE peerdrop_rendezvous_connections_total counter\npeerdrop_rendezvous_connections_total 2\n",
		"peerdrop_rendezvous_rooms 1\n",
		"peerdrop_rendezvous_codes_open 1\n",
		"peerdrop_rendezvous_messages_relayed_total 1\n",
		"peerdrop_rendezvous_relayed_bytes_total 13\n",
		"peerdrop_rendezvous_messages_received_total 6\n", // 2 hellos, create, join, signal, join
		`peerdrop_rendezvous_errors_total{code="bad-code"} 1` + "\n",
		`peerdrop_rendezvous_rate_limited_total{kind="message"} 0` + "\n",
	} {
		assert.Contains(t, m, want)
	}
	// Every sample line is "name{labels} integer".
	for _, line := range strings.Split(strings.TrimSpace(m), "\n") {
		if !strings.HasPrefix(line, "#") {
			assert.Regexp(t, `^peerdrop_rendezvous_[a-z_]+(\{[a-z]+="[a-z-]+"\})? \d+$`, line)
		}
	}
	code, _ = httpGet(t, h, "/nothing")
	assert.Equal(t, 404, code)
}

func TestServe(t *testing.T) {
	srv, err := New(Config{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	c, err := Dial(ctxT(t), "ws://"+ln.Addr().String()+"/ws", testHello("a"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Create(ctxT(t))
	require.NoError(t, err)

	cancel()
	require.NoError(t, <-served)
	<-c.Done()
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(c.Err()))
	require.NoError(t, srv.Close(), "Close after Serve is a no-op")
	require.NoError(t, srv.Close())
	_, err = Dial(ctxT(t), "ws://"+ln.Addr().String()+"/ws", testHello("b"))
	assert.Error(t, err, "the listener is closed")
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{CodeTTL: -time.Second})
	assert.Error(t, err)
	_, err = New(Config{MaxRoomMembers: 1})
	assert.Error(t, err)
	_, err = New(Config{PairRate: Limit{Every: -1}})
	assert.Error(t, err)
	s, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, s.cfg.CodeTTL)
	assert.Equal(t, PerMinute(10), s.cfg.PairRate)
}

// Config.Site gets every path the protocol does not use; /ws and /healthz
// stay the server's, and /metrics is not served there (it is Site's too).
func TestSite(t *testing.T) {
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "site "+r.URL.Path)
	})
	h := newHarness(t, func(c *Config) { c.Site = site })
	code, body := httpGet(t, h, "/")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "site /", body)
	code, body = httpGet(t, h, "/app.js")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "site /app.js", body)
	code, body = httpGet(t, h, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = httpGet(t, h, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "site /metrics", body, "the counters are not on the public handler")
	c := h.dial("10.0.0.1", testHello("alice"))
	_, err := c.Create(ctxT(t))
	assert.NoError(t, err, "signaling at /ws is untouched")
}
