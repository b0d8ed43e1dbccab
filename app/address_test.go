package app

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// "Send to an address" refuses what is not an address, saying why, and
// sends to what is, dialing that address only (a target with no id, no
// other address).
func TestAddressDialogValidates(t *testing.T) {
	u, f := newTestUI(t)
	var byAddr bool
	for _, s := range texts(u.win) {
		byAddr = byAddr || s == "Send to an address…"
	}
	require.True(t, byAddr, "the button in Nearby's header")

	a := u.openAddressDialog()
	assert.True(t, shows(u.win, "Send to an address"))
	for in, want := range map[string]string{
		"":                          "Type an address first.",
		"http://192.168.1.5:53318/": "type only the address",
		"192.168.1.5:70000":         "the port must be a number from 1 to 65535",
		"bob's laptop":              "type only the address",
		"not_a_host":                "not a valid host name",
		"999.1.2.3":                 "not a valid IP address",
	} {
		a.entry.SetText(in)
		test.Tap(a.next)
		assert.True(t, a.err.Visible(), "%q refused", in)
		assert.Contains(t, a.err.String(), want, in)
		assert.True(t, shows(u.win, "Send to an address"), "the dialog stays open for %q", in)
	}
	assert.Empty(t, f.Calls(), "nothing sent, nothing dialed")
	a.entry.SetText("192.168.1.7")
	assert.False(t, a.err.Visible(), "typing clears the error")

	// An address: on to the files, sent to that address only.
	a.entry.SetText("192.168.1.7:4000")
	a.entry.OnSubmitted(a.entry.Text)
	assert.False(t, shows(u.win, "For a device that does not appear in Nearby"), "the dialog closed")
	sheet := u.lastSheet
	require.NotNil(t, sheet)
	assert.True(t, shows(u.win, "To 192.168.1.7:4000"))
	sheet.add("/tmp/report.pdf")
	test.Tap(sheet.send)
	assert.Equal(t, []string{"Send  /tmp/report.pdf"}, f.Calls())
	require.Len(t, f.targets, 1)
	assert.Equal(t, engine.Target{Addrs: []string{"192.168.1.7:4000"}}, f.targets[0])

	// The default port, and IPv6 with its zone.
	a = u.openAddressDialog()
	a.entry.SetText("fe80::1%eth0")
	test.Tap(a.next)
	u.lastSheet.add("/tmp/b")
	test.Tap(u.lastSheet.send)
	require.Len(t, f.targets, 2)
	assert.Equal(t, engine.Target{Addrs: []string{"[fe80::1%eth0]:53318"}}, f.targets[1])
}

// A dialog's wrapped message keeps its room when the window narrows under
// it: the error of the address dialog, shown in a wide window, does not
// slide under the buttons once the window is phone-wide.
func TestDialogTextKeepsItsRoomWhenTheWindowNarrows(t *testing.T) {
	u, _ := newTestUI(t)
	u.win.Resize(fyne.NewSize(780, 520))
	a := u.openAddressDialog()
	a.entry.SetText("192.168.1.42:99999")
	a.submit()
	u.win.Resize(fyne.NewSize(360, 640))

	var msg []rect
	walk(a.err, func(c fyne.CanvasObject) {
		if tx, ok := c.(*canvas.Text); ok && tx.Text != "" {
			msg = append(msg, rectOf(tx.Text, tx))
		}
	})
	require.GreaterOrEqual(t, len(msg), 2, "the message wraps at 360 px")
	next := rectOf("Choose files", a.next)
	for _, m := range msg { // the buttons are one row: the message ends above it
		assert.LessOrEqual(t, m.y+m.h, next.y, "%q %+v runs into the buttons' row %+v", m.name, m, next)
	}
}
