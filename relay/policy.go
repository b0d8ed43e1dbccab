package relay

import (
	"log/slog"
	"net"
	"net/netip"
)

// DefaultAllowedPeers refuses peer addresses that no peer on another network
// can have and that would turn the relay into a way into the server's own
// host or link: unspecified (0.0.0.0/8, ::), loopback, link-local unicast
// and multicast, all multicast, and the IPv4 broadcast address. IPv4-mapped
// IPv6 addresses are judged as IPv4.
//
// Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed: a
// server on a private network (an office, a test bridge) relays to peers
// that are private from the outside world's point of view. A server on the
// internet next to private services it must shield can refuse them too:
//
//	AllowedPeers: func(ip net.IP) bool { return relay.DefaultAllowedPeers(ip) && !ip.IsPrivate() }
//
// (its own addresses are then no longer refused unless that function does).
func DefaultAllowedPeers(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(),
		a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return false
	case a.Is4() && (a.As4()[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		// 0.0.0.0/8 means "this host" to many stacks.
		return false
	}
	return true
}

// addrSet is a set of addresses, compared without IPv4-in-IPv6 mapping.
type addrSet map[netip.Addr]struct{}

func (s addrSet) add(ip net.IP) {
	if a, ok := netip.AddrFromSlice(ip); ok {
		s[a.Unmap()] = struct{}{}
	}
}

func (s *addrSet) contains(ip net.IP) bool {
	if s == nil {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	_, found := (*s)[a.Unmap()]
	return found
}

// addresses picks the announced relay IP and the address relayed sockets
// bind to, from the configured public IP and the listening IP.
func addresses(public, listen net.IP, log *slog.Logger) (relayIP, bindIP net.IP) {
	relayIP = public
	if relayIP == nil {
		relayIP = listen
		if listen.IsUnspecified() {
			relayIP = firstGlobalIPv4()
			log.Warn("relay: no public IP configured, announcing a local address; set it when the server is behind NAT",
				slog.String("relay_ip", relayIP.String()))
		}
	}
	if v4 := relayIP.To4(); v4 != nil {
		relayIP = v4
	}
	// Relayed sockets live on the listening address when it is a specific
	// one of the relay IP's family, else on every address of that family.
	switch {
	case !listen.IsUnspecified() && (listen.To4() != nil) == (relayIP.To4() != nil):
		bindIP = listen
	case relayIP.To4() != nil:
		bindIP = net.IPv4zero
	default:
		bindIP = net.IPv6unspecified
	}
	return relayIP, bindIP
}

func firstGlobalIPv4() net.IP {
	ifAddrs, _ := net.InterfaceAddrs()
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.To4()
		}
	}
	return net.IPv4(127, 0, 0, 1).To4()
}
