package pairing

import (
	"errors"
	"strings"
	"unicode"
)

// maxCodeLen bounds a normalised code; real codes are a few groups.
const maxCodeLen = 128

// codeSeparators are the characters, besides white space, that people type
// between the groups of a code; they are dropped.
const codeSeparators = "-_.,:/"

// NormalizeCode returns the canonical form of a pairing code, the one the
// PAKE password is derived from, so that "7kq2m xw4pd" and "7KQ2M-XW4PD"
// pair: white space and "-_.,:/" are dropped, ASCII letters are upper-cased,
// and the letters people confuse with digits are read as those digits (O as
// 0, I and L as 1). For the rendezvous server's codes this is the same
// canonical form as rendezvous.NormalizeCode. Only ASCII letters and digits
// are allowed besides separators, so that a browser gets the same bytes
// without Unicode normalisation.
func NormalizeCode(code string) (string, error) {
	var b strings.Builder
	for _, r := range code {
		switch {
		case unicode.IsSpace(r) || strings.ContainsRune(codeSeparators, r):
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		default:
			return "", errors.New("pairing: a pairing code has only letters, digits and separators")
		}
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		b.WriteRune(r)
		if b.Len() > maxCodeLen {
			return "", errors.New("pairing: the pairing code is too long")
		}
	}
	if b.Len() == 0 {
		return "", errors.New("pairing: empty pairing code")
	}
	return b.String(), nil
}
