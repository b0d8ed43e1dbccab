package rendezvous

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A hello and a peer are what they were when Hello was a struct of its
// own (the literals were printed by that code): Hello is now
// device.Device, and the wire did not change.
func TestDeviceWireUnchanged(t *testing.T) {
	const (
		fp = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"
		id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	)
	h := Hello{ID: id, Name: "Kitchen PC", Type: "laptop", Fingerprint: fp}
	for _, tc := range []struct {
		name string
		env  Envelope
		want string
	}{
		{"hello", Envelope{Type: TypeHello, Device: &h},
			`{"type":"hello","device":{"device_id":"` + id + `","name":"Kitchen PC","type":"laptop","fingerprint":"` + fp + `"}}`},
		{"peer-joined", Envelope{Type: TypePeerJoined, Peer: &Peer{ClientID: "0123456789abcdef", Hello: h}},
			`{"type":"peer-joined","peer":{"client_id":"0123456789abcdef","device_id":"` + id + `","name":"Kitchen PC","type":"laptop","fingerprint":"` + fp + `"}}`},
		{"peer-left", Envelope{Type: TypePeerLeft, Peer: &Peer{ClientID: "0123456789abcdef"}},
			`{"type":"peer-left","peer":{"client_id":"0123456789abcdef"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.env)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
			var back Envelope
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tc.env, back)
		})
	}
	require.NoError(t, h.ValidateAdvertised())
}
