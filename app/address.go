package app

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// addressDialog is "Send to an address": for a device that Nearby does not
// list (another subnet, a network that drops multicast), the user types its
// IP address or HOST:PORT, as that device's Settings show it. The send
// dials that address only.
type addressDialog struct {
	u     *UI
	dlg   *dialog.CustomDialog
	entry *widget.Entry
	err   *widget.RichText
	next  *widget.Button
}

// openAddressDialog shows the dialog.
func (u *UI) openAddressDialog() *addressDialog {
	a := &addressDialog{u: u}
	intro := newMuted("For a device that does not appear in Nearby: type its address, as its Settings show it under This device.",
		theme.SizeNameText, fyne.TextAlignLeading)
	intro.Wrapping = fyne.TextWrapWord
	a.entry = widget.NewEntry()
	a.entry.SetPlaceHolder(fmt.Sprintf("192.168.1.5 or 192.168.1.5:%d", signaling.DefaultPort))
	a.entry.OnSubmitted = func(string) { a.submit() }
	a.entry.OnChanged = func(string) { a.err.Hide() }
	a.err = newMuted("", theme.SizeNameText, fyne.TextAlignLeading)
	a.err.Wrapping = fyne.TextWrapWord
	a.err.Hide()
	a.next = widget.NewButtonWithIcon("Choose files…", theme.MailSendIcon(), a.submit)
	a.next.Importance = widget.HighImportance
	cancel := widget.NewButton("Cancel", func() { a.dlg.Hide() })
	body := container.New(fixedWidth(380), container.NewVBox(intro, a.entry, a.err))
	a.dlg = dialog.NewCustomWithoutButtons("Send to an address", body, u.win)
	a.dlg.SetButtons([]fyne.CanvasObject{cancel, a.next})
	a.dlg.Show()
	u.win.Canvas().Focus(a.entry)
	return a
}

// submit checks what was typed and, when it is an address, goes on to the
// files to send there.
func (a *addressDialog) submit() {
	d, err := engine.AddressDevice(a.entry.Text)
	if err != nil {
		a.showError(err)
		return
	}
	a.dlg.Hide()
	a.u.openSendSheet([]engine.Device{d}, pickFile)
}

// showError says in the dialog what is wrong with the address.
func (a *addressDialog) showError(err error) {
	msg := err.Error()
	if errors.Is(err, engine.ErrBadAddress) {
		msg = strings.TrimSuffix(msg, ": "+engine.ErrBadAddress.Error())
		msg = strings.TrimPrefix(msg, strconv.Quote(strings.TrimSpace(a.entry.Text))+": ") // it is in the field
		if strings.TrimSpace(a.entry.Text) == "" {
			msg = "Type an address first."
		} else {
			msg = "Not an address: " + msg + "."
		}
	}
	setStyled(a.err, msg, theme.ColorNameError)
	a.err.Show()
	// Room for the message: once laid out at the dialog's width, a wrapped
	// message knows how many lines it takes, so size it twice.
	a.dlg.Resize(a.dlg.MinSize())
	a.dlg.Resize(a.dlg.MinSize())
}
