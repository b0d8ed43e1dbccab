package engine

import (
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// Issue 11, item 3, against the engine: a hello with a known device's id and
// another certificate is refused and pins nothing; a well-formed hello that
// never reaches DTLS pins nothing either; the real device then connects and
// is pinned once its connection proved its key.
func TestHelloAlonePinsNothing(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	mallory := startEngine(t, "mallory")
	hello := func(h signaling.Hello) signaling.Frame {
		t.Helper()
		c, err := net.DialTimeout("tcp", b.target().Addrs[0], 5*time.Second)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		p, err := json.Marshal(h)
		require.NoError(t, err)
		require.NoError(t, signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeHello, Payload: p}))
		f, err := signaling.ReadFrame(c)
		require.NoError(t, err)
		return f
	}
	forged := signaling.Hello{DeviceID: a.Self().ID, Name: "alice", Version: int(signaling.Version), Fingerprint: mallory.Fingerprint()}
	assert.Equal(t, signaling.TypeError, hello(forged).Type, "alice's id with mallory's certificate")
	own := signaling.Hello{DeviceID: mallory.Self().ID, Name: "mallory", Version: int(signaling.Version), Fingerprint: mallory.Fingerprint()}
	assert.Equal(t, signaling.TypeHello, hello(own).Type, "a well-formed hello is answered")
	assert.Empty(t, b.trust.List(), "no hello pins anything")

	f := filepath.Join(t.TempDir(), "x.txt")
	writeFile(t, f, []byte("x"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	accept(t, b, 0)
	a.rec.waitState(t, 0, it.ID, StateDone)
	assert.True(t, b.trust.IsPinned(a.Self().ID, a.Fingerprint()), "pinned once proven")
	assert.Len(t, b.trust.List(), 1)
}
