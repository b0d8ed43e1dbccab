package pairing

import (
	"errors"
	"fmt"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// CheckSDPFingerprint verifies that every DTLS fingerprint attribute in sdp
// (session and media level) is want, the fingerprint Authenticate returned.
// Call it on the remote description relayed by the server before setting
// it; a mismatch is ErrFingerprintSwapped, and the connection must be
// refused. The hex is compared case-insensitively (RFC 8122); a fingerprint
// with another hash algorithm counts as a mismatch, since only SHA-256 was
// authenticated.
//
// peer has the same check for LAN handshakes, unexported; this one is kept
// here so that pairing has no dependency on the LAN code.
func CheckSDPFingerprint(raw string, want string) error {
	wantFP, ok := canonicalFingerprint(want)
	if !ok {
		return errors.New("pairing: the authenticated fingerprint is malformed")
	}
	found, err := signaling.SDPFingerprints(raw)
	if err != nil {
		return fmt.Errorf("pairing: the remote sdp: %w", err)
	}
	if len(found) == 0 {
		return fmt.Errorf("%w (the offer has no fingerprint at all)", ErrFingerprintSwapped)
	}
	for _, v := range found {
		if got, ok := canonicalFingerprint(v); !ok || got != wantFP {
			return fmt.Errorf("%w (authenticated %s, the offer has %s)", ErrFingerprintSwapped, wantFP, v)
		}
	}
	return nil
}
