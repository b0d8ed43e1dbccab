package localsend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/thepeerdrop/peerdrop/internal/netif"
)

// Discovery (spec §3): we announce ourselves to the multicast group and
// answer others' announcements with a register call to their server (a
// multicast answer when that fails); when the multicast finds nobody, the
// legacy scan calls register on every address of our /24 networks.

// discoverer owns the multicast socket.
type discoverer struct {
	n    *Node
	pc   *ipv4.PacketConn
	sem  chan struct{} // registers in flight
	send sync.Mutex    // one announcement at a time (it sets the socket's interface)
	mu   sync.Mutex
	busy map[netip.Addr]bool // a register to it is in flight
	// lastAnswer is when we last answered on the group (announce false):
	// at most once per answerEvery, whatever a flood of announcements asks.
	lastAnswer time.Time
}

// scanAfter is how long the multicast has to find someone before the
// legacy scan runs; scanEvery how often it runs again while nobody is found.
const (
	scanAfter   = 3 * time.Second
	scanEvery   = time.Minute // doubled after each scan that finds no one, up to scanMax
	scanMax     = 16 * time.Minute
	answerEvery = 2 * time.Second
	scanWorkers = 32
	maxDatagram = 4096
)

func (n *Node) startDiscovery() (*discoverer, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(MulticastAddr), Port: n.cfg.GroupPort})
	if err != nil {
		return nil, fmt.Errorf("localsend: listen for announcements on port %d: %w", n.cfg.GroupPort, err)
	}
	pc := ipv4.NewPacketConn(c)
	_ = pc.SetControlMessage(ipv4.FlagInterface, true)
	_ = pc.SetMulticastTTL(1)
	_ = pc.SetMulticastLoopback(true)
	group := &net.UDPAddr{IP: net.ParseIP(MulticastAddr)}
	joined := 0
	for _, ifi := range multicastInterfaces() {
		if pc.JoinGroup(&ifi, group) == nil {
			joined++
		}
	}
	if joined == 0 {
		slog.Info("localsend: no interface joined the multicast group; the legacy scan still runs")
	}
	d := &discoverer{n: n, pc: pc, sem: make(chan struct{}, 8), busy: map[netip.Addr]bool{}}
	n.wg.Go(d.read)
	n.wg.Go(d.loop)
	go func() {
		<-n.ctx.Done()
		_ = pc.Close()
	}()
	return d, nil
}

func multicastInterfaces() []net.Interface { return netif.Multicast() }

// announce sends our announcement (or, announce false, an answer) to the
// group on every interface.
func (d *discoverer) announce(announce bool) {
	in := d.n.self
	in.Announce = &announce
	b, err := json.Marshal(in)
	if err != nil {
		return
	}
	dst := &net.UDPAddr{IP: net.ParseIP(MulticastAddr), Port: d.n.cfg.GroupPort}
	d.send.Lock()
	defer d.send.Unlock()
	for _, ifi := range multicastInterfaces() {
		if d.pc.SetMulticastInterface(&ifi) != nil {
			continue
		}
		_, _ = d.pc.WriteTo(b, nil, dst)
	}
}

// loop announces at start (three times, as LocalSend's apps do, in case
// one is lost), then every announceEvery; it expires devices and runs the
// legacy scan while nobody is found.
func (d *discoverer) loop() {
	for _, wait := range []time.Duration{0, 400 * time.Millisecond, 1500 * time.Millisecond} {
		select {
		case <-time.After(wait):
		case <-d.n.ctx.Done():
			return
		}
		d.announce(true)
	}
	announce := time.NewTicker(announceEvery)
	defer announce.Stop()
	scan := time.NewTimer(scanAfter)
	defer scan.Stop()
	every := scanEvery
	expire := time.NewTicker(5 * time.Second)
	defer expire.Stop()
	for {
		select {
		case <-d.n.ctx.Done():
			return
		case <-announce.C:
			d.announce(true)
		case now := <-expire.C:
			d.n.expire(now)
		case <-scan.C:
			if len(d.n.Devices()) == 0 {
				d.scan()
				if len(d.n.Devices()) == 0 {
					every = min(every*2, scanMax)
				}
			} else {
				every = scanEvery
			}
			scan.Reset(every)
		}
	}
}

// read handles announcements until the socket closes.
func (d *discoverer) read() {
	buf := make([]byte, maxDatagram)
	for {
		k, cm, src, err := d.pc.ReadFrom(buf)
		if err != nil {
			if d.n.ctx.Err() != nil {
				return
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ua.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if cm == nil || !onLink(ip, cm.IfIndex) {
			// Only a neighbour on the network it came in on is listed or
			// answered: a datagram's source is easily forged, and the
			// answer is a request to it.
			continue
		}
		in, err := DecodeInfo(buf[:k])
		if err != nil || in.Fingerprint == d.n.self.Fingerprint {
			continue
		}
		if in.Port == 0 {
			in.Port = DefaultPort
		}
		addr := netip.AddrPortFrom(ip.Unmap(), uint16(in.Port))
		d.n.saw(in, addr)
		if in.Announce != nil && *in.Announce {
			d.answer(in, addr)
		}
	}
}

// answer registers us with a device that announced itself, or answers on
// the group when its server cannot be reached. One register per address
// runs at a time, and a few in all: a flood of announcements costs little.
func (d *discoverer) answer(in Info, addr netip.AddrPort) {
	d.mu.Lock()
	if d.busy[addr.Addr()] {
		d.mu.Unlock()
		return
	}
	select {
	case d.sem <- struct{}{}:
	default:
		d.mu.Unlock()
		return
	}
	d.busy[addr.Addr()] = true
	d.mu.Unlock()
	d.n.wg.Go(func() {
		defer func() {
			d.mu.Lock()
			delete(d.busy, addr.Addr())
			d.mu.Unlock()
			<-d.sem
		}()
		proto := in.Protocol
		if proto == "" {
			proto = ProtocolHTTPS
		}
		if _, err := d.register(addr, proto); err != nil {
			d.mu.Lock()
			answer := time.Since(d.lastAnswer) >= answerEvery
			if answer {
				d.lastAnswer = time.Now()
			}
			d.mu.Unlock()
			if answer {
				d.announce(false)
			}
		}
	})
}

// register calls a device's register with our info and returns its answer.
func (d *discoverer) register(addr netip.AddrPort, proto string) (Info, error) {
	base, err := d.n.baseURL(Device{Info: Info{Protocol: proto}, Addr: addr})
	if err != nil {
		return Info{}, err
	}
	c := d.n.reg
	self := d.n.self
	self.Announce = nil
	body, _ := json.Marshal(self)
	ctx, cancel := context.WithTimeout(d.n.ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/register", bytes.NewReader(body))
	if err != nil {
		return Info{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return Info{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Info{}, fmt.Errorf("register: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallJSON+1))
	if err != nil {
		return Info{}, err
	}
	in, err := DecodeInfo(b)
	if err != nil {
		return Info{}, err
	}
	if in.Fingerprint == d.n.self.Fingerprint {
		return in, nil
	}
	in.Port, in.Protocol = int(addr.Port()), proto
	d.n.saw(in, addr)
	return in, nil
}

// onLink reports whether ip is on the network of interface ifIndex: in
// the prefix of one of its IPv4 addresses.
func onLink(ip netip.Addr, ifIndex int) bool {
	ifi, err := net.InterfaceByIndex(ifIndex)
	if err != nil {
		return false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, ok := prefixOf(n); ok && p.Contains(ip) {
				return true
			}
		}
	}
	return false
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	ip = ip.Unmap()
	if ip.Is4() && ones > 32 {
		ones -= 96
	}
	return netip.PrefixFrom(ip, ones).Masked(), true
}

// scanTargets are the addresses the legacy scan asks: on each up,
// multicast-capable interface that is not loopback nor point-to-point
// (VPN tunnels), the other addresses of each private IPv4 network it is on
// (RFC 1918, the networks a home or office uses), within its real prefix
// but never more than the /24 around our address.
func scanTargets() []netip.Addr {
	var targets []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ifi := range multicastInterfaces() {
		if ifi.Flags&net.FlagPointToPoint != 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, ok := prefixOf(n)
			own, _ := netip.AddrFromSlice(n.IP)
			own = own.Unmap()
			if !ok || !own.Is4() || !own.IsPrivate() {
				continue
			}
			if p.Bits() < 24 {
				p, _ = own.Prefix(24)
			}
			for ip := p.Addr().Next(); p.Contains(ip); ip = ip.Next() {
				if ip == own || seen[ip] || !p.Contains(ip.Next()) { // the last is the broadcast address
					continue
				}
				seen[ip] = true
				targets = append(targets, ip)
			}
		}
	}
	return targets
}

// Probe asks the LocalSend device at addr (HOST or HOST:PORT) who it is,
// over HTTPS and (when allowed) HTTP, and lists it.
func (n *Node) Probe(ctx context.Context, addr netip.AddrPort) (Device, error) {
	d := &discoverer{n: n}
	protos := []string{ProtocolHTTPS}
	if n.cfg.AllowHTTP {
		protos = append(protos, ProtocolHTTP)
	}
	var errs []error
	for _, proto := range protos {
		in, err := d.register(addr, proto)
		if err == nil {
			if in.Fingerprint == n.self.Fingerprint {
				return Device{}, errors.New("that is this device")
			}
			in.Port, in.Protocol, in.Announce = int(addr.Port()), proto, nil
			return Device{Info: in, Addr: addr}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", proto, err))
	}
	return Device{}, fmt.Errorf("no LocalSend device answers at %s: %w", addr, errors.Join(errs...))
}

// scan is the legacy discovery: register on the other addresses of the
// private IPv4 networks we are on (scanTargets), over HTTPS and (when
// allowed) HTTP.
func (d *discoverer) scan() {
	targets := scanTargets()
	if len(targets) == 0 {
		return
	}
	slog.Debug("localsend: legacy scan", slog.Int("addresses", len(targets)))
	protos := []string{ProtocolHTTPS}
	if d.n.cfg.AllowHTTP {
		protos = append(protos, ProtocolHTTP)
	}
	work := make(chan netip.Addr)
	var wg sync.WaitGroup
	for range scanWorkers {
		wg.Go(func() {
			for ip := range work {
				for _, proto := range protos {
					if _, err := d.register(netip.AddrPortFrom(ip, DefaultPort), proto); err == nil {
						break
					}
				}
			}
		})
	}
	for _, ip := range targets {
		select {
		case work <- ip:
		case <-d.n.ctx.Done():
		}
		if d.n.ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}
