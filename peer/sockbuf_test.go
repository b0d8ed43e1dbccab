package peer

import (
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The SCTP window never lets a peer have more in flight than a small
// socket buffer holds; a buffer we could grow keeps the full window.
func TestSCTPWindowFollowsTheSocketBuffer(t *testing.T) {
	assert.Equal(t, uint32(sctpMaxWindow), sctpWindow(0), "unknown: the full window")
	assert.Equal(t, uint32(sctpMaxWindow), sctpWindow(udpBuffer))
	assert.Equal(t, uint32(212992/2), sctpWindow(212992), "Linux's default buffer: half of it")
	assert.Equal(t, uint32(64<<10), sctpWindow(16<<10), "never below 64 KiB")
}

// Asking for a buffer reports what the system granted, the environment's
// smaller figure included (BufferEnv, for benchmarks).
func TestBuffersAskedAndGranted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the granted size is read on Linux only")
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	t.Setenv(BufferEnv, "65536")
	assert.Equal(t, 65536, growBuffers(c), "root may force it; anyone gets at least that much")
}
