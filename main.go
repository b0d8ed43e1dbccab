// Command thepeerdrop is the ThePeerDrop desktop app.
//
// This file is only the entry point: it opens the main window with a
// placeholder. The full UI lives in package app (a later issue), which adapts
// engine events to widgets; the networking lives in discovery, signaling,
// peer and transfer. The headless command line is cmd/peerdrop.
package main

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

func main() {
	a := app.NewWithID("org.thepeerdrop.app")
	w := a.NewWindow("ThePeerDrop")

	title := widget.NewLabelWithStyle("Nearby devices will appear here.",
		fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	hint := widget.NewLabelWithStyle("Open ThePeerDrop on another device on this network.",
		fyne.TextAlignCenter, fyne.TextStyle{Italic: true})

	w.SetContent(container.NewCenter(container.NewVBox(title, hint)))
	w.Resize(fyne.NewSize(480, 360))
	w.ShowAndRun()
}
