package pairing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
)

// FuzzDecode: decode never panics, and what it accepts encodes back to a
// message it decodes to the same value. Seeds are in testdata/fuzz.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages(f) {
		b, err := encode(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		again, err := encode(m)
		require.NoError(t, err)
		m2, err := decode(again)
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}

// sampleMessages is one honest message of every kind.
func sampleMessages(tb testing.TB) []message {
	tb.Helper()
	i, err := newPAKE(password(code), Initiator)
	require.NoError(tb, err)
	x := encodePoint(i.Xᵤ, i.Xᵥ)
	mac := make([]byte, macLen)
	return []message{
		{Type: typePAKE, Role: "initiator", PAKE: x},
		{Type: typePAKE, Role: "responder", PAKE: x, DeviceID: bob.ID, Fingerprint: bob.Fingerprint, MAC: mac},
		{Type: typeConfirm, Role: "initiator", DeviceID: alice.ID, Fingerprint: alice.Fingerprint, MAC: mac},
		{Type: typeOK, Role: "responder", MAC: mac},
		{Type: typeAbort, Reason: reasonMismatch},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, m := range sampleMessages(t) {
		b, err := encode(m)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(b), MaxMessageSize/2, "room to spare under the cap")
		got, err := decode(b)
		require.NoError(t, err)
		m.V = Version
		assert.Equal(t, m, got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"v":1}`,
		`{"v":1,"type":"pake","role":"initiator"}`,
		`{"v":1,"type":"pake","role":"initiator","pake":""}`,
		`{"v":1,"type":"pake","role":"initiator","pake":"BA=="}`,
		`{"v":1,"type":"pake","role":"observer","pake":"BA=="}`,
		`{"v":1,"type":"ok","role":"responder","mac":"AAAA"}`,
		`{"v":1,"type":"ok","role":"initiator","mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"v":1,"type":"abort"}`,
		`{"v":1,"type":"abort","reason":"mismatch","mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"v":1,"type":"confirm","role":"initiator","device_id":"a b","fingerprint":"x","mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"v":"1","type":"abort","reason":"mismatch"}`,
	} {
		_, err := decode([]byte(s))
		assert.Error(t, err, s)
	}
}

// A device id comes with the fingerprint it derives from, or the message
// is refused before the MAC is even checked.
func TestDecodeRefusesIDOfAnotherCertificate(t *testing.T) {
	mac := make([]byte, macLen)
	m := message{V: 1, Type: typeConfirm, Role: "initiator", DeviceID: eve.ID, Fingerprint: alice.Fingerprint, MAC: mac}
	data, err := encode(m)
	if err == nil {
		_, err = decode(data)
	}
	assert.ErrorIs(t, err, identity.ErrIDMismatch)
	m.DeviceID = alice.ID
	data, err = encode(m)
	require.NoError(t, err)
	_, err = decode(data)
	assert.NoError(t, err)
}
