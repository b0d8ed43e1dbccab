package engine

// The network check (`peerdrop doctor`, the app's *Check the network*):
// what this machine's network lets through, and, for a named device, which
// step of a connection to it works.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/netif"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// DiagnoseOptions says what to check beyond this machine.
type DiagnoseOptions struct {
	// To names a device to check the connection to: a nearby device's
	// name or id, or HOST:PORT ("": none).
	To string
	// Wait is how long to listen for multicast and to look for To
	// (default 3 s).
	Wait time.Duration
	// Port is this device's handshake port (0: the default).
	Port int
}

// Report is what a network check found. Problems (what stops devices from
// finding or reaching each other), Notes and Advice (firewall rules to
// add) are plain sentences; the rest says what was seen.
type Report struct {
	Interfaces []InterfaceAddrs `json:"interfaces"`
	Multicast  MulticastReport  `json:"multicast"`
	Local      LocalPorts       `json:"local"`
	Target     *TargetReport    `json:"target,omitempty"`
	Problems   []string         `json:"problems"`
	Notes      []string         `json:"notes"`
	Advice     []string         `json:"advice"`
}

// InterfaceAddrs is one interface and its addresses.
type InterfaceAddrs struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
}

// MulticastReport: whether mDNS multicast went out, came back to us, and
// was heard from other hosts.
type MulticastReport struct {
	Sent   bool     `json:"sent"`
	Looped bool     `json:"looped"`
	Heard  []string `json:"heard"`
	Err    string   `json:"error,omitempty"`
}

// LocalPorts: whether this device receives (its handshake port answers
// here) and whether the UDP port is taken (by its receiver, most likely).
type LocalPorts struct {
	TCPPort   int  `json:"tcp_port"`
	Receiving bool `json:"receiving"`
	UDPPort   int  `json:"udp_port"`
	UDPInUse  bool `json:"udp_in_use"`
}

// TargetReport is the check of a connection to one device, step by step.
type TargetReport struct {
	Query     string `json:"query"`
	Address   string `json:"address,omitempty"`
	Name      string `json:"name,omitempty"`
	ID        string `json:"id,omitempty"`
	Found     bool   `json:"found"`
	Handshake bool   `json:"handshake"`       // its handshake port answered a probe
	Hidden    bool   `json:"hidden"`          // it answered, but hides (receive --hidden)
	Connected bool   `json:"connected"`       // a full connection opened: UDP passes
	UDPPorts  []int  `json:"udp_ports"`       // the UDP ports its connection offered
	Err       string `json:"error,omitempty"` // the step that failed, in plain words
}

// doctor runs the checks with a device's settings.
type doctor struct {
	cfg  peer.Config
	pins *trust.Store
	self string
	o    DiagnoseOptions
}

// Diagnose checks the network for the command line (`peerdrop doctor`).
func (h *Headless) Diagnose(ctx context.Context, o DiagnoseOptions) (Report, error) {
	return (&doctor{cfg: h.cfg, pins: h.trust, self: h.cfg.Identity.DeviceID, o: o}).run(ctx)
}

// Diagnose checks the network for the app (Settings, *Check the network*).
func (e *Engine) Diagnose(ctx context.Context, o DiagnoseOptions) (Report, error) {
	e.mu.Lock()
	if _, p, err := net.SplitHostPort(e.addr); err == nil && o.Port == 0 {
		o.Port, _ = strconv.Atoi(p)
	}
	e.mu.Unlock()
	return (&doctor{cfg: e.peerConfig(), pins: e.trust, self: e.id.DeviceID, o: o}).run(ctx)
}

func (d *doctor) run(ctx context.Context) (Report, error) {
	if d.o.Wait <= 0 {
		d.o.Wait = 3 * time.Second
	}
	if d.o.Port == 0 {
		d.o.Port = signaling.DefaultPort
	}
	var r Report
	for _, a := range netif.Up() {
		if n := len(r.Interfaces); n == 0 || r.Interfaces[n-1].Name != a.Iface {
			r.Interfaces = append(r.Interfaces, InterfaceAddrs{Name: a.Iface})
		}
		r.Interfaces[len(r.Interfaces)-1].Addrs = append(r.Interfaces[len(r.Interfaces)-1].Addrs, a.IP.String())
	}
	if len(r.Interfaces) == 0 {
		r.Problems = append(r.Problems, "This machine has no network address: it is not connected to a network.")
	}
	r.Local = d.localPorts(ctx)
	type mc struct {
		m   discovery.MulticastCheck
		err error
	}
	mcDone := make(chan mc, 1)
	go func() {
		m, err := discovery.CheckMulticast(ctx, d.o.Wait)
		mcDone <- mc{m, err}
	}()
	if d.o.To != "" {
		t := d.target(ctx)
		r.Target = &t
	}
	res := <-mcDone
	r.Multicast = multicastReport(res.m, res.err)
	r.judge(d.o.Port)
	return r, ctx.Err()
}

func multicastReport(m discovery.MulticastCheck, err error) MulticastReport {
	out := MulticastReport{Sent: m.Sent, Looped: m.Looped, Heard: []string{}}
	if err != nil {
		out.Err = err.Error()
	}
	for _, a := range m.Heard {
		out.Heard = append(out.Heard, a.String())
	}
	return out
}

// localPorts checks this device's own ports.
func (d *doctor) localPorts(ctx context.Context) LocalPorts {
	lp := LocalPorts{TCPPort: d.o.Port, UDPPort: d.o.Port}
	h, err := peer.Probe(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(d.o.Port)))
	lp.Receiving = (err == nil && h.ID == d.self) || errors.Is(err, signaling.ErrHidden)
	if c, err := net.ListenUDP("udp", &net.UDPAddr{Port: d.o.Port}); err == nil {
		_ = c.Close()
	} else {
		lp.UDPInUse = true
	}
	return lp
}

// target checks each step of a connection to d.o.To.
func (d *doctor) target(ctx context.Context) TargetReport {
	t := TargetReport{Query: d.o.To, UDPPorts: []int{}}
	addr, isAddr, err := parseTo(d.o.To)
	if err != nil {
		t.Err = err.Error()
		return t
	}
	name := d.o.To
	if !isAddr {
		dev, err := d.find(ctx)
		if err != nil {
			t.Err = err.Error()
			return t
		}
		addr, name, t.Name, t.ID = dev.Address(), dev.Name, dev.Name, dev.ID
	}
	t.Found, t.Address = true, addr
	hello, err := peer.Probe(ctx, addr)
	switch {
	case errors.Is(err, signaling.ErrHidden):
		t.Handshake, t.Hidden = true, true
	case err != nil:
		t.Err = explainConnect(name, err).Error()
		return t
	default:
		t.Handshake, t.Name, t.ID = true, hello.Name, hello.ID
	}
	cfg := d.cfg
	cfg.OnProven, cfg.OnPath = nil, nil // a check: nothing is pinned or reported
	c, _, err := DialFirst(ctx, []string{addr}, cfg, nil)
	if err != nil {
		var np *peer.NoPathError
		if errors.As(err, &np) {
			t.UDPPorts = np.UDPPorts
		}
		t.Err = explainConnect(name, err).Error()
		return t
	}
	t.Connected = true
	_ = c.Close()
	return t
}

// find looks for the device d.o.To names nearby (mDNS, and the unicast
// fallbacks) for the wait.
func (d *doctor) find(ctx context.Context) (discovery.Device, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.Wait)
	defer cancel()
	b := newBrowser(d.self, d.pins, nil)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if err := <-done; err != nil {
		return discovery.Device{}, fmt.Errorf("look for nearby devices: %w", err)
	}
	return discovery.Resolve(b.Devices(), d.o.To)
}
