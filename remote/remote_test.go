package remote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// exchange sends a text each way over a and b and checks it arrives.
func exchange(t *testing.T, a, b *peer.Conn) {
	t.Helper()
	for _, dir := range []struct {
		from, to *peer.Conn
		text     string
	}{{a, b, "ping"}, {b, a, "pong"}} {
		require.NoError(t, dir.from.DataChannel().SendText(dir.text))
		select {
		case m := <-dir.to.Messages():
			assert.Equal(t, dir.text, string(m.Data))
		case <-time.After(10 * time.Second):
			t.Fatalf("%q did not arrive", dir.text)
		}
	}
}

// Through the server: the code pairs the devices, each side's connection
// names the other as the PAKE authenticated it, and data flows both ways.
func TestHostJoin(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	code := hs.code(t)
	assert.Regexp(t, `^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$`, code.Code)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), code.Expires, time.Minute)

	jc, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), code.Code, joinCfg, nil)
	require.NoError(t, err)
	defer jc.Close()
	hc := hs.conn(t)
	assert.Equal(t, hostCfg.Identity.Fingerprint, jc.Remote.Fingerprint)
	assert.Equal(t, hostCfg.Identity.DeviceID, jc.Remote.ID)
	assert.Equal(t, joinCfg.Identity.Fingerprint, hc.Remote.Fingerprint)
	assert.Equal(t, "Sender", hc.Remote.Name)
	assert.True(t, jc.Trickles(), "candidates trickle through the server")
	assert.True(t, hc.Trickles(), "candidates trickle through the server")
	exchange(t, jc, hc)
	local, remote := jc.Route()
	t.Logf("route: %s -> %s", local, remote)
	assert.Contains(t, []string{"host", "srflx", "prflx", "relay"}, local)
	assert.Contains(t, []string{"host", "srflx", "prflx", "relay"}, remote)
}

// A typed code is forgiving about case, spaces and look-alike letters.
func TestJoinTypedCode(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	code := hs.code(t)
	typed := " " + code.Code[:5] + " " + code.Code[6:11] + code.Code[12:] + " "
	typed = string(append([]byte{typed[0]}, []byte(toLowerASCII(typed[1:]))...))
	jc, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), typed, joinCfg, nil)
	require.NoError(t, err)
	defer jc.Close()
	hc := hs.conn(t)
	exchange(t, jc, hc)
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// A transfer runs over a remote connection, and the Dialer serves the
// sender's reconnects: a second Dial reaches the same host without a new
// PAKE, and the host still insists on the authenticated certificate.
func TestTransferAndRedial(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	dir := t.TempDir()
	rcv := &transfer.Receiver{Dir: dir, Decide: func(context.Context, transfer.OfferReceived) bool { return true }}
	hostClient := dialRendezvous(t, w.url, hostCfg)
	h := &Host{Config: hostCfg}
	handled := make(chan error, 4)
	codes := make(chan Code, 4)
	h.OnCode = func(c Code) { codes <- c }
	h.OnError = func(err error) { t.Errorf("host: %v", err) }
	ctx, cancel := context.WithCancel(testContext(t))
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(ctx, hostClient, func(ctx context.Context, c *peer.Conn) {
			defer c.Close()
			p := transfer.Peer{Device: device.Device{ID: c.Remote.ID, Name: c.Remote.Name, Fingerprint: c.Remote.Fingerprint}}
			handled <- rcv.Handle(ctx, p, c)
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-served)
	})
	code := <-codes

	src := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(src, []byte("across networks"), 0o644))
	offer, err := transfer.NewOffer([]string{src}, "")
	require.NoError(t, err)
	d, err := NewDialer(dialRendezvous(t, w.url, joinCfg), code.Code, joinCfg, nil)
	require.NoError(t, err)
	defer d.Close()
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, Dial: func(ctx context.Context) (transfer.Link, error) {
		return d.Dial(ctx)
	}})
	_, err = s.Run(testContext(t))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "across networks", string(got))
	assert.Equal(t, hostCfg.Identity.DeviceID, d.Peer().ID)

	// A reconnect: a new pipe, the handshake only.
	c2, err := d.Dial(testContext(t))
	require.NoError(t, err)
	id, err := transfer.SendText(testContext(t), c2, "again")
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	require.NoError(t, c2.Close())
	for range 2 {
		select {
		case err := <-handled:
			if err != nil && !errors.Is(err, transfer.ErrClosed) {
				t.Errorf("receiver: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the receiver did not finish")
		}
	}
}

// --relay-only on both sides: the selected pair is relay on both ends, and
// the bytes flow through the TURN server.
func TestRelayOnly(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hostCfg.RelayOnly, joinCfg.RelayOnly = true, true
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	start := time.Now()
	jc, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), hs.code(t).Code, joinCfg, nil)
	require.NoError(t, err)
	defer jc.Close()
	t.Logf("relay-only pairing and connect took %s", time.Since(start))
	hc := hs.conn(t)
	exchange(t, jc, hc)
	for name, c := range map[string]*peer.Conn{"joiner": jc, "host": hc} {
		local, remote := c.Route()
		assert.Equal(t, "relay", local, name)
		assert.Equal(t, "relay", remote, name)
	}
	assert.Positive(t, w.relay.Stats().BytesToPeers)
}

// Relay-only with TURN credentials the server refuses: a clear error at
// once, not an ICE timeout.
func TestRelayOnlyBadCredentials(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	jclient := dialRendezvous(t, w.url, joinCfg)
	joinCfg.RelayOnly = true
	joinCfg.ICEServers = ICEServers(jclient)
	for i := range joinCfg.ICEServers {
		if joinCfg.ICEServers[i].Username != "" {
			joinCfg.ICEServers[i].Credential = "not-the-password"
		}
	}
	start := time.Now()
	_, err := Join(testContext(t), jclient, hs.code(t).Code, joinCfg, nil)
	require.Error(t, err)
	t.Logf("failed after %s: %v", time.Since(start), err)
	assert.ErrorIs(t, err, peer.ErrNoRelay)
	assert.Contains(t, err.Error(), "refused the credentials")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// A wrong code fails on both sides with the mismatch error; the host
// retires the code (a join with it is refused) and shows a new one.
func TestWrongCode(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	code := hs.code(t)
	wrong := code.Code[:12] + "00000"
	if wrong == code.Code {
		wrong = code.Code[:12] + "11111"
	}
	_, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), wrong, joinCfg, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, pairing.ErrMismatch)
	assert.Contains(t, err.Error(), "the pairing code did not match")
	herr := hs.err(t)
	assert.ErrorIs(t, herr, pairing.ErrMismatch)
	t.Logf("joiner: %v; host: %v", err, herr)

	next := hs.code(t)
	assert.NotEqual(t, code.Code[:11], next.Code[:11], "a new code, not the retired one")
	other := peertest.Config(t, "Other")
	_, err = Join(testContext(t), dialRendezvous(t, w.url, other), code.Code, other, nil)
	assert.ErrorIs(t, err, ErrNoSuchCode, "the retired code is dead")
	assert.EqualError(t, err, "no such pairing code (expired or already used?)")

	// The new code works.
	jc, err := Join(testContext(t), dialRendezvous(t, w.url, other), next.Code, other, nil)
	require.NoError(t, err)
	defer jc.Close()
	exchange(t, jc, hs.conn(t))
}

// An unknown code: the plain-words error, before any PAKE.
func TestUnknownCode(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	cfg := peertest.Config(t, "Sender")
	_, err := Join(testContext(t), dialRendezvous(t, w.url, cfg), "7KQ2M-XW4PD-R8T3Z", cfg, nil)
	assert.ErrorIs(t, err, ErrNoSuchCode)
	_, err = Join(testContext(t), dialRendezvous(t, w.url, cfg), "7KQ2M-XW4PD", cfg, nil)
	assert.ErrorIs(t, err, ErrCodeFormat, "the server's part alone is not the code")
}

// The caller's check (trust pinning) still applies after the PAKE.
func TestHostCheckRefuses(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	blocked := errors.New("this device is blocked")
	hs := serveHost(t, &Host{Config: hostCfg, Check: func(signaling.Hello) error { return blocked }}, dialRendezvous(t, w.url, hostCfg))
	_, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), hs.code(t).Code, joinCfg, nil)
	var re *signaling.RemoteError
	require.ErrorAs(t, err, &re)
	assert.True(t, re.RemoteRefused())
	assert.Contains(t, re.Message, "blocked")
	assert.ErrorIs(t, hs.err(t), blocked)
}

func TestSplitCode(t *testing.T) {
	for _, tc := range []struct {
		typed, room, full string
		ok                bool
	}{
		{"7KQ2M-XW4PD-R8T3Z", "7KQ2MXW4PD", "7KQ2MXW4PDR8T3Z", true},
		{" 7kq2m xw4pd r8t3z ", "7KQ2MXW4PD", "7KQ2MXW4PDR8T3Z", true},
		{"7KQ2M-XW4PD-R8T3O", "7KQ2MXW4PD", "7KQ2MXW4PDR8T30", true}, // O read as 0
		{"7KQ2M-XW4PD-R8T3U", "", "", false},                         // U is not Crockford
		{"7KQ2M-XW4PD", "", "", false},                               // the server's part alone
		{"7KQ2M-XW4PD-R8T3Z9", "", "", false},
		{"7KQ2M-XW4PD-R8T3!", "", "", false},
		{"", "", "", false},
	} {
		room, full, err := SplitCode(tc.typed)
		if !tc.ok {
			assert.ErrorIs(t, err, ErrCodeFormat, tc.typed)
			continue
		}
		require.NoError(t, err, tc.typed)
		assert.Equal(t, tc.room, room, tc.typed)
		assert.Equal(t, tc.full, full, tc.typed)
	}
	for range 100 {
		s, err := newSecret()
		require.NoError(t, err)
		room, full, err := SplitCode(showCode("7KQ2MXW4PD", s))
		require.NoError(t, err)
		assert.Equal(t, "7KQ2MXW4PD", room)
		assert.Equal(t, "7KQ2MXW4PD"+s, full)
	}
}

// However many pipes a server (or a crowd) opens at once with a code, the
// code allows one pairing run at a time, and the first failure retires it:
// one wrong guess per code shown.
func TestOneGuessPerCode(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg := peertest.Config(t, "Receiver")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	code := hs.code(t)
	const guessers = 4
	errs := make(chan error, guessers)
	for i := range guessers {
		cfg := peertest.Config(t, "Guesser")
		client := dialRendezvous(t, w.url, cfg)
		guess := code.Code[:12] + string("0123456789"[i]) + "ZZZZ"[:4]
		go func() {
			_, err := Join(testContext(t), client, guess, cfg, nil)
			errs <- err
		}()
	}
	mismatches := 0
	for range guessers {
		err := <-errs
		require.Error(t, err)
		switch {
		case errors.Is(err, pairing.ErrMismatch):
			mismatches++
		case errors.Is(err, ErrPairingRefused), errors.Is(err, ErrNoSuchCode):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, mismatches, "one run, one guess")
	next := hs.code(t)
	assert.NotEqual(t, code.Code, next.Code)
}

// When the shown code expires, the host shows a fresh one, which works.
func TestCodeRenewedOnExpiry(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorldWith(t, func(c *rendezvous.Config) { c.CodeTTL = 1500 * time.Millisecond })
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, w.url, hostCfg))
	first := hs.code(t)
	next := hs.code(t)
	assert.NotEqual(t, first.Code, next.Code)
	assert.False(t, next.Expires.Before(first.Expires))
	_, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), first.Code, joinCfg, nil)
	assert.ErrorIs(t, err, ErrNoSuchCode, "the expired code")
	other := peertest.Config(t, "Other")
	jc, err := Join(testContext(t), dialRendezvous(t, w.url, other), next.Code, other, nil)
	require.NoError(t, err)
	defer jc.Close()
	exchange(t, jc, hs.conn(t))
}

// The host loses the server while a connection it served is open: Serve
// returns at once (so the caller can connect again and show a new code),
// and the connection carries on peer to peer under its handler; Wait waits
// for that handler.
func TestServeReturnsWhenTheServerIsLost(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hostClient := dialRendezvous(t, w.url, hostCfg)
	codes := make(chan Code, 4)
	h := &Host{Config: hostCfg, OnCode: func(c Code) { codes <- c }}
	ctx := testContext(t)
	conns := make(chan *peer.Conn, 1)
	release := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(ctx, hostClient, func(_ context.Context, c *peer.Conn) {
			defer c.Close()
			conns <- c
			<-release
		})
	}()
	code := <-codes
	jc, err := Join(ctx, dialRendezvous(t, w.url, joinCfg), code.Code, joinCfg, nil)
	require.NoError(t, err)
	defer jc.Close()
	hc := <-conns

	require.NoError(t, hostClient.Close())
	select {
	case err := <-served:
		assert.ErrorContains(t, err, "lost the rendezvous server")
	case <-time.After(10 * time.Second):
		t.Fatal("Serve waited for the open connection's handler")
	}
	exchange(t, jc, hc) // still connected, peer to peer
	close(release)
	h.Wait()
}
