package discovery

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// Unicast fallbacks (docs/PROTOCOL.md section 12): where multicast does not
// pass (access points that filter it, other subnets, host firewalls), the
// browser asks addresses directly who listens on the handshake port, with
// the handshake's probe (section 2.5). Known devices are probed at their
// last addresses; when mDNS lists nobody, the local subnets are scanned.
// What answers joins the same list as what mDNS finds, by device id.

// Unicast timings and bounds.
const (
	// DefaultScanPort is the handshake port a subnet scan probes.
	DefaultScanPort = 53318
	// probeEvery is how often known devices, and devices a scan found, are
	// probed while mDNS does not list them.
	probeEvery = 3 * time.Second
	// scanGrace is how long mDNS may list nobody before a scan starts.
	scanGrace = time.Second
	// rescanEvery spaces scans while mDNS still lists nobody.
	rescanEvery = 2 * time.Minute
	// ScanRate bounds the probes a scan starts per second, and scanInFlight
	// the probes it has open at once; scanProbeTimeout ends one probe (an
	// address where nobody is, after its ARP request went unanswered).
	ScanRate         = 200
	scanInFlight     = 128
	scanProbeTimeout = 1500 * time.Millisecond
	// minScanBits caps a scan at a /22 (1022 addresses) per interface, and
	// maxScanIfaces bounds the interfaces scanned.
	minScanBits   = 22
	maxScanIfaces = 4
	// maxUnicast bounds the devices the fallbacks keep, and maxKnownAddrs
	// the addresses probed per known device.
	maxUnicast    = 256
	maxKnownAddrs = 4
)

// ScanEnv, set to "off" in the environment, turns the subnet scan off (a
// network whose intrusion detection frowns on scans; tests, which must not
// probe the machine's own network). Known devices are still probed.
const ScanEnv = "PEERDROP_SCAN"

// Known is a device to look for at the addresses where it was last reached.
type Known struct {
	ID    string
	Addrs []netip.AddrPort
}

// ProbeFunc asks who listens at addr (HOST:PORT) on the handshake port and
// returns what it says about itself.
type ProbeFunc func(ctx context.Context, addr string) (Info, error)

// probeResult is one probe that answered.
type probeResult struct {
	addr netip.AddrPort
	info Info
}

// unicast runs the fallbacks for a Browser: it probes and scans, and hands
// what answered to the browser's loop through found.
type unicast struct {
	b        *Browser
	found    chan<- probeResult
	netDirty chan struct{} // the interfaces changed: scan again soon

	mu       sync.Mutex
	inFlight map[netip.AddrPort]bool
	scanning bool
}

// run probes and scans until ctx ends; every goroutine it starts has ended
// when it returns.
func (u *unicast) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	nextScan := time.NewTimer(scanGrace)
	defer nextScan.Stop()
	probeNow := time.After(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-probeNow:
			u.probeKnown(ctx, &wg)
		case <-tick.C:
			u.probeKnown(ctx, &wg)
		case <-u.netDirty:
			nextScan.Reset(scanGrace)
		case <-nextScan.C:
			nextScan.Reset(rescanEvery)
			if u.b.heardCount() == 0 && os.Getenv(ScanEnv) != "off" {
				u.startScan(ctx, &wg)
			}
		}
	}
}

// probeKnown probes, at each of its addresses, every known device and every
// device found by a probe that mDNS does not list now.
func (u *unicast) probeKnown(ctx context.Context, wg *sync.WaitGroup) {
	for _, a := range u.b.unicastTargets() {
		u.probe(ctx, wg, a, ProbeTimeout)
	}
}

// ProbeTimeout bounds a probe of a known address.
const ProbeTimeout = 3 * time.Second

// probe starts one probe of addr unless one is already running.
func (u *unicast) probe(ctx context.Context, wg *sync.WaitGroup, addr netip.AddrPort, timeout time.Duration) bool {
	u.mu.Lock()
	if u.inFlight[addr] {
		u.mu.Unlock()
		return false
	}
	u.inFlight[addr] = true
	u.mu.Unlock()
	wg.Go(func() {
		defer func() {
			u.mu.Lock()
			delete(u.inFlight, addr)
			u.mu.Unlock()
		}()
		u.probeOnce(ctx, addr, timeout)
	})
	return true
}

func (u *unicast) probeOnce(ctx context.Context, addr netip.AddrPort, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := u.b.Probe(pctx, addr.String())
	if err != nil || info.Validate() != nil {
		return
	}
	select {
	case u.found <- probeResult{addr: addr, info: info}:
	case <-ctx.Done():
	}
}

// startScan starts a scan of the local subnets unless one is running.
func (u *unicast) startScan(ctx context.Context, wg *sync.WaitGroup) {
	u.mu.Lock()
	if u.scanning {
		u.mu.Unlock()
		return
	}
	u.scanning = true
	u.mu.Unlock()
	wg.Go(func() {
		defer func() {
			u.mu.Lock()
			u.scanning = false
			u.mu.Unlock()
		}()
		u.scan(ctx)
	})
}

// scan probes every address of the local subnets on the scan port, at most
// ScanRate new probes a second and scanInFlight at once.
func (u *unicast) scan(ctx context.Context) {
	port := u.b.ScanPort
	if port == 0 {
		port = DefaultScanPort
	}
	lookup := u.b.scanNets
	if lookup == nil {
		lookup = scanNets
	}
	slots := make(chan struct{}, scanInFlight)
	pace := time.NewTicker(time.Second / ScanRate)
	defer pace.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, n := range lookup() {
		for a := range hosts(n) {
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			select {
			case <-ctx.Done():
				return
			case slots <- struct{}{}:
			}
			wg.Go(func() {
				defer func() { <-slots }()
				u.probeOnce(ctx, netip.AddrPortFrom(a, uint16(port)), scanProbeTimeout)
			})
		}
	}
}

// scanNet is one subnet to scan and our own address on it.
type scanNet struct {
	prefix netip.Prefix
	self   netip.Addr
}

// hosts yields the addresses of n to probe: all but the network and
// broadcast addresses and our own.
func hosts(n scanNet) func(yield func(netip.Addr) bool) {
	return func(yield func(netip.Addr) bool) {
		p := n.prefix.Masked()
		first := p.Addr()
		last := lastAddr(p)
		for a := first.Next(); a.IsValid() && a.Less(last); a = a.Next() {
			if a == n.self {
				continue
			}
			if !yield(a) {
				return
			}
		}
	}
}

// lastAddr is the highest address of p (its broadcast address for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// scanNetOf is the subnet a scan covers for our address a with prefix
// bits: the real prefix, capped at a /22 around a. It is false for what is
// not worth scanning: IPv6 (too large), link-local IPv4, a /31 or /32.
func scanNetOf(a netip.Addr, bits int) (scanNet, bool) {
	a = a.Unmap()
	if !a.Is4() || a.IsLinkLocalUnicast() || a.IsLoopback() || bits > 30 || bits <= 0 {
		return scanNet{}, false
	}
	bits = max(bits, minScanBits)
	p, err := a.Prefix(bits)
	if err != nil {
		return scanNet{}, false
	}
	return scanNet{prefix: p, self: a}, true
}

// --- the browser's side ---

// startUnicast starts the unicast fallbacks when Probe is set: what answers
// comes on found, and a send on netDirty says the interfaces changed. stop
// ends them and waits.
func (b *Browser) startUnicast(ctx context.Context) (found <-chan probeResult, netDirty chan<- struct{}, stop func()) {
	f := make(chan probeResult, 16)
	dirty := make(chan struct{}, 1)
	if b.Probe == nil {
		return f, dirty, func() {}
	}
	u := &unicast{b: b, found: f, netDirty: dirty, inFlight: map[netip.AddrPort]bool{}}
	uctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { u.run(uctx) })
	return f, dirty, func() { cancel(); wg.Wait() }
}

// found lists what a probe found (Run's goroutine).
func (b *Browser) found(r probeResult) {
	b.mu.Lock()
	events := b.applyProbe(r, time.Now())
	b.mu.Unlock()
	for _, ev := range events {
		b.emit(ev)
	}
}

// heardCount is how many devices mDNS lists now.
func (b *Browser) heardCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.devices {
		if e.heard && e.shown != nil {
			n++
		}
	}
	return n
}

// unicastTargets lists the addresses to probe now: those of known devices
// and of devices a probe found, unless mDNS lists them.
func (b *Browser) unicastTargets() []netip.AddrPort {
	var known []Known
	if b.Known != nil {
		known = b.Known()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []netip.AddrPort
	for _, k := range known {
		if e, ok := b.devices[k.ID]; (ok && e.heard) || k.ID == b.Self {
			continue
		}
		out = append(out, k.Addrs[:min(len(k.Addrs), maxKnownAddrs)]...)
	}
	for _, e := range b.devices {
		if e.uni != nil && !e.heard {
			out = append(out, e.uniAddr)
		}
	}
	slices.SortFunc(out, func(x, y netip.AddrPort) int { return x.Compare(y) })
	return slices.Compact(out)
}

// applyProbe lists, or refreshes, the device that answered a probe; b.mu
// is held. A device mDNS lists keeps what mDNS says.
func (b *Browser) applyProbe(r probeResult, now time.Time) []Event {
	if r.info.ID == b.Self {
		return nil
	}
	e, ok := b.devices[r.info.ID]
	if !ok {
		if b.unicastCount() >= maxUnicast {
			return nil
		}
		e = &entry{}
		b.devices[r.info.ID] = e
	}
	e.uni = &Device{Info: r.info, Port: int(r.addr.Port()), Addrs: []netip.Addr{r.addr.Addr()}}
	e.uniAddr, e.uniSeen = r.addr, now
	if ev, ok := e.report(); ok {
		return []Event{ev}
	}
	return nil
}

// unicastCount is how many devices only a probe found; b.mu is held.
func (b *Browser) unicastCount() int {
	n := 0
	for _, e := range b.devices {
		if !e.heard {
			n++
		}
	}
	return n
}
