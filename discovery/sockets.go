package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/thepeerdrop/peerdrop/internal/netif"
)

// The browser's multicast sockets: one per address family, joined on
// every usable interface, queried and read.

// sockets are the browser's two multicast sockets on port 5353 and the
// interfaces they joined the mDNS group on. Go sets SO_REUSEADDR on sockets
// bound to a multicast address, so they share the port with zeroconf's
// responder, other peerdrop processes and the system's mDNS daemon.
type sockets struct {
	v4 *ipv4.PacketConn
	v6 *ipv6.PacketConn

	mu     sync.Mutex
	ifaces map[int]net.Interface // joined, by index
}

func openSockets() (*sockets, error) {
	s := &sockets{ifaces: map[int]net.Interface{}}
	var errs []error
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 0), Port: mdnsPort}); err == nil {
		s.v4 = ipv4.NewPacketConn(c)
		_ = s.v4.SetControlMessage(ipv4.FlagInterface, true)
		_ = s.v4.SetMulticastTTL(255)
		_ = s.v4.SetMulticastLoopback(true)
	} else {
		errs = append(errs, fmt.Errorf("IPv4: %w", err))
	}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("ff02::"), Port: mdnsPort}); err == nil {
		s.v6 = ipv6.NewPacketConn(c)
		_ = s.v6.SetControlMessage(ipv6.FlagInterface, true)
		_ = s.v6.SetMulticastHopLimit(255)
		_ = s.v6.SetMulticastLoopback(true)
	} else {
		errs = append(errs, fmt.Errorf("IPv6: %w", err))
	}
	if s.v4 == nil && s.v6 == nil {
		return nil, fmt.Errorf("open mDNS sockets on port %d: %w", mdnsPort, errors.Join(errs...))
	}
	return s, nil
}

func (s *sockets) close() {
	if s.v4 != nil {
		_ = s.v4.Close()
	}
	if s.v6 != nil {
		_ = s.v6.Close()
	}
}

// usableInterfaces are the interfaces mDNS runs on: up, multicast, not
// loopback.
func usableInterfaces() []net.Interface { return netif.Multicast() }

// refresh joins the mDNS groups on interfaces that came up and forgets the
// ones that went down. It reports whether any interface was (re)joined.
func (s *sockets) refresh() bool {
	now := usableInterfaces()
	s.mu.Lock()
	defer s.mu.Unlock()
	up := map[int]bool{}
	joined := false
	for _, ifi := range now {
		up[ifi.Index] = true
		if _, ok := s.ifaces[ifi.Index]; ok {
			continue
		}
		ok4, ok6 := false, false
		if s.v4 != nil {
			// Leave first: after a link goes down and up again the kernel
			// may or may not have kept the membership.
			_ = s.v4.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup4.AsSlice()})
			ok4 = s.v4.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsGroup4.AsSlice()}) == nil
		}
		if s.v6 != nil {
			_ = s.v6.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup6.AsSlice()})
			ok6 = s.v6.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsGroup6.AsSlice()}) == nil
		}
		if ok4 || ok6 {
			s.ifaces[ifi.Index] = ifi
			joined = true
			slog.Debug("discovery: browsing on interface", slog.String("iface", ifi.Name), slog.Bool("ipv4", ok4), slog.Bool("ipv6", ok6))
		}
	}
	for idx := range s.ifaces {
		if !up[idx] {
			delete(s.ifaces, idx)
		}
	}
	return joined
}

func (s *sockets) ifaceName(index int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ifi, ok := s.ifaces[index]; ok {
		return ifi.Name
	}
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return ""
}

// query asks every joined interface for _peerdrop._tcp instances.
func (s *sockets) query() { s.send(serviceFQDN) }

// joined lists the interfaces the mDNS group was joined on.
func (s *sockets) joined() []net.Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	ifaces := make([]net.Interface, 0, len(s.ifaces))
	for _, ifi := range s.ifaces {
		ifaces = append(ifaces, ifi)
	}
	return ifaces
}

// send asks every joined interface for PTR records of name; it returns how
// many of the writes went out.
func (s *sockets) send(name string) int {
	var m dns.Msg
	m.SetQuestion(name, dns.TypePTR)
	m.RecursionDesired = false
	m.Id = 0 // RFC 6762 §18.1
	buf, err := m.Pack()
	if err != nil {
		slog.Warn("discovery: pack query", slog.Any("err", err))
		return 0
	}
	sent := 0
	for _, ifi := range s.joined() {
		if s.v4 != nil {
			if _, err := s.v4.WriteTo(buf, &ipv4.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: mdnsGroup4.AsSlice(), Port: mdnsPort}); err == nil {
				sent++
			}
		}
		if s.v6 != nil {
			if _, err := s.v6.WriteTo(buf, &ipv6.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: mdnsGroup6.AsSlice(), Port: mdnsPort}); err == nil {
				sent++
			}
		}
	}
	return sent
}

// reply sends data to the sender of p, from port 5353, out of the
// interface p came in on.
func (s *sockets) reply(p packet, data []byte) {
	to := &net.UDPAddr{IP: p.src.AsSlice(), Port: p.srcPort}
	var err error
	switch {
	case p.src.Is4() && s.v4 != nil:
		_, err = s.v4.WriteTo(data, &ipv4.ControlMessage{IfIndex: p.ifIndex}, to)
	case p.src.Is6() && s.v6 != nil:
		to.Zone = s.ifaceName(p.ifIndex)
		_, err = s.v6.WriteTo(data, &ipv6.ControlMessage{IfIndex: p.ifIndex}, to)
	}
	if err != nil {
		slog.Debug("discovery: unicast answer", slog.String("to", to.String()), slog.Any("err", err))
	}
}

// read4 and read6 feed out with what the IPv4 and IPv6 sockets receive,
// until the socket is closed.
func (s *sockets) read4(ctx context.Context, out chan<- packet) {
	if s.v4 == nil {
		return
	}
	readLoop(ctx, out, func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := s.v4.ReadFrom(b)
		if cm == nil {
			return n, 0, src, err
		}
		return n, cm.IfIndex, src, err
	})
}

func (s *sockets) read6(ctx context.Context, out chan<- packet) {
	if s.v6 == nil {
		return
	}
	readLoop(ctx, out, func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := s.v6.ReadFrom(b)
		if cm == nil {
			return n, 0, src, err
		}
		return n, cm.IfIndex, src, err
	})
}

func readLoop(ctx context.Context, out chan<- packet, read func([]byte) (n, ifIndex int, src net.Addr, err error)) {
	buf := make([]byte, 9000) // RFC 6762 §17: mDNS packets are at most 9000 bytes
	for {
		n, ifIndex, src, err := read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // a transient error: do not spin
			continue
		}
		p := packet{data: append([]byte(nil), buf[:n]...), ifIndex: ifIndex}
		if ua, ok := src.(*net.UDPAddr); ok {
			p.src, _ = netip.AddrFromSlice(ua.IP)
			p.src, p.srcPort = p.src.Unmap(), ua.Port
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
	}
}
