package localsend

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// Config is what Start needs.
type Config struct {
	Alias string // our display name
	Type  string // our device type (device.Type*)
	Model string // e.g. "Linux"
	// Cert is the certificate our HTTPS server presents; its SHA-256 is
	// the fingerprint we announce.
	Cert tls.Certificate
	// Port for the server and the multicast group: 0 = DefaultPort.
	Port int
	// GroupPort is the multicast group's port: 0 = DefaultPort. A node
	// whose server listens on another port announces that one.
	GroupPort int
	// Addr is the address to listen on ("" = all); tests use loopback.
	Addr string
	// AllowHTTP lets unencrypted LocalSend peers in: our server answers
	// plain HTTP as well as HTTPS on the same port, and sends may go to
	// peers that serve only HTTP. Off, both are refused.
	AllowHTTP bool
	// PIN, when set, is asked of every sender (spec §4.1, ?pin=).
	PIN string
	// NoDiscovery: no multicast and no scan (tests on loopback).
	NoDiscovery bool
	// Pins remembers each LocalSend device's fingerprint by alias (trust
	// on first use); nil: nothing is remembered.
	Pins *Pins
	// Serve hands the far end of a LocalSend sender's link to our
	// receiver (transfer.Receiver.Handle) and returns when it is done.
	Serve func(ctx context.Context, from transfer.Peer, link transfer.Link)
	// OnDevices hears the LocalSend devices found, all of them, each time
	// the list changes.
	OnDevices func([]Device)
}

// Device is a LocalSend device found on the network.
type Device struct {
	Info
	Addr netip.AddrPort // its server
	seen time.Time
}

// ID is the device id the engine lists it under (lsID).
func (d Device) ID() string { return lsID(d.Fingerprint) }

// lsID is the device id of a LocalSend fingerprint: derived from it, but
// never the id of one of our own devices (device.IDFor of a certificate's
// fingerprint), even when the fingerprint is one of our certificates'
// (ours announce their own) or a LocalSend peer claims one: a LocalSend
// device is never taken for a device we know, and trust.Store refuses its
// id with any fingerprint (device.CheckID), so it is never trusted.
func lsID(fp string) string {
	h := sha256.Sum256([]byte("localsend:" + fp))
	return hex.EncodeToString(h[:device.IDLen/2])
}

// SameCertificate reports whether a LocalSend device announces the
// certificate whose fingerprint (in our form, "sha-256 AA:...") is fp: one
// of our own devices that speaks LocalSend too, listed once, as ours.
func (d Device) SameCertificate(fp string) bool { return sdpFingerprint(d.Fingerprint) == fp }

// Encrypted says whether its server speaks HTTPS.
func (d Device) Encrypted() bool { return d.Protocol != ProtocolHTTP }

// Peer is who the device is, in our terms.
func (d Device) Peer() device.Device { return peerOf(d.Info) }

func peerOf(in Info) device.Device {
	return device.Device{ID: lsID(in.Fingerprint), Name: in.Alias, Type: ourType(in.DeviceType), Fingerprint: sdpFingerprint(in.Fingerprint)}
}

// ourType maps LocalSend's device types onto ours.
func ourType(t *string) string {
	if t == nil {
		return device.TypeDesktop
	}
	switch *t {
	case "mobile":
		return device.TypePhone
	case "headless", "server":
		return device.TypeServer
	}
	return device.TypeDesktop
}

// theirType maps our device types onto LocalSend's.
func theirType(t string) string {
	switch t {
	case device.TypePhone, device.TypeTablet:
		return "mobile"
	case device.TypeServer:
		return "headless"
	}
	return "desktop"
}

// ErrNotEncrypted refuses a send to a LocalSend peer that only speaks
// plain HTTP while unencrypted peers are not allowed.
var ErrNotEncrypted error = notEncrypted{}

type notEncrypted struct{}

func (notEncrypted) Error() string {
	return "it speaks LocalSend without encryption (HTTP), which is off here: allow unencrypted LocalSend devices to exchange files with it"
}

// Permanent: trying again will not help.
func (notEncrypted) Permanent() bool { return true }

// Node is our LocalSend presence: the server, discovery and the list of
// devices found. Close stops all of it.
type Node struct {
	cfg  Config
	self Info
	ln   net.Listener
	srv  *http.Server
	// reg makes register calls (answers, the scan, Probe): one transport
	// for all, no connection kept, any certificate (a device's is proven
	// against its fingerprint before any send, in Dial).
	reg *http.Client
	// handlers counts the HTTP handlers running: Close waits for them
	// before wg, as they may start goroutines of wg.
	handlers sync.WaitGroup
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup

	mu        sync.Mutex
	devices   map[string]*Device // by fingerprint
	sessions  map[string]*session
	busy      bool                         // a prepare-upload is being decided or a session runs
	notifying bool                         // a report to OnDevices is scheduled
	pinFails  map[netip.Prefix][]time.Time // wrong PINs by source (pinSource)
	pinAll    []time.Time                  // wrong PINs from everyone

	disc *discoverer
}

// Start listens on the port and, unless NoDiscovery, announces us and
// looks for LocalSend devices.
func Start(cfg Config) (*Node, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.GroupPort == 0 {
		cfg.GroupPort = DefaultPort
	}
	if len(cfg.Cert.Certificate) == 0 {
		return nil, errors.New("localsend: no certificate")
	}
	model := cfg.Model
	typ := theirType(cfg.Type)
	n := &Node{
		cfg: cfg,
		self: Info{
			Alias: cfg.Alias, Version: ProtocolVersion, DeviceModel: &model, DeviceType: &typ,
			Fingerprint: Fingerprint(cfg.Cert.Certificate[0]), Port: cfg.Port, Protocol: ProtocolHTTPS,
		},
		devices:  map[string]*Device{},
		sessions: map[string]*session{},
		pinFails: map[netip.Prefix][]time.Time{},
	}
	port := max(cfg.Port, 0) // -1: any free port (tests)
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Addr, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("localsend: listen on port %d: %w", cfg.Port, err)
	}
	n.self.Port = ln.Addr().(*net.TCPAddr).Port
	n.ln = ln
	n.ctx, n.stop = context.WithCancel(context.Background())
	regTr := newTransport(nil)
	regTr.DisableKeepAlives = true
	// The transport dials on a goroutine of its own, which a request's
	// end does not stop: the node's does (a scan's dials to addresses
	// where no one answers end with Close).
	dial := regTr.DialContext
	regTr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(n.ctx, cancel)
		defer stop()
		return dial(ctx, network, addr)
	}
	n.reg = &http.Client{Transport: regTr}
	n.srv = n.newServer()
	n.wg.Go(func() {
		if err := n.srv.Serve(n.sniff(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("localsend: server stopped", slog.Any("err", err))
		}
	})
	if !cfg.NoDiscovery {
		d, err := n.startDiscovery()
		if err != nil {
			n.Close()
			return nil, err
		}
		n.disc = d
	}
	return n, nil
}

// Port is the port the server listens on.
func (n *Node) Port() int { return n.self.Port }

// Self is how we describe ourselves.
func (n *Node) Self() Info { return n.self }

// Close stops the server and discovery and waits for their goroutines;
// running sessions end (their items fail as a lost connection).
func (n *Node) Close() error {
	n.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := n.srv.Shutdown(ctx)
	if err != nil {
		_ = n.srv.Close()
	}
	n.mu.Lock()
	running := make([]*session, 0, len(n.sessions))
	for _, s := range n.sessions {
		running = append(running, s)
	}
	n.mu.Unlock()
	for _, s := range running {
		s.end(errors.New("LocalSend stopped"))
	}
	n.handlers.Wait()
	n.wg.Wait()
	return nil
}

// Devices lists the LocalSend devices found, by alias.
func (n *Node) Devices() []Device {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.devicesLocked()
}

func (n *Node) devicesLocked() []Device {
	out := make([]Device, 0, len(n.devices))
	for _, d := range n.devices {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Device) int {
		if a.Alias != b.Alias {
			if a.Alias < b.Alias {
				return -1
			}
			return 1
		}
		return a.Addr.Compare(b.Addr)
	})
	return out
}

// maxDevices bounds the devices remembered: any host on the LAN can
// announce or register as many as it likes; maxDevicesPerSource bounds
// what one address holds of them.
const (
	maxDevices          = 256
	maxDevicesPerSource = 4
	notifyEvery         = 100 * time.Millisecond
)

// deviceTTL is how long a device stays listed without being heard from;
// we announce every announceEvery, and every LocalSend app answers.
const (
	deviceTTL     = 95 * time.Second
	announceEvery = 30 * time.Second
)

// saw records a device heard from (announcement, register, answer): a
// claim, proven only when a send's TLS handshake shows the certificate.
// So a claim may not turn a device that speaks HTTPS into one that does
// not (anyone could announce a known fingerprint with "http" to receive
// its files unencrypted); one source holds at most maxDevicesPerSource
// devices (the least recently seen of its own makes room), and a full
// list makes room the same way.
func (n *Node) saw(in Info, addr netip.AddrPort) {
	if in.Fingerprint == n.self.Fingerprint {
		return
	}
	if in.Protocol == "" {
		in.Protocol = ProtocolHTTPS
	}
	in.Announce = nil
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.devices[in.Fingerprint]
	if d != nil && d.Encrypted() && in.Protocol == ProtocolHTTP {
		return
	}
	changed := d == nil || d.Info.Alias != in.Alias || d.Addr != addr || d.Protocol != in.Protocol || ourType(d.DeviceType) != ourType(in.DeviceType)
	if d == nil {
		n.makeRoomLocked(addr.Addr())
		d = &Device{}
		n.devices[in.Fingerprint] = d
	}
	d.Info, d.Addr, d.seen = in, addr, now
	if changed {
		n.changedLocked()
	}
}

// makeRoomLocked drops the least recently seen device of src when it has
// maxDevicesPerSource, and the least recently seen of all when the list
// is full; the caller holds n.mu.
func (n *Node) makeRoomLocked(src netip.Addr) {
	oldest := func(match func(*Device) bool) (string, int) {
		var fp string
		var seen time.Time
		count := 0
		for k, d := range n.devices {
			if !match(d) {
				continue
			}
			count++
			if fp == "" || d.seen.Before(seen) {
				fp, seen = k, d.seen
			}
		}
		return fp, count
	}
	if fp, count := oldest(func(d *Device) bool { return d.Addr.Addr() == src }); count >= maxDevicesPerSource {
		delete(n.devices, fp)
	}
	if fp, count := oldest(func(*Device) bool { return true }); count >= maxDevices {
		delete(n.devices, fp)
	}
}

// changedLocked schedules a report of the list to OnDevices: one at a
// time, at most every notifyEvery, each with the list as it is then (a
// burst of changes is one report, and reports never overtake each other);
// none once the node stops. The caller holds n.mu.
func (n *Node) changedLocked() {
	if n.notifying || n.cfg.OnDevices == nil || n.ctx.Err() != nil {
		return
	}
	n.notifying = true
	n.wg.Go(func() {
		select {
		case <-time.After(notifyEvery):
		case <-n.ctx.Done():
		}
		n.mu.Lock()
		n.notifying = false
		list := n.devicesLocked()
		n.mu.Unlock()
		if n.ctx.Err() == nil {
			n.cfg.OnDevices(list)
		}
	})
}

// expire drops the devices not heard from within deviceTTL.
func (n *Node) expire(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	gone := false
	for fp, d := range n.devices {
		if now.Sub(d.seen) > deviceTTL {
			delete(n.devices, fp)
			gone = true
		}
	}
	if gone {
		n.changedLocked()
	}
}
