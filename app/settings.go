package app

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/version"
	"github.com/thepeerdrop/peerdrop/localsend"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// Preference keys (fyne Preferences, per app id).
const (
	prefName         = "device.name"
	prefDownloadDir  = "download.dir"
	prefAutoAccept   = "trusted.autoAccept"
	prefQuickSave    = "quickSave" // accept from anyone without asking
	prefSignalingURL = "signaling.url"
	prefWebOff       = "web.off" // the web client is on unless turned off
	prefType         = "device.type"
	prefPort         = "lan.port" // 0 = the default port
	// LocalSend is on unless turned off; its unencrypted devices are off
	// unless allowed.
	prefLocalSendOff  = "localsend.off"
	prefLocalSendHTTP = "localsend.http"
)

// deviceTypes are the types offered in Settings, as discovery names them.
var deviceTypes = []string{discovery.TypeDesktop, discovery.TypeLaptop, discovery.TypePhone, discovery.TypeTablet, discovery.TypeServer}

// Settings are what the app keeps in its preferences; main hands them to
// the engine at start.
type Settings struct {
	Name              string // "" = the engine's default (the host name)
	DownloadDir       string // "" = the engine's default (~/Downloads)
	AutoAcceptTrusted bool
	QuickSave         bool   // accept every offer without asking
	SignalingURL      string // the rendezvous server ("" = this network only)
	WebOff            bool   // do not serve the web client for phones and tablets
	Type              string // discovery.Type* ("" = detected)
	Port              int    // the LAN handshake port (0 = the default)
	LocalSendOff      bool   // do not speak LocalSend (nothing listens on its port)
	LocalSendHTTP     bool   // let unencrypted (HTTP) LocalSend devices exchange files
}

// LoadSettings reads the settings from p.
func LoadSettings(p fyne.Preferences) Settings {
	return Settings{
		Name:              strings.TrimSpace(p.String(prefName)),
		DownloadDir:       p.String(prefDownloadDir),
		AutoAcceptTrusted: p.Bool(prefAutoAccept),
		QuickSave:         p.Bool(prefQuickSave),
		SignalingURL:      p.String(prefSignalingURL),
		WebOff:            p.Bool(prefWebOff),
		Type:              loadType(p),
		Port:              loadPort(p),
		LocalSendOff:      p.Bool(prefLocalSendOff),
		LocalSendHTTP:     p.Bool(prefLocalSendHTTP),
	}
}

// loadType is the saved device type, "" when none (or not one of ours).
func loadType(p fyne.Preferences) string {
	if t := p.String(prefType); discovery.ValidType(t) {
		return t
	}
	return ""
}

// loadPort is the saved port, 0 when none (or out of range).
func loadPort(p fyne.Preferences) int {
	if n := p.Int(prefPort); n > 0 && n <= 65535 {
		return n
	}
	return 0
}

// parsePort reads the port typed in Settings: empty is the default (0).
func parsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port: type a number from 1 to 65535, or nothing for %d", s, signaling.DefaultPort)
	}
	return n, nil
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
	quick   *widget.Check
	web     *widget.Check
	ls      *widget.Check // LocalSend devices
	lsHTTP  *widget.Check // unencrypted ones too
	trusted *fyne.Container
	signal  *widget.Entry
	apply   *widget.Button
	status  *widget.RichText // the server connection
	self    *widget.RichText
	reach   *widget.RichText // this device's addresses and port
	kind    *widget.Select   // the device type
	port    *widget.Entry
	portBtn *widget.Button
	portMsg *widget.Label
	check   *widget.Button // Check the network (doctor.go)
	report  dialog.Dialog  // its last report; nil: none yet
	content fyne.CanvasObject
}

func newSettingsView(u *UI) *settingsView {
	s := &settingsView{u: u, prefs: u.app.Preferences()}
	cur := LoadSettings(s.prefs)
	s.makeWidgets(cur)
	form := s.makeForm(cur)
	title := widget.NewLabelWithStyle("Settings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	s.content = container.NewBorder(container.NewVBox(container.NewPadded(title), widget.NewSeparator()), nil, nil, nil,
		container.NewScroll(container.NewPadded(form))) // both ways: a form's hints do not wrap
	s.refreshTrusted()
	return s
}

// makeWidgets makes the view's controls, set to the saved settings cur.
func (s *settingsView) makeWidgets(cur Settings) {
	s.name, s.save, s.saved = newSaveRow("This computer's name", s.saveName)
	s.name.SetText(cur.Name)
	s.save.Disable()
	s.saved.Importance = widget.SuccessImportance

	s.dir = widget.NewLabel("")
	s.dir.Truncation = fyne.TextTruncateEllipsis
	s.showDir(cur.DownloadDir)

	s.auto = widget.NewCheck("Accept files from trusted devices without asking", s.setAutoAccept)
	s.auto.SetChecked(cur.AutoAcceptTrusted)

	s.web = widget.NewCheck("Serve a page for phones and tablets on this network", s.setWeb)
	s.web.SetChecked(!cur.WebOff)

	// Checked before OnChanged: main hands the saved values to the engine.
	s.ls = widget.NewCheck("LocalSend devices: LocalSend's apps can see this device and exchange files", nil)
	s.ls.Checked = !cur.LocalSendOff
	s.lsHTTP = widget.NewCheck("Allow unencrypted LocalSend devices (HTTP)", nil)
	s.lsHTTP.Checked = cur.LocalSendHTTP
	if cur.LocalSendOff {
		s.lsHTTP.Disable()
	}
	s.ls.OnChanged = func(on bool) { s.setLocalSend(on, s.lsHTTP.Checked) }
	s.lsHTTP.OnChanged = func(allow bool) { s.setLocalSend(s.ls.Checked, allow) }

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
	s.reach = newMuted("", theme.SizeNameText, fyne.TextAlignLeading)
	s.reach.Wrapping = fyne.TextWrapWord

	s.kind = widget.NewSelect(typeLabels(), nil)
	if t := cur.Type; t != "" {
		s.kind.SetSelected(typeLabel(t))
	} else if s.u.eng != nil {
		s.kind.SetSelected(typeLabel(s.u.eng.Type()))
	}
	s.kind.OnChanged = s.setType

	s.port, s.portBtn, s.portMsg = newSaveRow(fmt.Sprintf("%d (default)", signaling.DefaultPort), s.savePort)
	if cur.Port != 0 {
		s.port.SetText(strconv.Itoa(cur.Port))
	}
	s.portBtn.Disable()
	s.portMsg.Wrapping = fyne.TextWrapWord

}

// makeForm lays the controls out as a form with a hint under each.
func (s *settingsView) makeForm(cur Settings) *widget.Form {
	choose := widget.NewButtonWithIcon("Choose…", theme.FolderOpenIcon(), s.chooseDir)
	nameItem := widget.NewFormItem("Device name", container.NewBorder(nil, s.saved, nil, s.save, s.name))
	nameItem.HintText = "Others on the network see this name."
	typeItem := widget.NewFormItem("Device type", s.kind)
	typeItem.HintText = "The picture others see for this device."
	portItem := widget.NewFormItem("Port", container.NewBorder(nil, s.portMsg, nil, s.portBtn, s.port))
	portItem.HintText = "Others connect to this port. A new port applies after a restart."
	dirItem := widget.NewFormItem("Download folder", container.NewBorder(nil, nil, nil, choose, s.dir))
	dirItem.HintText = "Received files are saved here."
	autoItem := widget.NewFormItem("Trusted devices", s.auto)
	s.quick = widget.NewCheck("Quick save: accept files from anyone without asking", s.setQuickSave)
	s.quick.Checked = cur.QuickSave
	quickItem := widget.NewFormItem("Everyone", s.quick)
	quickItem.HintText = "Off unless you turn it on; Nearby shows while it is on."
	listItem := widget.NewFormItem("", s.trusted)
	signalItem := widget.NewFormItem("Signaling server", container.NewVBox(
		container.NewBorder(nil, nil, nil, s.apply, s.signal), s.status))
	// Short: a form's hint does not wrap, and a long one widens the form.
	signalItem.HintText = "For devices on other networks (Pair a device). Empty: this network only."
	webItem := widget.NewFormItem("Phones and tablets", s.web)
	webItem.HintText = "They open it in a browser (Phone or tablet in Nearby): nothing to install."
	lsItem := widget.NewFormItem("LocalSend", s.ls)
	lsItem.HintText = fmt.Sprintf("Off: nothing listens on port %d.", localsend.DefaultPort)
	lsHTTPItem := widget.NewFormItem("", s.lsHTTP)
	lsHTTPItem.HintText = "Off unless you allow it: others on this network could read what they exchange."
	selfItem := widget.NewFormItem("This device", container.NewVBox(s.self, s.reach))
	selfItem.HintText = "To send here from another network segment, type one of these addresses there."
	form := widget.NewForm(nameItem, typeItem, dirItem, autoItem, listItem, quickItem, webItem, lsItem, lsHTTPItem, signalItem, portItem, selfItem)
	for _, it := range s.startupItems() { // app/startup.go
		form.AppendItem(it)
	}
	form.AppendItem(s.networkItem())
	about := widget.NewLabel("ThePeerDrop " + version.Get().String())
	about.Importance = widget.LowImportance
	form.AppendItem(widget.NewFormItem("About", about))

	return form
}

// selfChanged shows this device's new name wherever it shows.
func (u *UI) selfChanged(p engine.Peer) {
	u.self = p
	u.nearby.setSelf(p)
	u.settings.setSelf(p)
}

func (s *settingsView) setSelf(p engine.Peer) {
	if s.name.Text == "" {
		s.name.SetText(p.Name)
		s.save.Disable()
	}
	if s.kind.Selected == "" && s.u.eng != nil {
		s.kind.OnChanged = nil // the engine's type, not a choice to apply
		s.kind.SetSelected(typeLabel(s.u.eng.Type()))
		s.kind.OnChanged = s.setType
	}
	setStyled(s.self, fmt.Sprintf("%s · device id %s", peerName(p), p.ID), theme.ColorNamePlaceHolder)
	s.refreshReach()
}

// refreshReach shows this device's addresses and port: "192.168.1.5,
// fe80::1%eth0 · port 53318".
func (s *settingsView) refreshReach() {
	if s.u.eng == nil {
		s.reach.Hide()
		return
	}
	ips, port := s.u.eng.Addresses()
	var text string
	switch {
	case len(ips) == 0:
		text = "No network found: connect this computer to Wi-Fi or a network cable."
	default:
		list := make([]string, len(ips))
		for i, ip := range ips {
			list[i] = ip.String()
		}
		text = strings.Join(list, ", ")
	}
	if port > 0 {
		text += fmt.Sprintf(" · port %d", port)
	}
	setStyled(s.reach, text, theme.ColorNamePlaceHolder)
	s.reach.Show()
}

// saveName renames the device in the engine, which applies it at once,
// and remembers it. An empty name goes back to the host name.
func (s *settingsView) saveName() {
	name := strings.TrimSpace(s.name.Text)
	if eng, ok := s.u.engine(); ok {
		use := name
		if use == "" {
			h, _ := os.Hostname()
			use = engine.DefaultName(h)
		}
		if err := eng.SetName(use); err != nil {
			s.u.ShowError(wrapf(err, "could not use %q as this device's name", use))
			return
		}
		s.u.selfChanged(eng.Self())
	}
	s.prefs.SetString(prefName, name)
	s.save.Disable()
	s.saved.SetText("Saved. Others see the new name now.")
	s.saved.Show()
}

// setType changes the device type in the engine (at once) and remembers it.
func (s *settingsView) setType(label string) {
	t := typeOf(label)
	if t == "" {
		return
	}
	if eng, ok := s.u.engine(); ok {
		if err := eng.SetType(t); err != nil {
			s.u.ShowError(wrapf(err, "could not change the device type"))
			return
		}
	}
	s.prefs.SetString(prefType, t)
}

// savePort remembers the port for the next start (the engine listens on one
// port while it runs).
func (s *settingsView) savePort() {
	n, err := parsePort(s.port.Text)
	if err != nil {
		s.portMsg.SetText(errorSentence(err))
		s.portMsg.Importance = widget.DangerImportance
		s.portMsg.Show()
		return
	}
	s.prefs.SetInt(prefPort, n)
	s.portBtn.Disable()
	if n == 0 {
		n = signaling.DefaultPort
	}
	s.portMsg.SetText(fmt.Sprintf("Saved. Restart ThePeerDrop to use port %d.", n))
	s.portMsg.Importance = widget.SuccessImportance
	s.portMsg.Show()
}

// typeLabels are the device types as Settings offers them.
func typeLabels() []string {
	out := make([]string, len(deviceTypes))
	for i, t := range deviceTypes {
		out[i] = typeLabel(t)
	}
	return out
}

// typeOf is the type of a label typeLabel made ("" for anything else).
func typeOf(label string) string {
	for _, t := range deviceTypes {
		if typeLabel(t) == label {
			return t
		}
	}
	return ""
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

// showDir shows the download folder: dir, the engine's (SetEngine), else
// the one Settings remember.
func (s *settingsView) showDir(dir string) {
	dir = cmp.Or(dir, LoadSettings(s.prefs).DownloadDir)
	if dir == "" {
		s.dir.SetText("Downloads (default)")
		return
	}
	s.dir.SetText(dir)
}

// chooseDir asks for the download folder, opening at the one in use.
func (s *settingsView) chooseDir() {
	start := LoadSettings(s.prefs).DownloadDir
	if s.u.eng != nil {
		start = cmp.Or(s.u.eng.DownloadDir(), start)
	}
	start = cmp.Or(start, engine.DefaultDownloadDir())
	s.u.choose(pickRequest{title: "Download folder", accept: "Use this folder", dirs: true, start: start}, func(paths []string) {
		if len(paths) == 1 {
			s.setDownloadDir(paths[0])
		}
	})
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

// setQuickSave asks before quick save goes on; off is at once.
func (s *settingsView) setQuickSave(on bool) {
	if !on {
		s.u.setQuickSave(false)
		return
	}
	s.quick.Checked = false // until confirmed
	s.quick.Refresh()
	s.u.askQuickSave()
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

// setLocalSend turns LocalSend on or off and lets unencrypted LocalSend
// devices in or not, in the engine at once and for the next start. The
// second choice waits, greyed, while LocalSend is off.
func (s *settingsView) setLocalSend(on, allowHTTP bool) {
	if s.u.eng != nil {
		s.u.eng.SetLocalSend(on, allowHTTP)
	}
	s.prefs.SetBool(prefLocalSendOff, !on)
	s.prefs.SetBool(prefLocalSendHTTP, allowHTTP)
	if on {
		s.lsHTTP.Enable()
	} else {
		s.lsHTTP.Disable()
	}
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

// newSaveRow is an entry with its Save button and a message under it:
// editing enables Save and hides the message; Enter saves as the button
// does.
func newSaveRow(placeholder string, save func()) (*widget.Entry, *widget.Button, *widget.Label) {
	entry := widget.NewEntry()
	entry.SetPlaceHolder(placeholder)
	btn := widget.NewButton("Save", save)
	msg := widget.NewLabel("")
	msg.Hide()
	entry.OnChanged = func(string) {
		btn.Enable()
		msg.Hide()
	}
	entry.OnSubmitted = func(string) { save() }
	return entry, btn, msg
}
