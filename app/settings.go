package app

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
)

// Preference keys (fyne Preferences, per app id).
const (
	prefName         = "device.name"
	prefDownloadDir  = "download.dir"
	prefAutoAccept   = "trusted.autoAccept"
	prefSignalingURL = "signaling.url"
	prefWebOff       = "web.off" // the web client is on unless turned off
)

// Settings are what the app keeps in its preferences; main hands them to
// the engine at start.
type Settings struct {
	Name              string // "" = the engine's default (the host name)
	DownloadDir       string // "" = the engine's default (~/Downloads)
	AutoAcceptTrusted bool
	SignalingURL      string // the rendezvous server ("" = this network only)
	WebOff            bool   // do not serve the web client for phones and tablets
}

// LoadSettings reads the settings from p.
func LoadSettings(p fyne.Preferences) Settings {
	return Settings{
		Name:              strings.TrimSpace(p.String(prefName)),
		DownloadDir:       p.String(prefDownloadDir),
		AutoAcceptTrusted: p.Bool(prefAutoAccept),
		SignalingURL:      p.String(prefSignalingURL),
		WebOff:            p.Bool(prefWebOff),
	}
}

// settingsView edits the settings.
type settingsView struct {
	u       *UI
	prefs   fyne.Preferences
	name    *widget.Entry
	save    *widget.Button
	saved   *widget.Label
	dir     *widget.Label
	auto    *widget.Check
	web     *widget.Check
	trusted *fyne.Container
	signal  *widget.Entry
	apply   *widget.Button
	status  *widget.RichText // the server connection
	self    *widget.RichText
	content fyne.CanvasObject
}

func newSettingsView(u *UI) *settingsView {
	s := &settingsView{u: u, prefs: u.app.Preferences()}
	cur := LoadSettings(s.prefs)

	s.name = widget.NewEntry()
	s.name.SetPlaceHolder("This computer's name")
	s.name.SetText(cur.Name)
	s.save = widget.NewButton("Save", s.saveName)
	s.save.Disable()
	s.saved = widget.NewLabel("")
	s.saved.Importance = widget.SuccessImportance
	s.saved.Hide()
	s.name.OnChanged = func(string) {
		s.save.Enable()
		s.saved.Hide()
	}
	s.name.OnSubmitted = func(string) { s.saveName() }

	s.dir = widget.NewLabel("")
	s.dir.Truncation = fyne.TextTruncateEllipsis
	s.showDir(cur.DownloadDir)
	choose := widget.NewButtonWithIcon("Choose…", theme.FolderOpenIcon(), s.chooseDir)

	s.auto = widget.NewCheck("Accept files from trusted devices without asking", s.setAutoAccept)
	s.auto.SetChecked(cur.AutoAcceptTrusted)

	s.web = widget.NewCheck("Serve a page for phones and tablets on this network", s.setWeb)
	s.web.SetChecked(!cur.WebOff)

	s.trusted = container.NewVBox()

	s.signal = widget.NewEntry()
	s.signal.SetPlaceHolder("wss://signal.example.org (empty: this network only)")
	s.signal.SetText(cur.SignalingURL)
	s.apply = widget.NewButton("Apply", s.applyServer)
	s.apply.Disable()
	s.signal.OnChanged = func(string) { s.apply.Enable() }
	s.signal.OnSubmitted = func(string) { s.applyServer() }
	s.status = newMuted("", theme.SizeNameCaptionText, fyne.TextAlignLeading)
	s.status.Wrapping = fyne.TextWrapWord
	s.status.Hide()

	s.self = newMuted("", theme.SizeNameText, fyne.TextAlignLeading)

	nameItem := widget.NewFormItem("Device name", container.NewBorder(nil, s.saved, nil, s.save, s.name))
	nameItem.HintText = "Others on the network see this name. A new name applies after a restart."
	dirItem := widget.NewFormItem("Download folder", container.NewBorder(nil, nil, nil, choose, s.dir))
	dirItem.HintText = "Received files are saved here."
	autoItem := widget.NewFormItem("Trusted devices", s.auto)
	listItem := widget.NewFormItem("", s.trusted)
	signalItem := widget.NewFormItem("Signaling server", container.NewVBox(
		container.NewBorder(nil, nil, nil, s.apply, s.signal), s.status))
	// Short: a form's hint does not wrap, and a long one widens the form.
	signalItem.HintText = "For devices on other networks (Pair a device). Empty: this network only."
	webItem := widget.NewFormItem("Phones and tablets", s.web)
	webItem.HintText = "They open it in a browser (Phone or tablet in Nearby): nothing to install."
	selfItem := widget.NewFormItem("This device", s.self)
	form := widget.NewForm(nameItem, dirItem, autoItem, listItem, webItem, signalItem, selfItem)
	for _, it := range s.startupItems() { // app/startup.go
		form.AppendItem(it)
	}

	title := widget.NewLabelWithStyle("Settings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	s.content = container.NewBorder(container.NewVBox(container.NewPadded(title), widget.NewSeparator()), nil, nil, nil,
		container.NewScroll(container.NewPadded(form))) // both ways: a form's hints do not wrap
	s.refreshTrusted()
	return s
}

func (s *settingsView) setSelf(p engine.Peer) {
	if s.name.Text == "" {
		s.name.SetText(p.Name)
		s.save.Disable()
	}
	setStyled(s.self, fmt.Sprintf("%s · device id %s", peerName(p), p.ID), theme.ColorNamePlaceHolder)
}

func (s *settingsView) saveName() {
	name := strings.TrimSpace(s.name.Text)
	s.prefs.SetString(prefName, name)
	s.save.Disable()
	s.saved.SetText("Saved. The new name applies after a restart.")
	s.saved.Show()
}

// applyServer hands the server to the engine (which connects at once)
// and remembers it once the engine took it.
func (s *settingsView) applyServer() {
	eng, ok := s.u.engine()
	if !ok {
		return
	}
	v := strings.TrimSpace(s.signal.Text)
	if err := eng.SetServer(v); err != nil {
		s.u.ShowError(wrapf(err, "could not use %s as the server", v))
		return
	}
	s.prefs.SetString(prefSignalingURL, v)
	s.apply.Disable()
	if v == "" {
		setStyled(s.status, "No server: only devices on this network.", theme.ColorNamePlaceHolder)
	} else {
		setStyled(s.status, "Connecting…", theme.ColorNamePlaceHolder)
	}
	s.status.Show()
}

// showServerStatus shows the engine's connection to the server.
func (s *settingsView) showServerStatus(st engine.ServerStatus) {
	switch {
	case st.URL == "":
		setStyled(s.status, "No server: only devices on this network.", theme.ColorNamePlaceHolder)
	case st.Connected:
		setStyled(s.status, "Connected.", theme.ColorNameSuccess)
	case st.Err != nil:
		setStyled(s.status, errorSentence(st.Err), theme.ColorNameError)
		s.apply.Enable() // Apply again tries again at once
	default:
		setStyled(s.status, "Connecting…", theme.ColorNamePlaceHolder)
	}
	s.status.Show()
}

func (s *settingsView) showDir(dir string) {
	if dir == "" {
		s.dir.SetText("Downloads (default)")
		return
	}
	s.dir.SetText(dir)
}

func (s *settingsView) chooseDir() {
	d := dialog.NewFolderOpen(func(l fyne.ListableURI, err error) {
		if err != nil {
			s.u.ShowError(err)
			return
		}
		if l == nil {
			return
		}
		if paths := localPaths([]fyne.URI{l}); len(paths) == 1 {
			s.setDownloadDir(paths[0])
		}
	}, s.u.win)
	d.Resize(fyne.NewSize(680, 480))
	d.Show()
}

// setDownloadDir tells the engine, then remembers the folder.
func (s *settingsView) setDownloadDir(dir string) {
	eng, ok := s.u.engine()
	if !ok {
		return
	}
	if err := eng.SetDownloadDir(dir); err != nil {
		s.u.ShowError(wrapf(err, "could not use %s for received files", dir))
		return
	}
	s.prefs.SetString(prefDownloadDir, dir)
	s.showDir(dir)
}

func (s *settingsView) setAutoAccept(on bool) {
	s.prefs.SetBool(prefAutoAccept, on)
	if s.u.eng != nil {
		s.u.eng.SetAutoAcceptTrusted(on)
	}
}

// setWeb turns the web client on or off, in the engine at once and for
// the next start.
func (s *settingsView) setWeb(on bool) {
	if s.u.eng != nil {
		addr := ""
		if on {
			addr = s.u.opts.WebListen
		}
		if err := s.u.eng.SetWebListen(addr); err != nil {
			s.u.ShowError(wrapf(err, "could not change the page for phones and tablets"))
			return
		}
	}
	s.prefs.SetBool(prefWebOff, !on)
}

// refreshTrusted lists the trusted devices, each with a Remove button.
func (s *settingsView) refreshTrusted() {
	s.trusted.RemoveAll()
	var peers []engine.Peer
	if s.u.eng != nil {
		peers = s.u.eng.Trusted()
	}
	if len(peers) == 0 {
		l := newMuted("No trusted devices yet. Trust one from its menu in Nearby.", theme.SizeNameText, fyne.TextAlignLeading)
		l.Wrapping = fyne.TextWrapWord
		s.trusted.Add(l)
	}
	for _, p := range peers {
		name := widget.NewLabel(peerName(p))
		name.Truncation = fyne.TextTruncateEllipsis
		remove := widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { s.u.setTrusted(p.ID, peerName(p), false) })
		remove.Importance = widget.LowImportance
		av := newAvatar(p.ID, peerName(p), "", 24)
		if d, ok := s.u.device(p.ID); ok {
			av.set(p.ID, peerName(p), d.Type, false, false)
		}
		s.trusted.Add(container.NewBorder(nil, nil, av, remove, name))
	}
	s.trusted.Refresh()
}
