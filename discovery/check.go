package discovery

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// MulticastCheck is what CheckMulticast saw: whether mDNS multicast goes
// out and comes in on this machine's network.
type MulticastCheck struct {
	// Interfaces are the interfaces the mDNS group was joined on.
	Interfaces []string
	// Sent: the queries went out on at least one interface.
	Sent bool
	// Looped: our own queries came back to us (the system loops multicast
	// back to its own sockets; a firewall that drops mDNS stops that too).
	Looped bool
	// Heard lists the other hosts whose mDNS packets arrived, any service
	// (at most 16).
	Heard []netip.Addr
}

// CheckMulticast asks, on every interface, for _peerdrop._tcp and for every
// service (_services._dns-sd._udp, which any mDNS responder answers:
// printers, phones, the system's own daemon), and listens for wait.
func CheckMulticast(ctx context.Context, wait time.Duration) (MulticastCheck, error) {
	socks, err := openSockets()
	if err != nil {
		return MulticastCheck{}, err
	}
	var check MulticastCheck
	socks.refresh()
	for _, ifi := range socks.joined() {
		check.Interfaces = append(check.Interfaces, ifi.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	packets := make(chan packet, 64)
	var readers sync.WaitGroup
	readers.Go(func() { socks.read4(ctx, packets) })
	readers.Go(func() { socks.read6(ctx, packets) })
	defer func() {
		socks.close()
		readers.Wait()
	}()
	own := ownAddrs()
	check.Sent = socks.send(serviceFQDN) > 0
	socks.send("_services._dns-sd._udp.local.")
	for {
		select {
		case <-ctx.Done():
			return check, nil
		case p := <-packets:
			var m dns.Msg
			if m.Unpack(p.data) != nil {
				continue
			}
			if own[p.src.WithZone("")] {
				check.Looped = check.Looped || !m.Response
				continue
			}
			if !slices.Contains(check.Heard, p.src) && len(check.Heard) < 16 {
				check.Heard = append(check.Heard, p.src)
			}
		}
	}
}

// ownAddrs are this machine's addresses, without zones.
func ownAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, ifi := range usableInterfaces() {
		for _, a := range ifaceAddrs(ifi.Index) {
			out[a.WithZone("")] = true
		}
	}
	return out
}
