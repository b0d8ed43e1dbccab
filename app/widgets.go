package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// newMuted is secondary text in the theme's placeholder colour: quieter
// than a label, still readable (a LowImportance label takes the disabled
// colour, too faint for sentences).
func newMuted(text string, size fyne.ThemeSizeName, align fyne.TextAlign) *widget.RichText {
	return newStyled(text, theme.ColorNamePlaceHolder, size, align)
}

// newStyled is one run of text in a theme colour and size.
func newStyled(text string, color fyne.ThemeColorName, size fyne.ThemeSizeName, align fyne.TextAlign) *widget.RichText {
	rt := widget.NewRichText(&widget.TextSegment{Text: text, Style: widget.RichTextStyle{
		Alignment: align, ColorName: color, SizeName: size, Inline: false,
	}})
	return rt
}

// setStyled changes the text (and colour) of a newStyled text.
func setStyled(rt *widget.RichText, text string, color fyne.ThemeColorName) {
	seg := rt.Segments[0].(*widget.TextSegment)
	if seg.Text == text && seg.Style.ColorName == color {
		return
	}
	seg.Text, seg.Style.ColorName = text, color
	rt.Refresh()
}

// styledText is the text of a newStyled text.
func styledText(rt *widget.RichText) string {
	return rt.Segments[0].(*widget.TextSegment).Text
}

// tighten stacks labels closer than a VBox does (a label pads itself).
func tighten(objs ...fyne.CanvasObject) *fyne.Container {
	return newTightVBox(-theme.Padding()*1.5, objs...)
}

func newTightVBox(gap float32, objs ...fyne.CanvasObject) *fyne.Container {
	return &fyne.Container{Layout: layout.NewCustomPaddedVBoxLayout(gap), Objects: objs}
}

// fixedWidth lays its objects out at a fixed width (and the height they
// need there), so that wrapped text wraps at that width; in a window too
// narrow for it, at the window's width less a dialog's frame, so that a
// dialog never makes the window wider.
type fixedWidth float32

// dialogFrame is what a dialog adds around its content, in width (its
// padding and the pop-up's).
const dialogFrame = 48

// minDialogWidth is the narrowest a fixedWidth gets.
const minDialogWidth = 240

func (w fixedWidth) width(objs []fyne.CanvasObject) float32 {
	width := float32(w)
	if len(objs) == 0 || fyne.CurrentApp() == nil {
		return width
	}
	if c := fyne.CurrentApp().Driver().CanvasForObject(objs[0]); c != nil {
		if avail := c.Size().Width - dialogFrame; avail > 0 && avail < width {
			width = max(avail, minDialogWidth)
		}
	}
	return width
}

func (w fixedWidth) MinSize(objs []fyne.CanvasObject) fyne.Size {
	width := w.width(objs)
	var h float32
	for _, o := range objs {
		// Wrapped text knows its height only at its width: lay it out
		// there first (the window may have narrowed since).
		if o.Size().Width != width {
			o.Resize(fyne.NewSize(width, o.MinSize().Height))
		}
		h = max(h, o.MinSize().Height)
	}
	return fyne.NewSize(width, h)
}

func (w fixedWidth) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
}

// withTrailing lays main out with a set of buttons at its trailing edge,
// centred vertically: the wide set (with their text) while main keeps at
// least room, else the narrow set (their icons only, see iconTwins). The
// row's minimum width is main's and the narrow set's: a narrow window
// shows icons instead of being pushed wider.
type withTrailing struct{ room float32 }

func newWithTrailing(room float32, main, wide, narrow fyne.CanvasObject) *fyne.Container {
	// Each set in a stack of its own: the layout shows and hides the
	// stacks, the sets keep whatever visibility their owner gives them.
	return container.New(withTrailing{room: room}, main, container.NewStack(wide), container.NewStack(narrow))
}

func (l withTrailing) MinSize(objs []fyne.CanvasObject) fyne.Size {
	main, wide, narrow := objs[0].MinSize(), objs[1].MinSize(), objs[2].MinSize()
	return fyne.NewSize(main.Width+theme.Padding()+narrow.Width, max(main.Height, wide.Height, narrow.Height))
}

func (l withTrailing) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	main, wide, narrow := objs[0], objs[1], objs[2]
	show, hide := wide, narrow
	if size.Width-wide.MinSize().Width-theme.Padding() < max(main.MinSize().Width, l.room) {
		show, hide = narrow, wide
	}
	hide.Hide()
	show.Show()
	ts := show.MinSize()
	show.Resize(ts)
	show.Move(fyne.NewPos(size.Width-ts.Width, (size.Height-ts.Height)/2))
	main.Move(fyne.NewPos(0, 0))
	main.Resize(fyne.NewSize(max(size.Width-ts.Width-theme.Padding(), 0), size.Height))
}

// iconTwins is a row of icon-only buttons, one per button in row (the
// same action; a button without an icon keeps its text), shown and enabled
// as those are (none while row is hidden).
func iconTwins(row *fyne.Container) *fyne.Container {
	t := &twins{row: row}
	var objs []fyne.CanvasObject
	for _, o := range row.Objects {
		b, ok := o.(*widget.Button)
		if !ok {
			continue
		}
		text := ""
		if b.Icon == nil {
			text = b.Text
		}
		twin := widget.NewButtonWithIcon(text, b.Icon, func() {
			if b.OnTapped != nil {
				b.OnTapped()
			}
		})
		twin.Importance = b.Importance
		t.orig, t.twin = append(t.orig, b), append(t.twin, twin)
		objs = append(objs, twin)
	}
	return container.New(t, objs...)
}

type twins struct {
	row        *fyne.Container
	orig, twin []*widget.Button
}

// sync shows and enables each twin as its original is.
func (t *twins) sync() {
	for i, b := range t.orig {
		tw := t.twin[i]
		if visible := t.row.Visible() && b.Visible(); visible != tw.Visible() {
			if visible {
				tw.Show()
			} else {
				tw.Hide()
			}
		}
		if b.Disabled() != tw.Disabled() {
			if b.Disabled() {
				tw.Disable()
			} else {
				tw.Enable()
			}
		}
	}
}

func (t *twins) MinSize(objs []fyne.CanvasObject) fyne.Size {
	t.sync()
	return layout.NewHBoxLayout().MinSize(objs)
}

func (t *twins) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	t.sync()
	layout.NewHBoxLayout().Layout(objs, size)
}

// centred stacks objects in the middle of the space at its full width, their
// text wrapping: in a narrow window it wraps instead of widening the window
// (as it would in a container.NewCenter).
func centred(objs ...fyne.CanvasObject) *fyne.Container {
	for _, o := range objs {
		wrapTexts(o)
	}
	return container.NewVBox(append(append([]fyne.CanvasObject{layout.NewSpacer()}, objs...), layout.NewSpacer())...)
}

// wrapTexts makes the labels and rich texts in o wrap at word boundaries.
func wrapTexts(o fyne.CanvasObject) {
	switch x := o.(type) {
	case *widget.Label:
		x.Wrapping = fyne.TextWrapWord
	case *widget.RichText:
		x.Wrapping = fyne.TextWrapWord
	case *fyne.Container:
		for _, c := range x.Objects {
			wrapTexts(c)
		}
	}
}

// fillGrid lays cells out in rows as container.NewGridWrap does, as many
// columns as fit, but shares the width left over among the columns: the
// grid fills a wide window instead of leaving a gap at its right.
type fillGrid struct {
	cell fyne.Size
	rows int // of the last layout: the minimum height follows it
}

func newFillGrid(cell fyne.Size) *fillGrid { return &fillGrid{cell: cell} }

func (g *fillGrid) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	pad := theme.Padding()
	cols := 1
	if size.Width > g.cell.Width {
		cols = int((size.Width + pad) / (g.cell.Width + pad))
	}
	w := max(g.cell.Width, (size.Width-pad*float32(cols-1))/float32(cols))
	g.rows = 0
	i := 0
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		if i%cols == 0 {
			g.rows++
		}
		col, row := i%cols, i/cols
		o.Move(fyne.NewPos(float32(col)*(w+pad), float32(row)*(g.cell.Height+pad)))
		o.Resize(fyne.NewSize(w, g.cell.Height))
		i++
	}
}

func (g *fillGrid) MinSize([]fyne.CanvasObject) fyne.Size {
	rows := max(g.rows, 1)
	return fyne.NewSize(g.cell.Width, g.cell.Height*float32(rows)+theme.Padding()*float32(rows-1))
}
