package peer

import (
	"net"

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

// growBuffers asks for udpBuffer bytes of receive and send buffer on c and
// returns the receive buffer granted (0 when it cannot be read).
func growBuffers(c net.PacketConn) int {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return 0
	}
	forceBuffers(uc, udpBuffer)
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
