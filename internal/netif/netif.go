// Package netif lists this machine's own unicast addresses, interface by
// interface: the one walk over net.Interfaces that the engine (addresses a
// user types on another device) and the web client (the address in its QR
// code) share.
package netif

import (
	"net"
	"net/netip"
)

// Addr is one address of an interface that is up.
type Addr struct {
	Iface string
	IP    netip.Addr // unmapped; a link-local IPv6 address carries Iface as its zone
}

// Up lists the unicast addresses of the interfaces that are up, loopback
// interfaces and loopback, unspecified and multicast addresses left out, in
// the order the system gives them.
func Up() []Addr {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := unicast(a, ifc.Name); ok {
				out = append(out, Addr{Iface: ifc.Name, IP: ip})
			}
		}
	}
	return out
}

// unicast reads one interface address, ok when it is a unicast one.
func unicast(a net.Addr, iface string) (netip.Addr, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
		return netip.Addr{}, false
	}
	if ip.Is6() && ip.IsLinkLocalUnicast() {
		ip = ip.WithZone(iface)
	}
	return ip, true
}

// Multicast lists the interfaces that multicast discovery runs on (mDNS,
// LocalSend's announcements): up, multicast-capable, not loopback.
func Multicast() []net.Interface {
	all, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out
}
