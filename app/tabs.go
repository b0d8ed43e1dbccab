package app

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
)

// tabsFit lays the tabs out at the window's size and, in a window too
// narrow for every tab's title, shortens the titles to their icons (and a
// count, "Transfers (3)" → "3"), so that all four tabs stay in view
// instead of some going into an overflow menu. Whoever sets a tab's title
// sets the full one; it is shortened here at the next layout.
type tabsFit struct {
	tabs  *container.AppTabs
	full  map[*container.TabItem]string // the title each tab was given
	shown map[*container.TabItem]string // the title set here
}

func newTabsFit(tabs *container.AppTabs) *fyne.Container {
	return container.New(&tabsFit{tabs: tabs, full: map[*container.TabItem]string{}, shown: map[*container.TabItem]string{}}, tabs)
}

func (l *tabsFit) MinSize(objs []fyne.CanvasObject) fyne.Size { return objs[0].MinSize() }

func (l *tabsFit) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	l.fit(size.Width)
	objs[0].Move(fyne.NewPos(0, 0))
	objs[0].Resize(size)
}

// fit sets the titles for this width.
func (l *tabsFit) fit(width float32) {
	var need float32
	for _, t := range l.tabs.Items {
		if shown, ok := l.shown[t]; !ok || t.Text != shown {
			l.full[t] = t.Text // set by its owner since
		}
		need += tabWidth(l.full[t])
	}
	narrow := width < need
	changed := false
	for _, t := range l.tabs.Items {
		want := l.full[t]
		if narrow {
			want = shortTitle(want)
		}
		if t.Text != want {
			t.Text = want
			changed = true
		}
		l.shown[t] = want
	}
	if changed {
		l.tabs.Refresh()
	}
}

// tabWidth is about what a tab with an icon and this title takes.
func tabWidth(title string) float32 {
	text := fyne.MeasureText(title, theme.TextSize(), fyne.TextStyle{Bold: true})
	return text.Width + theme.IconInlineSize() + theme.Padding() + 2*theme.InnerPadding()
}

// shortTitle is a tab's title when narrow: its count, if it has one.
func shortTitle(title string) string {
	if i := strings.LastIndexByte(title, '('); i >= 0 && strings.HasSuffix(title, ")") {
		return title[i+1 : len(title)-1]
	}
	return ""
}
