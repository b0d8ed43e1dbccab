package app

import (
	"fmt"
	"math"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
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

// unencryptedMark is the caption of a LocalSend device that speaks it over
// plain HTTP (its avatar's LocalSend tag is then warning-coloured).
const unencryptedMark = "Not encrypted"

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
