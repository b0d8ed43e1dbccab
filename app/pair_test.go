package app

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	qrcode "github.com/skip2/go-qrcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

func testCode(code string) engine.PairingCode {
	return engine.PairingCode{Code: code, Link: "https://serve.example.org/#" + code, Expires: time.Now().Add(10 * time.Minute)}
}

// The dialog asks the engine for a code and shows it, its QR (of the
// link) and its expiry; a new code replaces it; closing it cancels.
func TestPairDialogShowsCodeAndQR(t *testing.T) {
	u, f := newTestUI(t)
	f.pairCode = testCode("Q4V9N-2HJ7K-MW3RT")
	test.Tap(u.nearby.pairBtn)
	require.NotNil(t, u.pair, "the dialog is open")
	assert.Equal(t, []string{"StartPairing"}, f.Calls())
	assert.True(t, shows(u.win, "Q4V9N-2HJ7K-MW3RT"))
	assert.True(t, shows(u.win, "Valid until"))
	assert.True(t, shows(u.win, "(10 minutes)"))
	require.True(t, u.pair.qr.Visible(), "the QR shows")
	want, err := qrcode.New(f.pairCode.Link, qrcode.Medium)
	require.NoError(t, err)
	assert.Equal(t, want.Image(qrPixels), u.pair.qr.Image, "the QR holds the link")

	u.HandleEvent(engine.PairingCodeShown{Code: testCode("ABCDE-FGHJK-MNPQR")})
	assert.True(t, shows(u.win, "ABCDE-FGHJK-MNPQR"), "a new code replaces the old")
	assert.False(t, shows(u.win, "Q4V9N-2HJ7K-MW3RT"))

	u.pair.dlg.Hide()
	assert.Nil(t, u.pair)
	assert.Equal(t, []string{"StartPairing", "CancelPairing"}, f.Calls())
	assert.False(t, shows(u.win, "ABCDE-FGHJK-MNPQR"))
}

// Typing a code pairs through the engine; success and failure are said
// in the dialog.
func TestPairDialogJoin(t *testing.T) {
	u, f := newTestUI(t)
	f.pairCode = testCode("Q4V9N-2HJ7K-MW3RT")
	f.joinErr = errors.New("The code is wrong. The other device shows a new code now: type that one.")
	u.openPairDialog()
	test.Type(u.pair.entry, "abcde fghjk mnpqr")
	test.Tap(u.pair.join)
	assert.Contains(t, f.Calls(), "JoinPairing abcde fghjk mnpqr")
	assert.True(t, shows(u.win, "The code is wrong."))

	f.joinErr, f.joinPeer = nil, engine.Peer{ID: "b", Name: "Bob"}
	u.pair.entry.SetText("ABCDE-FGHJK-MNPQS")
	test.Tap(u.pair.join)
	assert.Contains(t, f.Calls(), "JoinPairing ABCDE-FGHJK-MNPQS")
	assert.True(t, shows(u.win, "Paired with Bob."))
	assert.Empty(t, u.pair.entry.Text)

	// The other way round: a device paired with the code shown here.
	u.HandleEvent(engine.Paired{Peer: engine.Peer{ID: "c", Name: "Carol"}})
	assert.True(t, shows(u.win, "Paired with Carol."))

	before := len(f.Calls())
	u.pair.entry.SetText("  ")
	test.Tap(u.pair.join)
	assert.Len(t, f.Calls(), before, "nothing typed: the engine is not asked")
	assert.True(t, shows(u.win, "Type the code the other device shows."))
}

// Without a server the dialog says to set one and leads to Settings; with
// one that cannot be reached, it says so.
func TestPairDialogErrors(t *testing.T) {
	u, f := newTestUI(t)
	f.pairErr = engine.ErrNoServer
	u.openPairDialog()
	assert.True(t, shows(u.win, "No server is set: set one in Settings"))
	require.True(t, u.pair.settings.Visible())
	assert.True(t, u.pair.join.Disabled())
	test.Tap(u.pair.settings)
	assert.Equal(t, u.settingsTab, u.tabs.Selected())
	assert.Nil(t, u.pair, "the dialog closed")

	f.pairErr = fmt.Errorf("Cannot reach the server serve.example.org: check its address in Settings and the network connection")
	u.openPairDialog()
	assert.True(t, shows(u.win, "Cannot reach the server serve.example.org"))
	assert.False(t, u.pair.settings.Visible())
	assert.False(t, u.pair.qr.Visible())
}

// A paired device away on another network shows in the grid, marked, and
// files dropped on it go to the engine by its id (the engine picks the way).
func TestAwayDevice(t *testing.T) {
	u, f := newTestUI(t)
	away := engine.Device{Away: true, Known: true}
	away.ID, away.Name, away.Type = "b", "Bob", "laptop"
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{away, dev("c", "Carol", "phone")}})
	assert.Equal(t, "Away · Laptop", u.nearby.tiles["b"].caption.Text)
	assert.Equal(t, "Phone", u.nearby.tiles["c"].caption.Text, "a nearby device has no mark")

	away.Trusted = true
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{away}})
	assert.Equal(t, "Away · Trusted", u.nearby.tiles["b"].caption.Text)

	_, err := u.dropOn(u.nearby.tiles["b"].dev, []string{"/home/alice/a.jpg"})
	require.NoError(t, err)
	assert.Equal(t, []string{"Send b /home/alice/a.jpg"}, f.Calls())
}
