package app

import (
	"fyne.io/fyne/v2"
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
// need there), so that wrapped text wraps at that width.
type fixedWidth float32

func (w fixedWidth) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var h float32
	for _, o := range objs {
		h = max(h, o.MinSize().Height)
	}
	return fyne.NewSize(float32(w), h)
}

func (w fixedWidth) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
}
