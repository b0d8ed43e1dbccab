package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/netif"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// Sending to an address (LocalSend's "send to IP"): a device that discovery
// does not list (another subnet, a network that drops multicast) is reached
// by what the user types. The send dials that address and nothing else.

// ErrBadAddress: what was typed is not an address (ParseAddress).
var ErrBadAddress = errors.New("not an address")

// maxHostLen bounds a typed host name (DNS: 253 characters).
const maxHostLen = 253

// ParseAddress reads an address typed by a user: an IP address
// ("192.168.1.5", "fe80::1%eth0", "[fe80::1%eth0]"), a host name
// ("nas.local"), either with a port ("192.168.1.5:53318",
// "[fe80::1%eth0]:53318", "nas.local:4000"), and returns it as HOST:PORT,
// the port signaling.DefaultPort when none is given. Anything else (a URL,
// spaces, a port out of range, a host name with characters DNS does not
// allow) is an error wrapping ErrBadAddress that says what is wrong.
func ParseAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("empty: %w", ErrBadAddress)
	}
	if strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@ \t") {
		return "", fmt.Errorf("%q: type only the address, like 192.168.1.5 or 192.168.1.5:%d: %w", s, signaling.DefaultPort, ErrBadAddress)
	}
	host, port := s, strconv.Itoa(signaling.DefaultPort)
	bare := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		bare = s[1 : len(s)-1]
	}
	if a, err := parseIP(bare); err == nil {
		return net.JoinHostPort(a.String(), port), nil // an IP alone, IPv6 without brackets included
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
			return "", fmt.Errorf("%q: the port must be a number from 1 to 65535: %w", s, ErrBadAddress)
		}
		port = strconv.Itoa(n)
	} else if strings.Contains(s, ":") {
		return "", fmt.Errorf("%q: write an IPv6 address with a port as [address]:port: %w", s, ErrBadAddress)
	}
	if a, err := parseIP(host); err == nil {
		return net.JoinHostPort(a.String(), port), nil
	}
	if err := checkHostName(host); err != nil {
		return "", fmt.Errorf("%q: %w: %w", s, err, ErrBadAddress)
	}
	return net.JoinHostPort(host, port), nil
}

// parseIP is netip.ParseAddr with a zone that names an interface (letters,
// digits, '-', '_', '.'), not any text after a '%'.
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, c := range a.Zone() {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return netip.Addr{}, errors.New("not an interface name")
		}
	}
	return a, nil
}

// checkHostName accepts what DNS (and mDNS's .local) names may be: labels
// of letters, digits and hyphens, 1 to 63 long, not starting or ending
// with a hyphen, 253 characters in all.
func checkHostName(h string) error {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return errors.New("no host")
	}
	if len(h) > maxHostLen {
		return errors.New("the name is too long")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("not a valid host name")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("not a valid host name")
			}
		}
	}
	if strings.Trim(h, "0123456789.") == "" {
		return errors.New("not a valid IP address")
	}
	return nil
}

// AddressDevice is a device known only by an address a user typed
// (ParseAddress says what is accepted): no id, its name the address, until
// it answers and its hello names it. TargetOf makes a Target that dials that
// address and nothing else: no discovery, no server.
func AddressDevice(s string) (Device, error) {
	addr, err := ParseAddress(s)
	if err != nil {
		return Device{}, err
	}
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	d := Device{Device: discovery.Device{Info: discovery.Info{Device: device.Device{Name: addr}}, Host: host, Port: port}}
	if ip, err := netip.ParseAddr(host); err == nil {
		d.Addrs = []netip.Addr{ip}
	}
	return d, nil
}

// AddressTarget is the Target for an address a user typed:
// TargetOf(AddressDevice(s)).
func AddressTarget(s string) (Target, error) {
	d, err := AddressDevice(s)
	if err != nil {
		return Target{}, err
	}
	return TargetOf(d), nil
}

// Addresses are this device's addresses on its networks (interfaces that
// are up, loopback left out; IPv4 first, link-local IPv6 last, with its
// zone) and the port it takes handshakes on (0 before Run listens): what a
// user types on another device to send here.
func (e *Engine) Addresses() ([]netip.Addr, int) {
	port := 0
	if _, p, err := net.SplitHostPort(e.Addr()); err == nil {
		port, _ = strconv.Atoi(p)
	}
	return localAddrs(), port
}

func localAddrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range netif.Up() {
		out = append(out, a.IP)
	}
	rank := func(a netip.Addr) int {
		switch {
		case a.Is4():
			return 0
		case !a.IsLinkLocalUnicast():
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int { return rank(a) - rank(b) })
	return slices.Compact(out)
}
