package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/thepeerdrop/peerdrop/engine"
)

// How long the dialog waits for the engine: a code from the server, and a
// whole pairing (the other device has to answer).
const (
	codeTimeout = 20 * time.Second
	joinTimeout = 60 * time.Second
	qrPixels    = 160
)

// pairDialog is "Pair a device": the code of this device (text and QR) for
// the other to type or scan, and a field for the code the other shows.
type pairDialog struct {
	u   *UI
	dlg *dialog.CustomDialog

	code     *widget.Label
	qr       *canvas.Image
	expires  *widget.RichText
	entry    *widget.Entry
	join     *widget.Button
	status   *widget.RichText
	settings *widget.Button // shown when no server is set
	joining  bool
}

// openPairDialog shows the dialog and asks the engine for a code.
func (u *UI) openPairDialog() {
	eng, ok := u.engine()
	if !ok {
		return
	}
	if u.pair != nil {
		return // one at a time
	}
	p := &pairDialog{u: u}
	p.code = widget.NewLabelWithStyle("…", fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	p.code.SizeName = theme.SizeNameSubHeadingText
	p.qr = canvas.NewImageFromResource(nil)
	p.qr.FillMode = canvas.ImageFillContain
	p.qr.ScaleMode = canvas.ImageScalePixels
	// Room for the QR from the start: the dialog does not grow when it comes.
	p.qr.SetMinSize(fyne.NewSquareSize(qrPixels))
	p.expires = newMuted("Getting a code from the server…", theme.SizeNameCaptionText, fyne.TextAlignCenter)

	p.entry = widget.NewEntry()
	p.entry.SetPlaceHolder("XXXXX-XXXXX-XXXXX")
	p.entry.OnSubmitted = func(string) { p.submit() }
	p.join = widget.NewButtonWithIcon("Pair", theme.ConfirmIcon(), p.submit)
	p.join.Importance = widget.HighImportance
	p.status = newStyled("", theme.ColorNameForeground, theme.SizeNameText, fyne.TextAlignLeading)
	p.status.Wrapping = fyne.TextWrapWord
	p.settings = widget.NewButtonWithIcon("Open Settings", theme.SettingsIcon(), func() {
		p.dlg.Hide()
		u.tabs.Select(u.settingsTab)
		u.win.Canvas().Focus(u.settings.signal)
	})
	p.settings.Hide()

	show := newMuted("On the other device, choose Pair a device and type this code, or scan it:",
		theme.SizeNameText, fyne.TextAlignLeading)
	show.Wrapping = fyne.TextWrapWord
	typeIt := newMuted("Or type the code the other device shows:", theme.SizeNameText, fyne.TextAlignLeading)
	typeIt.Wrapping = fyne.TextWrapWord
	body := container.New(fixedWidth(380),
		container.NewVBox(
			show, p.code, container.NewCenter(p.qr), p.expires,
			widget.NewSeparator(),
			typeIt, container.NewBorder(nil, nil, nil, p.join, p.entry),
			p.status, container.NewHBox(p.settings),
		))
	closeBtn := widget.NewButton("Close", func() { p.dlg.Hide() })
	p.dlg = dialog.NewCustomWithoutButtons("Pair a device", body, u.win)
	p.dlg.SetButtons([]fyne.CanvasObject{closeBtn})
	p.dlg.SetOnClosed(func() {
		if u.pair == p {
			u.pair = nil
		}
		eng.CancelPairing() // the code seen here dies with the dialog
	})
	u.pair = p
	p.dlg.Show()

	u.background(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), codeTimeout)
		defer cancel()
		c, err := eng.StartPairing(ctx)
		return func() {
			if u.pair != p {
				return // closed meanwhile
			}
			if errors.Is(err, engine.ErrPairingCancelled) {
				return // a pairing, or the dialog's end, has the last word
			}
			if err != nil {
				p.codeFailed(err)
				return
			}
			p.showCode(c)
		}
	})
}

// showCode shows a code to type and its QR.
func (p *pairDialog) showCode(c engine.PairingCode) {
	p.code.SetText(c.Code)
	if img, err := qrcode.New(cmp.Or(c.Link, c.Code), qrcode.Medium); err == nil {
		p.qr.Image = img.Image(qrPixels)
		p.qr.Resource = nil
		p.qr.Show()
		p.qr.Refresh()
	}
	mins := max(int(time.Until(c.Expires).Round(time.Minute)/time.Minute), 1)
	setStyled(p.expires, fmt.Sprintf("Valid until %s (%d minutes). A new code shows if it expires.",
		c.Expires.Local().Format("15:04"), mins), theme.ColorNamePlaceHolder)
}

// codeFailed says why there is no code.
func (p *pairDialog) codeFailed(err error) {
	p.code.SetText("—")
	p.qr.Hide()
	setStyled(p.expires, "No code to show.", theme.ColorNamePlaceHolder)
	p.fail(err)
}

// fail shows an error in the dialog, and the way to Settings when no
// server is set.
func (p *pairDialog) fail(err error) {
	setStyled(p.status, errorSentence(err), theme.ColorNameError)
	if errors.Is(err, engine.ErrNoServer) {
		p.settings.Show()
		p.entry.Disable()
		p.join.Disable()
	}
}

// submit pairs with the code typed.
func (p *pairDialog) submit() {
	code := strings.TrimSpace(p.entry.Text)
	if p.joining {
		return
	}
	if code == "" {
		setStyled(p.status, "Type the code the other device shows.", theme.ColorNameError)
		return
	}
	eng, ok := p.u.engine()
	if !ok {
		return
	}
	p.joining = true
	p.join.Disable()
	setStyled(p.status, "Pairing…", theme.ColorNamePlaceHolder)
	u := p.u
	u.background(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
		defer cancel()
		peer, err := eng.JoinPairing(ctx, code)
		return func() {
			p.joining = false
			p.join.Enable()
			if u.pair != p {
				return
			}
			if err != nil {
				p.fail(err)
				return
			}
			p.entry.SetText("")
			p.paired(peer)
		}
	})
}

// paired says that a device paired, from either side.
func (p *pairDialog) paired(peer engine.Peer) {
	setStyled(p.status, fmt.Sprintf("Paired with %s. It shows in Nearby, marked away while it is on another network.",
		peerName(peer)), theme.ColorNameSuccess)
}

// errorSentence is err's message as a sentence.
func errorSentence(err error) string {
	s := err.Error()
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// background runs work off the Fyne thread and applies what it returns on
// the Fyne thread (tests run both at once, in order).
func (u *UI) background(work func() func()) {
	if u.runNow {
		work()()
		return
	}
	go func() {
		apply := work()
		fyne.Do(apply)
	}()
}
