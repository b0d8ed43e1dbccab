package app

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buttonIn finds a shown button by its text, dialogs included.
func buttonIn(w fyne.Window, text string) *widget.Button {
	var found *widget.Button
	c := w.Canvas()
	for _, r := range append([]fyne.CanvasObject{c.Content()}, c.Overlays().List()...) {
		walk(r, func(o fyne.CanvasObject) {
			if b, ok := o.(*widget.Button); ok && b.Text == text && found == nil {
				found = b
			}
		})
	}
	return found
}

// TestQuickSaveAsksAndShows: ticking quick save asks first, with the
// warning; cancelling leaves it off; confirming turns it on in the engine
// and the preferences and shows the line in Nearby, whose button turns it
// off again.
func TestQuickSaveAsksAndShows(t *testing.T) {
	u, f := newTestUI(t)
	s := u.settings
	assert.False(t, s.quick.Checked, "off by default")
	assert.False(t, shows(u.win, "Quick save is on"))

	test.Tap(s.quick)
	assert.True(t, shows(u.win, "Anyone on this network can then put files on this computer"), "%q", texts(u.win))
	assert.False(t, s.quick.Checked, "not on before it is confirmed")
	test.Tap(buttonIn(u.win, "Cancel"))
	assert.False(t, s.quick.Checked)
	assert.Empty(t, f.Calls())

	test.Tap(s.quick)
	require.NotNil(t, buttonIn(u.win, "Turn on"))
	test.Tap(buttonIn(u.win, "Turn on"))
	assert.Equal(t, []string{"SetQuickSave true"}, f.Calls())
	assert.True(t, s.quick.Checked)
	assert.True(t, LoadSettings(u.app.Preferences()).QuickSave)
	assert.True(t, shows(u.win, "Quick save is on"), "Nearby says so: %q", texts(u.win))
	assert.Positive(t, u.quickBar.Size().Height, "the line is laid out, not only unhidden")
	u.win.Canvas().Capture() // and it draws

	test.Tap(buttonIn(u.win, "Turn off"))
	assert.Equal(t, []string{"SetQuickSave true", "SetQuickSave false"}, f.Calls())
	assert.False(t, s.quick.Checked)
	assert.False(t, LoadSettings(u.app.Preferences()).QuickSave)
	assert.False(t, shows(u.win, "Quick save is on"))
}
