package pairing

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

// offerSDP is a real pion offer made with id's certificate.
func offerSDP(t *testing.T, id *identity.Identity) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{id.Certificate}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	_, err = pc.CreateDataChannel("peerdrop/1", nil)
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	return offer.SDP
}

func TestCheckSDPFingerprint(t *testing.T) {
	me := testkit.Identity(t)
	mallory := testkit.Identity(t)
	sdp := offerSDP(t, me)
	require.Contains(t, sdp, "a=fingerprint:"+me.Fingerprint)

	require.NoError(t, CheckSDPFingerprint(sdp, me.Fingerprint))
	require.NoError(t, CheckSDPFingerprint(sdp, strings.ToLower(me.Fingerprint)), "hex is compared case-insensitively")

	swapped := strings.ReplaceAll(sdp, me.Fingerprint, mallory.Fingerprint)
	err := CheckSDPFingerprint(swapped, me.Fingerprint)
	require.ErrorIs(t, err, ErrFingerprintSwapped)
	assert.Contains(t, err.Error(), "swapped")
	assert.Contains(t, err.Error(), mallory.Fingerprint)

	// A second fingerprint line, added beside the right one, is refused too.
	extra := strings.Replace(sdp, "a=fingerprint:"+me.Fingerprint, "a=fingerprint:"+me.Fingerprint+"\r\na=fingerprint:"+mallory.Fingerprint, 1)
	require.ErrorIs(t, CheckSDPFingerprint(extra, me.Fingerprint), ErrFingerprintSwapped)

	other := strings.ReplaceAll(sdp, "a=fingerprint:sha-256 ", "a=fingerprint:sha-1 ")
	require.ErrorIs(t, CheckSDPFingerprint(other, me.Fingerprint), ErrFingerprintSwapped)

	var none []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if !strings.HasPrefix(l, "a=fingerprint:") {
			none = append(none, l)
		}
	}
	require.ErrorIs(t, CheckSDPFingerprint(strings.Join(none, "\r\n"), me.Fingerprint), ErrFingerprintSwapped)

	assert.Error(t, CheckSDPFingerprint("not sdp", me.Fingerprint))
	assert.Error(t, CheckSDPFingerprint(sdp, "sha-256 nonsense"))
}

// The whole defence: the devices pair through the relay, then the relay
// swaps the fingerprint in the offer it carries next; the receiver of the
// offer compares it with what the pairing authenticated and refuses.
func TestPairingThenSwappedOfferIsRefused(t *testing.T) {
	aliceID := testkit.Identity(t)
	bobID := testkit.Identity(t)
	mallory := testkit.Identity(t)

	r := newRelay(nil)
	ra, rb := run(t, t.Context(), r.end(sideA), r.end(sideB), code, code, Initiator, Responder,
		Identity{ID: aliceID.DeviceID, Fingerprint: aliceID.Fingerprint},
		Identity{ID: bobID.DeviceID, Fingerprint: bobID.Fingerprint})
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	require.Equal(t, bobID.Fingerprint, ra.peer.Fingerprint)

	offer := offerSDP(t, bobID)
	require.NoError(t, CheckSDPFingerprint(offer, ra.peer.Fingerprint), "honest relay")
	swapped := strings.ReplaceAll(offer, bobID.Fingerprint, mallory.Fingerprint)
	require.ErrorIs(t, CheckSDPFingerprint(swapped, ra.peer.Fingerprint), ErrFingerprintSwapped, "the relay swapped it")
}
