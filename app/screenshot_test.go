package app

import (
	"flag"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// make screenshot runs this test with -screenshots.
var writeScreenshots = flag.Bool("screenshots", false, "write docs/screenshot-*.png")

// lightTheme is the default theme, light whatever the test settings say.
type lightTheme struct{ fyne.Theme }

func (t lightTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, theme.VariantLight)
}

// sampleEngine is a fake engine with devices, transfers and a trusted peer,
// for the screenshots.
func sampleEngine() *fakeEngine {
	f := newFake()
	bob := dev("6f1c0e9a2b7d4e13", "Bob's MacBook", "laptop")
	bob.Trusted, bob.Known = true, true
	f.devices = []engine.Device{
		bob,
		dev("a01b2c3d4e5f6071", "Carol's Pixel", "phone"),
		dev("77aa88bb99cc00dd", "Dana's iPad", "tablet"),
		dev("1234abcd5678ef90", "Eve's ThinkPad", "laptop"),
		dev("fe01dc23ba45f678", "Living Room PC", "desktop"),
		dev("0badc0de0badc0de", "nas", "server"),
	}
	away := engine.Device{Away: true, Known: true}
	away.ID, away.Name, away.Type = "5e6f7a8b9c0d1e2f", "Grandpa's laptop", "laptop"
	f.devices = append(f.devices, away)
	f.trusted = []engine.Peer{{ID: bob.ID, Name: bob.Name}}
	now := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	peer := func(d engine.Device) engine.Peer { return engine.Peer{ID: d.ID, Name: d.Name} }
	f.items = []engine.Item{
		{ID: "q1", Direction: engine.Outgoing, Peer: peer(f.devices[0]), Title: "Holiday video.mov", Files: 1,
			Bytes: 512_000_000, Total: 1_220_000_000, Speed: 48.6e6, ETA: 15 * time.Second, State: engine.StateRunning, Started: now},
		{ID: "q2", Direction: engine.Incoming, Peer: peer(f.devices[1]), Title: "Camera (24 files)", Files: 24,
			Bytes: 61_000_000, Total: 88_400_000, Speed: 9.8e6, ETA: 3 * time.Second, State: engine.StateRunning, Started: now},
		{ID: "q3", Direction: engine.Outgoing, Peer: peer(f.devices[3]), Title: "Quarterly report.pdf", Files: 1,
			Bytes: 1_400_000, Total: 4_100_000, State: engine.StatePaused, Started: now},
		{ID: "q4", Direction: engine.Outgoing, Peer: peer(f.devices[4]), Title: "Slides", Files: 12,
			Bytes: 3_000_000, Total: 31_000_000, State: engine.StateFailed, Error: "Living Room PC stopped answering", Started: now},
		{ID: "q5", Direction: engine.Incoming, Peer: peer(f.devices[2]), Title: "Recipe.txt", Files: 1,
			Bytes: 2_300, Total: 2_300, State: engine.StateDone, Paths: []string{"/home/alice/Downloads/Recipe.txt"}, Started: now},
	}
	return f
}

func capture(t *testing.T, w fyne.Window, name string) {
	t.Helper()
	img := w.Canvas().Capture()
	require.Equal(t, w.Canvas().Size().Width, float32(img.Bounds().Dx()))
	if !*writeScreenshots {
		return
	}
	path := filepath.Join("..", "docs", "screenshot-"+name+".png")
	out, err := os.Create(path)
	require.NoError(t, err)
	defer out.Close()
	require.NoError(t, png.Encode(out, img))
	t.Logf("wrote %s", path)
}

// TestScreenshots renders the main views with sample data. With
// -screenshots (make screenshot) it writes them into docs/.
func TestScreenshots(t *testing.T) {
	a := test.NewTempApp(t)
	a.Settings().SetTheme(lightTheme{theme.DefaultTheme()})
	f := sampleEngine()
	u := New(a, f, Options{ProgressInterval: time.Hour})
	u.win.Resize(fyne.NewSize(780, 520))
	u.nearby.toggle("a01b2c3d4e5f6071")
	u.nearby.toggle("77aa88bb99cc00dd")
	capture(t, u.win, "nearby")

	u.nearby.clearSelection()
	u.HandleEvent(engine.OfferReceived{Offer: engine.Offer{ID: "o1", From: engine.Peer{ID: "a01b2c3d4e5f6071", Name: "Carol's Pixel"},
		Code: "482 913", Files: 3, Size: 12_400_000, First: []string{"IMG_0412.jpg", "IMG_0413.jpg", "IMG_0415.jpg"},
		Text: "Photos from Saturday!"}})
	capture(t, u.win, "offer")
	u.closeOffer("o1")

	u.tabs.Select(u.queueTab)
	capture(t, u.win, "queue")

	bob := engine.Peer{ID: "6f1c0e9a2b7d4e13", Name: "Bob's MacBook"}
	f.messages[bob.ID] = []engine.Message{
		{ID: "m1", Peer: bob, Text: "Can you send me the holiday video?", Time: time.Date(2026, 5, 1, 9, 12, 0, 0, time.UTC)},
		{ID: "m2", Peer: bob, Text: "Sure, it is on its way. It is a big one, so give it a minute or two.", Outgoing: true, Time: time.Date(2026, 5, 1, 9, 13, 0, 0, time.UTC)},
		{ID: "m3", Peer: bob, Text: "Thanks!", Time: time.Date(2026, 5, 1, 9, 14, 0, 0, time.UTC)},
	}
	u.openConversation(bob)
	capture(t, u.win, "messages")

	u.tabs.Select(u.settingsTab)
	capture(t, u.win, "settings")

	u.tabs.Select(u.nearbyTab)
	u.runNow = true
	f.pairCode = engine.PairingCode{Code: "7KQ2M-XW4PD-R8T3Z", Link: "https://serve.example.org/#7KQ2M-XW4PD-R8T3Z",
		Expires: time.Now().Add(10 * time.Minute)}
	u.openPairDialog()
	capture(t, u.win, "pair")
	u.pair.dlg.Hide()

	f.webURL = "http://192.168.1.20:53319/"
	u.openPhoneDialog()
	capture(t, u.win, "phone")
	u.phone.dlg.Hide()

	// A phone-width window: icons only, nothing overlaps.
	u.win.Resize(fyne.NewSize(360, 640))
	u.tabs.Select(u.queueTab)
	capture(t, u.win, "narrow")
}
