package engine

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// trustOffline makes b a trusted device of a (as a pairing and "Trust"
// would) without b being anywhere a can see.
func trustOffline(t *testing.T, a *testEngine, b *Engine) {
	t.Helper()
	require.NoError(t, a.trust.Pin(b.Self().ID, b.Self().Name, b.Fingerprint()))
	require.NoError(t, a.SetTrusted(b.Self().ID, true))
}

// offlineTarget is what the app sends to for an offline device: TargetOf
// the listed device (no addresses).
func offlineTarget(t *testing.T, a *testEngine, id string) Target {
	t.Helper()
	for _, d := range a.Devices() {
		if d.ID == id {
			require.True(t, d.Offline, "listed offline")
			require.True(t, d.Trusted)
			require.Empty(t, d.Addrs)
			return TargetOf(d)
		}
	}
	require.Failf(t, "not listed", "%s is not in %v", id, a.Devices())
	return Target{}
}

// A trusted device stays listed while it is off, and a send to it waits in
// the queue until it appears (here: it starts later, on the same network,
// found over real mDNS), then goes by itself.
func TestSendWaitsForTrustedDevice(t *testing.T) {
	if !liveNetns(t) {
		return
	}
	cfg := testConfig(t, "alice")
	cfg.NoBrowse = false // alice looks for devices
	a := runEngine(t, cfg)
	bcfg := testConfig(t, "bob")
	bcfg.Hidden = false // bob advertises, once he runs
	bcfg.AutoAcceptTrusted = true
	bob, err := New(bcfg) // his identity exists; he is off
	require.NoError(t, err)
	trustOffline(t, a, bob)

	src := filepath.Join(t.TempDir(), "for-bob.txt")
	writeFile(t, src, []byte("waited for you"))
	it, err := a.Send(offlineTarget(t, a, bob.Self().ID), []string{src})
	require.NoError(t, err)
	assert.Equal(t, StateWaiting, it.State, "waits for bob")
	assert.Equal(t, "bob", it.Peer.Name)

	// Bob comes on: alice discovers him and the send starts by itself.
	b := runEngineWith(t, bcfg, nil)
	require.NoError(t, b.trust.Pin(a.Self().ID, "alice", a.Fingerprint()))
	require.NoError(t, b.SetTrusted(a.Self().ID, true)) // he accepts from alice without asking
	done := a.rec.waitState(t, 0, it.ID, StateDone)
	assert.Equal(t, int64(len("waited for you")), done.Total)
	sameTree(t, src, filepath.Join(bcfg.DownloadDir, "for-bob.txt"))
	for _, d := range a.Devices() {
		if d.ID == b.Self().ID {
			assert.False(t, d.Offline, "on the network now")
		}
	}
	states := []State{}
	for _, ev := range a.rec.all() {
		if ic, ok := ev.(ItemChanged); ok && ic.Item.ID == it.ID {
			states = append(states, ic.Item.State)
		}
	}
	assert.Equal(t, StateWaiting, states[0])
	assert.Contains(t, states, StateConnecting)
}

// A waiting send can be cancelled from the queue, not paused; the queue
// holds a bounded number of them; the engine's end fails those left.
func TestWaitingSendCancelAndBound(t *testing.T) {
	a := startEngine(t, "alice")
	bob, err := New(testConfig(t, "bob"))
	require.NoError(t, err)
	trustOffline(t, a, bob)
	to := offlineTarget(t, a, bob.Self().ID)
	src := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, src, []byte("x"))

	it, err := a.Send(to, []string{src})
	require.NoError(t, err)
	require.Equal(t, StateWaiting, it.State)
	assert.ErrorIs(t, a.Pause(it.ID), ErrNotActive)
	require.NoError(t, a.Cancel(it.ID))
	got := a.rec.waitState(t, 0, it.ID, StateCancelled)
	assert.Empty(t, got.Error)
	require.NoError(t, a.Retry(it.ID))
	a.rec.waitItem(t, 0, it.ID, "waiting again", func(i Item) bool { return i.State == StateWaiting && i.Finished.IsZero() })

	for range maxWaitingSends - 1 {
		_, err := a.Send(to, []string{src})
		require.NoError(t, err)
	}
	_, err = a.Send(to, []string{src})
	require.ErrorIs(t, err, ErrTooManyWaiting)

	mark := a.rec.mark()
	a.stop()
	failed := a.rec.waitState(t, mark, it.ID, StateFailed)
	assert.Contains(t, failed.Error, "stopped before bob appeared")

	// Not trusted: no waiting, as before (no way to reach it).
	c := startEngine(t, "carol")
	_, err = c.Send(Target{ID: bob.Self().ID, Name: "bob"}, []string{src})
	assert.ErrorIs(t, err, errNoRoute)
}

// Another device that advertises a favourite's id (the id and fingerprint
// are public, in its TXT record) at its own address does not end the send
// waiting for the favourite: the handshake shows it is not the device, and
// the send waits on.
func TestImpostorDoesNotEndAWaitingSend(t *testing.T) {
	a := startEngine(t, "alice")
	bob, err := New(testConfig(t, "bob"))
	require.NoError(t, err)
	trustOffline(t, a, bob)
	mallory := startEngine(t, "mallory")
	src := filepath.Join(t.TempDir(), "for-bob.txt")
	writeFile(t, src, []byte("for bob only"))
	it, err := a.Send(offlineTarget(t, a, bob.Self().ID), []string{src})
	require.NoError(t, err)
	require.Equal(t, StateWaiting, it.State)

	_, port, err := net.SplitHostPort(mallory.Addr())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	from := a.rec.mark()
	a.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: discovery.Device{
		Info: discovery.Info{
			Device:  device.Device{ID: bob.Self().ID, Name: "bob", Type: discovery.TypeLaptop, Fingerprint: bob.Fingerprint()},
			Version: int(signaling.Version),
		},
		Port: p, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}})
	a.rec.waitState(t, from, it.ID, StateConnecting)
	back := a.rec.waitState(t, from, it.ID, StateWaiting)
	assert.Empty(t, back.Error)
	for _, ev := range a.rec.all()[from:] {
		if ic, ok := ev.(ItemChanged); ok && ic.Item.ID == it.ID {
			assert.False(t, ic.Item.State.Finished(), "the send never ended: %v", ic.Item)
		}
	}
	assert.Empty(t, mallory.rec.count(func(ev Event) bool { _, ok := ev.(OfferReceived); return ok }), "mallory got no offer")
}

// Advertisements of devices that are not trusted store nothing for the
// offline list: a thousand made-up ids leave the remembered types alone.
func TestAdvertisedTypesOnlyForTrusted(t *testing.T) {
	a := startEngine(t, "alice")
	bob, err := New(testConfig(t, "bob"))
	require.NoError(t, err)
	trustOffline(t, a, bob)
	advertise := func(id, typ string) {
		a.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: discovery.Device{
			Info: discovery.Info{Device: device.Device{ID: id, Name: "x", Type: typ, Fingerprint: "sha-256 00"}, Version: int(signaling.Version)},
			Port: 53318, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		}})
	}
	advertise(bob.Self().ID, discovery.TypeDesktop)
	for i := range 2000 {
		advertise(fmt.Sprintf("%032x", i), discovery.TypePhone)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	assert.Equal(t, 1, len(a.seenType), "only the trusted device's type")
	assert.Equal(t, discovery.TypeDesktop, a.seenType[bob.Self().ID])
}
