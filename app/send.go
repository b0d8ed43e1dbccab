package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
)

// sendTo sends the same paths to each device, each its own queue item, and
// says in a dialog which sends could not start.
func (u *UI) sendTo(devs []engine.Device, paths []string) ([]engine.Item, error) {
	if len(devs) == 0 || len(paths) == 0 {
		return nil, nil
	}
	eng, ok := u.engine()
	if !ok {
		return nil, errNoEngine
	}
	var items []engine.Item
	var errs []error
	for _, d := range devs {
		it, err := eng.Send(engine.TargetOf(d), paths)
		if err != nil {
			errs = append(errs, fmt.Errorf("could not send to %s: %w", cmpName(d), err))
			continue
		}
		items = append(items, it)
		if it.ID != "" {
			u.applyItem(it) // the engine reports it too; applying twice is harmless
		}
	}
	err := errors.Join(errs...)
	u.ShowError(err)
	return items, err
}

// picker opens a file or folder chooser for a send sheet.
type picker int

const (
	pickNone picker = iota
	pickFile
	pickFolder
)

// sendSheet gathers files and folders, from one pick or several, before
// sending them to one or more devices.
type sendSheet struct {
	u     *UI
	devs  []engine.Device
	paths []string
	list  *fyne.Container
	send  *widget.Button
	dlg   *dialog.CustomDialog
}

// openSendSheet shows the sheet and opens the chooser first (pickNone: not).
func (u *UI) openSendSheet(devs []engine.Device, first picker) *sendSheet {
	if len(devs) == 0 {
		return nil
	}
	s := &sendSheet{u: u, devs: devs, list: container.NewVBox()}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = cmpName(d)
	}
	to := widget.NewLabel("To " + strings.Join(names, ", "))
	to.Wrapping = fyne.TextWrapWord
	to.TextStyle.Bold = true

	addFile := widget.NewButtonWithIcon("Add files…", theme.FileIcon(), s.pickFile)
	addFolder := widget.NewButtonWithIcon("Add folders…", theme.FolderIcon(), s.pickFolder)
	scroll := container.NewVScroll(s.list)
	scroll.SetMinSize(fyne.NewSize(260, 150))
	body := container.NewBorder(to, container.NewHBox(addFile, addFolder), nil, nil, scroll)

	s.send = widget.NewButtonWithIcon("Send", theme.MailSendIcon(), s.submit)
	s.send.Importance = widget.HighImportance
	cancel := widget.NewButton("Cancel", func() { s.dlg.Hide() })
	title := "Send files"
	if len(devs) > 1 {
		title = fmt.Sprintf("Send files to %d devices", len(devs))
	}
	s.dlg = dialog.NewCustomWithoutButtons(title, body, u.win)
	s.dlg.SetButtons([]fyne.CanvasObject{cancel, s.send})
	s.refresh()
	s.dlg.Show()
	u.lastSheet = s
	switch first {
	case pickFile:
		s.pickFile()
	case pickFolder:
		s.pickFolder()
	}
	return s
}

// add puts paths on the sheet (once each).
func (s *sendSheet) add(paths ...string) {
	for _, p := range paths {
		if p != "" && !slices.Contains(s.paths, p) {
			s.paths = append(s.paths, p)
		}
	}
	s.refresh()
}

func (s *sendSheet) remove(p string) {
	s.paths = slices.DeleteFunc(s.paths, func(q string) bool { return q == p })
	s.refresh()
}

func (s *sendSheet) refresh() {
	s.list.RemoveAll()
	if len(s.paths) == 0 {
		s.list.Add(newMuted("Nothing chosen yet: add files or folders.", theme.SizeNameText, fyne.TextAlignLeading))
	}
	for _, p := range s.paths {
		name := widget.NewLabel(filepath.Base(p))
		name.Truncation = fyne.TextTruncateEllipsis
		del := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { s.remove(p) })
		del.Importance = widget.LowImportance
		s.list.Add(container.NewBorder(nil, nil, widget.NewIcon(iconForPath(p)), del, name))
	}
	if len(s.paths) == 0 {
		s.send.Disable()
	} else {
		s.send.Enable()
	}
}

func (s *sendSheet) submit() {
	s.dlg.Hide()
	_, _ = s.u.sendTo(s.devs, s.paths) // errors are shown
}

// pickFile asks for files: several at once in the desktop's chooser, files
// and folders at once in our own.
func (s *sendSheet) pickFile() {
	s.u.choose(pickRequest{title: "Add files", accept: "Add", multiple: true}, func(paths []string) { s.add(paths...) })
}

// pickFolder asks for folders (the desktop's chooser picks files or
// folders, not both).
func (s *sendSheet) pickFolder() {
	s.u.choose(pickRequest{title: "Add folders", accept: "Add", multiple: true, dirs: true}, func(paths []string) { s.add(paths...) })
}

// iconForPath is a folder or a file icon; a path that cannot be read gets
// the file icon.
func iconForPath(p string) fyne.Resource {
	if isDir(p) {
		return theme.FolderIcon()
	}
	return theme.FileIcon()
}

// promptText asks for a message and sends it to each device.
func (u *UI) promptText(devs []engine.Device) {
	if len(devs) == 0 {
		return
	}
	entry := widget.NewMultiLineEntry()
	entry.SetPlaceHolder("Message")
	entry.Wrapping = fyne.TextWrapWord
	entry.SetMinRowsVisible(4)
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = cmpName(d)
	}
	form := dialog.NewForm("Send text to "+strings.Join(names, ", "), "Send", "Cancel",
		[]*widget.FormItem{widget.NewFormItem("", entry)}, func(ok bool) {
			if ok {
				u.sendText(devs, entry.Text)
			}
		}, u.win)
	form.Resize(fyne.NewSize(460, 240))
	form.Show()
	u.win.Canvas().Focus(entry)
}

// sendText sends text to each device and adds it to their conversations.
func (u *UI) sendText(devs []engine.Device, text string) {
	var errs []error
	for _, d := range devs {
		errs = append(errs, u.sendTextTo(d.Peer(), text))
	}
	u.ShowError(errors.Join(errs...))
}

// sendTextTo sends text to a peer and adds it to the conversation.
func (u *UI) sendTextTo(p engine.Peer, text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if u.eng == nil {
		return errNoEngine
	}
	m, err := u.eng.SendText(u.targetFor(p), text)
	if err != nil {
		return fmt.Errorf("could not send the message to %s: %w", peerName(p), err)
	}
	if m.Peer.ID == "" {
		m.Peer = p
	}
	if m.Text == "" {
		m.Text = text
	}
	m.Outgoing = true
	u.messages.add(m)
	return nil
}

// sendClipboard sends what the clipboard holds to each device: its text as
// a message, or, when it holds file URIs or paths (as file managers copy
// them), those files on the send sheet, to be confirmed with Send (text
// that names a file, pasted from a message say, must not send that file
// unseen).
func (u *UI) sendClipboard(devs []engine.Device) {
	if len(devs) == 0 {
		return
	}
	text := u.app.Clipboard().Content()
	if strings.TrimSpace(text) == "" {
		dialog.ShowInformation("Nothing to send", "The clipboard is empty: copy some text or files first.", u.win)
		return
	}
	if paths := clipboardPaths(text); len(paths) > 0 {
		if sheet := u.openSendSheet(devs, pickNone); sheet != nil {
			sheet.add(paths...)
		}
		return
	}
	u.sendText(devs, text)
}

// clipboardPaths are the files text names, one a line: file:// URIs
// (text/uri-list, with its # comments), or absolute paths that exist; a
// first line "copy" or "cut" is GNOME's copied-files form. Any other line
// makes text a text: nil.
func clipboardPaths(text string) []string {
	var paths []string
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case i == 0 && (line == "copy" || line == "cut") && len(lines) > 1:
			continue
		}
		p := fileURIPath(line)
		if p == "" && filepath.IsAbs(line) {
			if _, err := os.Lstat(line); err == nil {
				p = line
			}
		}
		if p == "" {
			return nil
		}
		paths = append(paths, p)
	}
	return paths
}
