package app

import (
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// A trusted device that is off stays in Nearby, greyed, and a send to it
// waits in the queue for it ("Waits for Bob to appear"), cancellable.
func TestOfflineTrustedDevice(t *testing.T) {
	u, f := newTestUI(t)
	bob := dev("b", "Bob", "laptop")
	bob.Trusted, bob.Known, bob.Offline, bob.Addrs = true, true, true, nil
	carol := dev("c", "Carol", "desktop")
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob, carol}})
	require.Contains(t, u.nearby.tiles, "b")
	tile := u.nearby.tiles["b"]
	assert.Equal(t, "Offline · Trusted", tile.caption.Text)
	assert.True(t, tile.av.dimmed, "greyed")
	assert.Equal(t, widget.LowImportance, tile.name.Importance)
	assert.False(t, u.nearby.tiles["c"].av.dimmed, "a device on the network is not")

	// It appears: no longer greyed.
	on := bob
	on.Offline, on.Addrs = false, dev("b", "Bob", "laptop").Addrs
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{on, carol}})
	assert.False(t, u.nearby.tiles["b"].av.dimmed)
	assert.Equal(t, "Laptop · Trusted", u.nearby.tiles["b"].caption.Text)

	// A send that waits for it shows so in the queue, with Cancel.
	it := engine.Item{ID: "w1", Direction: engine.Outgoing, Peer: engine.Peer{ID: "b", Name: "Bob"},
		Title: "report.pdf", Files: 1, Total: 1200, State: engine.StateWaiting}
	u.HandleEvent(engine.ItemChanged{Item: it})
	r := showQueue(t, u, "w1")
	assert.True(t, shows(u.win, "Waits for Bob to appear"))
	require.True(t, r.cancel.Visible())
	test.Tap(r.cancel)
	assert.Equal(t, []string{"Cancel w1"}, f.Calls())
}
