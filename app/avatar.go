package app

import (
	"cmp"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/discovery"
)

// Device type markers: 24x24 outlines drawn with straight lines only (holes
// wind the other way), black so that theme.NewThemedResource recolours them.
func typeSVG(path string) []byte {
	return []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24"><path fill="#000000" d="` + path + `"/></svg>`)
}

var (
	iconDesktop = theme.NewThemedResource(fyne.NewStaticResource("desktop.svg", typeSVG(
		"M2 4H22V17H14V19H17V21H7V19H10V17H2Z M4 6V15H20V6Z")))
	iconLaptop = theme.NewThemedResource(fyne.NewStaticResource("laptop.svg", typeSVG(
		"M4 5H20V15H4Z M6 7V13H18V7Z M1 17H23V19H1Z")))
	iconPhone = theme.NewThemedResource(fyne.NewStaticResource("phone.svg", typeSVG(
		"M7 2H17V22H7Z M9 4V17.5H15V4Z M11 19V20.5H13V19Z")))
	iconTablet = theme.NewThemedResource(fyne.NewStaticResource("tablet.svg", typeSVG(
		"M4 2H20V22H4Z M6 4V17.5H18V4Z M11 19V20.5H13V19Z")))
	iconServer = theme.NewThemedResource(fyne.NewStaticResource("server.svg", typeSVG(
		"M3 3H21V10H3Z M6 5.5V7.5H8V5.5Z M11 5.75V7.25H18V5.75Z "+
			"M3 13H21V20H3Z M6 15.5V17.5H8V15.5Z M11 15.75V17.25H18V15.75Z")))
)

// typeIcon is the marker for a device type.
func typeIcon(t string) fyne.Resource {
	switch t {
	case discovery.TypeDesktop:
		return iconDesktop
	case discovery.TypeLaptop:
		return iconLaptop
	case discovery.TypePhone:
		return iconPhone
	case discovery.TypeTablet:
		return iconTablet
	case discovery.TypeServer:
		return iconServer
	}
	return theme.ComputerIcon()
}

// localSendTag is the text of the tag on a LocalSend device's avatar.
const localSendTag = "LocalSend"

// avatar is a device's face: a circle in the device's colour with its
// initials, a badge with its type at the bottom right, a green check at the
// top right when it is trusted, a "LocalSend" tag at the bottom left for a
// LocalSend app (warning-coloured when it is not encrypted), and a ring
// when it is selected.
type avatar struct {
	widget.BaseWidget
	id, name, kind    string
	trusted, selected bool
	dimmed            bool // the device is offline
	// localSend: a LocalSend app; unencrypted: one that speaks LocalSend
	// over plain HTTP.
	localSend, unencrypted bool
	diameter               float32
}

func newAvatar(id, name, kind string, diameter float32) *avatar {
	a := &avatar{id: id, name: name, kind: kind, diameter: diameter}
	a.ExtendBaseWidget(a)
	return a
}

// set changes what the avatar shows; call Refresh after.
func (a *avatar) set(id, name, kind string, trusted, selected bool) {
	a.id, a.name, a.kind, a.trusted, a.selected = id, name, kind, trusted, selected
}

func (a *avatar) CreateRenderer() fyne.WidgetRenderer {
	r := &avatarRenderer{
		a:       a,
		ring:    canvas.NewCircle(color.Transparent),
		circle:  canvas.NewCircle(color.Transparent),
		text:    canvas.NewText("", color.White),
		badge:   canvas.NewCircle(color.Transparent),
		icon:    canvas.NewImageFromResource(nil),
		trust:   canvas.NewCircle(color.Transparent),
		checked: canvas.NewImageFromResource(theme.NewColoredResource(theme.ConfirmIcon(), theme.ColorNameForegroundOnSuccess)),
		tag:     canvas.NewRectangle(color.Transparent),
		tagText: canvas.NewText(localSendTag, color.Black),
	}
	r.text.TextStyle = fyne.TextStyle{Bold: true}
	r.text.Alignment = fyne.TextAlignCenter
	r.tagText.TextStyle = fyne.TextStyle{Bold: true}
	r.tagText.Alignment = fyne.TextAlignCenter
	r.icon.FillMode = canvas.ImageFillContain
	r.checked.FillMode = canvas.ImageFillContain
	r.Refresh()
	return r
}

type avatarRenderer struct {
	a                          *avatar
	ring, circle, badge, trust *canvas.Circle
	text                       *canvas.Text
	icon, checked              *canvas.Image
	tag                        *canvas.Rectangle // the LocalSend tag's pill
	tagText                    *canvas.Text
}

// ringGap is the room around the circle for the selection ring.
const ringGap = 5

func (r *avatarRenderer) MinSize() fyne.Size {
	d := r.a.diameter + 2*ringGap
	return fyne.NewSize(d, d)
}

func (r *avatarRenderer) Layout(size fyne.Size) {
	d := r.a.diameter
	off := fyne.NewPos((size.Width-d)/2, (size.Height-d)/2)
	r.ring.Move(off.SubtractXY(ringGap-1, ringGap-1))
	r.ring.Resize(fyne.NewSquareSize(d + 2*ringGap - 2))
	r.circle.Move(off)
	r.circle.Resize(fyne.NewSquareSize(d))

	r.text.TextSize = d * 0.36
	th := fyne.MeasureText(r.text.Text, r.text.TextSize, r.text.TextStyle).Height
	r.text.Move(off.AddXY(0, (d-th)/2))
	r.text.Resize(fyne.NewSize(d, th))

	// Badges sit on the circle's edge, at 45 degrees.
	edge := d * 0.854
	b := d * 0.4
	r.badge.Move(off.AddXY(edge-b/2, edge-b/2))
	r.badge.Resize(fyne.NewSquareSize(b))
	ib := b * 0.6
	r.icon.Move(off.AddXY(edge-ib/2, edge-ib/2))
	r.icon.Resize(fyne.NewSquareSize(ib))

	t := d * 0.34
	r.trust.Move(off.AddXY(edge-t/2, d-edge-t/2))
	r.trust.Resize(fyne.NewSquareSize(t))
	ct := t * 0.72
	r.checked.Move(off.AddXY(edge-ct/2, d-edge-ct/2))
	r.checked.Resize(fyne.NewSquareSize(ct))

	// The LocalSend tag is centred on the bottom left 45 degree point,
	// across from the type badge; it is wider than the room beside the
	// circle and reaches past the avatar's left edge into the tile's margin.
	r.tagText.TextSize = max(9, d*0.15)
	ts := fyne.MeasureText(r.tagText.Text, r.tagText.TextSize, r.tagText.TextStyle)
	tw, tagH := ts.Width+2*tagPad, ts.Height+2
	at := off.AddXY(d-edge-tw/2, edge-tagH/2)
	r.tag.Move(at)
	r.tag.Resize(fyne.NewSize(tw, tagH))
	r.tag.CornerRadius = tagH / 2
	r.tagText.Move(at.AddXY(0, 1))
	r.tagText.Resize(fyne.NewSize(tw, ts.Height))
}

// tagPad is the room either side of the LocalSend tag's text.
const tagPad = 5

// tagMinDiameter is the smallest avatar with a LocalSend tag: on a smaller
// one the tag runs into the type badge, and its text is too small to read
// (an offer's header says LocalSend in words instead).
const tagMinDiameter = 64

func (r *avatarRenderer) Refresh() {
	a := r.a
	v := fyne.CurrentApp().Settings().ThemeVariant()
	th := a.Theme()
	bg := th.Color(theme.ColorNameBackground, v)

	r.circle.FillColor = avatarColor(cmp.Or(a.id, a.name))
	if a.dimmed {
		r.circle.FillColor = th.Color(theme.ColorNameDisabled, v)
	}
	r.text.Text = initials(a.name)

	r.ring.FillColor = color.Transparent
	r.ring.StrokeWidth = 3
	r.ring.StrokeColor = color.Transparent
	if a.selected {
		r.ring.StrokeColor = th.Color(theme.ColorNamePrimary, v)
	}

	r.badge.FillColor = bg
	r.badge.StrokeColor = bg
	r.badge.StrokeWidth = 2
	r.icon.Resource = typeIcon(a.kind)
	// Below 40 the type badge is a smudge; the name says enough there. A
	// device whose type we do not know (one that is not nearby, such as a
	// command line that only sends) gets no badge rather than a guess.
	noBadge := a.diameter < 40 || !discovery.ValidType(a.kind)
	r.badge.Hidden, r.icon.Hidden = noBadge, noBadge

	r.trust.FillColor = th.Color(theme.ColorNameSuccess, v)
	r.trust.StrokeColor = bg
	r.trust.StrokeWidth = 2
	r.trust.Hidden = !a.trusted
	r.checked.Hidden = !a.trusted

	r.tag.FillColor = bg
	r.tagText.Color = th.Color(theme.ColorNameForeground, v)
	if a.unencrypted {
		r.tag.FillColor = th.Color(theme.ColorNameWarning, v)
		r.tagText.Color = th.Color(theme.ColorNameForegroundOnWarning, v)
	}
	r.tag.StrokeColor = bg
	r.tag.StrokeWidth = 2
	noTag := a.diameter < tagMinDiameter || !a.localSend
	r.tag.Hidden, r.tagText.Hidden = noTag, noTag

	r.Layout(a.Size())
	for _, o := range r.Objects() {
		o.Refresh()
	}
}

func (r *avatarRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.ring, r.circle, r.text, r.badge, r.icon, r.trust, r.checked, r.tag, r.tagText}
}

func (r *avatarRenderer) Destroy() {}
