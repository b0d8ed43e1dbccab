package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/rendezvoustest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// newRendezvous runs a rendezvous server on loopback until the test ends
// and returns its WebSocket URL.
func newRendezvous(t *testing.T) string {
	t.Helper()
	return newRendezvousServer(t).URL()
}

// newRendezvousServer is newRendezvous, with the server for its Stats and
// Close. Every engine of a test shares one address, so the per-address
// limits are lifted.
func newRendezvousServer(t *testing.T, opts ...rendezvoustest.Option) *rendezvoustest.Server {
	t.Helper()
	return rendezvoustest.NewServer(t, append([]rendezvoustest.Option{rendezvoustest.Unlimited()}, opts...)...)
}

// startRemote runs an engine on loopback, hidden and not browsing, with the
// server at url, and waits until it is connected there.
func startRemote(t *testing.T, name, url string) *testEngine {
	t.Helper()
	cfg := testConfig(t, name)
	cfg.Server = url
	return startRemoteCfg(t, cfg, nil)
}

// startRemoteCfg is startRemote with a config of the test's (its Server
// set), and prep as runEngineWith's.
func startRemoteCfg(t *testing.T, cfg Config, prep func(*Engine)) *testEngine {
	t.Helper()
	te := runEngineWith(t, cfg, prep)
	te.rec.wait(t, 0, "connection to the server", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && s.Connected
	})
	return te
}

// waitAway waits until te lists the device id as away and returns it.
func (te *testEngine) waitAway(t *testing.T, from int, id string) Device {
	t.Helper()
	ev := te.rec.wait(t, from, "away device "+id, func(ev Event) bool {
		dc, ok := ev.(DevicesChanged)
		if !ok {
			return false
		}
		for _, d := range dc.Devices {
			if d.ID == id && d.Away {
				return true
			}
		}
		return false
	})
	for _, d := range ev.(DevicesChanged).Devices {
		if d.ID == id {
			return d
		}
	}
	panic("unreachable")
}

func pairingContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Two engines on no common LAN (hidden, not browsing) pair with a code
// through the server; then each lists the other as away, and a file sent
// to the away device arrives intact, through the server's signaling. When
// one stops, the other no longer lists it.
func TestPairThroughServer(t *testing.T) {
	url := newRendezvous(t)
	a, b := startRemote(t, "alice", url), startRemote(t, "bob", url)
	ctx := pairingContext(t)

	markA, markB := a.rec.mark(), b.rec.mark()
	code, err := b.StartPairing(ctx)
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$`, code.Code)
	assert.Equal(t, remote.PairingLink(url, code.Code), code.Link)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), code.Expires, time.Minute)

	p, err := a.JoinPairing(ctx, strings.ToLower(code.Code))
	require.NoError(t, err)
	assert.Equal(t, b.Self(), p)
	a.rec.wait(t, markA, "Paired on the joiner", func(ev Event) bool { pe, ok := ev.(Paired); return ok && pe.Peer == b.Self() })
	b.rec.wait(t, markB, "Paired on the code's device", func(ev Event) bool { pe, ok := ev.(Paired); return ok && pe.Peer == a.Self() })

	bAtA := a.waitAway(t, markA, b.Self().ID)
	assert.Equal(t, "bob", bAtA.Name)
	assert.True(t, bAtA.Known)
	assert.Empty(t, bAtA.Addresses())
	assert.Equal(t, b.Fingerprint(), bAtA.Fingerprint)
	b.waitAway(t, markB, a.Self().ID)

	src := filepath.Join(t.TempDir(), "far.bin")
	data := randomBytes(t, 3<<20)
	writeFile(t, src, data)
	from := b.rec.mark()
	it, err := a.Send(TargetOf(bAtA), []string{src})
	require.NoError(t, err)
	o := accept(t, b, from)
	assert.Equal(t, a.Self(), o.From)
	a.rec.waitState(t, 0, it.ID, StateDone)
	got, err := os.ReadFile(filepath.Join(b.cfg.DownloadDir, "far.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "the file arrived changed")

	// A text message takes the same way.
	from = b.rec.mark()
	m, err := a.SendText(TargetOf(bAtA), "hello from afar")
	require.NoError(t, err)
	b.rec.wait(t, from, "text", func(ev Event) bool {
		mr, ok := ev.(MessageReceived)
		return ok && mr.Message.Text == "hello from afar" && !mr.Message.Outgoing
	})
	a.rec.wait(t, 0, "delivery", func(ev Event) bool {
		mr, ok := ev.(MessageReceived)
		return ok && mr.Message.ID == m.ID && mr.Message.Err == ""
	})

	from = a.rec.mark()
	b.stop()
	a.rec.wait(t, from, "bob gone", func(ev Event) bool {
		dc, ok := ev.(DevicesChanged)
		return ok && len(dc.Devices) == 0
	})

	// Bob is paired but gone: a send says so, at once.
	it, err = a.Send(Target{ID: b.Self().ID, Name: "bob"}, []string{src})
	require.NoError(t, err)
	failed := a.rec.waitState(t, 0, it.ID, StateFailed)
	assert.Equal(t, "bob is not connected to the server (it is off, or has no server set)", failed.Error)
}

// A wrong code fails in plain words, and the device that showed the code
// shows a new one (a wrong try may have been a guess). A code nobody shows
// and text that is no code fail too, each saying so.
func TestPairWrongCode(t *testing.T) {
	url := newRendezvous(t)
	a, b := startRemote(t, "alice", url), startRemote(t, "bob", url)
	ctx := pairingContext(t)
	code, err := b.StartPairing(ctx)
	require.NoError(t, err)

	// Same server part, another secret.
	last := code.Code[len(code.Code)-1]
	wrong := code.Code[:len(code.Code)-1] + map[bool]string{true: "0", false: "1"}[last != '0']
	from := b.rec.mark()
	_, err = a.JoinPairing(ctx, wrong)
	require.ErrorIs(t, err, pairing.ErrMismatch)
	assert.Contains(t, err.Error(), "The code is wrong")
	// (The event of the first code may be recorded after the mark.)
	b.rec.wait(t, from, "a new code", func(ev Event) bool {
		pc, ok := ev.(PairingCodeShown)
		return ok && pc.Code.Code != code.Code && pc.Code.Code != ""
	})
	assert.Empty(t, a.Devices())
	_, pinned := a.pinned(b.Self().ID)
	assert.False(t, pinned, "a wrong code pinned the device")

	_, err = a.JoinPairing(ctx, "ABCDE-FGHJK-MNPQR")
	require.ErrorIs(t, err, remote.ErrNoSuchCode)
	assert.Contains(t, err.Error(), "No device shows this code")

	_, err = a.JoinPairing(ctx, "hello")
	require.ErrorIs(t, err, remote.ErrCodeFormat)

	own, err := a.StartPairing(ctx)
	require.NoError(t, err)
	_, err = a.JoinPairing(ctx, own.Code)
	require.ErrorIs(t, err, ErrOwnCode)
	a.CancelPairing()

	// Cancelling retires the code shown: it admits nobody.
	code, err = b.StartPairing(ctx)
	require.NoError(t, err)
	b.CancelPairing()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.srv.code.Code != code.Code
	}, 10*time.Second, 10*time.Millisecond, "the code shown was not retired")
	_, err = a.JoinPairing(ctx, code.Code)
	require.ErrorIs(t, err, remote.ErrNoSuchCode)
}

// An engine holds a pairing code on the server only while its pairing
// dialog is open: none once connected, one after StartPairing, none after
// CancelPairing, and none after a device paired with it.
func TestPairingCodeOnlyWhileShown(t *testing.T) {
	srv := newRendezvousServer(t)
	url := srv.URL()
	a, b := startRemote(t, "alice", url), startRemote(t, "bob", url)
	codes := func() int { return srv.Stats().OpenCodes }
	assert.Never(t, func() bool { return codes() > 0 }, 500*time.Millisecond, 20*time.Millisecond, "a code held while nobody pairs")
	ctx := pairingContext(t)

	first, err := b.StartPairing(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, codes())
	b.CancelPairing()
	require.Eventually(t, func() bool { return codes() == 0 }, 10*time.Second, 10*time.Millisecond, "the code outlived the dialog")
	require.Eventually(t, func() bool {
		// The Host has decided not to show another (the server saw the
		// retirement a moment before).
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.srv.code.Code == ""
	}, 10*time.Second, 10*time.Millisecond)
	_, err = a.JoinPairing(ctx, first.Code)
	require.ErrorIs(t, err, remote.ErrNoSuchCode)

	second, err := b.StartPairing(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, codes())
	from := b.rec.mark()
	_, err = a.JoinPairing(ctx, second.Code)
	require.NoError(t, err)
	b.rec.wait(t, from, "Paired", func(ev Event) bool { _, ok := ev.(Paired); return ok })
	require.Eventually(t, func() bool { return codes() == 0 }, 10*time.Second, 10*time.Millisecond, "the code used was replaced")
	assert.Never(t, func() bool { return codes() > 0 }, 300*time.Millisecond, 20*time.Millisecond, "a new code after pairing")
	for _, ev := range b.rec.all() {
		if pc, ok := ev.(PairingCodeShown); ok {
			assert.Contains(t, []string{first.Code, second.Code}, pc.Code.Code, "a code shown that StartPairing did not ask for")
		}
	}
}

// A paired device that comes online is listed at once by the device it
// paired with, whose own rounds of finds are far apart: the newcomer's find
// tells it (Host.OnFound), and it looks the newcomer up. One that is not
// found is looked for less and less often.
func TestAwayListedWhenItComesOnline(t *testing.T) {
	url := newRendezvous(t)
	acfg, bcfg := testConfig(t, "alice"), testConfig(t, "bob")
	acfg.Server, bcfg.Server = url, url
	a := startRemoteCfg(t, acfg, func(e *Engine) { e.srv.finds.every = time.Hour })
	b := startRemoteCfg(t, bcfg, nil)
	ctx := pairingContext(t)
	code, err := b.StartPairing(ctx)
	require.NoError(t, err)
	_, err = a.JoinPairing(ctx, code.Code)
	require.NoError(t, err)
	bID := b.Self().ID
	a.waitAway(t, 0, bID)

	listed := func() bool {
		for _, d := range a.Devices() {
			if d.ID == bID {
				return true
			}
		}
		return false
	}
	b.stop()
	require.Eventually(t, func() bool { return !listed() }, 10*time.Second, 10*time.Millisecond, "bob left, still listed")
	// A round (asked for now) finds nothing: bob waits for a later one.
	poke(a.srv.refresh)
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.srv.finds.misses[bID].n == 1
	}, 10*time.Second, 10*time.Millisecond, "the miss is not counted")
	a.mu.Lock()
	pause := time.Until(a.srv.finds.misses[bID].next)
	a.mu.Unlock()
	assert.Greater(t, pause, 30*time.Minute, "the next look waits a round (an hour here)")

	from := a.rec.mark()
	startRemoteCfg(t, bcfg, nil) // bob again: same identity, same pins
	a.waitAway(t, from, bID)
	a.mu.Lock()
	_, missed := a.srv.finds.misses[bID]
	a.mu.Unlock()
	assert.False(t, missed, "found: no longer counted as missing")
}

// silentServer is the URL of a server that takes connections and never
// answers: an engine with it stays connecting.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); held.Wait() })
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// A code that the Host made for an earlier request (a dialog closed and
// opened again while the server made it) is neither given to the waiting
// StartPairing nor shown: the Renew of the newer request replaces it, and
// that code is.
func TestStaleCodeNotShown(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.Server = silentServer(t)
	te := runEngine(t, cfg) // connecting: no Host makes codes here
	u := te.Server()
	got := make(chan PairingCode, 1)
	go func() {
		c, err := te.StartPairing(pairingContext(t))
		assert.NoError(t, err)
		got <- c
	}()
	var gen uint64
	require.Eventually(t, func() bool {
		te.mu.Lock()
		defer te.mu.Unlock()
		gen = te.srv.pairGen
		return te.srv.pairing
	}, 5*time.Second, time.Millisecond)
	from := te.rec.mark()
	expires := time.Now().Add(10 * time.Minute)
	te.onCode(u, remote.Code{Code: "AAAAA-AAAAA-AAAAA", Expires: expires, Request: gen - 1})
	select {
	case c := <-got:
		t.Fatalf("StartPairing returned a code made for an earlier request: %s", c.Code)
	case <-time.After(200 * time.Millisecond):
	}
	te.onCode(u, remote.Code{Code: "BBBBB-BBBBB-BBBBB", Expires: expires, Request: gen})
	select {
	case c := <-got:
		assert.Equal(t, "BBBBB-BBBBB-BBBBB", c.Code)
	case <-time.After(10 * time.Second):
		t.Fatal("StartPairing did not return the code made for it")
	}
	te.rec.wait(t, from, "the fresh code shown", func(ev Event) bool {
		pc, ok := ev.(PairingCodeShown)
		return ok && pc.Code.Code == "BBBBB-BBBBB-BBBBB"
	})
	assert.Zero(t, te.rec.count(func(ev Event) bool {
		pc, ok := ev.(PairingCodeShown)
		return ok && pc.Code.Code == "AAAAA-AAAAA-AAAAA"
	}), "the stale code was shown")
}

// While the server is still being reached, StartPairing waits for its
// code. One that gives up (its dialog closed) leaves a newer dialog's
// pairing alone; CancelPairing ends the wait of the newer one at once.
func TestStartPairingWhileConnecting(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.Server = silentServer(t)
	te := runEngine(t, cfg)
	var err error
	state := func() (gen uint64, pairing bool) {
		te.mu.Lock()
		defer te.mu.Unlock()
		return te.srv.pairGen, te.srv.pairing
	}

	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	older := make(chan error, 1)
	go func() { _, err := te.StartPairing(short); older <- err }()
	require.Eventually(t, func() bool { g, _ := state(); return g == 1 }, 5*time.Second, time.Millisecond)
	newer := make(chan error, 1)
	go func() { _, err := te.StartPairing(pairingContext(t)); newer <- err }()
	require.Eventually(t, func() bool { g, _ := state(); return g == 2 }, 5*time.Second, time.Millisecond)

	err = <-older
	require.ErrorIs(t, err, ErrServerUnreachable, "the older one gave up")
	_, pairing := state()
	assert.True(t, pairing, "the older dialog's failure turned off the newer one's pairing")
	select {
	case err := <-newer:
		t.Fatalf("the newer StartPairing returned: %v", err)
	default:
	}

	te.CancelPairing()
	select {
	case err := <-newer:
		require.ErrorIs(t, err, ErrPairingCancelled)
	case <-time.After(10 * time.Second):
		t.Fatal("CancelPairing did not end the wait")
	}
	_, pairing = state()
	assert.False(t, pairing)

	// A pairing with the code of an earlier dialog (under way as that one
	// closed) leaves the dialog open now alone: it gets its own code. A
	// pairing with that code ends its pairing.
	third := make(chan PairingCode, 1)
	go func() {
		c, err := te.StartPairing(pairingContext(t))
		assert.NoError(t, err)
		third <- c
	}()
	var gen uint64
	require.Eventually(t, func() bool { g, p := state(); gen = g; return p && g > 2 }, 5*time.Second, time.Millisecond)
	bob := signaling.Hello{Device: device.Device{ID: "b0b0b0b0b0b0b0b0", Name: "bob"}}
	te.onPaired(bob, gen-1)
	_, pairing = state()
	assert.True(t, pairing, "an earlier dialog's pairing ended this one")
	te.onCode(te.Server(), remote.Code{Code: "CCCCC-CCCCC-CCCCC", Expires: time.Now().Add(10 * time.Minute), Request: gen})
	select {
	case c := <-third:
		assert.Equal(t, "CCCCC-CCCCC-CCCCC", c.Code)
	case <-time.After(10 * time.Second):
		t.Fatal("StartPairing did not get its code")
	}
	te.onPaired(bob, gen)
	_, pairing = state()
	assert.False(t, pairing, "paired with the dialog's own code")
}

// Without a server the pairing verbs say to set one; with one that does
// not answer, they say it cannot be reached.
func TestPairNoServer(t *testing.T) {
	a := startEngine(t, "alice")
	ctx := pairingContext(t)
	_, err := a.StartPairing(ctx)
	require.ErrorIs(t, err, ErrNoServer)
	assert.Contains(t, err.Error(), "Settings")
	_, err = a.JoinPairing(ctx, "7KQ2M-XW4PD-R8T3Z")
	require.ErrorIs(t, err, ErrNoServer)

	from := a.rec.mark()
	require.NoError(t, a.SetServer("ws://127.0.0.1:1/ws"))
	assert.Equal(t, "ws://127.0.0.1:1/ws", a.Server())
	a.rec.wait(t, from, "server unreachable", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && !s.Connected && s.Err != nil
	})
	_, err = a.StartPairing(ctx)
	require.ErrorIs(t, err, ErrServerUnreachable)
	assert.Contains(t, err.Error(), "Cannot reach the server 127.0.0.1:1")
	_, err = a.JoinPairing(ctx, "7KQ2M-XW4PD-R8T3Z")
	require.ErrorIs(t, err, ErrServerUnreachable)

	require.Error(t, a.SetServer("ftp://example.org"))
	require.NoError(t, a.SetServer(""))
	_, err = a.StartPairing(ctx)
	require.ErrorIs(t, err, ErrNoServer)
}

// The LAN comes first: a device that is both nearby and on the server is
// reached at its LAN addresses; one only on the server through it.
func TestRouteLANFirst(t *testing.T) {
	cfg := testConfig(t, "alice")
	e, err := New(cfg)
	require.NoError(t, err)
	bob := discovery.Device{
		Info: discovery.Info{Device: device.Device{ID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Name: "bob", Type: discovery.TypeLaptop}, Version: int(signaling.Version)},
		Port: 53318, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.7")},
	}
	e.srv.away[bob.ID] = rendezvous.Peer{ClientID: "c1"}
	target := Target{ID: bob.ID, Name: "bob"}
	assert.Empty(t, e.route(target), "away only: through the server")
	e.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: bob})
	assert.Equal(t, []string{"192.168.1.7:53318"}, e.route(target), "nearby: on the LAN")
}

// When the server goes away the engine says so and connects again, with
// backoff, once it is back; pairing works on the new connection.
func TestServerReconnects(t *testing.T) {
	srv := newRendezvousServer(t)
	url := srv.URL()
	a := startRemote(t, "alice", url)
	from := a.rec.mark()
	srv.Close()
	a.rec.wait(t, from, "connection lost", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && !s.Connected && s.Err != nil && strings.Contains(s.Err.Error(), "trying again")
	})
	from = a.rec.mark()
	newRendezvousServer(t, rendezvoustest.WithAddr(srv.Addr()))
	a.rec.wait(t, from, "connected again", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && s.Connected
	})
	code, err := a.StartPairing(pairingContext(t))
	require.NoError(t, err)
	assert.NotEmpty(t, code.Code)
}

// With more paired devices than one round looks for, the next round
// takes the others: the last one, the only one on the server, is found in
// the second round.
func TestFindRoundsRotate(t *testing.T) {
	url := newRendezvous(t)
	ctx := pairingContext(t)
	e, err := New(testConfig(t, "alice"))
	require.NoError(t, err)
	var last *identity.Identity
	for i := range maxFindsPerRound + 3 {
		id := testkit.Identity(t)
		require.NoError(t, e.trust.Pin(id.DeviceID, fmt.Sprintf("dev%02d", i), id.Fingerprint))
		last = id
	}
	dial := func(id *identity.Identity, name string) *rendezvous.Client {
		c, err := rendezvous.Dial(ctx, url, rendezvous.Hello{ID: id.DeviceID, Name: name, Type: "laptop", Fingerprint: id.Fingerprint})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	require.NoError(t, dial(last, "dev10").Announce(ctx, last.Signer(), last.CertificateDER()))
	finder := dial(e.id, "alice")

	e.findPaired(ctx, finder)
	assert.Empty(t, e.srv.away, "the first round looks for the first few")
	e.findPaired(ctx, finder)
	require.Contains(t, e.srv.away, last.DeviceID, "the second round looks for the rest")
	devs := e.Devices()
	require.Len(t, devs, 1)
	assert.True(t, devs[0].Away)
	assert.Equal(t, "dev10", devs[0].Name)
}

// Sends through the server fail in words that say what to do.
func TestDescribeRemoteSendError(t *testing.T) {
	assert.Equal(t, "Bob is not connected to the server (it is off, or has no server set)",
		describeSendError("Bob", fmt.Errorf("dial: %w", remote.ErrNotOnline), false))
	assert.Equal(t, "could not reach the server to connect to Bob",
		describeSendError("Bob", &serverError{errors.New("connection refused")}, false))
	assert.Contains(t, describeSendError("Bob", &permanentError{errNoRoute}, false), "not on this network")
	assert.Equal(t, "Bob does not know this device any more: pair again with a code",
		describeSendError("Bob", &signaling.RemoteError{ErrorMessage: signaling.ErrorMessage{Code: signaling.CodeRefused, Message: "refused: " + remote.ErrNotPaired.Error()}}, false))
}

// A paired device listed nearby that does not answer on the LAN is tried
// through the server; a refusal on purpose (a changed identity) is not, nor
// is a device that is not pinned, nor anything without a server.
func TestServerFallbackAfterLAN(t *testing.T) {
	e, err := New(testConfig(t, "alice"))
	require.NoError(t, err)
	fp := "sha-256 " + strings.TrimSuffix(strings.Repeat("BB:", 32), ":")
	require.NoError(t, e.trust.Pin("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "bob", fp))
	paired, stranger := Target{ID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Name: "bob"}, Target{ID: "cccccccccccccccccccccccccccccccc", Name: "carol"}
	timeout := fmt.Errorf("dial 192.168.1.7:53318: %w", context.DeadlineExceeded)
	refused := &permanentError{errors.New("identity changed")}

	assert.False(t, e.serverFallback(paired, timeout), "no server set")
	e.srv.url = "ws://127.0.0.1:1/ws"
	assert.True(t, e.serverFallback(paired, timeout))
	assert.False(t, e.serverFallback(paired, refused), "a refusal stands")
	impostor := &permanentError{fmt.Errorf("handshake: %w", &trust.IdentityChangedError{ID: paired.ID, Name: "bob"})}
	assert.True(t, e.serverFallback(paired, impostor), "not the paired device on the LAN: the server may reach it")
	assert.False(t, e.serverFallback(stranger, timeout), "not paired: no way through the server")
}

// Apply on the server that could not be reached tries again at once: the
// error clears (a "connecting" status) and the connection comes.
func TestSetSameServerRetries(t *testing.T) {
	srv := newRendezvousServer(t)
	url := srv.URL()
	a := startRemote(t, "alice", url)
	from := a.rec.mark()
	srv.Close()
	a.rec.wait(t, from, "connection lost", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && !s.Connected && s.Err != nil
	})
	newRendezvousServer(t, rendezvoustest.WithAddr(srv.Addr()))
	from = a.rec.mark()
	require.NoError(t, a.SetServer(url))
	a.rec.wait(t, from, "trying again", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && s.URL == url && !s.Connected && s.Err == nil
	})
	a.rec.wait(t, from, "connected again", func(ev Event) bool {
		s, ok := ev.(ServerStatus)
		return ok && s.Connected
	})
	// While connected, the same URL changes nothing.
	require.NoError(t, a.SetServer(url))
	a.mu.Lock()
	connected := a.srv.connected
	a.mu.Unlock()
	assert.True(t, connected, "still connected")
}
