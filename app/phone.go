package app

import (
	"net/netip"
	"net/url"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/thepeerdrop/peerdrop/engine"
)

// phoneQRPixels is the size of the web client's QR: a phone's camera reads
// it from across a desk.
const phoneQRPixels = 200

// phoneDialog is "Phone or tablet": the address of the web client the
// engine serves, as a QR code and as text, for a phone on the same network
// to open. It follows the engine's WebStatus while it is open.
type phoneDialog struct {
	u   *UI
	dlg *dialog.CustomDialog

	qr       *canvas.Image
	url      *widget.Label
	copyBtn  *widget.Button
	status   *widget.RichText
	settings *widget.Button // shown when the web client is off
}

// openPhoneDialog shows the dialog with the engine's current address.
func (u *UI) openPhoneDialog() {
	eng, ok := u.engine()
	if !ok {
		return
	}
	if u.phone != nil {
		return // one at a time
	}
	p := &phoneDialog{u: u}
	p.qr = canvas.NewImageFromResource(nil)
	p.qr.FillMode = canvas.ImageFillContain
	p.qr.ScaleMode = canvas.ImageScalePixels
	p.qr.SetMinSize(fyne.NewSquareSize(phoneQRPixels))
	p.url = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	p.url.Selectable = true
	p.copyBtn = widget.NewButtonWithIcon("Copy", theme.ContentCopyIcon(), func() {
		u.app.Clipboard().SetContent(p.url.Text)
	})
	p.copyBtn.Importance = widget.LowImportance
	p.status = newMuted("", theme.SizeNameText, fyne.TextAlignCenter)
	p.status.Wrapping = fyne.TextWrapWord
	p.settings = widget.NewButtonWithIcon("Open Settings", theme.SettingsIcon(), func() {
		p.dlg.Hide()
		u.tabs.Select(u.settingsTab)
	})
	p.settings.Hide()

	intro := newMuted("Open this on a phone or tablet on the same Wi-Fi: scan the code with its camera, or type the address.",
		theme.SizeNameText, fyne.TextAlignLeading)
	intro.Wrapping = fyne.TextWrapWord
	after := newMuted("Nothing to install. While the page is open, the phone appears in Nearby and can send files here.",
		theme.SizeNameCaptionText, fyne.TextAlignLeading)
	after.Wrapping = fyne.TextWrapWord
	body := container.New(fixedWidth(380), container.NewVBox(
		intro, container.NewCenter(p.qr),
		container.NewCenter(container.NewHBox(p.url, p.copyBtn)),
		p.status, container.NewCenter(p.settings), after,
	))
	closeBtn := widget.NewButton("Close", func() { p.dlg.Hide() })
	p.dlg = dialog.NewCustomWithoutButtons("Phone or tablet", body, u.win)
	p.dlg.SetButtons([]fyne.CanvasObject{closeBtn})
	p.dlg.SetOnClosed(func() {
		if u.phone == p {
			u.phone = nil
		}
	})
	u.phone = p
	p.show(engine.WebStatus{URL: eng.WebURL(), Err: u.webStatus.Err})
	p.dlg.Show()
}

// show shows the address the engine serves, or why there is none.
func (p *phoneDialog) show(st engine.WebStatus) {
	noNetwork := st.URL != "" && !reachableURL(st.URL)
	if st.URL != "" && !noNetwork {
		img, err := qrcode.New(st.URL, qrcode.Medium)
		if err == nil {
			p.qr.Image = img.Image(phoneQRPixels)
			p.qr.Refresh()
			p.qr.Show()
		}
		p.url.SetText(st.URL)
		p.url.Show()
		p.copyBtn.Show()
		p.status.Hide()
		p.settings.Hide()
		return
	}
	p.qr.Image = nil
	p.qr.Hide()
	p.url.SetText("")
	p.url.Hide()
	p.copyBtn.Hide()
	switch {
	case noNetwork:
		// Served, but only on this machine: a phone cannot open a loopback
		// address. The engine reports the LAN address once there is one.
		setStyled(p.status, "No network found. Connect this computer to Wi-Fi or a network cable; the address appears here by itself.",
			theme.ColorNameWarning)
		p.settings.Hide()
	case st.Err != nil:
		setStyled(p.status, errorSentence(st.Err), theme.ColorNameError)
		p.settings.Hide()
	case LoadSettings(p.u.app.Preferences()).WebOff:
		setStyled(p.status, "The page for phones and tablets is turned off in Settings.", theme.ColorNamePlaceHolder)
		p.settings.Show()
	default:
		// On, but not served yet (starting, or moving to another port).
		setStyled(p.status, "Starting the page for phones and tablets…", theme.ColorNamePlaceHolder)
		p.settings.Hide()
	}
	p.status.Show()
}

// reachableURL says whether a phone could open u: its host is not this
// machine's loopback (what the engine offers while it has no network).
func reachableURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := pu.Hostname()
	if strings.EqualFold(h, "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(h)
	return err != nil || !ip.IsLoopback()
}
