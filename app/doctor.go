package app

import (
	"context"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
)

// doctorWait is how long the network check listens (engine.Diagnose).
const doctorWait = 3 * time.Second

// networkItem is Settings' *Check the network*: the engine's network check
// (the same as `peerdrop doctor`), its report shown in a dialog.
func (s *settingsView) networkItem() *widget.FormItem {
	s.check = widget.NewButtonWithIcon("Check the network", theme.SearchIcon(), s.checkNetwork)
	item := widget.NewFormItem("Network", s.check)
	item.HintText = "When devices do not show up or cannot connect: what the network lets through."
	return item
}

// checkNetwork runs the check off the Fyne thread and shows its report.
func (s *settingsView) checkNetwork() {
	s.check.Disable()
	s.check.SetText("Checking…")
	s.u.background(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), doctorWait+10*time.Second)
		defer cancel()
		r, err := s.u.eng.Diagnose(ctx, engine.DiagnoseOptions{Wait: doctorWait})
		return func() {
			s.check.Enable()
			s.check.SetText("Check the network")
			text := r.Text()
			if err != nil {
				text = "The check did not finish: " + err.Error()
			}
			s.showReport(text)
		}
	})
}

// showReport shows a network check's report.
func (s *settingsView) showReport(text string) {
	body := widget.NewLabel(text)
	body.Wrapping = fyne.TextWrapWord
	body.Selectable = true
	scroll := container.NewVScroll(body)
	scroll.SetMinSize(fyne.NewSize(560, 360))
	s.report = dialog.NewCustom("Network check", "Close", scroll, s.u.win)
	s.report.Show()
}
