package discovery

import (
	"net"
	"net/netip"
	"strings"
)

// skipPrefixes name the interfaces a scan leaves alone: VPN tunnels (their
// far side is not a LAN, and a scan there is someone else's network) and
// container and virtual machine bridges (nobody with a screen sits there).
var skipPrefixes = []string{
	"docker", "br-", "veth", "virbr", "vmnet", "vboxnet", "cni", "flannel", "cali", "lxc", "lxd", "podman",
	"tun", "tap", "wg", "ppp", "tailscale", "zt", "utun", "ipsec", "vti", "gre", "nordlynx", "proton",
}

// scanIface says whether a scan may cover the interface: up, not loopback,
// not point-to-point, and not a VPN or container interface by its name.
func scanIface(ifi net.Interface) bool {
	if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 || ifi.Flags&net.FlagPointToPoint != 0 {
		return false
	}
	name := strings.ToLower(ifi.Name)
	for _, p := range skipPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// scanNets lists the subnets to scan: the IPv4 networks of at most
// maxScanIfaces interfaces, each capped at a /22 (scanNetOf).
func scanNets() []scanNet {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []scanNet
	used := 0
	for _, ifi := range ifaces {
		if !scanIface(ifi) || used == maxScanIfaces {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		took := false
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(ipn.String())
			if err != nil {
				continue
			}
			if n, ok := scanNetOf(p.Addr(), p.Bits()); ok && !covered(out, n.prefix) {
				out = append(out, n)
				took = true
			}
		}
		if took {
			used++
		}
	}
	return out
}

// covered says whether p overlaps a subnet already listed.
func covered(nets []scanNet, p netip.Prefix) bool {
	for _, n := range nets {
		if n.prefix.Overlaps(p) {
			return true
		}
	}
	return false
}
