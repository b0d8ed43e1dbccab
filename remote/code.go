package remote

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// A pairing code as the user sees it: the rendezvous server's code (the
// nameplate, ten characters) and a secret group of five that the code's
// creator drew itself and never sends to the server (docs/PROTOCOL-pairing.md,
// P.2): "7KQ2M-XW4PD-R8T3Z".
const (
	roomLen   = 10
	secretLen = 5
	alphabet  = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" // Crockford's base32
)

// ErrCodeFormat means a typed pairing code cannot be one.
var ErrCodeFormat = errors.New("a pairing code is 15 letters and digits, like 7KQ2M-XW4PD-R8T3Z")

// Code is a pairing code to show.
type Code struct {
	Code    string // "XXXXX-XXXXX-YYYYY"
	Expires time.Time
	// Request is what Host.Wanted said the code was for when it was made
	// (0 without Wanted).
	Request uint64
}

// newSecret draws the secret group: 25 random bits.
func newSecret() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pairing code: %w", err)
	}
	v := binary.BigEndian.Uint32(b[:])
	var s [secretLen]byte
	for i := range s {
		s[i] = alphabet[v&31]
		v >>= 5
	}
	return string(s[:]), nil
}

// showCode joins a server code and a secret group as the user sees them.
func showCode(room, secret string) string {
	return rendezvous.FormatCode(room) + "-" + secret
}

// SplitCode reads a typed pairing code (any case, with or without hyphens or
// spaces; O read as 0, I and L as 1). It returns the part for the server
// (canonical, ten characters) and the whole code for the PAKE (canonical).
func SplitCode(typed string) (room, full string, err error) {
	full, err = pairing.NormalizeCode(typed)
	if err != nil || len(full) != roomLen+secretLen {
		return "", "", ErrCodeFormat
	}
	for _, r := range full {
		if !strings.ContainsRune(alphabet, r) {
			return "", "", ErrCodeFormat
		}
	}
	room, err = rendezvous.NormalizeCode(full[:roomLen])
	if err != nil {
		return "", "", ErrCodeFormat
	}
	return room, full, nil
}
