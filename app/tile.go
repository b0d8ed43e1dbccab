package app

import (
	"fmt"
	"image/color"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/thepeerdrop/peerdrop/engine"
)

// A device on the Nearby tab: its tile (avatar, name, marks, what it is
// doing), the tile's pointer and keyboard handling, and its menu.

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
	t.av.localSend, t.av.unencrypted = d.LocalSend, d.Unencrypted
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
	} else if d.LocalSend && d.Unencrypted {
		// Before Trusted: the check on the avatar says that one.
		t.caption.Text = typeLabel(d.Type) + " · " + unencryptedMark
		t.caption.Color = th.Color(theme.ColorNameWarning, v)
	} else if d.LocalSend {
		t.caption.Text = typeLabel(d.Type) + " · " + localSendTag
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
	return peerName(d.Peer())
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
			u.openConversation(d.Peer())
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

var (
	_ fyne.Tappable          = (*deviceTile)(nil)
	_ fyne.SecondaryTappable = (*deviceTile)(nil)
	_ desktop.Hoverable      = (*deviceTile)(nil)
	_ desktop.Cursorable     = (*deviceTile)(nil)
	_ fyne.Focusable         = (*deviceTile)(nil)
)
