package peer

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Admission limits of a Listener (docs/PROTOCOL.md section 2.2). A
// handshake holds its slot from the accept until it fails or the data
// channel opens, so a host that keeps connections open and silent holds at
// most MaxHandshakesPerSource slots, and only for FirstFrameTimeout each.
const (
	// MaxHandshakes bounds the handshakes in progress at once, from all
	// sources together; each may hold a peer connection for up to
	// ConnectTimeout.
	MaxHandshakes = 64
	// MaxHandshakesPerSource bounds the handshakes in progress at once from
	// one source address, so that one host cannot take the slots of others.
	MaxHandshakesPerSource = 4
	// FirstFrameTimeout bounds the wait for the dialer's first frame (its
	// hello); the frames after it get signaling.ReadTimeout each.
	FirstFrameTimeout = 3 * time.Second
)

// MaxPendingHandshakes bounds the handshakes through a rendezvous server in
// progress at once (remote.Host); the LAN listener has its own limits above.
const MaxPendingHandshakes = 16

// admission counts the handshakes in progress, in all and per source address.
type admission struct {
	maxTotal, maxPerSource int

	mu       sync.Mutex
	total    int
	bySource map[netip.Addr]int
}

func newAdmission(maxTotal, maxPerSource int) *admission {
	return &admission{maxTotal: maxTotal, maxPerSource: maxPerSource, bySource: map[netip.Addr]int{}}
}

// admit takes a slot for a handshake from src. It returns false, and takes
// nothing, when src or everyone together is at the limit; otherwise the
// caller must call release once the handshake is over.
func (a *admission) admit(src netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total >= a.maxTotal || a.bySource[src] >= a.maxPerSource {
		return false
	}
	a.total++
	a.bySource[src]++
	return true
}

// release gives back a slot admit took for src.
func (a *admission) release(src netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if n := a.bySource[src] - 1; n > 0 {
		a.bySource[src] = n
	} else {
		delete(a.bySource, src) // the map holds only sources in progress
	}
}

// sourceOf is the address a connection comes from, the key of admission.
// An IPv4 address seen through an IPv6 socket counts as itself; an IPv6
// address counts whole (all hosts of a LAN share its /64, so a prefix
// would put an attacker and its neighbours under one limit).
func sourceOf(addr net.Addr) netip.Addr {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(tcp.IP); ok {
			return ip.Unmap().WithZone(tcp.Zone)
		}
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{} // unknown sources share one limit
}
