package peer

import (
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// udpBuffer is the socket buffer size asked for on every ICE socket. At
// LAN speed a burst of a few milliseconds fills the system's default
// (208 KiB on Linux), and each datagram the kernel then drops costs SCTP a
// retransmission and half its congestion window. The system may grant less
// (net.core.rmem_max), unless the process may force it (CAP_NET_ADMIN);
// the SCTP window follows what was granted (sctpWindow).
const udpBuffer = 4 << 20

// sctpWindow is the SCTP receive window for a receive buffer of granted
// bytes: the most a peer may have in flight towards us. Within what the
// socket can hold, a burst never overflows it: with the system's default
// buffer (208 KiB on Linux, which an unprivileged process cannot raise past
// net.core.rmem_max), the kernel would otherwise drop a datagram every few
// hundred kilobytes at LAN speed, each one costing SCTP a retransmission
// and half its congestion window. The kernel counts a datagram's
// bookkeeping too (about its size again for a 1.2 KB packet): half the
// buffer is for data. A buffer we could grow keeps the full window.
func sctpWindow(granted int) uint32 {
	switch {
	case granted <= 0 || granted >= udpBuffer/2:
		return sctpMaxWindow
	default:
		return uint32(max(granted/2, 64<<10))
	}
}

// sctpMaxWindow is the SCTP receive window with large socket buffers:
// pion's default (1 MiB) holds LAN speed back.
const sctpMaxWindow = 8 << 20

var (
	grantedOnce sync.Once
	granted     int
)

// grantedBuffer is the receive buffer this process gets when it asks for
// udpBuffer, measured once on a socket of its own.
func grantedBuffer() int {
	grantedOnce.Do(func() {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return
		}
		defer c.Close()
		granted = growBuffers(c)
	})
	return granted
}

// BufferEnv, when set to a number of bytes, is the socket buffer asked
// for instead of udpBuffer: what a machine whose net.core.rmem_max is that
// small gives an unprivileged process (benchmarks; make bench).
const BufferEnv = "PEERDROP_UDP_BUFFER"

func askBuffer() int {
	if v, err := strconv.Atoi(os.Getenv(BufferEnv)); err == nil && v > 0 {
		return v
	}
	return udpBuffer
}

// growBuffers asks for udpBuffer bytes (askBuffer) of receive and send buffer on c and
// returns the receive buffer granted (0 when it cannot be read).
func growBuffers(c net.PacketConn) int {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return 0
	}
	forceBuffers(uc, askBuffer())
	return readBuffer(uc)
}

// bufferedNet is the standard network with large buffers on the UDP
// sockets pion opens for ICE (one per host candidate of a connection that
// does not use a shared UDPPort).
type bufferedNet struct {
	*stdnet.Net
}

func newBufferedNet() (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return bufferedNet{n}, nil
}

func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err == nil {
		if pc, ok := c.(net.PacketConn); ok {
			growBuffers(pc)
		}
	}
	return c, err
}

func (n bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err == nil {
		growBuffers(c)
	}
	return c, err
}
