package signaling

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
)

const (
	wireFP = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"
	wireID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// A hello's bytes are what they were when Hello had its fields of its own
// (the literals were printed by that code): embedding device.Device
// changed the Go type, not the wire.
func TestHelloWireUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Hello
		want string
	}{
		{"all fields", Hello{
			Device:  device.Device{ID: wireID, Name: "Kitchen PC", Type: "laptop", Fingerprint: wireFP},
			Version: 2, Trickle: true, Commit: "c", Nonce: "n",
		}, `{"device_id":"` + wireID + `","name":"Kitchen PC","version":2,"fingerprint":"` + wireFP + `","type":"laptop","trickle":true,"commit":"c","nonce":"n"}`},
		{"no options", Hello{
			Device:  device.Device{ID: wireID, Name: "Kitchen PC", Fingerprint: wireFP},
			Version: 2,
		}, `{"device_id":"` + wireID + `","name":"Kitchen PC","version":2,"fingerprint":"` + wireFP + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.h)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
			var back Hello
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tc.h, back)
		})
	}
}
