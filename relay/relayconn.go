package relay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"

	"github.com/pion/turn/v5"
)

var (
	// errPeerRefused is what a relayed socket returns for a datagram to a
	// peer the policy refuses; pion logs it and drops the datagram.
	errPeerRefused = errors.New("relay: peer address refused by the relay policy")
	errTCPRelay    = errors.New("relay: TCP relaying (RFC 6062) is not offered")
	errNoFreePort  = errors.New("relay: no free port in the relay port range")
)

// relayGenerator makes the relayed sockets of allocations: UDP only, in the
// configured port range, announced at the relay IP, each wrapped in a
// relayConn that enforces the peer policy per datagram and counts bytes.
type relayGenerator struct {
	server *Server
	bindIP net.IP
	ports  PortRange
}

var _ turn.RelayAddressGenerator = (*relayGenerator)(nil)

func (g *relayGenerator) Validate() error { return nil }

func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	// The relayed address must be one the client can be told: an IPv6
	// allocation cannot be announced at an IPv4 relay IP, nor the reverse.
	v4 := g.server.relayIP.To4() != nil
	if (conf.Network == "udp4") != v4 {
		return nil, nil, fmt.Errorf("relay: no relay address for %s (relay IP is %s)", conf.Network, g.server.relayIP)
	}
	pc, err := g.listen(conf.Network, conf.RequestedPort)
	if err != nil {
		return nil, nil, err
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c := &relayConn{PacketConn: pc, server: g.server, port: port}
	g.server.relays.Add(1)
	g.server.addRelay(c)
	return c, &net.UDPAddr{IP: g.server.relayIP, Port: port}, nil
}

// listen binds a relayed socket: on the requested port if there is one
// (EVEN-PORT reservations), else on a free port of the range, trying every
// port once from a random start, else on an ephemeral port.
func (g *relayGenerator) listen(network string, requested int) (net.PacketConn, error) {
	bind := func(port int) (net.PacketConn, error) {
		//nolint:noctx // a local bind, nothing to cancel
		return net.ListenPacket(network, net.JoinHostPort(g.bindIP.String(), strconv.Itoa(port)))
	}
	if g.ports.Min == 0 {
		return bind(requested)
	}
	lo, n := int(g.ports.Min), int(g.ports.Max)-int(g.ports.Min)+1
	if requested != 0 {
		if requested < lo || requested >= lo+n {
			return nil, fmt.Errorf("relay: requested port %d outside the relay port range", requested)
		}
		return bind(requested)
	}
	start := rand.IntN(n) //nolint:gosec // port choice, not a secret
	for i := range n {
		if pc, err := bind(lo + (start+i)%n); err == nil {
			return pc, nil
		}
	}
	return nil, errNoFreePort
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// relayConn is one allocation's relayed socket.
type relayConn struct {
	net.PacketConn
	server *Server
	port   int

	closeOnce sync.Once
	closeErr  error
	readOnce  sync.Once
}

// ReadFrom is called by pion's one reader goroutine per allocation, which
// ends at the first error.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		c.readOnce.Do(c.server.relays.Done)
		return n, addr, err
	}
	c.server.bytesFromPeers.Add(uint64(n)) //nolint:gosec // n >= 0
	return n, addr, nil
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	to, ok := addr.(*net.UDPAddr)
	if !ok || !c.server.packetAllowed(to) {
		c.server.peersRefused.Add(1)
		return 0, fmt.Errorf("%w: %s", errPeerRefused, addr)
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	c.server.bytesToPeers.Add(uint64(n)) //nolint:gosec // n >= 0
	return n, err
}

// Close is idempotent: pion may close an allocation twice (lifetime expiry,
// then shutdown), and its shutdown stops at the first error.
func (c *relayConn) Close() error {
	c.closeOnce.Do(func() {
		c.server.removeRelay(c)
		c.closeErr = c.PacketConn.Close()
	})
	return c.closeErr
}
