package signaling

import (
	"fmt"

	"github.com/pion/sdp/v3"
)

// SDPFingerprints returns every a=fingerprint value of an SDP, session level
// first, then each media section's. Both the LAN handshake (the hello's
// fingerprint) and pairing (the PAKE-authenticated one) check them all.
func SDPFingerprints(raw string) ([]string, error) {
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("parse sdp: %w", err)
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
	return found, nil
}
