package app

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"

	"github.com/thepeerdrop/peerdrop/engine"
)

func TestSettingsAutoAcceptToggle(t *testing.T) {
	u, f := newTestUI(t)
	assert.False(t, u.settings.auto.Checked)
	test.Tap(u.settings.auto)
	assert.Equal(t, []string{"SetAutoAcceptTrusted true"}, f.Calls())
	assert.True(t, LoadSettings(u.app.Preferences()).AutoAcceptTrusted, "remembered")
	test.Tap(u.settings.auto)
	assert.Equal(t, []string{"SetAutoAcceptTrusted true", "SetAutoAcceptTrusted false"}, f.Calls())
	assert.False(t, LoadSettings(u.app.Preferences()).AutoAcceptTrusted)
}

func TestSettingsLoadAndSave(t *testing.T) {
	a := test.NewTempApp(t)
	a.Preferences().SetBool(prefAutoAccept, true)
	a.Preferences().SetString(prefDownloadDir, "/srv/inbox")
	f := newFake()
	u := New(a, f, Options{ProgressInterval: time.Hour})
	assert.True(t, u.settings.auto.Checked, "from the preferences")
	assert.Equal(t, "/srv/inbox", u.settings.dir.Text)
	assert.Equal(t, "Alice's Laptop", u.settings.name.Text, "the engine's name when none is saved")
	assert.Empty(t, f.Calls(), "main hands the saved settings to the engine; the UI does not repeat them")

	u.settings.name.SetText("Alice's Laptop 2")
	test.Tap(u.settings.save)
	assert.Equal(t, "Alice's Laptop 2", LoadSettings(a.Preferences()).Name)
	assert.Equal(t, []string{"SetName Alice's Laptop 2"}, f.Calls(), "applied at once")
	assert.Contains(t, u.settings.saved.Text, "Others see the new name now")

	u.settings.setDownloadDir("/home/alice/Inbox")
	assert.Equal(t, []string{"SetName Alice's Laptop 2", "SetDownloadDir /home/alice/Inbox"}, f.Calls())
	assert.Equal(t, "/home/alice/Inbox", LoadSettings(a.Preferences()).DownloadDir)

	test.Type(u.settings.signal, "wss://example.org")
	assert.Empty(t, LoadSettings(a.Preferences()).SignalingURL, "not before Apply")
	assert.False(t, u.settings.apply.Disabled())
	test.Tap(u.settings.apply)
	assert.Equal(t, "SetServer wss://example.org", f.Calls()[len(f.Calls())-1], "applied at once")
	assert.Equal(t, "wss://example.org", LoadSettings(a.Preferences()).SignalingURL)
	assert.True(t, u.settings.apply.Disabled())

	u.tabs.Select(u.settingsTab)
	u.HandleEvent(engine.ServerStatus{URL: "wss://example.org/ws", Connected: true})
	assert.True(t, shows(u.win, "Connected."))
	u.HandleEvent(engine.ServerStatus{URL: "wss://example.org/ws", Err: errors.New("cannot reach the server example.org")})
	assert.True(t, shows(u.win, "Cannot reach the server example.org."))
	assert.False(t, u.settings.apply.Disabled(), "Apply tries again")
	test.Tap(u.settings.apply)
	assert.Equal(t, "SetServer wss://example.org", f.Calls()[len(f.Calls())-1], "the same server, again")
	for _, s := range texts(u.win) {
		assert.NotContains(t, s, "later version")
	}
}

func TestSettingsTrustedRemove(t *testing.T) {
	a := test.NewTempApp(t)
	f := newFake()
	f.trusted = []engine.Peer{{ID: "b", Name: "Bob"}}
	u := New(a, f, Options{ProgressInterval: time.Hour})
	u.tabs.Select(u.settingsTab)
	assert.True(t, shows(u.win, "Bob"))
	var remove *widget.Button
	walk(u.settings.trusted, func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == "Remove" {
			remove = b
		}
	})
	if assert.NotNil(t, remove) {
		f.trusted = nil
		test.Tap(remove)
	}
	assert.Equal(t, []string{"SetTrusted b false"}, f.Calls())
	assert.True(t, shows(u.win, "No trusted devices yet"))
}

// Save renames the device at once (no restart): the engine gets the name,
// Nearby and Settings show it; a name the engine refuses is not kept.
func TestSettingsRenameAppliesAtOnce(t *testing.T) {
	u, f := newTestUI(t)
	u.settings.name.SetText("Alice's Desktop")
	test.Tap(u.settings.save)
	assert.Equal(t, []string{"SetName Alice's Desktop"}, f.Calls())
	assert.Equal(t, "Alice's Desktop", f.Self().Name)
	assert.Equal(t, "Others on this network see this device as “Alice's Desktop”.", u.nearby.selfLabel.String(), "Nearby's header")
	for _, s := range texts(u.win) {
		assert.NotContains(t, s, "after a restart", "no restart needed")
	}

	u.settings.name.SetText("bad\x00name")
	test.Tap(u.settings.save)
	assert.Equal(t, "Alice's Desktop", LoadSettings(u.app.Preferences()).Name, "a refused name is not kept")
	assert.False(t, u.settings.save.Disabled(), "still to save")
}

// The device type applies at once and is kept; the port is kept for the
// next start, and says so; junk is refused.
func TestSettingsTypeAndPort(t *testing.T) {
	u, f := newTestUI(t)
	assert.Equal(t, "Laptop", u.settings.kind.Selected, "the engine's type")
	assert.Empty(t, f.Calls())
	u.settings.kind.SetSelected("Desktop")
	assert.Equal(t, []string{"SetType desktop"}, f.Calls())
	assert.Equal(t, "desktop", LoadSettings(u.app.Preferences()).Type)

	u.settings.port.SetText("70000")
	test.Tap(u.settings.portBtn)
	assert.Contains(t, u.settings.portMsg.Text, "not a port")
	assert.Zero(t, LoadSettings(u.app.Preferences()).Port)
	u.settings.port.SetText("4000")
	test.Tap(u.settings.portBtn)
	assert.Equal(t, 4000, LoadSettings(u.app.Preferences()).Port)
	assert.Equal(t, "Saved. Restart ThePeerDrop to use port 4000.", u.settings.portMsg.Text)
	u.settings.port.SetText("")
	test.Tap(u.settings.portBtn)
	assert.Zero(t, LoadSettings(u.app.Preferences()).Port, "empty: the default")
	assert.Equal(t, []string{"SetType desktop"}, f.Calls(), "the port waits for a restart")
}

// This device's addresses and port show in Settings, for typing elsewhere.
func TestSettingsShowsAddresses(t *testing.T) {
	a := test.NewTempApp(t)
	f := newFake()
	f.addrs = []netip.Addr{netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("fe80::1%eth0")}
	f.port = 53318
	u := New(a, f, Options{ProgressInterval: time.Hour})
	u.tabs.Select(u.settingsTab)
	assert.Equal(t, "192.168.1.5, fe80::1%eth0 · port 53318", u.settings.reach.String())
	assert.True(t, shows(u.win, "192.168.1.5, fe80::1%eth0 · port 53318"))
	f.addrs = nil
	u.tabs.Select(u.nearbyTab)
	u.tabs.Select(u.settingsTab)
	assert.Contains(t, u.settings.reach.String(), "No network found")
}
