package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// lsDev is a LocalSend app on the network, as the engine lists it.
func lsDev(id, name, kind string, unencrypted bool) engine.Device {
	d := dev(id, name, kind)
	d.Port = 53317
	d.LocalSend, d.Unencrypted = true, unencrypted
	return d
}

// tagOf is the LocalSend tag drawn on a tile's avatar.
func tagOf(t *testing.T, tile *deviceTile) *avatarRenderer {
	t.Helper()
	r, ok := test.WidgetRenderer(tile.av).(*avatarRenderer)
	require.True(t, ok)
	return r
}

// A LocalSend app shows in Nearby with a LocalSend tag on its avatar and
// in its caption, beside its alias and type; other devices have no tag.
func TestLocalSendDeviceShowsTag(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{
		dev("b", "Bob", "laptop"), lsDev("n", "Nice Orange", "phone", false),
	}})
	tile := u.nearby.tiles["n"]
	require.NotNil(t, tile)
	assert.Equal(t, "Nice Orange", tile.name.Text)
	assert.Equal(t, "Phone · LocalSend", tile.caption.Text)
	assert.Equal(t, theme.Color(theme.ColorNamePlaceHolder), tile.caption.Color, "not a warning")

	r := tagOf(t, tile)
	assert.False(t, r.tag.Hidden)
	assert.Equal(t, "LocalSend", r.tagText.Text)
	assert.NotEqual(t, theme.Color(theme.ColorNameWarning), r.tag.FillColor, "encrypted: not warning-coloured")
	assert.True(t, shows(u.win, "LocalSend"), "the tag is drawn")
	assert.True(t, r.icon.Visible(), "the type badge stays")

	// Legible: all of it on the tile, none under the type badge.
	tilePos := u.app.Driver().AbsolutePositionForObject(tile)
	avPos := u.app.Driver().AbsolutePositionForObject(tile.av)
	tagPos := avPos.Add(r.tag.Position())
	assert.GreaterOrEqual(t, tagPos.X, tilePos.X)
	assert.LessOrEqual(t, tagPos.X+r.tag.Size().Width, tilePos.X+tile.Size().Width)
	assert.LessOrEqual(t, r.tag.Position().X+r.tag.Size().Width, r.badge.Position().X, "left of the type badge")
	assert.GreaterOrEqual(t, r.tag.Size().Width, fyne.MeasureText("LocalSend", r.tagText.TextSize, r.tagText.TextStyle).Width)

	assert.True(t, tagOf(t, u.nearby.tiles["b"]).tag.Hidden, "not a LocalSend device: no tag")
	assert.True(t, tagOf(t, u.nearby.tiles["b"]).tagText.Hidden)
	assert.Equal(t, "Laptop", u.nearby.tiles["b"].caption.Text)
}

// A LocalSend app without encryption (HTTP) says so: a warning-coloured
// tag and "Not encrypted" under its name, and a warning on its offers.
func TestUnencryptedLocalSendDeviceSaysSo(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{lsDev("h", "Plain Melon", "desktop", true)}})
	tile := u.nearby.tiles["h"]
	require.NotNil(t, tile)
	assert.Equal(t, "Desktop · Not encrypted", tile.caption.Text)
	assert.Equal(t, theme.Color(theme.ColorNameWarning), tile.caption.Color)
	assert.LessOrEqual(t, fyne.MeasureText(tile.caption.Text, tile.caption.TextSize, tile.caption.TextStyle).Width, tileSize.Width,
		"the caption fits the tile")
	r := tagOf(t, tile)
	assert.False(t, r.tag.Hidden)
	assert.Equal(t, theme.Color(theme.ColorNameWarning), r.tag.FillColor)
	assert.Equal(t, theme.Color(theme.ColorNameForegroundOnWarning), r.tagText.Color)

	// Trusted or not, the caption keeps the warning (the check says trusted).
	d := lsDev("h", "Plain Melon", "desktop", true)
	d.Trusted, d.Known = true, true
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{d}})
	assert.Equal(t, "Desktop · Not encrypted", tile.caption.Text)

	u.HandleEvent(engine.OfferReceived{Offer: engine.Offer{ID: "o1", From: engine.Peer{ID: "h", Name: "Plain Melon"},
		Files: 1, Size: 10, First: []string{"a.txt"}, Entries: []engine.OfferEntry{{Name: "a.txt", Files: 1, Size: 10}}, EntryCount: 1}})
	assert.True(t, shows(u.win, "LocalSend device, not encrypted (HTTP)"), "the offer warns")
}

// An offer from an encrypted LocalSend app says LocalSend, with no warning.
func TestLocalSendOfferNoWarningWhenEncrypted(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{lsDev("n", "Nice Orange", "phone", false)}})
	u.HandleEvent(engine.OfferReceived{Offer: engine.Offer{ID: "o1", From: engine.Peer{ID: "n", Name: "Nice Orange"},
		Files: 1, Size: 10, First: []string{"a.txt"}, Entries: []engine.OfferEntry{{Name: "a.txt", Files: 1, Size: 10}}, EntryCount: 1}})
	assert.True(t, shows(u.win, "Nice Orange"))
	assert.True(t, shows(u.win, "LocalSend device"))
	assert.False(t, shows(u.win, "not encrypted"))
}

// LocalSend is on by default, unencrypted LocalSend devices off; the UI
// leaves the saved values to main (engine.Config).
func TestSettingsLocalSendDefault(t *testing.T) {
	u, f := newTestUI(t)
	s := LoadSettings(u.app.Preferences())
	assert.False(t, s.LocalSendOff, "on by default")
	assert.False(t, s.LocalSendHTTP, "unencrypted: off by default")
	assert.True(t, u.settings.ls.Checked)
	assert.False(t, u.settings.lsHTTP.Checked)
	assert.False(t, u.settings.lsHTTP.Disabled())
	u.tabs.Select(u.settingsTab)
	assert.True(t, shows(u.win, "Off: nothing listens on port 53317."))
	assert.Empty(t, f.Calls())
}

// Each checkbox applies at once (SetLocalSend with both values) and is
// kept; the unencrypted one is greyed while LocalSend is off.
func TestSettingsLocalSendToggle(t *testing.T) {
	u, f := newTestUI(t)
	prefs := u.app.Preferences()

	test.Tap(u.settings.lsHTTP)
	assert.Equal(t, []string{"SetLocalSend true true"}, f.Calls())
	assert.True(t, LoadSettings(prefs).LocalSendHTTP, "remembered")

	test.Tap(u.settings.ls)
	assert.Equal(t, "SetLocalSend false true", f.Calls()[len(f.Calls())-1])
	assert.True(t, LoadSettings(prefs).LocalSendOff, "remembered")
	assert.True(t, u.settings.lsHTTP.Disabled(), "nothing to allow while off")
	test.Tap(u.settings.lsHTTP)
	assert.Len(t, f.Calls(), 2, "a greyed box does nothing")

	test.Tap(u.settings.ls)
	assert.Equal(t, "SetLocalSend true true", f.Calls()[len(f.Calls())-1], "back on, with the choice kept")
	assert.False(t, LoadSettings(prefs).LocalSendOff)
	assert.False(t, u.settings.lsHTTP.Disabled())

	test.Tap(u.settings.lsHTTP)
	assert.Equal(t, []string{"SetLocalSend true true", "SetLocalSend false true", "SetLocalSend true true", "SetLocalSend true false"}, f.Calls())
	assert.False(t, LoadSettings(prefs).LocalSendHTTP)
}

// Saved settings show as saved, without calling the engine.
func TestSettingsLocalSendLoad(t *testing.T) {
	a := test.NewTempApp(t)
	a.Preferences().SetBool(prefLocalSendOff, true)
	a.Preferences().SetBool(prefLocalSendHTTP, true)
	f := newFake()
	u := New(a, f, Options{ProgressInterval: time.Hour})
	t.Cleanup(u.win.Close)
	assert.False(t, u.settings.ls.Checked)
	assert.True(t, u.settings.lsHTTP.Checked)
	assert.True(t, u.settings.lsHTTP.Disabled())
	assert.Equal(t, Settings{LocalSendOff: true, LocalSendHTTP: true}, LoadSettings(a.Preferences()))
	assert.Empty(t, f.Calls())
}

// The test hook lists LocalSend devices, and the unencrypted ones.
func TestEventSummaryLocalSend(t *testing.T) {
	s := eventSummary(engine.DevicesChanged{Devices: []engine.Device{
		dev("b", "Bob", "laptop"), lsDev("n", "Nice Orange", "phone", false), lsDev("h", "Plain Melon", "desktop", true),
	}})
	assert.Equal(t, []string{"n", "h"}, s["localsend"])
	assert.Equal(t, []string{"h"}, s["unencrypted"])
}
