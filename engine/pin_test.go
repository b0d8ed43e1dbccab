package engine

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// Issue 11, item 3, against the engine: a hello with a known device's id and
// another certificate is refused and pins nothing; a well-formed hello that
// never reaches DTLS pins nothing either; the real device then connects and
// is pinned once its connection proved its key.
func TestHelloAlonePinsNothing(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	mallory := startEngine(t, "mallory")
	hello := func(h signaling.Hello) string {
		t.Helper()
		c, err := net.DialTimeout("tcp", b.target().Addrs[0], 5*time.Second)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		f, err := signaling.ReadFrame(c)
		require.NoError(t, err)
		require.Equal(t, signaling.TypeHello, f.Type, "the listener speaks first")
		h.Nonce = strings.Repeat("ab", 32)
		p, err := json.Marshal(h)
		require.NoError(t, err)
		require.NoError(t, signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeHello, Payload: p}))
		// An offer that can never be applied: the answer says how far the
		// hello got.
		_ = signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeOffer, Payload: []byte(`{"sdp":""}`)})
		f, err = signaling.ReadFrame(c)
		require.NoError(t, err)
		require.Equal(t, signaling.TypeError, f.Type)
		e, err := signaling.DecodeError(f.Payload)
		require.NoError(t, err)
		return e.Code
	}
	forged := signaling.Hello{Device: device.Device{ID: a.Self().ID, Name: "alice", Fingerprint: mallory.Fingerprint()}, Version: int(signaling.Version)}
	assert.Equal(t, signaling.CodeBadHello, hello(forged), "alice's id with mallory's certificate")
	own := signaling.Hello{Device: device.Device{ID: mallory.Self().ID, Name: "mallory", Fingerprint: mallory.Fingerprint()}, Version: int(signaling.Version)}
	assert.Equal(t, signaling.CodeBadSDP, hello(own), "a well-formed hello is taken, and waits for an offer")
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
