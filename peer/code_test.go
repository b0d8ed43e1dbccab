package peer

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/signaling"
)

var codeRe = regexp.MustCompile(`^\d{3} \d{3}$`)

// serveCodes listens with cfg and sends the code of every connection it
// accepts on the returned channel (the connection stays open until the test
// ends).
func serveCodes(t *testing.T, cfg Config) (*testServer, <-chan string) {
	t.Helper()
	codes := make(chan string, 8)
	srv := startServer(t, cfg, nil, func(ctx context.Context, c *Conn) {
		codes <- c.Code
		closeAndWait(ctx, c)
	})
	return srv, codes
}

func nextCode(t *testing.T, codes <-chan string) string {
	t.Helper()
	select {
	case c := <-codes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection reached the listener")
		return ""
	}
}

// Both sides of a connection show the same code, and two connections
// between the same two certificates show different ones: the code depends
// on the handshake's fresh nonces, so no choice of certificates made in
// advance fixes it. (With the code of protocol version 1, a function of the
// two fingerprints alone, both runs gave the same code: what let a device
// in the middle grind certificates until both sides saw the same one.)
func TestCodeFreshForEachConnection(t *testing.T) {
	verifyNoLeaks(t)
	alice, bob := newConfig(t, "Alice"), newConfig(t, "Bob")
	srv, codes := serveCodes(t, bob)
	var seen []string
	for range 2 {
		c := mustDial(t, srv.addr, alice)
		require.Regexp(t, codeRe, c.Code)
		assert.Equal(t, c.Code, nextCode(t, codes), "the listener shows the dialer's code")
		seen = append(seen, c.Code)
		require.NoError(t, c.Close())
	}
	assert.NotEqual(t, seen[0], seen[1], "same certificates, new nonces: another code (one chance in a million to repeat)")
}

// TestManInTheMiddleCodesDiffer runs the attack of issue 11 item 4 for
// real: Mallory sits between Alice and Bob with real connections on both
// sides, answering Alice with one certificate of her choice and dialing Bob
// with another. Her certificates are fixed before she sees either side's
// nonce, and each side's nonce is fixed before she sees the other nonce of
// that handshake, so the two codes are independent draws: she cannot make
// them equal except by a one-in-a-million chance per attempt, and a pair of
// certificates that happened to match on one run does not on the next.
func TestManInTheMiddleCodesDiffer(t *testing.T) {
	verifyNoLeaks(t)
	alice, bob := newConfig(t, "Alice"), newConfig(t, "Bob")
	// Mallory introduces herself as "Bob" on one side and "Alice" on the other.
	asBob, asAlice := newConfig(t, "Bob"), newConfig(t, "Alice")
	bobSrv, bobCodes := serveCodes(t, bob)
	type legs struct {
		toAlice, toBob string
		release        chan struct{} // Mallory hangs up when the test has Bob's code
	}
	mallory := make(chan legs, 4)
	mitm := startServer(t, asBob, nil, func(ctx context.Context, fromAlice *Conn) {
		defer fromAlice.Close()
		toBob, err := Dial(ctx, bobSrv.addr, asAlice, nil)
		if err != nil {
			t.Errorf("mallory dials bob: %v", err)
			return
		}
		defer toBob.Close()
		// Hanging up at once could close the connection before Bob's side
		// has handed it over (the dialer sees its channel open first).
		release := make(chan struct{})
		mallory <- legs{fromAlice.Code, toBob.Code, release}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	var alices, bobs []string
	for range 2 {
		c := mustDial(t, mitm.addr, alice)
		var m legs
		select {
		case m = <-mallory:
		case <-time.After(20 * time.Second):
			t.Fatal("mallory did not connect to bob")
		}
		atBob := nextCode(t, bobCodes)
		close(m.release)
		assert.Equal(t, c.Code, m.toAlice, "Alice's handshake ran with Mallory")
		assert.Equal(t, atBob, m.toBob, "Bob's handshake ran with Mallory")
		assert.NotEqual(t, c.Code, atBob, "Alice and Bob see different codes: Mallory is caught")
		t.Logf("Alice sees %s, Bob sees %s", c.Code, atBob)
		alices, bobs = append(alices, c.Code), append(bobs, atBob)
		require.NoError(t, c.Close())
	}
	assert.NotEqual(t, alices[0], alices[1], "Mallory's certificate does not fix Alice's code")
	assert.NotEqual(t, bobs[0], bobs[1], "Mallory's certificate does not fix Bob's code")
}

// A device in the middle that changes the listener's commitment (to relay
// a commitment of its own, or to pick the listener's nonce later) is caught
// by the dialer when the answer reveals the true nonce: the dialer refuses
// for good and closes without an error frame; the listener hands nothing out.
func TestChangedCommitRefused(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg, cliCfg := newConfig(t, "Receiver"), newConfig(t, "Sender")
	// The listener answered in good faith and waits for ICE checks that
	// never come; fail them sooner than the defaults so the test is quick.
	srvCfg.Tune = func(se *webrtc.SettingEngine) {
		se.SetICETimeouts(300*time.Millisecond, time.Second, 100*time.Millisecond)
	}
	srv := startServer(t, srvCfg, nil, refuseHandler(t))
	var mitm rewritingProxy
	proxy := startRewritingProxy(t, srv.addr, nil, func(f signaling.Frame) signaling.Frame {
		if f.Type != signaling.TypeHello {
			return f
		}
		var h signaling.Hello
		if err := json.Unmarshal(f.Payload, &h); err != nil {
			t.Errorf("proxy: decode hello: %v", err)
			return f
		}
		h.Commit = strings.Repeat("0", 64)
		f.Payload, _ = json.Marshal(h)
		mitm.rewritten.Add(1)
		return f
	})
	_, err := Dial(dialCtx(t), proxy.addr, cliCfg, nil)
	require.Error(t, err)
	assert.EqualValues(t, 1, mitm.rewritten.Load(), "the proxy changed the commitment")
	assert.ErrorIs(t, err, signaling.ErrCommit)
	var perm interface{ Permanent() bool }
	require.ErrorAs(t, err, &perm, "a reconnecting sender does not try again")
	assert.True(t, perm.Permanent())
	assert.Error(t, srv.nextError(t), "the listener's side fails too")
}

// A listener that reveals a nonce other than its commitment (it chose one
// after seeing the dialer's) is refused, over a real socket.
func TestForgedRevealRefused(t *testing.T) {
	verifyNoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	mallory := newConfig(t, "Mallory")
	sawClose := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sawClose <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		h := mallory.hello()
		h.Commit = strings.Repeat("ab", 32)
		p, _ := json.Marshal(h)
		_ = signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeHello, Payload: p})
		f, err := signaling.ReadFrame(c) // the dialer's hello, with its nonce
		if err != nil {
			sawClose <- err
			return
		}
		dh, _ := signaling.DecodeHello(f.Payload)
		if _, err := signaling.ReadFrame(c); err != nil { // the offer
			sawClose <- err
			return
		}
		p, _ = json.Marshal(signaling.SDP{SDP: "v=0\r\n", Nonce: dh.Nonce})
		_ = signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeAnswer, Payload: p})
		_, err = signaling.ReadFrame(c)
		sawClose <- err
	}()
	_, err = Dial(dialCtx(t), ln.Addr().String(), newConfig(t, "Sender"), nil)
	require.ErrorIs(t, err, signaling.ErrCommit)
	select {
	case err := <-sawClose:
		assert.Error(t, err, "the dialer closed without another frame")
		assert.NotErrorIs(t, err, signaling.ErrUnexpected)
	case <-time.After(10 * time.Second):
		t.Fatal("the dialer did not close")
	}
}
