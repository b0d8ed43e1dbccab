package discovery

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Device is a peerdrop device seen on the LAN.
type Device struct {
	Info
	Instance string       // DNS-SD instance name
	Host     string       // SRV target, e.g. "pd-0123456789abcdef.local."
	Port     int          // LAN handshake port
	Addrs    []netip.Addr // best first; IPv6 link-local ones carry their zone
}

// Addresses returns HOST:PORT for each address, best first.
func (d Device) Addresses() []string {
	out := make([]string, 0, len(d.Addrs))
	for _, a := range d.Addrs {
		out = append(out, net.JoinHostPort(a.String(), strconv.Itoa(d.Port)))
	}
	return out
}

// Address is the best HOST:PORT, or "" when no address is known.
func (d Device) Address() string {
	if len(d.Addrs) == 0 {
		return ""
	}
	return d.Addresses()[0]
}

func (d Device) equal(o Device) bool {
	return d.Info == o.Info && d.Instance == o.Instance && d.Host == o.Host && d.Port == o.Port && slices.Equal(d.Addrs, o.Addrs)
}

// EventKind says what happened to a device.
type EventKind int

const (
	Appeared EventKind = iota + 1 // first seen (or seen again after it was gone)
	Updated                       // its name, type, fingerprint, port or addresses changed
	Gone                          // it said goodbye, or stopped answering
)

func (k EventKind) String() string {
	switch k {
	case Appeared:
		return "appeared"
	case Updated:
		return "updated"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// Event is one change to the device list.
type Event struct {
	Kind   EventKind
	Device Device
}

// rankAddr orders addresses: IPv4 first (every LAN has it), then global or
// unique-local IPv6, then link-local IPv6 (it needs a zone).
func rankAddr(a netip.Addr) int {
	switch {
	case a.Is4():
		return 0
	case !a.IsLinkLocalUnicast():
		return 1
	default:
		return 2
	}
}

func sortAddrs(addrs []netip.Addr) {
	slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
		if c := cmp.Compare(rankAddr(a), rankAddr(b)); c != 0 {
			return c
		}
		return a.Compare(b)
	})
}

// AmbiguousError says that a name matched several devices.
type AmbiguousError struct {
	Query      string
	Candidates []Device
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nearby devices are called %q; pick one by id:", len(e.Candidates), e.Query)
	for _, d := range e.Candidates {
		fmt.Fprintf(&b, "\n  %s (%s, id %s, %s)", d.Name, d.Type, d.ID, cmp.Or(d.Address(), "no address"))
	}
	return b.String()
}

// NotFoundError says that nothing matched. It lists what was seen, to help.
type NotFoundError struct {
	Query string
	Seen  []Device
}

func (e *NotFoundError) Error() string {
	if len(e.Seen) == 0 {
		return fmt.Sprintf("no device called %q nearby: no peerdrop device answered on this network", e.Query)
	}
	names := make([]string, 0, len(e.Seen))
	for _, d := range e.Seen {
		names = append(names, fmt.Sprintf("%s (id %s)", d.Name, d.ID))
	}
	return fmt.Sprintf("no device called %q nearby; seen: %s", e.Query, strings.Join(names, ", "))
}

// Is lets callers test errors.Is(err, ErrNotFound).
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ErrNotFound says that no nearby device matches a name or id.
var ErrNotFound = errors.New("no such device nearby")

// minIDPrefix is the shortest id prefix Resolve accepts.
const minIDPrefix = 4

// Resolve finds the device that query names, among devices. In order: an
// exact device id; a display name (exact, then ignoring case); a unique id
// prefix of at least 4 characters. Several devices with the name give an
// *AmbiguousError listing them; none gives a *NotFoundError.
func Resolve(devices []Device, query string) (Device, error) {
	query = strings.TrimSpace(query)
	match := func(f func(Device) bool) []Device {
		var out []Device
		for _, d := range devices {
			if f(d) {
				out = append(out, d)
			}
		}
		return out
	}
	for _, f := range []func(Device) bool{
		func(d Device) bool { return d.ID == query },
		func(d Device) bool { return d.Name == query },
		func(d Device) bool { return strings.EqualFold(d.Name, query) },
		func(d Device) bool { return len(query) >= minIDPrefix && strings.HasPrefix(d.ID, query) },
	} {
		switch m := match(f); len(m) {
		case 0:
			continue
		case 1:
			return m[0], nil
		default:
			slices.SortFunc(m, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
			return Device{}, &AmbiguousError{Query: query, Candidates: m}
		}
	}
	seen := slices.Clone(devices)
	slices.SortFunc(seen, func(a, b Device) int { return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID)) })
	return Device{}, &NotFoundError{Query: query, Seen: seen}
}
