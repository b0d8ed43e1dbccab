package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Pairing codes are 10 characters of Crockford's base32 (50 random bits),
// shown as "XXXXX-XXXXX". Typing is forgiving: case, hyphens and spaces do not
// matter, and the letters people confuse with digits are read as those
// digits (O as 0, I and L as 1). U is not in the alphabet.
const (
	codeLen      = 10
	codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

var errCodeSyntax = errors.New("a pairing code is 10 letters and digits, like 7KQ2M-XW4PD")

// NormalizeCode returns the canonical form of a typed code (10 upper-case
// characters, no hyphen), or an error when it cannot be one.
func NormalizeCode(s string) (string, error) {
	if len(s) > maxField {
		return "", errCodeSyntax
	}
	var b [codeLen]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if !inAlphabet(c) || n == codeLen {
			return "", errCodeSyntax
		}
		b[n] = c
		n++
	}
	if n != codeLen {
		return "", errCodeSyntax
	}
	return string(b[:]), nil
}

func inAlphabet(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U')
}

// FormatCode shows a code as "XXXXX-XXXXX". It normalises first; a string
// that is no code comes back unchanged.
func FormatCode(s string) string {
	n, err := NormalizeCode(s)
	if err != nil {
		return s
	}
	return n[:5] + "-" + n[5:]
}

// newCode draws a canonical code from r (crypto/rand in production).
func newCode(r io.Reader) (string, error) {
	var buf [8]byte
	if _, err := io.ReadFull(r, buf[1:]); err != nil {
		return "", fmt.Errorf("pairing code: %w", err)
	}
	v := binary.BigEndian.Uint64(buf[:]) // 56 random bits, we use the low 50
	var b [codeLen]byte
	for i := codeLen - 1; i >= 0; i-- {
		b[i] = codeAlphabet[v&31]
		v >>= 5
	}
	return string(b[:]), nil
}
