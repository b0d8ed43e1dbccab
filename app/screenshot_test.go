package app

import (
	"flag"
	"image/color"
	"image/png"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
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
	f.dlDir = "/home/alice/Downloads"
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
	// A trusted device that is off: greyed, a send to it waits (q6).
	offline := engine.Device{Offline: true, Known: true, Trusted: true}
	offline.ID, offline.Name, offline.Type = "c0ffee00c0ffee00", "Dad's desktop", "desktop"
	f.devices = append(f.devices, offline)
	f.trusted = []engine.Peer{{ID: bob.ID, Name: bob.Name}, {ID: offline.ID, Name: offline.Name}}
	f.addrs = []netip.Addr{netip.MustParseAddr("192.168.1.20"), netip.MustParseAddr("fe80::8a3c:1cff:fe2e:51d7%wlan0")}
	f.port = 53318
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
			Bytes: 2_300, Total: 2_300, State: engine.StateDone, Paths: []string{"/home/alice/Downloads/Recipe.txt"}, Started: now,
			Finished: now.Add(time.Minute)},
		{ID: "q6", Direction: engine.Outgoing, Peer: peer(offline), Title: "Garden photos (8 files)", Files: 8,
			Total: 23_500_000, State: engine.StateWaiting, Started: now},
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
		Entries: []engine.OfferEntry{{Name: "IMG_0412.jpg", Files: 1, Size: 4_100_000}, {Name: "IMG_0413.jpg", Files: 1, Size: 4_200_000},
			{Name: "IMG_0415.jpg", Files: 1, Size: 4_100_000}}, EntryCount: 3,
		Text: "Photos from Saturday!"}})
	capture(t, u.win, "offer")
	u.closeOffer("o1")

	// Choosing what to accept: a folder and two files, one unticked.
	u.HandleEvent(engine.OfferReceived{Offer: engine.Offer{ID: "o2", From: engine.Peer{ID: "a01b2c3d4e5f6071", Name: "Carol's Pixel"},
		Code: "215 780", Files: 7, Folders: 1, Size: 48_300_000, First: []string{"Saturday", "route.gpx", "video.mp4"},
		Entries: []engine.OfferEntry{{Name: "Saturday", Folder: true, Files: 5, Size: 21_000_000},
			{Name: "route.gpx", Files: 1, Size: 300_000}, {Name: "video.mp4", Files: 1, Size: 27_000_000}}, EntryCount: 3}})
	u.offers["o2"].rows[2].check.SetChecked(false)
	capture(t, u.win, "offer-choose")
	u.closeOffer("o2")

	// Too large for the free space as a whole: choose less.
	u.HandleEvent(engine.OfferReceived{Offer: engine.Offer{ID: "o3", From: engine.Peer{ID: "a01b2c3d4e5f6071", Name: "Carol's Pixel"},
		Code: "215 780", Files: 7, Folders: 1, Size: 48_300_000, First: []string{"Saturday", "route.gpx", "video.mp4"},
		Entries: []engine.OfferEntry{{Name: "Saturday", Folder: true, Files: 5, Size: 21_000_000},
			{Name: "route.gpx", Files: 1, Size: 300_000}, {Name: "video.mp4", Files: 1, Size: 27_000_000}}, EntryCount: 3,
		TooBig: true, Room: 30_000_000}})
	u.offers["o3"].rows[0].check.SetChecked(false)
	capture(t, u.win, "offer-too-big")
	u.closeOffer("o3")

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

	// A send waiting for the answer shows the code to compare; a declined
	// one says so for a while. Notes end in the test, not on a timer.
	u.HandleEvent(engine.ItemChanged{Item: engine.Item{ID: "s1", Direction: engine.Outgoing,
		Peer: engine.Peer{ID: "fe01dc23ba45f678", Name: "Living Room PC"}, Title: "Slides.pdf", Files: 1, Total: 3_000_000,
		State: engine.StateConnecting, Code: "482 913"}})
	u.nearby.showNote("77aa88bb99cc00dd", "Declined", theme.ColorNameError, "Dana's iPad declined Budget.xlsx.")
	capture(t, u.win, "nearby-sending")

	u.confirmTrust(f.devices[1])
	capture(t, u.win, "trust")
	u.nearby.endNote("77aa88bb99cc00dd", u.nearby.notes["77aa88bb99cc00dd"].gen)
	u.win.Canvas().Overlays().Remove(u.win.Canvas().Overlays().Top())

	// No network: no address to offer.
	f.webURL = "http://127.0.0.1:53319/"
	u.openPhoneDialog()
	capture(t, u.win, "phone-nonetwork")
	u.phone.dlg.Hide()

	ad := u.openAddressDialog()
	ad.entry.SetText("192.168.1.42:99999")
	ad.submit()
	capture(t, u.win, "address")
	u.win.Resize(fyne.NewSize(360, 640))
	ad.dlg.Hide()
	u.win.Resize(fyne.NewSize(780, 520))

	// Our own file picker, where the desktop has no file chooser portal.
	docs := filepath.Join(t.TempDir(), "Documents")
	require.NoError(t, os.MkdirAll(filepath.Join(docs, "Holiday photos"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(docs, "Invoices"), 0o700))
	for name, size := range map[string]int{"Quarterly report 2026.pdf": 4_100_000, "Meeting notes.md": 2_300,
		"Budget.ods": 48_000, "Slides for the board meeting in September.odp": 31_000_000} {
		require.NoError(t, os.WriteFile(filepath.Join(docs, name), make([]byte, size), 0o600))
	}
	require.NoError(t, syscall.Mkfifo(filepath.Join(docs, "build-log"), 0o600))
	u.portal = nil
	p := u.showPicker(pickRequest{title: "Add files", multiple: true, start: docs}, func([]string) {})
	p.toggle(filepath.Join(docs, "Quarterly report 2026.pdf"))
	p.toggle(filepath.Join(docs, "Holiday photos"))
	p.path.OnChanged = nil
	p.path.SetText("/home/alice/Documents/") // not the test's temporary folder
	capture(t, u.win, "picker")
	p.dlg.Hide()

	// A phone-width window: icons only, nothing overlaps.
	u.win.Resize(fyne.NewSize(360, 640))
	u.tabs.Select(u.queueTab)
	capture(t, u.win, "narrow")

	screenshotLocalSend(t)
}

// screenshotLocalSend renders Nearby with LocalSend's apps among the
// devices: one encrypted, one over plain HTTP. A window of its own, so
// that the other screenshots do not change.
func screenshotLocalSend(t *testing.T) {
	a := test.NewTempApp(t)
	a.Settings().SetTheme(lightTheme{theme.DefaultTheme()})
	f := sampleEngine()
	orange := dev("4c0ca1a5e2d0b7f1", "Nice Orange", "phone")
	orange.Port, orange.LocalSend = 53317, true
	banana := dev("b4a7a7a0c1d2e3f4", "Smart Banana", "desktop")
	banana.Port, banana.LocalSend, banana.Unencrypted = 53317, true, true
	f.devices = []engine.Device{f.devices[0], f.devices[1], orange, f.devices[2], f.devices[4], banana, f.devices[5]}
	f.items = f.items[:1] // a send to Bob's MacBook
	u := New(a, f, Options{ProgressInterval: time.Hour})
	t.Cleanup(u.win.Close)
	u.win.Resize(fyne.NewSize(780, 520))
	capture(t, u.win, "localsend")
}
