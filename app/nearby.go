package app

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// awayMark is the caption of a paired device that is not on this network
// but can be reached through the server.
const awayMark = "Away"

// webMark is the caption of a phone or tablet on this device's web page.
const webMark = "Web page"

// emptyNearby is what the Nearby view says while it sees no device.
const emptyNearby = "Open ThePeerDrop on another device on this network"

// Sizes of the Nearby grid.
var (
	tileSize       = fyne.NewSize(136, 150)
	avatarDiameter = float32(72)
)

// nearbyView is the grid of nearby devices.
type nearbyView struct {
	u        *UI
	tiles    map[string]*deviceTile // by device id
	order    []*deviceTile          // as shown: first seen first
	selected map[string]bool        // device ids
	activity map[string]engine.Item // peer id -> the latest unfinished item with it
	notes    map[string]tileNote    // peer id -> a short outcome shown for a while
	noteGen  int

	grid      *fyne.Container
	scroll    *container.Scroll
	empty     fyne.CanvasObject
	footer    *fyne.Container
	selBar    *fyne.Container
	selLabel  *widget.Label
	sendSel   *widget.Button
	selfLabel *widget.RichText
	hint      *widget.RichText
	pairBtn   *widget.Button
	phoneBtn  *widget.Button
	content   fyne.CanvasObject
}

// defaultHint is the footer line of the Nearby view.
const defaultHint = "Drop files on a device to send them. Click a device for more; right-click to select several."

func newNearbyView(u *UI) *nearbyView {
	v := &nearbyView{u: u, tiles: map[string]*deviceTile{}, selected: map[string]bool{}, activity: map[string]engine.Item{}, notes: map[string]tileNote{}}

	v.grid = container.New(newFillGrid(tileSize)) // fills the width
	v.scroll = container.NewVScroll(container.NewPadded(v.grid))

	emptyIcon := canvas.NewImageFromResource(theme.NewDisabledResource(theme.ComputerIcon()))
	emptyIcon.FillMode = canvas.ImageFillContain
	emptyIcon.SetMinSize(fyne.NewSquareSize(64))
	emptyTitle := widget.NewLabelWithStyle(emptyNearby, fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	emptySub := newMuted("Devices on the same Wi-Fi or wired network appear here by themselves.",
		theme.SizeNameText, fyne.TextAlignCenter)
	emptyAway := newMuted("For a device on another network, use Pair a device.", theme.SizeNameText, fyne.TextAlignCenter)
	v.empty = centred(emptyIcon, emptyTitle, tighten(emptySub, emptyAway))

	title := widget.NewLabelWithStyle("Nearby", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	v.selfLabel = newMuted("", theme.SizeNameText, fyne.TextAlignLeading)
	v.selfLabel.Truncation = fyne.TextTruncateEllipsis

	v.selLabel = widget.NewLabel("")
	v.sendSel = widget.NewButtonWithIcon("", theme.MailSendIcon(), func() {
		v.u.openSendSheet(v.selectedDevices(), pickFile)
	})
	v.sendSel.Importance = widget.HighImportance
	textSel := widget.NewButtonWithIcon("Send text…", theme.MailComposeIcon(), func() { v.u.promptText(v.selectedDevices()) })
	clearSel := widget.NewButton("Clear", v.clearSelection)
	clearSel.Importance = widget.LowImportance
	v.selBar = container.NewHBox(v.selLabel, v.sendSel, textSel, clearSel)
	v.selBar.Hide()

	pair := widget.NewButtonWithIcon("Pair a device…", theme.ContentAddIcon(), u.openPairDialog)
	pair.Importance = widget.LowImportance
	v.pairBtn = pair
	phone := widget.NewButtonWithIcon("Phone or tablet…", iconPhone, u.openPhoneDialog)
	phone.Importance = widget.LowImportance
	v.phoneBtn = phone
	// In a narrow window the two buttons show their icons only.
	buttons := container.NewHBox(phone, pair)
	header := container.New(layout.NewCustomPaddedLayout(4, 0, 8, 8),
		newWithTrailing(160, tighten(title, v.selfLabel), buttons, iconTwins(buttons)))

	// The footer says what one can do, or, with devices selected, offers
	// what one can do with them.
	v.hint = newMuted(defaultHint, theme.SizeNameCaptionText, fyne.TextAlignLeading)
	v.hint.Truncation = fyne.TextTruncateEllipsis
	v.footer = container.NewStack(container.NewVBox(layout.NewSpacer(), v.hint, layout.NewSpacer()),
		newWithTrailing(0, layout.NewSpacer(), v.selBar, iconTwins(v.selBar))) // icons only when narrow
	byAddr := widget.NewButtonWithIcon("Send to an address…", theme.MailSendIcon(), func() { u.openAddressDialog() })
	byAddr.Importance = widget.LowImportance
	addrRow := container.NewHBox(byAddr)
	footer := container.NewVBox(widget.NewSeparator(), container.New(layout.NewCustomPaddedLayout(0, 0, 4, 4),
		newWithTrailing(0, v.footer, addrRow, iconTwins(addrRow))))

	v.content = container.NewBorder(container.NewVBox(header, u.quickSaveBar(), widget.NewSeparator()), footer, nil, nil,
		container.NewStack(v.scroll, v.empty))
	v.scroll.Hide()
	return v
}

func (v *nearbyView) setSelf(p engine.Peer) {
	setStyled(v.selfLabel, fmt.Sprintf("Others on this network see this device as “%s”.", peerName(p)), theme.ColorNamePlaceHolder)
}

// setDevices shows the engine's nearby list; tiles of devices still there
// keep their selection and their place. The engine sorts by name, but a
// device that appears must not shift the others under the pointer: while
// the window is open a device keeps its slot, new devices come at the end
// and a device that went away leaves a gap the ones after it close.
func (v *nearbyView) setDevices(devs []engine.Device) {
	now := make(map[string]engine.Device, len(devs))
	var fresh []engine.Device // not shown yet, in the engine's order
	for _, d := range devs {
		if _, dup := now[d.ID]; dup {
			continue
		}
		now[d.ID] = d
		if v.tiles[d.ID] == nil {
			fresh = append(fresh, d)
		}
	}
	order := make([]*deviceTile, 0, len(now))
	for _, t := range v.order {
		if d, ok := now[t.dev.ID]; ok {
			t.dev = d
			order = append(order, t)
		}
	}
	for _, d := range fresh {
		t := newDeviceTile(v, d)
		v.tiles[d.ID] = t
		order = append(order, t)
	}
	for id := range v.tiles {
		if _, ok := now[id]; !ok {
			delete(v.tiles, id)
			delete(v.selected, id)
		}
	}
	v.order = order
	objs := make([]fyne.CanvasObject, 0, len(order))
	for _, t := range order {
		t.selected = v.selected[t.dev.ID]
		t.update()
		objs = append(objs, t)
	}
	v.grid.Objects = objs
	v.grid.Refresh()
	if len(objs) == 0 {
		v.scroll.Hide()
		v.empty.Show()
	} else {
		v.empty.Hide()
		v.scroll.Show()
	}
	v.updateSelection()
}

// toggle selects or deselects a device for sending to several at once.
func (v *nearbyView) toggle(id string) {
	if v.selected[id] {
		delete(v.selected, id)
	} else if v.tiles[id] != nil {
		v.selected[id] = true
	}
	if t := v.tiles[id]; t != nil {
		t.selected = v.selected[id]
		t.update()
	}
	v.updateSelection()
}

func (v *nearbyView) clearSelection() {
	for id := range v.selected {
		delete(v.selected, id)
		if t := v.tiles[id]; t != nil {
			t.selected = false
			t.update()
		}
	}
	v.updateSelection()
}

// selectedDevices are the selected devices in grid order.
func (v *nearbyView) selectedDevices() []engine.Device {
	var out []engine.Device
	for _, t := range v.order {
		if v.selected[t.dev.ID] {
			out = append(out, t.dev)
		}
	}
	return out
}

func (v *nearbyView) updateSelection() {
	n := len(v.selected)
	defer v.footer.Refresh()
	if n == 0 {
		v.selBar.Hide()
		v.hint.Show()
		return
	}
	v.hint.Hide()
	v.selLabel.SetText(fmt.Sprintf("%d selected", n))
	if n == 1 {
		v.sendSel.SetText("Send to 1 device…")
	} else {
		v.sendSel.SetText(fmt.Sprintf("Send to %d devices…", n))
	}
	v.selBar.Show()
	v.selBar.Refresh()
}

func (v *nearbyView) setHint(s string) { setStyled(v.hint, s, theme.ColorNamePlaceHolder) }

// noteItem shows an item's progress under its peer's avatar, and for a
// while how a send that was waiting or moving ended, if not well.
func (v *nearbyView) noteItem(it engine.Item) {
	cur, ok := v.activity[it.Peer.ID]
	switch {
	case !it.State.Finished():
		v.activity[it.Peer.ID] = it
	case ok && cur.ID == it.ID:
		delete(v.activity, it.Peer.ID)
		if it.Direction == engine.Outgoing && it.State == engine.StateDeclined {
			v.showNote(it.Peer.ID, "Declined", theme.ColorNameError,
				fmt.Sprintf("%s declined %s.", peerName(it.Peer), cmpTitle(it)))
		}
	default:
		return
	}
	if t := v.tiles[it.Peer.ID]; t != nil {
		t.update()
	}
}

// noteFor is how long an outcome stays under an avatar and in the footer.
const noteFor = 6 * time.Second

// tileNote is a short outcome under an avatar ("Declined", "Delivered").
type tileNote struct {
	text  string
	color fyne.ThemeColorName
	hint  string // the footer's sentence
	gen   int
}

// showNote puts an outcome under a device's avatar and in the footer for
// noteFor; a newer note replaces it.
func (v *nearbyView) showNote(id, text string, color fyne.ThemeColorName, hint string) {
	v.noteGen++
	n := tileNote{text: text, color: color, hint: hint, gen: v.noteGen}
	v.notes[id] = n
	v.setHint(hint)
	if t := v.tiles[id]; t != nil {
		t.update()
	}
	if v.u.runNow {
		return // tests end notes themselves (endNote): no timer outlives them
	}
	time.AfterFunc(noteFor, func() { fyne.Do(func() { v.endNote(id, n.gen) }) })
}

// endNote takes note gen away, unless a newer one replaced it.
func (v *nearbyView) endNote(id string, gen int) {
	n, ok := v.notes[id]
	if !ok || n.gen != gen {
		return
	}
	delete(v.notes, id)
	if styledText(v.hint) == n.hint {
		v.setHint(defaultHint)
	}
	if t := v.tiles[id]; t != nil {
		t.update()
	}
}

// textOutcome tells Nearby how sending a text ended.
func (v *nearbyView) textOutcome(msg engine.Message) {
	if msg.Err != "" {
		v.showNote(msg.Peer.ID, "Not delivered", theme.ColorNameError,
			fmt.Sprintf("Message to %s not delivered: %s", peerName(msg.Peer), visible.Escape(msg.Err)))
		return
	}
	v.showNote(msg.Peer.ID, "Delivered", theme.ColorNameSuccess, fmt.Sprintf("Message delivered to %s.", peerName(msg.Peer)))
}

// activityText is the caption for a device busy with an item. While a send
// waits for the answer it shows the connection's code, the one the
// receiver's prompt asks to compare.
func activityText(it engine.Item) string {
	pct := int(math.Floor(progress(it) * 100))
	switch it.State {
	case engine.StateConnecting, engine.StateWaiting:
		if it.Direction == engine.Outgoing && it.Code != "" {
			return "Code " + it.Code
		}
		return "Waiting…"
	case engine.StatePaused:
		return "Paused"
	case engine.StateRunning:
		if it.Direction == engine.Incoming {
			return fmt.Sprintf("Receiving %d%%", pct)
		}
		return fmt.Sprintf("Sending %d%%", pct)
	}
	return ""
}

// dropTarget is a device's tile where it is on the canvas.
type dropTarget struct {
	dev  engine.Device
	pos  fyne.Position // absolute (canvas) position of the top left corner
	size fyne.Size
}

// hitTest finds the target under pos.
func hitTest(pos fyne.Position, targets []dropTarget) (engine.Device, bool) {
	for _, t := range targets {
		if inside(pos, t.pos, t.size) {
			return t.dev, true
		}
	}
	return engine.Device{}, false
}

func inside(p, at fyne.Position, size fyne.Size) bool {
	return p.X >= at.X && p.Y >= at.Y && p.X < at.X+size.Width && p.Y < at.Y+size.Height
}

// targets are the tiles as laid out now.
func (v *nearbyView) targets() []dropTarget {
	drv := v.u.app.Driver()
	out := make([]dropTarget, 0, len(v.order))
	for _, t := range v.order {
		if !t.Visible() {
			continue
		}
		out = append(out, dropTarget{dev: t.dev, pos: drv.AbsolutePositionForObject(t), size: t.Size()})
	}
	return out
}

// deviceAt is the device whose tile is under pos (canvas coordinates), if
// the Nearby view shows one there.
func (u *UI) deviceAt(pos fyne.Position) (engine.Device, bool) {
	if u.tabs.Selected() != u.nearbyTab || !u.nearby.scroll.Visible() {
		return engine.Device{}, false
	}
	// A tile scrolled out of sight is not under the pointer, whatever its
	// coordinates say.
	s := u.nearby.scroll
	if !inside(pos, u.app.Driver().AbsolutePositionForObject(s), s.Size()) {
		return engine.Device{}, false
	}
	return hitTest(pos, u.nearby.targets())
}

// onDropped sends what was dropped to the device under the pointer.
func (u *UI) onDropped(pos fyne.Position, uris []fyne.URI) {
	paths := localPaths(uris)
	if len(paths) == 0 {
		u.nearby.setHint("Only files and folders can be sent.")
		return
	}
	d, ok := u.deviceAt(pos)
	if !ok {
		u.tabs.Select(u.nearbyTab)
		u.nearby.setHint("Drop the files on a device to send them to it.")
		return
	}
	_, _ = u.dropOn(d, paths) // errors are shown
}

// dropOn is what dropping paths on a device's avatar does.
func (u *UI) dropOn(d engine.Device, paths []string) ([]engine.Item, error) {
	u.nearby.setHint(defaultHint)
	return u.sendTo([]engine.Device{d}, paths)
}

// localPaths are the file paths among uris.
func localPaths(uris []fyne.URI) []string {
	var out []string
	for _, u := range uris {
		if u != nil && u.Scheme() == "file" && u.Path() != "" {
			out = append(out, u.Path())
		}
	}
	return out
}

// deviceTile is one device in the grid: avatar, name, caption. A click
// opens its menu, a right click selects it.
type deviceTile struct {
	widget.BaseWidget
	v        *nearbyView
	dev      engine.Device
	selected bool
	hovered  bool
	focused  bool

	bg      *canvas.Rectangle
	av      *avatar
	name    *widget.Label
	caption *canvas.Text
}

var (
	_ fyne.Tappable          = (*deviceTile)(nil)
	_ fyne.SecondaryTappable = (*deviceTile)(nil)
	_ desktop.Hoverable      = (*deviceTile)(nil)
	_ desktop.Cursorable     = (*deviceTile)(nil)
	_ fyne.Focusable         = (*deviceTile)(nil)
)

func newDeviceTile(v *nearbyView, d engine.Device) *deviceTile {
	t := &deviceTile{v: v, dev: d}
	t.bg = canvas.NewRectangle(color.Transparent)
	t.bg.CornerRadius = theme.InputRadiusSize() * 2
	t.av = newAvatar(d.ID, d.Name, d.Type, avatarDiameter)
	t.name = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	t.name.Truncation = fyne.TextTruncateEllipsis
	t.caption = canvas.NewText("", color.Black)
	t.caption.Alignment = fyne.TextAlignCenter
	t.ExtendBaseWidget(t)
	t.update()
	return t
}

func (t *deviceTile) CreateRenderer() fyne.WidgetRenderer {
	body := container.New(&tileLayout{}, t.av, t.name, t.caption)
	return widget.NewSimpleRenderer(container.NewStack(t.bg, body))
}

// update shows the tile's device, selection and activity.
func (t *deviceTile) update() {
	th := t.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	d := t.dev
	t.av.set(d.ID, d.Name, d.Type, d.Trusted, t.selected)
	t.av.dimmed = d.Offline // a trusted device that is off: greyed, sends wait for it
	t.av.Refresh()
	t.name.Importance = widget.MediumImportance
	if d.Offline {
		t.name.Importance = widget.LowImportance
	}
	t.name.SetText(cmpName(d))

	t.caption.TextSize = th.Size(theme.SizeNameCaptionText)
	t.caption.Color = th.Color(theme.ColorNamePlaceHolder, v)
	if it, ok := t.v.activity[d.ID]; ok {
		t.caption.Text = activityText(it)
		t.caption.Color = th.Color(theme.ColorNamePrimary, v)
	} else if n, ok := t.v.notes[d.ID]; ok {
		t.caption.Text = n.text
		t.caption.Color = th.Color(n.color, v)
	} else if d.Offline {
		t.caption.Text = "Offline · Trusted"
	} else if d.Changed {
		t.caption.Text = "Identity changed"
		t.caption.Color = th.Color(theme.ColorNameError, v)
	} else if d.Away && d.Trusted {
		t.caption.Text = awayMark + " · Trusted"
	} else if d.Away {
		t.caption.Text = awayMark + " · " + typeLabel(d.Type)
	} else if d.Web {
		t.caption.Text = typeLabel(d.Type) + " · " + webMark
	} else if d.Trusted {
		t.caption.Text = typeLabel(d.Type) + " · Trusted"
	} else {
		t.caption.Text = typeLabel(d.Type)
	}
	t.caption.Refresh()

	switch {
	case t.selected:
		t.bg.FillColor = th.Color(theme.ColorNameSelection, v)
	case t.hovered:
		t.bg.FillColor = th.Color(theme.ColorNameHover, v)
	default:
		t.bg.FillColor = color.Transparent
	}
	// Keyboard focus: a ring in the theme's focus colour.
	t.bg.StrokeWidth = 0
	t.bg.StrokeColor = color.Transparent
	if t.focused {
		t.bg.StrokeWidth = 2
		t.bg.StrokeColor = th.Color(theme.ColorNamePrimary, v)
	}
	t.bg.Refresh()
}

func cmpName(d engine.Device) string {
	return peerName(engine.Peer{ID: d.ID, Name: d.Name})
}

func (t *deviceTile) Tapped(ev *fyne.PointEvent) {
	t.v.u.showDeviceMenu(t, ev.AbsolutePosition)
}

func (t *deviceTile) TappedSecondary(*fyne.PointEvent) { t.v.toggle(t.dev.ID) }

func (t *deviceTile) MouseIn(*desktop.MouseEvent) {
	t.hovered = true
	t.update()
}

func (t *deviceTile) MouseMoved(*desktop.MouseEvent) {}

func (t *deviceTile) MouseOut() {
	t.hovered = false
	t.update()
}

func (t *deviceTile) Cursor() desktop.Cursor { return desktop.PointerCursor }

// FocusGained marks the tile: Tab moves between devices.
func (t *deviceTile) FocusGained() {
	t.focused = true
	t.update()
}

func (t *deviceTile) FocusLost() {
	t.focused = false
	t.update()
}

func (t *deviceTile) TypedRune(rune) {}

// TypedKey opens the device's menu on Enter or Space (the menu then takes
// the arrow keys), and selects the device on Insert, like a right click.
func (t *deviceTile) TypedKey(ev *fyne.KeyEvent) {
	switch ev.Name {
	case fyne.KeyReturn, fyne.KeyEnter, fyne.KeySpace:
		pos := t.v.u.app.Driver().AbsolutePositionForObject(t)
		t.v.u.showDeviceMenu(t, pos.AddXY(t.Size().Width/2, t.Size().Height*0.6))
	case fyne.KeyInsert:
		t.v.toggle(t.dev.ID)
	}
}

// tileLayout stacks the avatar, the name and the caption, centred.
type tileLayout struct{}

func (tileLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	av, name, caption := objs[0].MinSize(), objs[1].MinSize(), objs[2].MinSize()
	return fyne.NewSize(max(av.Width, caption.Width), 6+av.Height-4+name.Height-8+caption.Height+4)
}

func (tileLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	av, name, caption := objs[0], objs[1], objs[2]
	avs := av.MinSize()
	y := float32(6)
	av.Move(fyne.NewPos((size.Width-avs.Width)/2, y))
	av.Resize(avs)
	y += avs.Height - 4 // the label has padding of its own
	nh := name.MinSize().Height
	name.Move(fyne.NewPos(0, y))
	name.Resize(fyne.NewSize(size.Width, nh))
	y += nh - 8
	ch := caption.MinSize().Height
	caption.Move(fyne.NewPos(0, y))
	caption.Resize(fyne.NewSize(size.Width, ch))
}

// showDeviceMenu opens the actions for one device at pos.
func (u *UI) showDeviceMenu(t *deviceTile, pos fyne.Position) {
	widget.ShowPopUpMenuAtPosition(u.deviceMenu(t.dev), u.win.Canvas(), pos)
}

// deviceMenu is the actions for one device (or for the selection it is in).
func (u *UI) deviceMenu(d engine.Device) *fyne.Menu {
	devs := []engine.Device{d}
	// With several selected and this one among them, act on all of them.
	if sel := u.nearby.selectedDevices(); len(sel) > 1 && u.nearby.selected[d.ID] {
		devs = sel
	}
	// The menu names what it acts on: the pointer may have moved on.
	title := fyne.NewMenuItem(cmpName(d), nil)
	if len(devs) > 1 {
		title.Label = fmt.Sprintf("%d selected devices", len(devs))
	}
	title.Disabled = true
	items := []*fyne.MenuItem{
		title,
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItemWithIcon("Send files…", theme.FileIcon(), func() { u.openSendSheet(devs, pickFile) }),
		fyne.NewMenuItemWithIcon("Send folder…", theme.FolderIcon(), func() { u.openSendSheet(devs, pickFolder) }),
		fyne.NewMenuItemWithIcon("Send text…", theme.MailComposeIcon(), func() { u.promptText(devs) }),
		fyne.NewMenuItemWithIcon("Send clipboard", theme.ContentPasteIcon(), func() { u.sendClipboard(devs) }),
		fyne.NewMenuItemSeparator(),
	}
	if len(devs) == 1 {
		items = append(items, fyne.NewMenuItemWithIcon("Messages", theme.MailComposeIcon(), func() {
			u.openConversation(engine.Peer{ID: d.ID, Name: d.Name})
		}))
	}
	sel := "Select"
	if u.nearby.selected[d.ID] {
		sel = "Deselect"
	}
	items = append(items, fyne.NewMenuItemWithIcon(sel, theme.CheckButtonCheckedIcon(), func() { u.nearby.toggle(d.ID) }))
	if d.Trusted {
		items = append(items, fyne.NewMenuItemWithIcon("Untrust", theme.CancelIcon(), func() { u.setTrusted(d.ID, cmpName(d), false) }))
	} else if d.Known {
		items = append(items, fyne.NewMenuItemWithIcon("Trust…", theme.ConfirmIcon(), func() { u.confirmTrust(d) }))
	} else {
		// Trust pins a certificate a connection proved: there is none yet.
		later := fyne.NewMenuItemWithIcon("Trust… (after a first transfer)", theme.ConfirmIcon(), nil)
		later.Disabled = true
		items = append(items, later)
	}
	return fyne.NewMenu("", items...)
}

// confirmTrust asks before trusting a device, with a code to compare on
// both screens: a device in the middle shows other digits.
func (u *UI) confirmTrust(d engine.Device) {
	eng, ok := u.engine()
	if !ok {
		return
	}
	name := cmpName(d)
	code, err := eng.TrustCode(d.ID)
	if err != nil {
		u.ShowError(fmt.Errorf("could not trust %s: %w", name, err))
		return
	}
	intro := widget.NewLabelWithStyle(fmt.Sprintf("Choose Trust on %s too, and compare:", name), fyne.TextAlignCenter, fyne.TextStyle{})
	intro.Truncation = fyne.TextTruncateEllipsis
	codeLabel := widget.NewLabelWithStyle(code, fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	codeLabel.SizeName = theme.SizeNameSubHeadingText
	hint := newMuted("Trust only if both screens show the same code.", theme.SizeNameText, fyne.TextAlignCenter)
	body := container.NewVBox(intro, codeLabel, hint)
	dlg := dialog.NewCustomConfirm(fmt.Sprintf("Trust %s?", name), "Trust", "Cancel", body, func(yes bool) {
		if yes {
			u.setTrusted(d.ID, name, true)
		}
	}, u.win)
	dlg.Show()
}

// setTrusted trusts or untrusts a device and shows the result.
func (u *UI) setTrusted(id, name string, trusted bool) {
	eng, ok := u.engine()
	if !ok {
		return
	}
	if err := eng.SetTrusted(id, trusted); err != nil {
		verb := "trust"
		if !trusted {
			verb = "untrust"
		}
		u.ShowError(fmt.Errorf("could not %s %s: %w", verb, name, err))
		return
	}
	// The engine reports the new mark with the next device list; show it now.
	devs := slices.Clone(u.devices) // the engine's slice is not ours to change
	for i, d := range devs {
		if d.ID == id {
			devs[i].Trusted = trusted
		}
	}
	u.setDevices(devs)
	u.settings.refreshTrusted()
}
