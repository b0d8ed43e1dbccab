package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/grandcat/zeroconf"
)

// Advertiser announces this device as a _peerdrop._tcp service with
// zeroconf's responder, for as long as Run runs, and says goodbye when it
// ends.
type Advertiser struct {
	Info Info
	Port int // the LAN handshake port
	// OnError, if set, hears about failures to advertise (they are retried).
	OnError func(error)
}

// Run advertises until ctx ends, then sends goodbye packets. It fails at
// once on a bad Info or port; network trouble is retried.
//
// Workarounds for zeroconf v1.0.0's responder:
//   - It takes its addresses and interfaces once, when registered, so an
//     interface that comes up later (or back) is never announced on. Run
//     watches the interfaces and registers again when they change.
//   - Register names the host after os.Hostname, which two machines (or
//     network namespaces, which share the UTS name) may share; their address
//     records would then mix in every cache. Run registers a host name of
//     its own, "pd-<device id>.local.", with RegisterProxy.
//   - Shutdown called before the responder's goroutines have started races
//     with them (they call WaitGroup.Add themselves), so Run keeps a
//     registration for at least settle before shutting it down.
//   - Its announcement goroutine sleeps about 3.5 s and cannot be stopped;
//     after Shutdown it only writes to closed sockets, harmlessly, but it
//     outlives Run by up to that long (tests ignore it in their leak check).
func (a *Advertiser) Run(ctx context.Context) error {
	if err := a.Info.Validate(); err != nil {
		return fmt.Errorf("advertise: %w", err)
	}
	if a.Port <= 0 || a.Port > 65535 {
		return fmt.Errorf("advertise: bad port %d", a.Port)
	}
	reg := &registration{a: a, instance: instanceName(a.Info.Name)}
	defer reg.stop()

	// DNS-SD instance names must be unique on the link (RFC 6762 §9) and
	// zeroconf does no probing, so a Browser watches the others. When two
	// devices use one instance name, the one with the larger device id
	// moves to "Name (2)", "Name (3)", ...; its display name (TXT "name")
	// stays, so `send --to Name` still sees both and says so.
	var mine atomic.Value
	mine.Store(reg.instance)
	conflict := make(chan struct{}, 1)
	watch := &Browser{Self: a.Info.ID, QueryInterval: conflictQueryInterval, OnEvent: func(ev Event) {
		if ev.Kind != Gone && strings.EqualFold(ev.Device.Instance, mine.Load().(string)) && ev.Device.ID < a.Info.ID {
			select {
			case conflict <- struct{}{}:
			default:
			}
		}
	}}
	watch.answer = (&answerer{info: a.Info, port: a.Port, instance: func() string { return mine.Load().(string) }}).reply
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if err := watch.Run(wctx); err != nil {
			slog.Debug("discovery: no check for duplicate names", slog.Any("err", err))
		}
	}()
	defer func() { stopWatch(); <-watched }()

	ticker := time.NewTicker(ifaceCheck)
	defer ticker.Stop()
	for {
		reg.refresh()
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-conflict:
			taken := map[string]bool{}
			for _, d := range watch.Devices() {
				taken[strings.ToLower(d.Instance)] = true
			}
			reg.instance = freeInstance(a.Info.Name, taken)
			mine.Store(reg.instance)
			slog.Debug("discovery: name taken, advertising under another instance name", slog.String("instance", reg.instance))
			reg.current = "" // register again under the new name
		}
	}
}

// registration is the Advertiser's current zeroconf registration.
type registration struct {
	a          *Advertiser
	srv        *zeroconf.Server
	registered time.Time
	current    string // interface snapshot srv was registered with
	lastErr    string
	instance   string
}

// stop says goodbye and ends the registration, once it has settled.
func (r *registration) stop() {
	if r.srv == nil {
		return
	}
	if d := settle - time.Since(r.registered); d > 0 {
		time.Sleep(d)
	}
	r.srv.Shutdown() // sends the goodbye
	r.srv = nil
}

// refresh registers again when the interfaces changed (or nothing is
// registered), reporting a new error once.
func (r *registration) refresh() {
	a := r.a
	ifaces, ips, snap := advertisable()
	if snap == r.current && r.srv != nil {
		return
	}
	r.stop()
	r.current = snap
	if len(ips) == 0 {
		return
	}
	s, err := zeroconf.RegisterProxy(escapeLabel(r.instance), Service, Domain, a.Port,
		hostName(a.Info.ID), ips, escapeTXT(EncodeTXT(a.Info)), ifaces)
	if err != nil {
		if msg := err.Error(); msg != r.lastErr && a.OnError != nil {
			a.OnError(fmt.Errorf("advertise on the local network: %w", err))
			r.lastErr = msg
		}
		return
	}
	r.srv, r.registered, r.lastErr = s, time.Now(), ""
	slog.Debug("discovery: advertising", slog.String("instance", r.instance), slog.Int("port", a.Port), slog.Any("ips", ips))
}

// conflictQueryInterval spaces the name watch's queries. It asks seldom: it
// hears every device's announcements anyway.
const conflictQueryInterval = 30 * time.Second

// freeInstance is the first of "name (2)", "name (3)", ... (each cut to a
// DNS label) that is not in taken (lower case).
func freeInstance(name string, taken map[string]bool) string {
	for n := 2; ; n++ {
		suffix := fmt.Sprintf(" (%d)", n)
		cand := instanceName(name)
		if len(cand)+len(suffix) > 63 {
			cand = instanceName(cand[:63-len(suffix)])
			for !utf8.ValidString(cand) {
				cand = cand[:len(cand)-1]
			}
		}
		cand += suffix
		if !taken[strings.ToLower(cand)] {
			return cand
		}
	}
}

// settle is the shortest time a registration lives before Run shuts it
// down (see Run's note on Shutdown).
const settle = 200 * time.Millisecond

// zeroconf hands the instance name and the TXT strings to miekg/dns as they
// are, and miekg/dns reads both in presentation format: a dot ends a label
// and a backslash starts an escape. Unescaped, a name with a dot ("J. Smith")
// became several labels, no _peerdrop._tcp instance at all, and a backslash
// vanished from the name. escapeLabel writes a dot as \046, not \., because
// zeroconf trims dots off both ends of the instance name.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, ".", `\046`).Replace(s)
}

// escapeTXT escapes TXT strings for miekg/dns: only the backslash is special
// there.
func escapeTXT(txt []string) []string {
	out := make([]string, len(txt))
	for i, s := range txt {
		out[i] = strings.ReplaceAll(s, `\`, `\\`)
	}
	return out
}

// hostName is the mDNS host name a device registers, unique per device,
// without the domain: zeroconf appends ".local." itself (and would append
// it again to a name that already ends in "local." with the dot).
func hostName(id string) string { return "pd-" + strings.ToLower(id) }

// advertisable lists the interfaces to announce on, their addresses, and a
// snapshot string that changes when either does.
func advertisable() ([]net.Interface, []string, string) {
	var (
		ifaces []net.Interface
		ips    []string
		snap   strings.Builder
	)
	for _, ifi := range usableInterfaces() {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		var mine []string
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsMulticast() || ipn.IP.IsUnspecified() {
				continue
			}
			mine = append(mine, ipn.IP.String())
		}
		if len(mine) == 0 {
			continue
		}
		slices.Sort(mine)
		ifaces = append(ifaces, ifi)
		ips = append(ips, mine...)
		fmt.Fprintf(&snap, "%d:%s:%s;", ifi.Index, ifi.Name, strings.Join(mine, ","))
	}
	return ifaces, ips, snap.String()
}
