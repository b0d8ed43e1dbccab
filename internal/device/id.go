package device

import "strings"

// IDLen is the length of a device id: 32 lower-case hex digits.
const IDLen = 32

// IDFor derives the device id of the certificate with fingerprint fp
// ("sha-256 AA:BB:...", as in SDP): the first 16 bytes of the SHA-256
// fingerprint as 32 lower-case hex digits (docs/PROTOCOL.md section 2.1).
// It returns "" when fp is not a SHA-256 fingerprint of that form (hex
// digits of either case are accepted).
func IDFor(fp string) string {
	rest, ok := strings.CutPrefix(fp, "sha-256 ")
	if !ok || len(rest) != 32*3-1 {
		return ""
	}
	var b strings.Builder
	b.Grow(IDLen)
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if i%3 == 2 {
			if c != ':' {
				return ""
			}
			continue
		}
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return ""
		}
		if b.Len() < IDLen {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// CheckID returns ErrIDMismatch unless id is IDFor(fp). Every id that
// arrives with a fingerprint from the network (hello, TXT record,
// rendezvous hello and announce, pairing messages) goes through it before
// anything is stored.
func CheckID(id, fp string) error {
	want := IDFor(fp)
	if want == "" || id != want {
		return ErrIDMismatch
	}
	return nil
}
