package app

import (
	"errors"
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
	assert.Contains(t, u.settings.saved.Text, "applies after a restart")

	u.settings.setDownloadDir("/home/alice/Inbox")
	assert.Equal(t, []string{"SetDownloadDir /home/alice/Inbox"}, f.Calls())
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
