package engine

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/localsend"
)

// startLocalSend runs an engine that speaks LocalSend on a free loopback
// port (no multicast: NoBrowse and Hidden).
func startLocalSend(t *testing.T, name string) *testEngine {
	t.Helper()
	cfg := testConfig(t, name)
	cfg.LocalSend, cfg.LocalSendPort = true, -1
	te := runEngine(t, cfg)
	require.Eventually(t, func() bool { return te.LocalSendPort() != 0 }, 10*time.Second, 5*time.Millisecond)
	return te
}

// asLocalSend is te as another engine's LocalSend discovery lists it.
func (te *testEngine) asLocalSend() localsend.Device {
	te.mu.Lock()
	self := te.ls.node.Self()
	te.mu.Unlock()
	return localsend.Device{Info: self, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(te.LocalSendPort()))}
}

// The desktop engine sends files and a text to a LocalSend device, and
// takes a LocalSend sender's offer through the same prompt and queue: here
// both ends are engines, one speaking to the other's LocalSend server.
func TestLocalSendThroughTheEngine(t *testing.T) {
	a, b := startLocalSend(t, "alice"), startLocalSend(t, "bob")
	a.mu.Lock()
	gen := a.ls.gen
	a.mu.Unlock()
	a.onLocalSendDevices(gen, []localsend.Device{b.asLocalSend()})
	var dev Device
	for _, d := range a.Devices() {
		if d.LocalSend {
			dev = d
		}
	}
	require.True(t, dev.LocalSend, "the LocalSend device is listed: %+v", a.Devices())
	assert.Equal(t, "bob", dev.Name)
	assert.False(t, dev.Unencrypted)
	assert.NotEqual(t, b.Self().ID, dev.ID, "a LocalSend id is never one of our devices' ids")

	src := filepath.Join(t.TempDir(), "Trip")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("hello"))
	writeFile(t, filepath.Join(src, "sub", "b.bin"), randomBytes(t, 300<<10))
	fromA, fromB := len(a.rec.all()), len(b.rec.all())
	it, err := a.Send(TargetOf(dev), []string{src})
	require.NoError(t, err)
	o := b.rec.waitOffer(t, fromB)
	assert.Equal(t, "alice", o.From.Name)
	assert.False(t, o.Trusted, "a LocalSend sender is never trusted")
	assert.Equal(t, 2, o.Files)
	require.NoError(t, b.Answer(o.ID, true))
	a.rec.waitState(t, fromA, it.ID, StateDone)
	b.rec.waitState(t, fromB, o.ID, StateDone)
	sameTree(t, src, filepath.Join(b.DownloadDir(), "Trip"))

	// A decline is said in plain words.
	fromA, fromB = len(a.rec.all()), len(b.rec.all())
	it, err = a.Send(TargetOf(dev), []string{filepath.Join(src, "a.txt")})
	require.NoError(t, err)
	o = b.rec.waitOffer(t, fromB)
	require.NoError(t, b.Answer(o.ID, false))
	got := a.rec.waitState(t, fromA, it.ID, StateDeclined)
	assert.Equal(t, "bob declined", got.Error)

	// A text is a message on the other side.
	fromB = len(b.rec.all())
	_, err = a.SendText(TargetOf(dev), "see you at eight")
	require.NoError(t, err)
	ev := b.rec.wait(t, fromB, "message", func(ev Event) bool {
		m, ok := ev.(MessageReceived)
		return ok && !m.Message.Outgoing
	})
	assert.Equal(t, "see you at eight", ev.(MessageReceived).Message.Text)

	// Off: nothing listens, and the device list forgets LocalSend devices.
	a.SetLocalSend(false, false)
	require.Eventually(t, func() bool { return a.LocalSendPort() == 0 }, 10*time.Second, 10*time.Millisecond)
	for _, d := range a.Devices() {
		assert.False(t, d.LocalSend)
	}
	// A report from the node that stopped (it raced the switch) is dropped.
	a.onLocalSendDevices(gen, []localsend.Device{b.asLocalSend()})
	for _, d := range a.Devices() {
		assert.False(t, d.LocalSend, "a stopped node's report brings no device back")
	}
}
