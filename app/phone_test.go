package app

import (
	"errors"
	"net/netip"
	"testing"

	"fyne.io/fyne/v2/test"
	qrcode "github.com/skip2/go-qrcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// "Phone or tablet" shows the web client's address as a QR code and as
// text, and follows the engine while it is open.
func TestPhoneDialogShowsQROfURL(t *testing.T) {
	u, f := newTestUI(t)
	f.webURL = "http://192.168.1.5:53319/"
	test.Tap(u.nearby.phoneBtn)
	require.NotNil(t, u.phone, "the dialog is open")
	assert.True(t, shows(u.win, "Open this on a phone or tablet on the same Wi-Fi"))
	assert.True(t, shows(u.win, "http://192.168.1.5:53319/"), "the address as text")
	require.True(t, u.phone.qr.Visible(), "the QR shows")
	want, err := qrcode.New("http://192.168.1.5:53319/", qrcode.Medium)
	require.NoError(t, err)
	assert.Equal(t, want.Image(phoneQRPixels), u.phone.qr.Image, "the QR holds the address")
	assert.False(t, u.phone.settings.Visible())

	// The engine serves it elsewhere now (another port): the dialog follows.
	u.HandleEvent(engine.WebStatus{URL: "http://192.168.1.5:40001/"})
	assert.True(t, shows(u.win, "http://192.168.1.5:40001/"))
	want, err = qrcode.New("http://192.168.1.5:40001/", qrcode.Medium)
	require.NoError(t, err)
	assert.Equal(t, want.Image(phoneQRPixels), u.phone.qr.Image)

	test.Tap(u.phone.copyBtn)
	assert.Equal(t, "http://192.168.1.5:40001/", u.app.Clipboard().Content())

	u.phone.dlg.Hide()
	assert.Nil(t, u.phone)
	assert.False(t, shows(u.win, "http://192.168.1.5:40001/"))
}

// Turned off, the dialog says so and leads to Settings; a failure to serve
// is said in its words.
func TestPhoneDialogOffAndFailed(t *testing.T) {
	u, _ := newTestUI(t)
	// On, but no address yet: starting, not "turned off".
	u.openPhoneDialog()
	require.NotNil(t, u.phone)
	assert.Contains(t, u.phone.status.String(), "Starting")
	assert.False(t, u.phone.settings.Visible())
	u.phone.dlg.Hide()

	u.app.Preferences().SetBool(prefWebOff, true)
	u.openPhoneDialog()
	require.NotNil(t, u.phone)
	assert.False(t, u.phone.qr.Visible(), "no QR without an address")
	assert.Contains(t, u.phone.status.String(), "turned off in Settings")
	assert.True(t, u.phone.status.Visible())
	require.True(t, u.phone.settings.Visible())
	test.Tap(u.phone.settings)
	assert.Nil(t, u.phone, "closed")
	assert.Equal(t, u.settingsTab, u.tabs.Selected())

	u.HandleEvent(engine.WebStatus{Err: errors.New("The page for phones and tablets cannot be served on :53319.")})
	u.openPhoneDialog()
	assert.Equal(t, "The page for phones and tablets cannot be served on :53319.", u.phone.status.String())
	assert.False(t, u.phone.settings.Visible())
}

// The setting turns the web client off and on in the engine, and is kept.
func TestSettingsWebToggle(t *testing.T) {
	u, f := newTestUI(t)
	require.True(t, u.settings.web.Checked, "on by default")
	assert.False(t, LoadSettings(u.app.Preferences()).WebOff)
	test.Tap(u.settings.web)
	assert.Equal(t, []string{"SetWebListen "}, f.Calls())
	assert.True(t, LoadSettings(u.app.Preferences()).WebOff, "remembered")
	test.Tap(u.settings.web)
	assert.Equal(t, []string{"SetWebListen ", "SetWebListen " + engine.DefaultWebListen}, f.Calls())
	assert.False(t, LoadSettings(u.app.Preferences()).WebOff)
}

// A page registered with this device shows in the grid like any device.
func TestWebPageInGrid(t *testing.T) {
	u, _ := newTestUI(t)
	d := dev("page1", "Pixel (web)", "phone")
	d.Web = true
	d.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{d}})
	require.Contains(t, u.nearby.tiles, "page1")
	assert.True(t, shows(u.win, "Pixel (web)"))
	assert.True(t, shows(u.win, "Phone · Web page"))
}

// With no network the engine can only offer its loopback address, which no
// phone can open: the dialog says that no network was found (no QR, no
// address to copy), and shows the address once the engine has one.
func TestPhoneDialogNoNetwork(t *testing.T) {
	u, f := newTestUI(t)
	f.webURL = "http://127.0.0.1:53319/"
	u.openPhoneDialog()
	require.NotNil(t, u.phone)
	assert.False(t, u.phone.qr.Visible(), "no QR for a loopback address")
	assert.False(t, u.phone.url.Visible())
	assert.False(t, u.phone.copyBtn.Visible())
	assert.False(t, shows(u.win, "127.0.0.1"), "the loopback address is not offered")
	assert.Contains(t, u.phone.status.String(), "No network found")
	assert.Contains(t, u.phone.status.String(), "Connect this computer to Wi-Fi or a network cable")
	assert.False(t, u.phone.settings.Visible())

	// The network came up: the engine reports the LAN address.
	u.HandleEvent(engine.WebStatus{URL: "http://192.168.1.5:53319/"})
	require.True(t, u.phone.qr.Visible())
	assert.True(t, shows(u.win, "http://192.168.1.5:53319/"))
	assert.False(t, u.phone.status.Visible())

	// And gone again.
	u.HandleEvent(engine.WebStatus{URL: "http://[::1]:53319/"})
	assert.False(t, u.phone.qr.Visible())
	assert.Contains(t, u.phone.status.String(), "No network found")
}

func TestReachableURL(t *testing.T) {
	for u, want := range map[string]bool{
		"http://192.168.1.5:53319/": true, "http://[fe80::1%25eth0]:53319/": true, "http://pc.local:53319/": true,
		"http://127.0.0.1:53319/": false, "http://127.1.2.3:80/": false, "http://[::1]:53319/": false,
		"http://localhost:53319/": false, "::bad": false,
	} {
		assert.Equal(t, want, reachableURL(u), u)
	}
}
