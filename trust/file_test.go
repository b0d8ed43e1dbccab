package trust

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
)

// The store file reads as it did when Device had its fields of its own
// (the literal was printed by that code): embedding device.Device changed
// the Go type, not the file. The type is not kept.
func TestFileFormatUnchanged(t *testing.T) {
	const (
		fp = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"
		id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	list := []Device{
		{Device: device.Device{ID: id, Name: "Kitchen PC", Fingerprint: fp}, FirstSeen: t0, LastSeen: t0.Add(time.Hour), Trusted: true},
		{Device: device.Device{ID: id, Name: "Bob", Fingerprint: fp}, FirstSeen: t0, LastSeen: t0},
	}
	want := `[
  {
    "id": "` + id + `",
    "name": "Kitchen PC",
    "fingerprint": "` + fp + `",
    "first_seen": "2026-01-02T03:04:05Z",
    "last_seen": "2026-01-02T04:04:05Z",
    "trusted": true
  },
  {
    "id": "` + id + `",
    "name": "Bob",
    "fingerprint": "` + fp + `",
    "first_seen": "2026-01-02T03:04:05Z",
    "last_seen": "2026-01-02T03:04:05Z"
  }
]`
	b, err := json.MarshalIndent(list, "", "  ")
	require.NoError(t, err)
	assert.Equal(t, want, string(b))

	var back []Device
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, list, back)

	typed := list[1]
	typed.Type = device.TypeLaptop
	b2, err := json.Marshal(typed)
	require.NoError(t, err)
	assert.NotContains(t, string(b2), "laptop")
}
