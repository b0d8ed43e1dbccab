package cli

import (
	"net/url"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// pairingLink is what the QR code holds: the server's web address with the
// pairing code in the fragment, which browsers never send to the server
// (the web client of a later version reads it from there).
func pairingLink(server, code string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return code
	}
	scheme := "https"
	if u.Scheme == "ws" || u.Scheme == "http" {
		scheme = "http"
	}
	return scheme + "://" + u.Host + "/#" + url.PathEscape(code)
}

// qrText draws text as a QR code with half blocks, two modules per
// character row, dark on light, for a terminal; "" if it cannot.
func qrText(text string) string {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return ""
	}
	bits := q.Bitmap() // true is dark; includes the quiet zone
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		for x := range bits[y] {
			top := bits[y][x]
			bottom := y+1 < len(bits) && bits[y+1][x]
			switch {
			case top && bottom:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bottom:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
