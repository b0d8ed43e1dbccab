package app

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// desktopApp is the test app as a desktop app (it can have a tray icon),
// counting its notifications and quits.
type desktopApp struct {
	fyne.App
	mu       sync.Mutex
	notes    []string
	trayMenu *fyne.Menu
}

func (a *desktopApp) SetSystemTrayMenu(m *fyne.Menu)  { a.trayMenu = m }
func (a *desktopApp) SetSystemTrayIcon(fyne.Resource) {}
func (a *desktopApp) SetSystemTrayWindow(fyne.Window) {}
func (a *desktopApp) SendNotification(n *fyne.Notification) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notes = append(a.notes, n.Content)
}

// newDesktopUI is the UI on a desktop app with a tray or none; quits counts
// the app's Quit calls.
func newDesktopUI(t *testing.T, tray bool) (u *UI, a *desktopApp, quits *int) {
	t.Helper()
	a = &desktopApp{App: test.NewTempApp(t)}
	u = New(a, newFake(), Options{ProgressInterval: time.Hour, Tray: func() bool { return tray }})
	u.runNow = true
	u.win.Resize(fyne.NewSize(780, 560))
	t.Cleanup(u.win.Close)
	quits = new(int)
	u.quit = func() { *quits++ }
	return u, a, quits
}

// Without a tray (the tray icon could not register), closing the window
// quits: no "open it from the tray icon" notification, no hidden window
// nobody can reach. A running transfer is asked about first.
func TestCloseWithoutTrayQuits(t *testing.T) {
	u, a, quits := newDesktopUI(t, false)
	assert.Nil(t, a.trayMenu, "no tray icon set up")
	u.win.Show()
	u.closeRequested()
	assert.Equal(t, 1, *quits, "closing quits")
	assert.Empty(t, a.notes, "no notification about a tray that is not there")

	u.applyItem(engine.Item{ID: "t1", Direction: engine.Outgoing, State: engine.StateRunning, Peer: engine.Peer{ID: "b", Name: "Bob"}})
	u.applyItem(engine.Item{ID: "t2", Direction: engine.Incoming, State: engine.StateRunning, Peer: engine.Peer{ID: "c", Name: "Carol"}})
	u.closeRequested()
	assert.Equal(t, 1, *quits, "not quit yet: asked first")
	assert.True(t, shows(u.win, "Quit and stop 2 transfers?"), "texts: %q", texts(u.win))
	u.closeRequested()
	assert.Len(t, u.win.Canvas().Overlays().List(), 1, "asked once")
	tapDialog(t, u, "No")
	assert.Equal(t, 1, *quits, "No keeps the app")
	u.closeRequested()
	tapDialog(t, u, "Yes")
	assert.Equal(t, 2, *quits, "Yes quits")
	assert.Empty(t, a.notes)
}

// With a tray, closing the window hides it and says once where the app
// went; the tray's Show brings it back.
func TestCloseWithTrayHides(t *testing.T) {
	u, a, quits := newDesktopUI(t, true)
	require.NotNil(t, a.trayMenu, "tray icon set up")
	u.win.Show()
	u.closeRequested()
	u.closeRequested()
	assert.Zero(t, *quits)
	assert.Len(t, a.notes, 1, "told once")
	assert.Contains(t, a.notes[0], "tray icon")
}

// tapDialog taps the button with this text in the top dialog.
func tapDialog(t *testing.T, u *UI, text string) {
	t.Helper()
	tapped := false
	walk(u.win.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == text && !tapped {
			tapped = true
			test.Tap(b)
		}
	})
	require.True(t, tapped, "no %q button", text)
}

// Start minimised hides the window at start only when a tray icon can
// bring it back.
func TestStartHiddenNeedsATray(t *testing.T) {
	u, _, _ := newDesktopUI(t, true)
	assert.False(t, u.startHidden())
	u.app.Preferences().SetBool(prefStartMinimised, true)
	assert.True(t, u.startHidden(), "the setting")

	noTray, _, _ := newDesktopUI(t, false)
	noTray.app.Preferences().SetBool(prefStartMinimised, true)
	noTray.opts.StartMinimised = true
	assert.False(t, noTray.startHidden(), "no tray: the window shows, or nothing could reach the app")
}

// Start at login writes the XDG autostart entry (this binary, minimised,
// the config dir) and removes it; the check shows what is on disk.
func TestStartAtLoginWritesAutostart(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	a := test.NewTempApp(t)
	u := New(a, newFake(), Options{ConfigDir: "/srv/peer drop"})
	t.Cleanup(u.win.Close)
	path := filepath.Join(cfg, "autostart", "org.thepeerdrop.app.desktop")
	u.tabs.Select(u.settingsTab)

	login := findCheck(t, u.settings.content, "Start at login")
	assert.False(t, login.Checked)
	test.Tap(login)
	b, err := os.ReadFile(path)
	require.NoError(t, err, "the autostart entry is written")
	bin, err := os.Executable()
	require.NoError(t, err)
	entry := string(b)
	assert.Contains(t, entry, "[Desktop Entry]\n")
	assert.Contains(t, entry, "\nExec="+execQuote(bin)+` --minimised --config-dir "/srv/peer drop"`+"\n")
	assert.True(t, a.Preferences().Bool(prefStartAtLogin))

	// A new window finds it on.
	again := New(a, newFake(), Options{})
	t.Cleanup(again.win.Close)
	again.tabs.Select(again.settingsTab)
	assert.True(t, findCheck(t, again.settings.content, "Start at login").Checked)

	test.Tap(login)
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "the autostart entry is removed")
	assert.False(t, a.Preferences().Bool(prefStartAtLogin))

	min := findCheck(t, u.settings.content, "Start minimised")
	test.Tap(min)
	assert.True(t, a.Preferences().Bool(prefStartMinimised))
}

func TestExecQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/thepeerdrop": "/usr/bin/thepeerdrop",
		"/opt/my apps/tpd":     `"/opt/my apps/tpd"`,
		`/a"b$c`:               `"/a\\"b\\$c"`,
		"/100%":                "/100%%",
		"":                     `""`,
	} {
		assert.Equal(t, want, execQuote(in), "%q", in)
	}
}

// findCheck is the visible check with this text under o.
func findCheck(t *testing.T, o fyne.CanvasObject, text string) *widget.Check {
	t.Helper()
	var found *widget.Check
	walk(o, func(o fyne.CanvasObject) {
		if c, ok := o.(*widget.Check); ok && c.Text == text && found == nil {
			found = c
		}
	})
	require.NotNil(t, found, "no %q check", text)
	return found
}

// Open on a finished transfer starts the desktop's opener and reaps it:
// Fyne's OpenURL started xdg-open and never waited, leaving a zombie per
// Open. A fake xdg-open on PATH exits at once.
func TestOpenReapsTheOpener(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("skipped: needs /proc")
	}
	bin := t.TempDir()
	opened := filepath.Join(bin, "opened")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\necho \"$1\" >> "+opened+"\nexit 0\n"), 0o755))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	a := &fyneXDGApp{App: test.NewTempApp(t)}
	u := New(a, newFake(), Options{})
	t.Cleanup(u.win.Close)
	const n = 5
	for range n {
		u.openPath(t.TempDir())
	}
	// Every opener has exited (none is still running) before looking for
	// zombies: an opener left unreaped is one.
	var zombies, running int
	for range 100 {
		zombies, running = openerChildren(t)
		if running == 0 && zombies == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Zero(t, running, "openers still running")
	assert.Zero(t, zombies, "xdg-open children left as zombies")
	b, err := os.ReadFile(opened)
	require.NoError(t, err)
	assert.Len(t, strings.Fields(string(b)), n, "every Open ran the opener")
}

// fyneXDGApp is the test app whose OpenURL does what Fyne's does on Linux
// (fyne app/app_xdg.go): start xdg-open and not wait.
type fyneXDGApp struct{ fyne.App }

func (a *fyneXDGApp) OpenURL(u *url.URL) error {
	return exec.Command("xdg-open", u.String()).Start()
}

// openerChildren counts this process's xdg-open children: zombies and
// still running.
func openerChildren(t *testing.T) (zombies, running int) {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	me := strconv.Itoa(os.Getpid())
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		comm := s[open+1 : close]
		f := strings.Fields(s[close+1:])
		if len(f) < 2 || f[1] != me || comm != "xdg-open" {
			continue
		}
		if f[0] == "Z" {
			zombies++
		} else {
			running++
		}
	}
	return zombies, running
}

// A phone-width window stays that narrow: nothing in it, no tab and no
// dialog (offer prompt, send sheet, pair, phone), needs more width, so
// the window never jumps wider when one opens (it went to 668 px), and
// every dialog fits in it.
func TestWindowStaysNarrow(t *testing.T) {
	const narrow = 360
	u, f := newTestUI(t)
	u.win.Resize(fyne.NewSize(narrow, 640))
	check := func(what string) {
		t.Helper()
		c := u.win.Canvas()
		assert.LessOrEqual(t, c.Content().MinSize().Width, float32(narrow), "%s: the window's minimum width", what)
		for _, o := range c.Overlays().List() {
			assert.LessOrEqual(t, o.MinSize().Width, float32(narrow), "%s: a dialog wider than the window", what)
		}
	}
	for _, tab := range u.tabs.Items {
		u.tabs.Select(tab)
		check("empty, tab " + tab.Text)
	}

	f.devices = []engine.Device{dev("b", "Bob's very long laptop name", "laptop"), dev("c", "Carol", "phone")}
	u.HandleEvent(engine.DevicesChanged{Devices: f.devices})
	u.applyItem(engine.Item{ID: "t1", Direction: engine.Outgoing, State: engine.StateRunning, Title: "holiday-photos-from-the-summer-2026.zip",
		Peer: engine.Peer{ID: "b", Name: "Bob"}, Files: 1, Bytes: 1e6, Total: 4e6})
	u.applyItem(engine.Item{ID: "t2", Direction: engine.Incoming, State: engine.StateDone, Title: "notes.txt",
		Peer: engine.Peer{ID: "c", Name: "Carol"}, Files: 1, Bytes: 10, Total: 10, Paths: []string{"/tmp/notes.txt"}})
	u.messageReceived(engine.Message{ID: "m1", Peer: engine.Peer{ID: "c", Name: "Carol"}, Text: "a message long enough to wrap in a narrow window, surely"})
	for _, tab := range u.tabs.Items {
		u.tabs.Select(tab)
		check("with devices, tab " + tab.Text)
	}
	// Every tab in view, none in an overflow menu: their icons, and the
	// count of running transfers and of unread messages.
	assert.Equal(t, []string{"", "1", "1", ""}, tabTitles(u))
	var overflow []string
	walk(u.tabs, func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Icon == theme.MoreHorizontalIcon() {
			overflow = append(overflow, "...")
		}
	})
	assert.Empty(t, overflow, "no tab overflow button")
	u.tabs.Select(u.nearbyTab)
	u.nearby.toggle("b")
	u.nearby.toggle("c")
	check("two devices selected")
	u.nearby.clearSelection()

	u.showOffer(engine.Offer{ID: "o1", From: engine.Peer{ID: "b", Name: "Bob"}, Code: "363 453", Files: 7, Folders: 1, Size: 12_300_000,
		First: []string{"a-rather-long-file-name-for-the-prompt-to-wrap.txt", "b.txt", "c.txt"}})
	check("offer prompt")
	u.closeOffer("o1")

	u.openSendSheet(u.devices, pickNone)
	u.lastSheet.add("/home/someone/Documents/a-rather-long-file-name-for-the-sheet.pdf")
	check("send sheet")
	u.lastSheet.dlg.Hide()

	u.openPairDialog()
	check("pair")
	u.pair.dlg.Hide()

	u.openPhoneDialog()
	check("phone")
}

// In a wide window the Nearby grid fills the width: the columns share what
// is left over, no gap at the right; tiles never overlap.
func TestNearbyGridFillsTheWidth(t *testing.T) {
	u, f := newTestUI(t)
	for i := range 20 { // more than a row's worth at every width
		id := fmt.Sprintf("d%02d", i)
		f.devices = append(f.devices, dev(id, "Device "+id, "laptop"))
	}
	u.HandleEvent(engine.DevicesChanged{Devices: f.devices})
	for _, width := range []float32{1200, 780, 360} {
		u.win.Resize(fyne.NewSize(width, 700))
		var right float32
		var boxes [][2]fyne.Position
		for _, d := range f.devices {
			tile := u.nearby.tiles[d.ID]
			p := fyne.CurrentApp().Driver().AbsolutePositionForObject(tile)
			end := p.Add(fyne.NewPos(tile.Size().Width, tile.Size().Height))
			right = max(right, end.X)
			boxes = append(boxes, [2]fyne.Position{p, end})
		}
		gap := u.nearby.scroll.Size().Width - right
		assert.LessOrEqual(t, gap, 2*theme.Padding(), "width %v: the gap at the right (a grid's padding at most)", width)
		for i, a := range boxes {
			for _, b := range boxes[i+1:] {
				overlap := a[0].X < b[1].X && b[0].X < a[1].X && a[0].Y < b[1].Y && b[0].Y < a[1].Y
				assert.False(t, overlap, "width %v: tiles overlap", width)
			}
		}
	}
}

func tabTitles(u *UI) []string {
	var out []string
	for _, t := range u.tabs.Items {
		out = append(out, t.Text)
	}
	return out
}

// A wide window shows the tabs' titles; narrowed, their icons; widened
// again, the titles, with a count set while narrow.
func TestTabTitlesFollowTheWidth(t *testing.T) {
	u, _ := newTestUI(t)
	assert.Equal(t, []string{"Nearby", "Transfers", "Messages", "Settings"}, tabTitles(u))
	u.win.Resize(fyne.NewSize(360, 640))
	assert.Equal(t, []string{"", "", "", ""}, tabTitles(u))
	u.applyItem(engine.Item{ID: "t1", Direction: engine.Outgoing, State: engine.StateRunning, Peer: engine.Peer{ID: "b", Name: "Bob"}})
	u.win.Resize(fyne.NewSize(361, 640))
	assert.Equal(t, []string{"", "1", "", ""}, tabTitles(u))
	u.win.Resize(fyne.NewSize(780, 560))
	assert.Equal(t, []string{"Nearby", "Transfers (1)", "Messages", "Settings"}, tabTitles(u))
}
