package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// quickSaveWarning is what turning quick save on means, said before it is on.
const quickSaveWarning = "Anyone on this network can then put files on this computer, without asking. " +
	"Turn it on only on a network you trust, and off again when you are done."

// quickSaveBar is the line in Nearby's header that shows while quick save
// is on, with a button to turn it off; it is made once, hidden while off.
func (u *UI) quickSaveBar() *fyne.Container {
	if u.quickBar != nil {
		return u.quickBar
	}
	label := widget.NewLabel("Quick save is on: files from anyone on this network are saved without asking.")
	label.Importance = widget.WarningImportance
	label.Truncation = fyne.TextTruncateEllipsis
	off := widget.NewButton("Turn off", func() { u.setQuickSave(false) })
	off.Importance = widget.LowImportance
	// Inset as the header above it is.
	u.quickBar = container.New(layout.NewCustomPaddedLayout(0, 0, 8, 8),
		container.NewBorder(nil, nil, widget.NewIcon(theme.WarningIcon()), off, label))
	if !LoadSettings(u.app.Preferences()).QuickSave {
		u.quickBar.Hide()
	}
	return u.quickBar
}

// askQuickSave asks before quick save is turned on; it is turned on only
// if the user confirms.
func (u *UI) askQuickSave() {
	msg := widget.NewLabel(quickSaveWarning)
	msg.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("Turn on quick save?", "Turn on", "Cancel", container.New(fixedWidth(360), msg), func(ok bool) {
		if ok {
			u.setQuickSave(true)
		}
	}, u.win)
	d.Show()
}

// setQuickSave turns quick save on or off: in the engine, the preferences,
// the Settings checkbox and Nearby's indicator.
func (u *UI) setQuickSave(on bool) {
	u.app.Preferences().SetBool(prefQuickSave, on)
	if u.eng != nil {
		u.eng.SetQuickSave(on)
	}
	if u.settings != nil && u.settings.quick != nil {
		// Not SetChecked: its OnChanged would ask again.
		u.settings.quick.Checked = on
		u.settings.quick.Refresh()
	}
	bar := u.quickSaveBar()
	if on {
		bar.Show()
	} else {
		bar.Hide()
	}
	if u.nearby != nil {
		u.nearby.content.Refresh() // Show alone does not lay the header out again
	}
}
