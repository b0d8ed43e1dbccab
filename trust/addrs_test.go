package trust

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeenAt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	id, fp := newDevice(t)
	require.NoError(t, s.SeenAt(id, fp, "10.0.0.2:53318"), "an unknown device: ignored")
	_, ok := s.Pinned(id)
	assert.False(t, ok, "nothing is stored about a device not pinned")

	require.NoError(t, s.Pin(id, "Bob", fp))
	for _, a := range []string{"10.0.0.2:53318", "10.0.0.3:53318", "[fd00::2]:53318", "10.0.0.4:1", "10.0.0.5:2", "10.0.0.3:53318"} {
		require.NoError(t, s.SeenAt(id, fp, a))
	}
	_, otherFP := newDevice(t)
	require.NoError(t, s.SeenAt(id, otherFP, "10.9.9.9:53318"), "another certificate: ignored")
	assert.Error(t, s.SeenAt(id, fp, "bob.local:53318"), "names are not stored")

	want := []string{"10.0.0.3:53318", "10.0.0.5:2", "10.0.0.4:1", "[fd00::2]:53318"}
	d, _ := s.Pinned(id)
	assert.Equal(t, want, d.Addrs, "most recent first, at most MaxAddrs")
	require.NoError(t, s.Close())

	again, err := Open(dir)
	require.NoError(t, err)
	d, _ = again.Pinned(id)
	assert.Equal(t, want, d.Addrs, "kept in the file")
}
