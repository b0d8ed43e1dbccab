package remote

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// Renew retires the code shown and shows a new one: the old code no longer
// admits anyone, the new one pairs, and OnPaired names the device.
func TestHostRenewAndOnPaired(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	renew := make(chan struct{})
	paired := make(chan signaling.Hello, 1)
	hs := serveHost(t, &Host{Config: hostCfg, Renew: renew, OnPaired: func(h signaling.Hello, _ uint64) { paired <- h }},
		dialRendezvous(t, w.url, hostCfg))
	old := hs.code(t)
	renew <- struct{}{}
	fresh := hs.code(t)
	require.NotEqual(t, old.Code, fresh.Code)

	_, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), old.Code, joinCfg, nil)
	require.ErrorIs(t, err, ErrNoSuchCode)

	jc, err := Join(testContext(t), dialRendezvous(t, w.url, joinCfg), fresh.Code, joinCfg, nil)
	require.NoError(t, err)
	defer jc.Close()
	hc := hs.conn(t)
	defer hc.Close()
	select {
	case h := <-paired:
		assert.Equal(t, joinCfg.Identity.DeviceID, h.ID)
		assert.Equal(t, joinCfg.Identity.Fingerprint, h.Fingerprint)
	default:
		t.Fatal("OnPaired was not called before the connection was handed over")
	}
}

func TestServerURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8080/ws", ""},
		{"serve.example.org", "wss://serve.example.org/ws", ""},
		{"https://serve.example.org/", "wss://serve.example.org/ws", ""},
		{"http://10.0.0.1:8080", "ws://10.0.0.1:8080/ws", ""},
		{" ", "", "empty"},
		{"ftp://example.org", "", "want a ws://"},
	} {
		got, err := ServerURL(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	assert.Equal(t, "https://serve.example.org/#7KQ2M-XW4PD-R8T3Z", PairingLink("wss://serve.example.org/ws", "7KQ2M-XW4PD-R8T3Z"))
}
