package peer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// remotePort is the UDP port of the candidate c's selected pair reaches.
func remotePort(t *testing.T, c *Conn) int {
	t.Helper()
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	require.NoError(t, err)
	require.NotNil(t, pair)
	return int(pair.Remote.Port)
}

// Every connection to a listener with a shared UDP port reaches that port;
// without it, each connection has a port of its own.
func TestSharedUDPPort(t *testing.T) {
	verifyNoLeaks(t)
	u, err := OpenUDP(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })
	srvCfg := newConfig(t, "Receiver")
	srvCfg.UDP = u
	s := startServer(t, srvCfg, nil, closeAndWait)
	a := mustDial(t, s.addr, newConfig(t, "Alpha"))
	b := mustDial(t, s.addr, newConfig(t, "Bravo"))
	assert.Equal(t, u.Port(), remotePort(t, a))
	assert.Equal(t, u.Port(), remotePort(t, b), "one UDP port for every connection")

	plain := startServer(t, newConfig(t, "Plain"), nil, closeAndWait)
	c := mustDial(t, plain.addr, newConfig(t, "Charlie"))
	d := mustDial(t, plain.addr, newConfig(t, "Delta"))
	assert.NotEqual(t, remotePort(t, c), remotePort(t, d), "without it, a port per connection")
}

// SetUDP takes effect for the handshakes that follow.
func TestListenerSetUDP(t *testing.T) {
	verifyNoLeaks(t)
	u, err := OpenUDP(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })
	s := startServer(t, newConfig(t, "Receiver"), func(l *Listener) { l.SetUDP(u) }, closeAndWait)
	a := mustDial(t, s.addr, newConfig(t, "Alpha"))
	assert.Equal(t, u.Port(), remotePort(t, a))
}
