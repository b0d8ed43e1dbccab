package app

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// pickerNames are the names our picker lists now, in order.
func pickerNames(p *filePicker) []string {
	var out []string
	for _, e := range p.shown {
		out = append(out, e.name)
	}
	return out
}

// pickerRow is the row our picker shows for name (rendered by the list).
func pickerRow(t *testing.T, p *filePicker, name string) pickRow {
	t.Helper()
	for i, e := range p.shown {
		if e.name == name {
			o := p.newRow()
			p.updateRow(i, o)
			return rowParts(o)
		}
	}
	t.Fatalf("%q is not listed: %q", name, pickerNames(p))
	return pickRow{}
}

// Broken item 1: Fyne's file dialog opened extensionless files on the UI
// thread to guess their type, and open(2) on a named pipe waits for a
// writer for ever: the whole app froze.
func TestPickerDoesNotFreezeOnANamedPipe(t *testing.T) {
	u, f := newTestUI(t)
	home := t.TempDir()
	t.Setenv("HOME", home) // where the picker opens first
	pipe := filepath.Join(home, "pipe")
	require.NoError(t, syscall.Mkfifo(pipe, 0o600))
	t.Cleanup(func() {
		// Lets go of a reader stuck in open(2) on the pipe (the bug), so
		// that a failing run ends.
		if w, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = w.Close()
		}
	})
	require.NoError(t, os.WriteFile(filepath.Join(home, "notes"), []byte("hello"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(home, "Photos"), 0o700))
	bob := dev("b", "Bob", "laptop")
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob}})

	opened := make(chan []string, 1)
	go func() {
		u.openSendSheet([]engine.Device{bob}, pickFile)
		opened <- texts(u.win) // renders the dialogs, their file icons too
	}()
	var shown []string
	select {
	case shown = <-opened:
	case <-time.After(30 * time.Second):
		t.Fatal("the file picker froze on a folder that holds a named pipe: opening it did not return within 30 s (the pipe was opened)")
	}
	assert.Contains(t, shown, "pipe", "the pipe is listed")

	p := u.lastPicker
	require.NotNil(t, p, "our own picker (no desktop portal in a widget test)")
	assert.Equal(t, home, p.dir)
	assert.Equal(t, []string{"Photos", "notes", "pipe"}, pickerNames(p), "folders first")
	row := pickerRow(t, p, "pipe")
	assert.True(t, row.check.Disabled(), "a pipe cannot be chosen")
	assert.Equal(t, "named pipe", row.size.Text)
	assert.Equal(t, widget.LowImportance, row.name.Importance, "greyed")
	p.activate(p.shown[2])
	assert.Empty(t, p.chosen, "clicking the pipe chooses nothing")

	// Files and folders in one pick, in the order chosen.
	pickerRow(t, p, "notes").check.SetChecked(true)
	pickerRow(t, p, "Photos").check.SetChecked(true)
	assert.Equal(t, "2 chosen", p.count.Text)
	test.Tap(p.ok)
	sheet := u.lastSheet
	require.NotNil(t, sheet)
	assert.Equal(t, []string{filepath.Join(home, "notes"), filepath.Join(home, "Photos")}, sheet.paths)
	test.Tap(sheet.send)
	assert.Equal(t, []string{"Send b " + filepath.Join(home, "notes") + "," + filepath.Join(home, "Photos")}, f.Calls())
}

func TestPickerPathFieldAndTypeToFind(t *testing.T) {
	u, _ := newTestUI(t)
	dir := t.TempDir()
	long := "Quarterly report for the board meeting of the second half of 2026.pdf"
	for name, size := range map[string]int{long: 1_260_000, "quarterly.txt": 12, "my quarterly plan.txt": 5, "notes.md": 3, ".hidden": 1} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "Photos", "2026"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Photos", "beach.jpg"), []byte("jpg"), 0o600))

	var got []string
	p := u.showPicker(pickRequest{title: "Add files", multiple: true, start: dir}, func(paths []string) { got = paths })
	assert.Equal(t, withSep(dir), p.path.Text, "the path field shows the folder")
	assert.Equal(t, []string{"Photos", "my quarterly plan.txt", "notes.md", long, "quarterly.txt"}, pickerNames(p), "folders first, then by name; hidden files hidden")
	assert.Equal(t, "1.3 MB", pickerRow(t, p, long).size.Text, "SI sizes")
	name := pickerRow(t, p, long).name
	assert.Equal(t, long, name.Text, "the whole name, with its extension")
	assert.Equal(t, fyne.TextTruncateEllipsis, name.Truncation, "one line, an ellipsis where it does not fit")
	assert.Equal(t, fyne.TextWrapOff, name.Wrapping, "never broken mid-word")
	assert.True(t, u.win.Canvas().Focused() == p.path, "typing goes to the path field")

	// Type to find: the name after the folder filters, without regard to case.
	test.Type(p.path, "QUART")
	assert.Equal(t, []string{long, "quarterly.txt", "my quarterly plan.txt"}, pickerNames(p), "names that start with it first")
	p.path.SetText(withSep(dir) + ".hid")
	assert.Equal(t, []string{".hidden"}, pickerNames(p), "a dot shows hidden files")

	// A folder typed or pasted is listed; Enter on a file chooses it.
	p.path.SetText(filepath.Join(dir, "Photos") + "/")
	assert.Equal(t, filepath.Join(dir, "Photos"), p.dir)
	assert.Equal(t, []string{"2026", "beach.jpg"}, pickerNames(p))
	enter := &fyne.KeyEvent{Name: fyne.KeyReturn}
	p.path.SetText(filepath.Join(dir, "Photos", "beach.jpg"))
	p.path.TypedKey(enter)
	assert.Equal(t, []string{filepath.Join(dir, "Photos", "beach.jpg")}, p.chosen)
	assert.Equal(t, withSep(filepath.Join(dir, "Photos")), p.path.Text, "ready for the next name")
	// Type to find, then Enter: the best match; a folder opens.
	test.Type(p.path, "202")
	p.path.TypedKey(enter)
	assert.Equal(t, filepath.Join(dir, "Photos", "2026"), p.dir)

	// Up, then a click on a file chooses it; the choice survives moving.
	p.open(filepath.Dir(filepath.Dir(p.dir)))
	assert.Equal(t, dir, p.dir)
	p.list.Select(2) // notes.md
	assert.Equal(t, []string{filepath.Join(dir, "Photos", "beach.jpg"), filepath.Join(dir, "notes.md")}, p.chosen)
	p.list.Select(0) // Photos: a click opens a folder
	assert.Equal(t, filepath.Join(dir, "Photos"), p.dir)
	test.Tap(p.ok)
	assert.Equal(t, []string{filepath.Join(dir, "Photos", "beach.jpg"), filepath.Join(dir, "notes.md")}, got)
	assert.Equal(t, filepath.Join(dir, "Photos"), u.lastPickDir, "the next pick opens here")

	// Escape in the path field closes the picker; nothing is chosen.
	got = nil
	p = u.showPicker(pickRequest{title: "Add files", multiple: true}, func(paths []string) { got = paths })
	assert.Equal(t, filepath.Join(dir, "Photos"), p.dir)
	test.Type(p.path, "bea")
	p.path.TypedKey(enter)
	require.Len(t, p.chosen, 1)
	p.path.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})
	assert.False(t, shows(u.win, "1 chosen") || shows(u.win, "Chosen: beach.jpg"), "closed")
	assert.Nil(t, got)
}

// Broken item 6: Settings said "Downloads (default)" while the engine
// saved into the folder --download-dir named; Choose… opened at the last
// folder sent from.
func TestSettingsShowsTheDownloadFolderInUse(t *testing.T) {
	a := test.NewTempApp(t)
	f := newFake()
	inUse := t.TempDir() // --download-dir
	f.dlDir = inUse
	u := New(a, f, Options{ProgressInterval: time.Hour})
	u.portal = nil
	u.win.Resize(fyne.NewSize(780, 560))
	t.Cleanup(u.win.Close)
	assert.Equal(t, inUse, u.settings.dir.Text, "the folder the engine uses, not the default")

	sentFrom := t.TempDir()
	u.lastPickDir = sentFrom // the last folder sent from
	u.tabs.Select(u.settingsTab)
	u.settings.chooseDir()
	p := u.lastPicker
	require.NotNil(t, p)
	assert.Equal(t, inUse, p.dir, "Choose… opens at the download folder")
	require.NoError(t, os.Mkdir(filepath.Join(inUse, "Inbox"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(inUse, "a.txt"), nil, 0o600))
	p.open(inUse)
	assert.Equal(t, []string{"Inbox"}, pickerNames(p), "folders only")
	pickerRow(t, p, "Inbox").check.SetChecked(true)
	test.Tap(p.ok)
	assert.Equal(t, []string{"SetDownloadDir " + filepath.Join(inUse, "Inbox")}, f.Calls())
	assert.Equal(t, filepath.Join(inUse, "Inbox"), u.settings.dir.Text)
}

// tapMenuItem taps the item of the open pop-up menu that shows label.
func tapMenuItem(t *testing.T, w fyne.Window, label string) {
	t.Helper()
	var found fyne.Tappable
	var visit func(o fyne.CanvasObject, tappable fyne.Tappable)
	visit = func(o fyne.CanvasObject, tappable fyne.Tappable) {
		if o == nil || !o.Visible() || found != nil {
			return
		}
		if tp, ok := o.(fyne.Tappable); ok {
			tappable = tp
		}
		switch x := o.(type) {
		case *canvas.Text:
			if x.Text == label {
				found = tappable
			}
		case *widget.Label:
			if x.Text == label {
				found = tappable
			}
		case *fyne.Container:
			for _, c := range x.Objects {
				visit(c, tappable)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(x).Objects() {
				visit(c, tappable)
			}
		}
	}
	for _, o := range w.Canvas().Overlays().List() {
		visit(o, nil)
	}
	require.NotNil(t, found, "no menu item %q", label)
	test.Tap(found)
}

func TestSendClipboard(t *testing.T) {
	u, f := newTestUI(t)
	bob := dev("b", "Bob", "laptop")
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{bob}})
	menu := func() {
		u.showDeviceMenu(u.nearby.tiles["b"], center(u.nearby.tiles["b"]))
		tapMenuItem(t, u.win, "Send clipboard")
	}

	u.app.Clipboard().SetContent("")
	menu()
	assert.True(t, shows(u.win, "The clipboard is empty"), "%q", texts(u.win))
	assert.Empty(t, f.Calls())

	u.app.Clipboard().SetContent("See you at 5, room C++")
	menu()
	assert.Equal(t, []string{"SendText b See you at 5, room C++"}, f.Calls())

	// Files as a file manager copies them (text/uri-list), escaped.
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a b.txt"), filepath.Join(dir, "C++ notes.txt")
	for _, p := range []string{a, b} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	u.app.Clipboard().SetContent("# copied\r\nfile://" + strings.ReplaceAll(a, " ", "%20") + "\r\nfile://" + strings.ReplaceAll(b, " ", "%20") + "\r\n")
	// Files go on the send sheet, sent once Send is pressed: a path copied
	// from a message must not send that file unseen.
	sendSheet := func() {
		t.Helper()
		require.NotNil(t, u.lastSheet)
		assert.Len(t, f.Calls(), 1, "nothing sent before Send")
		test.Tap(u.lastSheet.send)
	}
	menu()
	sendSheet()
	assert.Equal(t, "Send b "+a+","+b, f.Calls()[1])
	// GNOME's copied files, and plain paths.
	u.app.Clipboard().SetContent("copy\nfile://" + strings.ReplaceAll(b, " ", "%20"))
	u.lastSheet = nil
	menu()
	assert.Equal(t, []string{b}, u.lastSheet.paths)
	test.Tap(u.lastSheet.send)
	assert.Equal(t, "Send b "+b, f.Calls()[2])
	u.app.Clipboard().SetContent(a + "\n" + b)
	u.lastSheet = nil
	menu()
	assert.Equal(t, []string{a, b}, u.lastSheet.paths)
	test.Tap(u.lastSheet.send)
	assert.Equal(t, "Send b "+a+","+b, f.Calls()[3])
	// A path that names no file is text.
	u.app.Clipboard().SetContent(filepath.Join(dir, "gone.txt"))
	menu()
	assert.Equal(t, "SendText b "+filepath.Join(dir, "gone.txt"), f.Calls()[4])
}
