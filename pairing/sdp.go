package pairing

import (
	"errors"
	"fmt"

	"github.com/pion/sdp/v3"
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
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(raw); err != nil {
		return fmt.Errorf("pairing: parse the remote sdp: %w", err)
	}
	var found []string
	for _, a := range desc.Attributes {
		if a.Key == "fingerprint" {
			found = append(found, a.Value)
		}
	}
	for _, m := range desc.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key == "fingerprint" {
				found = append(found, a.Value)
			}
		}
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
