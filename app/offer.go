package app

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// offerPrompt is the dialog for one incoming offer.
type offerPrompt struct {
	offer           engine.Offer
	dlg             *dialog.CustomDialog
	accept, decline *widget.Button
}

// showOffer notifies the desktop and asks the user about an offer.
func (u *UI) showOffer(o engine.Offer) {
	if _, ok := u.offers[o.ID]; ok {
		return
	}
	notified := u.notifyOffer(o) // with Accept and Decline: no need to raise the window
	if !notified {
		u.app.SendNotification(fyne.NewNotification("ThePeerDrop", offerNotice(o)))
	}

	p := &offerPrompt{offer: o}
	p.decline = widget.NewButtonWithIcon("Decline", theme.CancelIcon(), func() { u.answer(o.ID, false) })
	p.accept = widget.NewButtonWithIcon("Accept", theme.ConfirmIcon(), func() { u.answer(o.ID, true) })
	p.accept.Importance = widget.HighImportance

	title := "Incoming files"
	if o.Files == 0 && o.Folders == 0 {
		title = "Incoming message"
	}
	p.dlg = dialog.NewCustomWithoutButtons(title, u.offerContent(o), u.win)
	p.dlg.SetButtons([]fyne.CanvasObject{p.decline, p.accept})
	u.offers[o.ID] = p
	p.dlg.Show()
	if !notified {
		u.raiseWindow() // it may be hidden in the tray
	}

	if h := u.hook.Load(); h != nil && h.answer != "" {
		u.hookAnswer(h, o.ID)
	}
}

// offerContent says who offers what, and the code to compare.
func (u *UI) offerContent(o engine.Offer) fyne.CanvasObject {
	kind := o.Type // what the sender's hello says: it may not advertise
	if d, ok := u.device(o.From.ID); ok {
		kind = d.Type
	}
	av := newAvatar(o.From.ID, peerName(o.From), kind, 52)
	av.set(o.From.ID, peerName(o.From), kind, o.Trusted, false)

	name := widget.NewLabelWithStyle(peerName(o.From), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	name.SizeName = theme.SizeNameSubHeadingText
	what := "wants to send you " + offerWhat(o)
	if o.Size > 0 {
		what += " · " + humanBytes(o.Size)
	}
	whatLabel := widget.NewLabel(what)
	who := container.NewVBox(name, whatLabel)
	if w := visible.Warning(o.From.Name); w != "" {
		who.Add(lookAlike("The name " + w))
	}
	if o.Trusted {
		tl := widget.NewLabelWithStyle("Trusted device", fyne.TextAlignLeading, fyne.TextStyle{})
		tl.Importance = widget.SuccessImportance
		who.Add(tl)
	}
	parts := []fyne.CanvasObject{
		container.NewBorder(nil, nil, container.NewCenter(av), nil, tighten(who.Objects...)),
	}

	if len(o.First) > 0 {
		files := container.NewVBox()
		for _, n := range o.First {
			// Invisible characters escaped: "a\u200Bb.txt", not "ab.txt".
			l := widget.NewLabel(visible.Escape(n))
			l.Truncation = fyne.TextTruncateEllipsis
			files.Add(container.NewBorder(nil, nil, widget.NewIcon(theme.FileIcon()), nil, l))
			if w := visible.Warning(n); w != "" {
				files.Add(lookAlike("The name above " + w))
			}
		}
		total := o.Files + o.Folders
		if more := total - len(o.First); more > 0 && total > 0 {
			files.Add(newMuted(fmt.Sprintf("and %d more", more), theme.SizeNameText, fyne.TextAlignLeading))
		}
		parts = append(parts, widget.NewSeparator(), tighten(files.Objects...))
	}

	if o.Text != "" {
		text := widget.NewLabel(visible.Text(o.Text))
		text.Wrapping = fyne.TextWrapWord
		bg := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
		bg.CornerRadius = theme.InputRadiusSize() * 2
		parts = append(parts, widget.NewSeparator(), container.NewStack(bg, text))
	}

	codeLabel := widget.NewLabel("Verification code")
	code := widget.NewLabelWithStyle(o.Code, fyne.TextAlignTrailing, fyne.TextStyle{Monospace: true})
	code.SizeName = theme.SizeNameSubHeadingText
	check := newMuted(fmt.Sprintf("Go ahead if %s shows the same code.", peerName(o.From)), theme.SizeNameText, fyne.TextAlignLeading)
	check.Wrapping = fyne.TextWrapWord
	if o.Code != "" {
		parts = append(parts, widget.NewSeparator(),
			tighten(container.NewBorder(nil, nil, codeLabel, code), check))
	}

	return container.New(fixedWidth(420), container.NewVBox(parts...))
}

// lookAlike is a warning under a name that mixes scripts, the way look-alike
// names ("pаypal" with a Cyrillic "а") are made.
func lookAlike(text string) fyne.CanvasObject {
	l := widget.NewLabel(text)
	l.Importance = widget.WarningImportance
	l.Wrapping = fyne.TextWrapWord
	return l
}

// answer accepts or declines an offer and closes its prompt.
func (u *UI) answer(id string, accept bool) {
	eng, ok := u.engine()
	if !ok {
		return
	}
	p := u.offers[id]
	err := eng.Answer(id, accept)
	if p != nil {
		delete(u.offers, id)
		p.dlg.Hide()
		u.withdrawNotice(id)
	}
	if err != nil {
		verb := "accept"
		if !accept {
			verb = "decline"
		}
		from := "the offer"
		if p != nil {
			from = "the offer from " + peerName(p.offer.From)
		}
		u.ShowError(fmt.Errorf("could not %s %s: %w", verb, from, err))
	}
}

// closeOffer hides an offer's prompt once the engine no longer waits on it.
func (u *UI) closeOffer(id string) {
	if p := u.offers[id]; p != nil {
		delete(u.offers, id)
		p.dlg.Hide()
		u.withdrawNotice(id)
	}
}
