package app

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
)

// filePicker is our own chooser, for desktops without a file chooser
// portal. It lists a folder with os.ReadDir and the entries' Lstat (Stat
// for a symbolic link), never opening a file: Fyne's dialog opens
// extensionless files to guess their type, and a named pipe blocks that
// open for good. Files and folders are chosen in one pick, several at once.
type filePicker struct {
	u      *UI
	req    pickRequest
	done   func([]string)
	dir    string      // the folder listed
	all    []pickEntry // its entries, folders first
	shown  []pickEntry // those the typed name matches
	chosen []string    // paths, in the order chosen

	path    *pathEntry
	list    *widget.List
	problem *widget.RichText // the folder cannot be read
	count   *widget.Label
	ok      *widget.Button
	dlg     *dialog.CustomDialog
}

// pickEntry is one entry of the folder listed.
type pickEntry struct {
	name    string
	dir     bool
	regular bool   // a regular file
	size    int64  // regular files
	kind    string // what other entries are: "named pipe", "socket", "device"
}

// sendable reports whether the entry can be sent: folders and regular files
// can; pipes, sockets and devices are shown greyed.
func (e pickEntry) sendable() bool { return e.dir || e.regular }

// listDir lists dir, folders first, then by name without regard to case.
func listDir(dir string) ([]pickEntry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && len(ents) == 0 {
		return nil, err
	}
	out := make([]pickEntry, 0, len(ents))
	for _, de := range ents {
		fi, err := de.Info() // an lstat
		if err != nil {
			continue // gone since ReadDir
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// stat(2) follows the link without opening its target.
			if target, err := os.Stat(filepath.Join(dir, de.Name())); err == nil {
				fi = target
			}
		}
		e := pickEntry{name: de.Name(), dir: fi.IsDir(), regular: fi.Mode().IsRegular()}
		switch m := fi.Mode(); {
		case e.regular:
			e.size = fi.Size()
		case m&fs.ModeNamedPipe != 0:
			e.kind = "named pipe"
		case m&fs.ModeSocket != 0:
			e.kind = "socket"
		case m&fs.ModeDevice != 0:
			e.kind = "device"
		case m&fs.ModeSymlink != 0:
			e.kind = "broken link"
		case !e.dir:
			e.kind = "special file"
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b pickEntry) int {
		if a.dir != b.dir {
			if a.dir {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(strings.ToLower(a.name), strings.ToLower(b.name)), cmp.Compare(a.name, b.name))
	})
	return out, nil
}

// folderOnly reports whether the pick is one folder (Settings' download
// folder).
func (r pickRequest) folderOnly() bool { return r.dirs && !r.multiple }

// showPicker opens our own chooser; done gets the paths chosen.
func (u *UI) showPicker(req pickRequest, done func([]string)) *filePicker {
	p := &filePicker{u: u, req: req, done: done}
	p.path = newPathEntry(func() { p.dlg.Hide() })
	p.path.SetPlaceHolder("Type a name to find it, or a path")
	p.path.OnChanged = p.typed
	p.path.OnSubmitted = p.submitted

	up := widget.NewButtonWithIcon("", theme.MoveUpIcon(), func() { p.open(filepath.Dir(p.dir)) })
	home := widget.NewButtonWithIcon("Home", theme.HomeIcon(), func() { p.open(homeDir()) })
	downloads := widget.NewButtonWithIcon("Downloads", theme.DownloadIcon(), func() { p.open(engine.DefaultDownloadDir()) })
	top := container.NewBorder(nil, nil, up, container.NewHBox(home, downloads), p.path)

	p.list = widget.NewList(func() int { return len(p.shown) }, p.newRow, p.updateRow)
	p.list.OnSelected = func(id widget.ListItemID) {
		p.list.UnselectAll()
		if id >= 0 && id < len(p.shown) {
			p.activate(p.shown[id])
		}
	}
	p.problem = newStyled("", theme.ColorNameError, theme.SizeNameText, fyne.TextAlignLeading)
	p.problem.Wrapping = fyne.TextWrapWord
	p.problem.Hide()
	p.count = widget.NewLabel("")
	body := container.NewBorder(container.NewVBox(top, p.problem), p.count, nil, nil, p.list)

	accept := cmp.Or(req.accept, "Add")
	p.ok = widget.NewButtonWithIcon(accept, theme.ConfirmIcon(), p.finish)
	p.ok.Importance = widget.HighImportance
	cancel := widget.NewButton("Cancel", func() { p.dlg.Hide() })
	p.dlg = dialog.NewCustomWithoutButtons(cmp.Or(req.title, "Choose files"), body, u.win)
	p.dlg.SetButtons([]fyne.CanvasObject{cancel, p.ok})
	size := u.win.Canvas().Size()
	p.dlg.Resize(fyne.NewSize(min(720, size.Width-24), min(480, size.Height-24)))

	start := req.start
	if !isDir(start) {
		start = cmp.Or(u.lastPickDir, homeDir())
	}
	p.open(start)
	p.dlg.Show()
	u.win.Canvas().Focus(p.path)
	u.lastPicker = p
	return p
}

// homeDir is the user's home, or the root when there is none.
func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return string(filepath.Separator)
}

// open lists dir and shows its path in the path field.
func (p *filePicker) open(dir string) {
	dir = filepath.Clean(dir)
	p.load(dir)
	text := withSep(dir)
	p.path.SetText(text)                               // filters nothing: the name after the folder is empty
	p.path.CursorColumn = utf8.RuneCountInString(text) // typing goes after the folder
	p.path.Refresh()
}

// load lists dir (the path field stays as typed).
func (p *filePicker) load(dir string) {
	p.dir = dir
	all, err := listDir(dir)
	p.all = all
	if err != nil {
		setStyled(p.problem, fmt.Sprintf("Cannot open this folder: %s.", errorWords(err)), theme.ColorNameError)
		p.problem.Show()
	} else {
		p.problem.Hide()
	}
	p.filter("")
}

// errorWords is a file system error without the path it repeats.
func errorWords(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// withSep is dir with one trailing separator.
func withSep(dir string) string {
	if strings.HasSuffix(dir, string(filepath.Separator)) {
		return dir
	}
	return dir + string(filepath.Separator)
}

// expand makes a typed path absolute: "~" is home, a relative path is in
// the folder listed.
func (p *filePicker) expand(s string) string {
	switch {
	case s == "~":
		return homeDir()
	case strings.HasPrefix(s, "~/"):
		return filepath.Join(homeDir(), s[2:])
	case filepath.IsAbs(s):
		return s
	}
	return filepath.Join(p.dir, s)
}

// typed follows the path field: a folder typed or pasted is listed, the
// name after it filters the list (type to find).
func (p *filePicker) typed(s string) {
	if !strings.ContainsRune(s, filepath.Separator) && !strings.HasPrefix(s, "~") {
		p.filter(s) // a name in the folder listed
		return
	}
	full := p.expand(s)
	dir, name := filepath.Split(full)
	if strings.HasSuffix(s, string(filepath.Separator)) {
		dir, name = full, ""
	}
	if dir = filepath.Clean(dir); dir != p.dir && isDir(dir) {
		p.load(dir)
	}
	p.filter(name)
}

// filter shows the entries whose name contains name, without regard to
// case; hidden entries only when name starts with a dot.
func (p *filePicker) filter(name string) {
	q := strings.ToLower(name)
	p.shown = p.shown[:0]
	for _, e := range p.all {
		if strings.HasPrefix(e.name, ".") && !strings.HasPrefix(q, ".") {
			continue
		}
		if p.req.folderOnly() && !e.dir {
			continue
		}
		if strings.Contains(strings.ToLower(e.name), q) {
			p.shown = append(p.shown, e)
		}
	}
	// Names that start with what was typed come first.
	rank := func(e pickEntry) int {
		r := 0
		if !e.dir {
			r += 2
		}
		if !strings.HasPrefix(strings.ToLower(e.name), q) {
			r++
		}
		return r
	}
	slices.SortStableFunc(p.shown, func(a, b pickEntry) int { return cmp.Compare(rank(a), rank(b)) })
	p.list.UnselectAll()
	p.list.Refresh()
	p.list.ScrollToTop()
	p.update()
}

// submitted is Enter in the path field: a folder opens, a file is chosen;
// a name typed to find acts on the best match.
func (p *filePicker) submitted(s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	full := p.expand(s)
	if fi, err := os.Stat(full); err == nil { // stat(2): no open
		dir, name := filepath.Split(filepath.Clean(full))
		e := pickEntry{name: name, dir: fi.IsDir(), regular: fi.Mode().IsRegular()}
		p.activate(e, filepath.Clean(dir))
		if !e.dir {
			p.path.SetText(withSep(p.dir)) // ready for the next name
		}
		return
	}
	if len(p.shown) > 0 {
		e := p.shown[0] // the best match: names that start with what was typed come first
		p.activate(e)
		if !e.dir {
			p.path.SetText(withSep(p.dir))
		}
	}
}

// activate is a click on an entry (in the folder listed, or in dir): a
// folder opens, a file is chosen or no longer chosen.
func (p *filePicker) activate(e pickEntry, dir ...string) {
	in := p.dir
	if len(dir) > 0 {
		in = dir[0]
	}
	full := filepath.Join(in, e.name)
	switch {
	case e.dir:
		p.open(full)
	case e.regular && !p.req.folderOnly():
		p.toggle(full)
	}
}

// toggle chooses path, or no longer.
func (p *filePicker) toggle(path string) {
	if i := slices.Index(p.chosen, path); i >= 0 {
		p.chosen = slices.Delete(p.chosen, i, i+1)
	} else {
		if !p.req.multiple {
			p.chosen = p.chosen[:0]
		}
		p.chosen = append(p.chosen, path)
	}
	p.list.Refresh()
	p.update()
}

// update says what is chosen and whether the pick can end.
func (p *filePicker) update() {
	if p.req.folderOnly() {
		target := p.dir
		if len(p.chosen) > 0 {
			target = p.chosen[0]
		}
		p.count.SetText("Folder: " + target)
		p.ok.Enable()
		return
	}
	switch len(p.chosen) {
	case 0:
		p.count.SetText("Nothing chosen yet: tick files and folders, click a folder to open it.")
		p.ok.Disable()
	case 1:
		p.count.SetText("Chosen: " + filepath.Base(p.chosen[0]))
		p.ok.Enable()
	default:
		p.count.SetText(fmt.Sprintf("%d chosen", len(p.chosen)))
		p.ok.Enable()
	}
}

// finish hands the paths chosen over (in folder mode: the folder ticked,
// else the one listed).
func (p *filePicker) finish() {
	paths := slices.Clone(p.chosen)
	if p.req.folderOnly() && len(paths) == 0 {
		paths = []string{p.dir}
	}
	if len(paths) == 0 {
		return
	}
	p.u.lastPickDir = p.dir
	p.dlg.Hide()
	p.done(paths)
}

// pickRow is one row of the list: tick, icon, name, size.
type pickRow struct {
	check *widget.Check
	icon  *widget.Icon
	name  *widget.Label
	size  *widget.Label
}

func (p *filePicker) newRow() fyne.CanvasObject {
	check := widget.NewCheck("", nil)
	icon := widget.NewIcon(theme.FileIcon())
	name := widget.NewLabel("")
	// One line, whole words: a long name ends in an ellipsis, never breaks.
	name.Truncation = fyne.TextTruncateEllipsis
	size := widget.NewLabel("")
	size.Alignment = fyne.TextAlignTrailing
	return container.NewBorder(nil, nil, container.NewHBox(check, icon), size, name)
}

func (p *filePicker) updateRow(id widget.ListItemID, o fyne.CanvasObject) {
	if id < 0 || id >= len(p.shown) {
		return
	}
	e := p.shown[id]
	r := rowParts(o)
	full := filepath.Join(p.dir, e.name)
	r.check.OnChanged = nil
	r.check.SetChecked(slices.Contains(p.chosen, full))
	r.check.OnChanged = func(bool) { p.toggle(full) }
	if e.sendable() {
		r.check.Enable()
	} else {
		r.check.Disable()
	}
	switch {
	case e.dir:
		r.icon.SetResource(theme.FolderIcon())
		r.size.SetText("")
	case e.regular:
		r.icon.SetResource(theme.FileIcon())
		r.size.SetText(humanBytes(e.size))
	default:
		r.icon.SetResource(theme.NewDisabledResource(theme.FileIcon()))
		r.size.SetText(e.kind)
	}
	r.name.SetText(e.name)
	if e.sendable() {
		r.name.Importance = widget.MediumImportance
	} else {
		r.name.Importance = widget.LowImportance // greyed: cannot be sent
	}
	r.name.Refresh()
}

// rowParts finds the widgets of a row made by newRow.
func rowParts(o fyne.CanvasObject) pickRow {
	c := o.(*fyne.Container)
	var r pickRow
	for _, obj := range c.Objects {
		switch x := obj.(type) {
		case *widget.Label:
			if x.Alignment == fyne.TextAlignTrailing {
				r.size = x
			} else {
				r.name = x
			}
		case *fyne.Container:
			r.check = x.Objects[0].(*widget.Check)
			r.icon = x.Objects[1].(*widget.Icon)
		}
	}
	return r
}

// pathEntry is the path field: Escape in it closes the picker.
type pathEntry struct {
	widget.Entry
	onEscape func()
}

func newPathEntry(onEscape func()) *pathEntry {
	e := &pathEntry{onEscape: onEscape}
	e.ExtendBaseWidget(e)
	return e
}

func (e *pathEntry) TypedKey(k *fyne.KeyEvent) {
	if k.Name == fyne.KeyEscape {
		e.onEscape()
		return
	}
	e.Entry.TypedKey(k)
}
