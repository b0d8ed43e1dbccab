package app

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

func TestHitTest(t *testing.T) {
	bob, carol := dev("b", "Bob", "laptop"), dev("c", "Carol", "phone")
	targets := []dropTarget{
		{dev: bob, pos: fyne.NewPos(10, 10), size: fyne.NewSize(100, 100)},
		{dev: carol, pos: fyne.NewPos(120, 10), size: fyne.NewSize(100, 100)},
	}
	for _, tc := range []struct {
		pos  fyne.Position
		want string // device id, "" for none
	}{
		{fyne.NewPos(10, 10), "b"}, {fyne.NewPos(109, 109), "b"}, {fyne.NewPos(110, 50), ""},
		{fyne.NewPos(150, 60), "c"}, {fyne.NewPos(5, 5), ""}, {fyne.NewPos(150, 200), ""},
	} {
		d, ok := hitTest(tc.pos, targets)
		assert.Equal(t, tc.want != "", ok, "at %v", tc.pos)
		assert.Equal(t, tc.want, d.ID, "at %v", tc.pos)
	}
	_, ok := hitTest(fyne.NewPos(1, 1), nil)
	assert.False(t, ok)
}

func TestNearbyFollowsDevicesChanged(t *testing.T) {
	u, _ := newTestUI(t)
	assert.True(t, shows(u.win, emptyNearby), "empty state at first")
	assert.True(t, shows(u.win, "Alice's Laptop"), "says how others see us")

	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol Smith", "phone")}})
	assert.False(t, shows(u.win, emptyNearby))
	assert.True(t, shows(u.win, "Bob"))
	assert.True(t, shows(u.win, "Carol Smith"))
	assert.True(t, shows(u.win, "CS"), "initials on the avatar")
	assert.True(t, shows(u.win, "Phone"), "type under the name")
	require.Len(t, u.nearby.order, 2)

	trusted := dev("c", "Carol Smith", "phone")
	trusted.Trusted = true
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{trusted}})
	assert.False(t, shows(u.win, "Bob"), "Bob left")
	assert.True(t, shows(u.win, "Phone · Trusted"))
	assert.True(t, u.nearby.tiles["c"].av.trusted, "trusted mark on the avatar")

	u.HandleEvent(engine.DevicesChanged{})
	assert.True(t, shows(u.win, emptyNearby))
	assert.Empty(t, u.nearby.order)
}

func TestDropOnAvatarSendsToThatDevice(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol", "phone")}})
	uris := []fyne.URI{storage.NewFileURI("/home/alice/a.jpg"), storage.NewFileURI("/home/alice/trip")}

	u.onDropped(center(u.nearby.tiles["c"]), uris)
	assert.Equal(t, []string{"Send c /home/alice/a.jpg,/home/alice/trip"}, f.Calls())
	assert.NotNil(t, u.queue.index["sent-1"], "the new item is in the queue at once")
	assert.Equal(t, "Waiting…", u.nearby.tiles["c"].caption.Text, "the avatar shows the send")

	d, ok := u.deviceAt(center(u.nearby.tiles["b"]))
	assert.True(t, ok)
	assert.Equal(t, "b", d.ID)
}

func TestDropElsewhereDoesNothing(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})
	uris := []fyne.URI{storage.NewFileURI("/tmp/a.txt")}
	tile := u.nearby.tiles["b"]
	abs := fyne.CurrentApp().Driver().AbsolutePositionForObject(tile)

	u.onDropped(abs.AddXY(tile.Size().Width+40, 10), uris) // beside the avatar
	u.onDropped(fyne.NewPos(5, 5), uris)                   // on the tab bar
	u.onDropped(fyne.NewPos(700, 540), uris)               // the footer
	assert.Empty(t, f.Calls())
	assert.Contains(t, styledText(u.nearby.hint), "Drop the files on a device")

	// Not on the Nearby tab: nothing is under the pointer.
	u.tabs.Select(u.queueTab)
	_, ok := u.deviceAt(center(tile))
	assert.False(t, ok)
}

func TestSendErrorIsShown(t *testing.T) {
	u, f := newTestUI(t)
	f.sendErr = errors.New("Bob is not answering")
	bob := dev("b", "Bob", "laptop")
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob}})
	u.onDropped(center(u.nearby.tiles["b"]), []fyne.URI{storage.NewFileURI("/tmp/a.txt")})
	assert.True(t, shows(u.win, "ould not send to Bob: Bob is not answering"), "in a dialog: %q", texts(u.win))
}

func TestMultiSelectSendsToEach(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol", "phone"), dev("d", "Dan", "desktop")}})
	assert.False(t, u.nearby.selBar.Visible())

	test.TapSecondary(u.nearby.tiles["b"])
	test.TapSecondary(u.nearby.tiles["d"])
	assert.True(t, u.nearby.selBar.Visible())
	assert.Equal(t, "Send to 2 devices…", u.nearby.sendSel.Text)
	assert.True(t, u.nearby.tiles["b"].av.selected)

	u.nearby.sendSel.OnTapped() // opens the sheet (and the file chooser)
	sheet := u.lastSheet
	require.NotNil(t, sheet)
	assert.True(t, sheet.send.Disabled(), "nothing to send yet")
	sheet.add("/tmp/report.pdf", "/tmp/photos")
	test.Tap(sheet.send)
	assert.Equal(t, []string{"Send b /tmp/report.pdf,/tmp/photos", "Send d /tmp/report.pdf,/tmp/photos"}, f.Calls())
	assert.Len(t, u.queue.items, 2, "one queue item per device")

	test.TapSecondary(u.nearby.tiles["b"])
	assert.Equal(t, "Send to 1 device…", u.nearby.sendSel.Text)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})
	assert.False(t, u.nearby.selBar.Visible(), "Dan left, and with him the selection")
}

func TestTrustFromTheMenu(t *testing.T) {
	u, f := newTestUI(t)
	// A device never connected with has no proven certificate to trust.
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})
	var later *fyne.MenuItem
	for _, it := range u.deviceMenu(u.nearby.tiles["b"].dev).Items {
		if strings.HasPrefix(it.Label, "Trust…") {
			later = it
		}
	}
	require.NotNil(t, later)
	assert.Equal(t, "Trust… (after a first transfer)", later.Label)
	assert.True(t, later.Disabled)

	bob := dev("b", "Bob", "laptop")
	bob.Known = true
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob}})
	var trustItem *fyne.MenuItem
	for _, it := range u.deviceMenu(u.nearby.tiles["b"].dev).Items {
		if it.Label == "Trust…" {
			trustItem = it
		}
	}
	require.NotNil(t, trustItem)
	assert.False(t, trustItem.Disabled)
	trustItem.Action()
	assert.Equal(t, []string{"TrustCode b"}, f.Calls(), "not trusted before the codes are compared")
	assert.True(t, shows(u.win, "Trust Bob?"))
	assert.True(t, shows(u.win, "1234 5678 9012 · 3456 7890 1234"), "the code to compare: %q", texts(u.win))
	tapButton(t, u, "Trust")
	assert.Equal(t, []string{"TrustCode b", "SetTrusted b true"}, f.Calls())
	assert.True(t, u.nearby.tiles["b"].av.trusted)

	for _, it := range u.deviceMenu(u.nearby.tiles["b"].dev).Items {
		if it.Label == "Untrust" {
			it.Action()
		}
	}
	assert.Equal(t, "SetTrusted b false", f.Calls()[2], "untrusting needs no code")
}

// tapButton taps the button labelled label in the dialog on top.
func tapButton(t *testing.T, u *UI, label string) {
	t.Helper()
	var found *widget.Button
	walk(u.win.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == label {
			found = b
		}
	})
	require.NotNil(t, found, "a %q button", label)
	test.Tap(found)
}

func TestNoEngine(t *testing.T) {
	a := test.NewTempApp(t)
	u := New(a, nil, Options{})
	u.win.Resize(fyne.NewSize(780, 560))
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})
	u.onDropped(center(u.nearby.tiles["b"]), []fyne.URI{storage.NewFileURI("/tmp/a.txt")})
	assert.True(t, shows(u.win, "ThePeerDrop is not running"))
}

func TestProblemShownOnce(t *testing.T) {
	u, _ := newTestUI(t)
	for range 3 {
		u.HandleEvent(engine.Problem{Err: errors.New("port 53318 is taken by another program")})
	}
	assert.Len(t, u.win.Canvas().Overlays().List(), 1, "one dialog for the same problem")
	assert.True(t, shows(u.win, "Port 53318 is taken by another program"))
	walk(u.win.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == "OK" {
			test.Tap(b)
		}
	})
	assert.Nil(t, u.win.Canvas().Overlays().Top(), "dismissed")
	u.HandleEvent(engine.Problem{Err: errors.New("port 53318 is taken by another program")})
	assert.True(t, shows(u.win, "Port 53318 is taken"), "shown again once closed")
}

// The sender sees the connection's code while it waits for the answer: on
// the device's avatar and in the Transfers row, as soon as the engine
// reports it (the state does not change when the code arrives).
func TestSenderSeesTheCodeWhileWaiting(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})
	items, err := u.dropOn(u.nearby.tiles["b"].dev, []string{"/tmp/photo.jpg"})
	require.NoError(t, err)
	require.Len(t, items, 1)
	it := items[0]
	u.HandleEvent(engine.ItemChanged{Item: it}) // the engine reports the new item
	assert.Equal(t, "Waiting…", u.nearby.tiles["b"].caption.Text, "no connection yet, no code")

	it.Code = "123 456" // connected: the offer is on Bob's screen with this code
	u.HandleEvent(engine.ItemChanged{Item: it})
	assert.Equal(t, "Code 123 456", u.nearby.tiles["b"].caption.Text)
	r := showQueue(t, u, it.ID)
	assert.Equal(t, "to Bob · Code 123 456", r.detail.Text)
	assert.Equal(t, "Waiting for Bob", r.state.Text)

	it.State = engine.StateRunning
	u.HandleEvent(engine.ItemChanged{Item: it})
	assert.Equal(t, "Sending 0%", u.nearby.tiles["b"].caption.Text, "accepted: progress again")
}

// names are the device names in the grid, as laid out.
func gridNames(u *UI) []string {
	var out []string
	for _, o := range u.nearby.grid.Objects {
		out = append(out, o.(*deviceTile).name.Text)
	}
	return out
}

// A device that appears does not shift the others: each keeps its slot
// while the window is open, new ones come at the end.
func TestNearbyPositionsStayPut(t *testing.T) {
	u, _ := newTestUI(t)
	bob, dan := dev("b", "Bob", "laptop"), dev("d", "Dan", "desktop")
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob, dan}})
	danAt := center(u.nearby.tiles["d"])

	// The engine sorts by name: Carol would land between Bob and Dan.
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("a", "Al", "phone"), bob, dev("c", "Carol", "phone"), dan}})
	assert.Equal(t, []string{"Bob", "Dan", "Al", "Carol"}, gridNames(u))
	assert.Equal(t, danAt, center(u.nearby.tiles["d"]), "Dan's tile did not move")
	d, ok := u.deviceAt(danAt)
	require.True(t, ok)
	assert.Equal(t, "d", d.ID, "a drop where Dan was still goes to Dan")

	// Bob goes: the rest keep their order. Bob comes back: at the end.
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("a", "Al", "phone"), dev("c", "Carol", "phone"), dan}})
	assert.Equal(t, []string{"Dan", "Al", "Carol"}, gridNames(u))
	renamed := dev("a", "Zed", "phone") // renamed: same slot
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob, dev("c", "Carol", "phone"), dan, renamed}})
	assert.Equal(t, []string{"Dan", "Zed", "Carol", "Bob"}, gridNames(u))
}

// The device menu says which device it is for.
func TestDeviceMenuNamesItsDevice(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol", "phone")}})
	items := u.deviceMenu(u.nearby.tiles["c"].dev).Items
	assert.Equal(t, "Carol", items[0].Label)
	assert.True(t, items[0].Disabled, "a title, not an action")
	assert.True(t, items[1].IsSeparator)
	assert.Equal(t, "Send files…", items[2].Label)
	test.Tap(u.nearby.tiles["c"])
	assert.True(t, shows(u.win, "Send files…"), "a click opens it")

	test.TapSecondary(u.nearby.tiles["b"])
	test.TapSecondary(u.nearby.tiles["c"])
	assert.Equal(t, "2 selected devices", u.deviceMenu(u.nearby.tiles["c"].dev).Items[0].Label)
}

// Nearby says how a send ended when it did not go as hoped, and that a
// text arrived: under the avatar and in the footer, for a while.
func TestNearbyTellsOutcomes(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol", "phone")}})
	items, err := u.dropOn(u.nearby.tiles["b"].dev, []string{"/tmp/photo.jpg"})
	require.NoError(t, err)
	it := items[0]
	it.Title = "photo.jpg"
	it.State, it.Error = engine.StateDeclined, "Bob declined"
	u.HandleEvent(engine.ItemChanged{Item: it})
	assert.Equal(t, "Declined", u.nearby.tiles["b"].caption.Text)
	assert.Equal(t, "Bob declined photo.jpg.", styledText(u.nearby.hint))

	require.NoError(t, u.sendTextTo(engine.Peer{ID: "c", Name: "Carol"}, "lunch?"))
	assert.Equal(t, "Phone", u.nearby.tiles["c"].caption.Text, "not delivered yet")
	sent := u.messages.convs["c"][0]
	u.HandleEvent(engine.MessageReceived{Message: sent}) // the engine: delivered
	assert.Equal(t, "Delivered", u.nearby.tiles["c"].caption.Text)
	assert.Equal(t, "Message delivered to Carol.", styledText(u.nearby.hint))

	// The notes go after a while; the footer goes back to its hint.
	u.nearby.endNote("b", u.nearby.notes["b"].gen)
	assert.Equal(t, "Laptop", u.nearby.tiles["b"].caption.Text)
	assert.Equal(t, "Message delivered to Carol.", styledText(u.nearby.hint), "Carol's note is newer")
	u.nearby.endNote("c", u.nearby.notes["c"].gen)
	assert.Equal(t, "Phone", u.nearby.tiles["c"].caption.Text)
	assert.Equal(t, defaultHint, styledText(u.nearby.hint))

	sent.Err = "Carol did not confirm the message"
	u.HandleEvent(engine.MessageReceived{Message: sent})
	assert.Equal(t, "Not delivered", u.nearby.tiles["c"].caption.Text)
	assert.Equal(t, "Message to Carol not delivered: Carol did not confirm the message", styledText(u.nearby.hint))
}

// Sending with the keyboard alone: Tab reaches each device in grid order,
// the focused one is marked, Enter (or Space) opens its menu.
func TestDevicesTakeKeyboardFocus(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol", "phone")}})
	c := u.win.Canvas()
	bob, carol := u.nearby.tiles["b"], u.nearby.tiles["c"]

	var order []fyne.Focusable
	for range 8 {
		test.FocusNext(c)
		if f := c.Focused(); f != nil && !slices.Contains(order, f) {
			order = append(order, f)
		}
	}
	require.Contains(t, order, fyne.Focusable(bob), "Tab reaches Bob")
	require.Contains(t, order, fyne.Focusable(carol), "and Carol")
	assert.Less(t, slices.Index(order, fyne.Focusable(bob)), slices.Index(order, fyne.Focusable(carol)), "in grid order")

	c.Focus(carol)
	assert.True(t, carol.focused)
	assert.NotZero(t, carol.bg.StrokeWidth, "the focused tile is marked")
	assert.Zero(t, bob.bg.StrokeWidth)
	test.FocusPrevious(c)
	assert.Equal(t, fyne.Focusable(bob), c.Focused())
	assert.False(t, carol.focused)
	assert.Zero(t, carol.bg.StrokeWidth)

	assert.False(t, shows(u.win, "Send files…"))
	bob.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	assert.True(t, shows(u.win, "Send files…"), "Enter opens the menu")
	_, isMenu := c.Focused().(*widget.PopUpMenu)
	assert.True(t, isMenu, "the menu has the keyboard now")
}
