package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Browsing defaults.
const (
	// DefaultQueryInterval is how often the browser asks who is there. Every
	// device answers each query, so this also bounds how late a vanished
	// device is noticed.
	DefaultQueryInterval = 4 * time.Second
	// DefaultExpiry is how long a device may stay silent before it is gone
	// (it vanished without a goodbye: crash, link cut, out of range).
	DefaultExpiry = 15 * time.Second
	// goodbyeDelay is how long a record stays after its goodbye, one second
	// as in RFC 6762 §10.1, so a device that re-announces at once (it
	// re-registered after an interface change) does not flicker.
	goodbyeDelay = time.Second
	// tick is how often interfaces and expiries are checked.
	tick = 500 * time.Millisecond
	// ifaceCheck is how often interfaces are listed again.
	ifaceCheck = 2 * time.Second
)

var (
	mdnsGroup4 = netip.MustParseAddr("224.0.0.251")
	mdnsGroup6 = netip.MustParseAddr("ff02::fb")
)

const mdnsPort = 5353

// Browser keeps the live list of peerdrop devices on the LAN.
//
// Why not zeroconf's Resolver: in v1.0.0 its Browse reports each instance
// once and never again, drops goodbyes (TTL 0) without telling, never
// reports TXT changes, keeps no TTL and so never expires a device, stops
// re-querying after the first answer, gives up silently after 15 minutes
// without one, fails outright on a machine without IPv6 multicast, joins
// only the interfaces that existed when it started, and returns instance
// names still escaped ("My\ Laptop"). The Browser reads the same multicast
// traffic itself with miekg/dns (zeroconf's own DNS library); devices still
// advertise with zeroconf's responder (see Advertiser).
type Browser struct {
	// Self is our own device id: it is never listed.
	Self string
	// OnEvent, if set, gets every change, in order, from Run's goroutine.
	// It must not block for long.
	OnEvent func(Event)
	// QueryInterval and Expiry default to DefaultQueryInterval and
	// DefaultExpiry.
	QueryInterval time.Duration
	Expiry        time.Duration

	// Probe, when set, turns on the unicast fallbacks (unicast.go): known
	// devices are probed at their last addresses, and the local subnets are
	// scanned on ScanPort (DefaultScanPort) when mDNS lists nobody.
	Probe ProbeFunc
	// Known, when set, lists the devices to look for at their last
	// addresses (pinned, trusted) while mDNS does not list them.
	Known    func() []Known
	ScanPort int

	// scanNets lists the subnets to scan (nil: the system's, scanNets).
	scanNets func() []scanNet
	// answer, when set, returns the unicast reply to a query packet, nil
	// for none (the Advertiser's unicast answers, unicastmdns.go).
	answer func(p packet) []byte

	// prefixes lists the networks of an interface, by name (nil: the
	// system's, read again at most every ifPrefixTTL).
	prefixes func(ifName string) []netip.Prefix

	mu      sync.Mutex
	devices map[string]*entry // by device id
	hosts   map[string]map[netip.Addr]cachedAddr
	ifNets  map[string]ifNets // prefixes by interface name, cached
	running bool
}

// ifNets is what an interface's networks were when last read.
type ifNets struct {
	at   time.Time
	nets []netip.Prefix
}

// ifPrefixTTL is how long an interface's networks are taken as read.
const ifPrefixTTL = 5 * time.Second

// systemPrefixes lists the networks of interface ifName as the system has
// them now (none when it is gone).
func systemPrefixes(ifName string) []netip.Prefix {
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// onLink says whether a lies on a network of interface ifName, the one its
// record was heard on; b.mu is held. A record heard on one network that
// names an address of another (a host only we reach, our own loopback)
// points where its sender cannot be: nothing dials it.
func (b *Browser) onLink(ifName string, a netip.Addr, now time.Time) bool {
	c, ok := b.ifNets[ifName]
	if !ok || now.Sub(c.at) > ifPrefixTTL || now.Before(c.at) {
		lookup := b.prefixes
		if lookup == nil {
			lookup = systemPrefixes
		}
		if b.ifNets == nil || len(b.ifNets) > 256 {
			b.ifNets = map[string]ifNets{}
		}
		c = ifNets{at: now, nets: lookup(ifName)}
		b.ifNets[ifName] = c
	}
	a = a.Unmap().WithZone("")
	for _, p := range c.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// entry is a device in the list and when it stops counting. It is known
// from mDNS (heard: dev, lastSeen, until, src), from a probe (uni), or both;
// what mDNS says wins.
type entry struct {
	dev      Device  // as mDNS says now
	shown    *Device // as last reported; nil: not reported yet
	heard    bool    // mDNS has described it
	lastSeen time.Time
	until    time.Time // TTL or goodbye deadline
	src      netip.Addr

	uni     *Device // as a probe found it; nil: none
	uniAddr netip.AddrPort
	uniSeen time.Time
}

// current is the device as it should be shown now, false when nothing says
// where to reach it.
func (e *entry) current() (Device, bool) {
	if e.heard && e.dev.Port != 0 && len(e.dev.Addrs) > 0 {
		return e.dev, true
	}
	if e.uni != nil {
		return *e.uni, true
	}
	return Device{}, false
}

// packet is one datagram read from a socket.
type packet struct {
	data    []byte
	ifIndex int
	src     netip.Addr
	srcPort int
}

// Devices returns the current list, sorted by name then id.
func (b *Browser) Devices() []Device {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Device, 0, len(b.devices))
	for _, e := range b.devices {
		if e.shown != nil {
			out = append(out, *e.shown)
		}
	}
	slices.SortFunc(out, func(x, y Device) int {
		if c := strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out
}

// Run browses until ctx ends. It fails only when no socket could be opened.
func (b *Browser) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return errors.New("browser already running")
	}
	b.running = true
	b.devices = map[string]*entry{}
	b.hosts = map[string]map[netip.Addr]cachedAddr{}
	b.mu.Unlock()
	interval := b.QueryInterval
	if interval <= 0 {
		interval = DefaultQueryInterval
	}

	socks, err := openSockets()
	if err != nil {
		return err
	}
	packets := make(chan packet, 64)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); socks.read4(ctx, packets) }()
	go func() { defer readers.Done(); socks.read6(ctx, packets) }()
	defer func() {
		socks.close()
		readers.Wait()
	}()

	found, netDirty, stopUnicast := b.startUnicast(ctx)
	defer stopUnicast()

	socks.refresh()
	socks.query()
	// Ask again soon after starting: a lost first answer should not cost a
	// whole interval. Then every interval.
	nextQuery := time.Now().Add(time.Second)
	nextIfaces := time.Now().Add(ifaceCheck)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-packets:
			if b.answer != nil {
				if reply := b.answer(p); reply != nil {
					socks.reply(p, reply)
				}
			}
			b.handle(p, socks.ifaceName(p.ifIndex))
		case r := <-found:
			b.found(r)
		case now := <-ticker.C:
			if now.After(nextIfaces) {
				nextIfaces = now.Add(ifaceCheck)
				if socks.refresh() {
					// An interface came (back) up: ask right away, and
					// scan again soon if mDNS still lists nobody.
					socks.query()
					nextQuery = now.Add(time.Second)
					select {
					case netDirty <- struct{}{}:
					default:
					}
				}
			}
			if now.After(nextQuery) {
				socks.query()
				nextQuery = now.Add(interval)
			}
			b.expire(now)
		}
	}
}

func (b *Browser) emit(ev Event) {
	if b.OnEvent != nil {
		b.OnEvent(ev)
	}
}

func (b *Browser) expiry() time.Duration {
	if b.Expiry > 0 {
		return b.Expiry
	}
	return DefaultExpiry
}

// handle applies one packet to the list.
func (b *Browser) handle(p packet, ifName string) { b.handleAt(p, ifName, time.Now()) }

// handleAt is handle at a given time (tests move the clock).
func (b *Browser) handleAt(p packet, ifName string, now time.Time) {
	resp, err := parseResponse(p.data)
	if err != nil {
		slog.Debug("discovery: bad mDNS packet", slog.String("from", p.src.String()), slog.Any("err", err))
		return
	}
	if len(resp.sightings) == 0 && len(resp.hosts) == 0 {
		return
	}
	var events []Event
	b.mu.Lock()
	for host, ha := range resp.hosts {
		b.learnAddrs(host, ha, ifName, now)
	}
	for _, s := range resp.sightings {
		events = append(events, b.apply(s, p.src, ifName, now)...)
	}
	// Addresses alone (or with another instance) may change a device.
	for host := range resp.hosts {
		for _, e := range b.devices {
			if e.dev.Host == host {
				if ev, ok := b.refreshDevice(e, now); ok {
					events = append(events, ev)
				}
			}
		}
	}
	b.mu.Unlock()
	for _, ev := range events {
		b.emit(ev)
	}
}

// apply merges one sighting; b.mu is held.
func (b *Browser) apply(s sighting, src netip.Addr, ifName string, now time.Time) []Event {
	if !s.hasInfo {
		// A PTR, SRV or undecodable TXT alone: refresh, or say goodbye to,
		// the devices with that instance name that answered from src.
		for _, e := range b.devices {
			if !e.heard || e.dev.Instance != s.instance || e.src != src {
				continue
			}
			if s.goodbye {
				e.until = now.Add(goodbyeDelay)
			} else {
				e.lastSeen = now
			}
		}
		return nil
	}
	if s.info.ID == b.Self {
		return nil
	}
	e, known := b.devices[s.info.ID]
	if s.goodbye {
		if known && e.heard {
			e.until = now.Add(goodbyeDelay)
		}
		return nil
	}
	if !known {
		e = &entry{}
		b.devices[s.info.ID] = e
	}
	e.heard, e.lastSeen, e.src = true, now, src
	e.until = time.Time{}
	if s.ttl > 0 {
		e.until = now.Add(s.ttl)
	}
	e.dev.Info, e.dev.Instance = s.info, s.instance
	if s.host != "" {
		e.dev.Host, e.dev.Port = s.host, s.port
	}
	e.dev.Addrs = b.addrsFor(e, now)
	if ev, ok := e.report(); ok {
		return []Event{ev}
	}
	return nil
}

// refreshDevice recomputes a device's addresses; b.mu is held.
func (b *Browser) refreshDevice(e *entry, now time.Time) (Event, bool) {
	e.dev.Addrs = b.addrsFor(e, now)
	return e.report()
}

// report returns the event that tells what changed since the last report.
// A device is reported once it can be reached: it has a port and an address.
func (e *entry) report() (Event, bool) {
	cur, ok := e.current()
	if !ok {
		return Event{}, false
	}
	kind := Appeared
	if e.shown != nil {
		if e.shown.equal(cur) {
			return Event{}, false
		}
		kind = Updated
	}
	shown := cur
	shown.Addrs = slices.Clone(cur.Addrs)
	e.shown = &shown
	return Event{Kind: kind, Device: shown}, true
}

// cachedAddr is one address of a host: until when it counts, and when it
// was last announced.
type cachedAddr struct {
	until, learned time.Time
}

// learnAddrs records a host's addresses as announced on interface ifName;
// b.mu is held. Link-local IPv6 addresses get ifName as their zone: they
// are reachable through the interface they were heard on, and without it
// not at all; other addresses count only when they lie on a network of
// that interface (onLink). With the cache-flush bit, addresses not announced within the
// last second are dropped (RFC 6762 §10.2): the host's set changed.
func (b *Browser) learnAddrs(host string, ha hostAddrs, ifName string, now time.Time) {
	set := b.hosts[host]
	if set == nil {
		if len(b.hosts) >= 4096 {
			return // a flood of made-up hosts: keep what we have
		}
		set = map[netip.Addr]cachedAddr{}
		b.hosts[host] = set
	}
	if ha.flush && ha.ttl > 0 {
		for a, c := range set {
			if now.Sub(c.learned) > time.Second {
				delete(set, a)
			}
		}
	}
	for _, a := range ha.addrs {
		if a.Is6() && a.IsLinkLocalUnicast() {
			if ifName == "" {
				continue // unusable without knowing the interface
			}
			a = a.WithZone(ifName)
		} else if ifName != "" && !b.onLink(ifName, a, now) {
			continue // not on the network it was heard on
		}
		if ha.ttl <= 0 {
			// A goodbye: like any record, it goes one second later.
			if c, ok := set[a]; ok {
				c.until = now.Add(goodbyeDelay)
				set[a] = c
			}
			continue
		}
		if _, ok := set[a]; ok || len(set) < maxAddrsPerHost {
			set[a] = cachedAddr{until: now.Add(ha.ttl), learned: now}
		}
	}
}

// addrsFor lists a device's live addresses, best first; b.mu is held.
func (b *Browser) addrsFor(e *entry, now time.Time) []netip.Addr {
	var out []netip.Addr
	for a, c := range b.hosts[e.dev.Host] {
		if !now.After(c.until) {
			out = append(out, a)
		}
	}
	sortAddrs(out)
	return out
}

// expire drops devices that said goodbye or stopped answering.
func (b *Browser) expire(now time.Time) {
	var events []Event
	b.mu.Lock()
	for id, e := range b.devices {
		if e.heard && (now.Sub(e.lastSeen) > b.expiry() || (!e.until.IsZero() && now.After(e.until))) {
			e.heard, e.dev = false, Device{}
		}
		if e.uni != nil && now.Sub(e.uniSeen) > b.expiry() {
			e.uni = nil
		}
		if e.heard || e.uni != nil {
			if ev, ok := e.report(); ok {
				events = append(events, ev) // mDNS lost it, a probe still finds it
			}
			continue
		}
		delete(b.devices, id)
		if e.shown != nil {
			events = append(events, Event{Kind: Gone, Device: *e.shown})
		}
	}
	for host, set := range b.hosts {
		for a, c := range set {
			if now.After(c.until) {
				delete(set, a)
			}
		}
		if len(set) == 0 {
			delete(b.hosts, host)
		}
	}
	b.mu.Unlock()
	for _, ev := range events {
		b.emit(ev)
	}
}

// --- sockets ---
