package app

import (
	"errors"
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
	// rows are the offer's top-level files and folders, each with its
	// checkbox when the user may choose (choose).
	rows   []offerRow
	choose bool
	list   *container.Scroll // what scrolls: the entries and the text
	code   fyne.CanvasObject // the code and its hint, always in view
}

// offerRow is one top-level file or folder in the prompt.
type offerRow struct {
	check *widget.Check // nil when the offer cannot be chosen from
	icon  *widget.Icon
	name  *widget.Label
}

// showOffer notifies the desktop and asks the user about an offer.
func (u *UI) showOffer(o engine.Offer) {
	if _, ok := u.offers[o.ID]; ok {
		return
	}
	buttons := u.notifyOffer(o) // with Accept and Decline: no need to raise the window

	p := &offerPrompt{offer: o}
	p.decline = widget.NewButtonWithIcon("Decline", theme.CancelIcon(), func() { u.answer(o.ID, false) })
	p.accept = widget.NewButtonWithIcon("Accept", theme.ConfirmIcon(), func() { u.answerChosen(p) })
	p.accept.Importance = widget.HighImportance

	title := "Incoming files"
	if o.Files == 0 && o.Folders == 0 {
		title = "Incoming message"
	}
	p.dlg = dialog.NewCustomWithoutButtons(title, u.offerContent(p), u.win)
	p.dlg.SetButtons([]fyne.CanvasObject{p.decline, p.accept})
	if o.TooBig {
		p.chosen() // Accept waits for a choice that fits
	}
	u.offers[o.ID] = p
	p.dlg.Show()
	if !buttons {
		u.raiseWindow() // it may be hidden in the tray
	}

	if h := u.hook.Load(); h != nil && h.answer != "" {
		u.hookAnswer(h, o.ID)
	}
}

// offerContent says who offers what, and the code to compare: the sender
// on top and the code at the bottom stay in view, the entries and the
// text between them scroll when the window is short.
func (u *UI) offerContent(p *offerPrompt) fyne.CanvasObject {
	o := p.offer
	header := u.offerHeader(o)
	var middle []fyne.CanvasObject
	// Choosing needs every top-level entry listed, and two at least.
	p.choose = len(o.Entries) > 1 && len(o.Entries) == o.EntryCount
	if len(o.Entries) > 0 {
		middle = append(middle, p.entryList())
	}
	if o.Text != "" {
		text := widget.NewLabel(visible.Text(o.Text))
		text.Wrapping = fyne.TextWrapWord
		bg := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
		bg.CornerRadius = theme.InputRadiusSize() * 2
		middle = append(middle, container.NewStack(bg, text))
	}
	p.list = container.NewVScroll(container.NewVBox(middle...))
	footer := codeFooter(o)
	p.code = footer
	top := header
	if len(middle) > 0 {
		top = container.NewVBox(header, widget.NewSeparator())
	} else {
		p.list.Hide()
	}
	return container.New(&promptLayout{width: 420}, top, p.list, footer)
}

// offerHeader is the sender (avatar, name, marks) and what it offers.
func (u *UI) offerHeader(o engine.Offer) fyne.CanvasObject {
	kind := o.Type // what the sender's hello says: it may not advertise
	d, nearby := u.device(o.From.ID)
	if nearby {
		kind = d.Type
	}
	av := newAvatar(o.From.ID, peerName(o.From), kind, 52)
	av.set(o.From.ID, peerName(o.From), kind, o.Trusted, false)

	name := widget.NewLabelWithStyle(peerName(o.From), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	name.SizeName = theme.SizeNameSubHeadingText
	what := "wants to send you " + offerSummary(o)
	if o.Size > 0 {
		what += " · " + humanBytes(o.Size)
	}
	whatLabel := widget.NewLabel(what)
	whatLabel.Wrapping = fyne.TextWrapWord
	who := container.NewVBox(name, whatLabel)
	if w := visible.Warning(o.From.Name); w != "" {
		who.Add(lookAlike("The name " + w))
	}
	switch {
	case d.LocalSend && d.Unencrypted:
		who.Add(lookAlike("LocalSend device, not encrypted (HTTP): others on this network could read what it sends"))
	case d.LocalSend:
		ls := widget.NewLabel("LocalSend device")
		ls.Importance = widget.LowImportance
		who.Add(ls)
	}
	if o.Trusted {
		tl := widget.NewLabelWithStyle("Trusted device", fyne.TextAlignLeading, fyne.TextStyle{})
		tl.Importance = widget.SuccessImportance
		who.Add(tl)
	}
	if o.TooBig {
		// The whole does not fit: say so, and Accept waits until the
		// entries ticked do (chosen).
		who.Add(lookAlike(fmt.Sprintf("Only %s free on this computer: choose less", humanBytes(o.Room))))
	}
	return container.NewBorder(nil, nil, container.NewCenter(av), nil, tighten(who.Objects...))
}

// entryList lists the offer's top-level entries, each with a box to tick
// when the prompt lets the user choose.
func (p *offerPrompt) entryList() fyne.CanvasObject {
	o := p.offer
	files := container.NewVBox()
	for _, e := range o.Entries {
		r := offerRow{icon: widget.NewIcon(theme.FileIcon())}
		if e.Folder {
			r.icon.SetResource(theme.FolderIcon())
		}
		// Invisible characters escaped: "a\u200Bb.txt", not "ab.txt".
		r.name = widget.NewLabel(visible.Escape(e.Name))
		r.name.Truncation = fyne.TextTruncateEllipsis
		left := []fyne.CanvasObject{r.icon}
		if p.choose {
			r.check = widget.NewCheck("", func(bool) { p.chosen() })
			r.check.Checked = true
			left = append([]fyne.CanvasObject{r.check}, left...)
		}
		detail := newMuted(entryDetail(e), theme.SizeNameText, fyne.TextAlignTrailing)
		files.Add(container.NewBorder(nil, nil, container.NewHBox(left...), detail, r.name))
		if w := visible.Warning(e.Name); w != "" {
			files.Add(lookAlike("The name above " + w))
		}
		p.rows = append(p.rows, r)
	}
	if more := o.EntryCount - len(o.Entries); more > 0 {
		files.Add(newMuted(fmt.Sprintf("and %d more", more), theme.SizeNameText, fyne.TextAlignLeading))
	}
	return tighten(files.Objects...)
}

// codeFooter is the verification code to compare, when the connection has one.
func codeFooter(o engine.Offer) fyne.CanvasObject {
	if o.Code == "" {
		return container.NewVBox()
	}
	codeLabel := widget.NewLabel("Verification code")
	code := widget.NewLabelWithStyle(o.Code, fyne.TextAlignTrailing, fyne.TextStyle{Monospace: true})
	code.SizeName = theme.SizeNameSubHeadingText
	check := newMuted(fmt.Sprintf("Go ahead if %s shows the same code.", peerName(o.From)), theme.SizeNameText, fyne.TextAlignLeading)
	check.Wrapping = fyne.TextWrapWord
	return container.NewVBox(widget.NewSeparator(), tighten(container.NewBorder(nil, nil, codeLabel, code), check))
}

// chosen updates the Accept button to the ticked entries: disabled when
// none is ticked, or when they do not fit in the free space.
func (p *offerPrompt) chosen() {
	take := p.chosenEntries()
	n := len(take)
	if n == 0 || n == len(p.rows) {
		p.accept.SetText("Accept")
	} else {
		p.accept.SetText(fmt.Sprintf("Accept %d of %d", n, len(p.rows)))
	}
	if n == 0 || !p.fits(take) {
		p.accept.Disable()
	} else {
		p.accept.Enable()
	}
	p.dlg.Refresh() // the button may have grown
}

// fits reports whether the entries at take fit in the room the engine
// reported for an offer too large as a whole.
func (p *offerPrompt) fits(take []int) bool {
	o := p.offer
	if !o.TooBig {
		return true
	}
	if !p.choose {
		return false // all of it, which does not fit
	}
	var size int64
	for _, i := range take {
		size += o.Entries[i].Size
	}
	return size <= o.Room
}

// chosenEntries lists the indexes of the ticked entries (all of them when
// the offer cannot be chosen from).
func (p *offerPrompt) chosenEntries() []int {
	var out []int
	for i, r := range p.rows {
		if r.check == nil || r.check.Checked {
			out = append(out, i)
		}
	}
	return out
}

// answerChosen accepts the offer, or only its ticked entries.
func (u *UI) answerChosen(p *offerPrompt) {
	take := p.chosenEntries()
	if !p.choose || len(take) == len(p.rows) {
		u.answer(p.offer.ID, true)
		return
	}
	if len(take) == 0 {
		return
	}
	eng, ok := u.engine()
	if !ok {
		return
	}
	err := eng.AnswerSome(p.offer.ID, take)
	if errors.Is(err, engine.ErrNoSpace) {
		// The offer stays open: the user may choose less.
		u.ShowError(fmt.Errorf("could not accept the offer from %s: %w", peerName(p.offer.From), err))
		return
	}
	delete(u.offers, p.offer.ID)
	p.dlg.Hide()
	u.withdrawNotice(p.offer.ID)
	if err != nil {
		u.ShowError(fmt.Errorf("could not accept the offer from %s: %w", peerName(p.offer.From), err))
	}
}

// offerSummary says what an offer holds, counting its top-level entries
// as the prompt lists them: "1 folder and 2 files", "3 files".
func offerSummary(o engine.Offer) string {
	if len(o.Entries) == 0 || len(o.Entries) != o.EntryCount {
		return offerWhat(o)
	}
	folders, files := 0, 0
	for _, e := range o.Entries {
		if e.Folder {
			folders++
		} else {
			files++
		}
	}
	switch {
	case folders == 0:
		return plural(files, "file")
	case files == 0:
		return plural(folders, "folder")
	}
	return plural(folders, "folder") + " and " + plural(files, "file")
}

// entryDetail is the muted text beside an entry: "5 files · 3.1 MB" for a
// folder, the size for a file.
func entryDetail(e engine.OfferEntry) string {
	if e.Folder {
		if e.Files == 0 {
			return "empty"
		}
		return plural(e.Files, "file") + " · " + humanBytes(e.Size)
	}
	return humanBytes(e.Size)
}

// promptLayout stacks the prompt's header, list and footer: the list gets
// the height the others leave (it scrolls), so that on a short window the
// code and the buttons below it stay in view and nothing overlaps.
type promptLayout struct{ width float32 }

func (l *promptLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	h := objs[0].MinSize().Height + objs[2].MinSize().Height
	if list := objs[1].(*container.Scroll); list.Visible() {
		h += list.Content.MinSize().Height + theme.Padding()
	}
	return fyne.NewSize(fixedWidth(l.width).width(objs), h) // narrower in a narrow window
}

func (l *promptLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	header, list, footer := objs[0], objs[1], objs[2]
	// Wrapped text needs its width before it knows its height.
	header.Resize(fyne.NewSize(size.Width, header.MinSize().Height))
	header.Resize(fyne.NewSize(size.Width, header.MinSize().Height))
	header.Move(fyne.NewPos(0, 0))
	footer.Resize(fyne.NewSize(size.Width, footer.MinSize().Height))
	fh := footer.MinSize().Height
	footer.Resize(fyne.NewSize(size.Width, fh))
	footer.Move(fyne.NewPos(0, size.Height-fh))
	top := header.Size().Height + theme.Padding()
	list.Move(fyne.NewPos(0, top))
	list.Resize(fyne.NewSize(size.Width, max(0, size.Height-fh-top)))
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
	if p != nil && !errors.Is(err, engine.ErrNoSpace) { // else the offer stays open: choose less
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
