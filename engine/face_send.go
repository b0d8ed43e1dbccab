package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// SendOptions says what a Headless send sends, and to whom: To (a nearby
// device's name or id, or HOST:PORT), or Server with Code (a device on
// another network that shows the code), or Server with To (a paired
// device: on the LAN when it is there, else through the server).
type SendOptions struct {
	To        string
	Wait      time.Duration // how long to look for a device given by name or id
	Server    string        // a ws(s):// URL (ServerURL)
	Code      string
	RelayOnly bool
	Paths     []string
	Text      string
	// Lanes caps the associations one transfer uses on the LAN (0: one
	// per core, transfer.DefaultLanes; 1: one).
	Lanes int
}

// dialer opens a connection for a send (and again for each reconnect).
type dialer = transfer.Dialer

// Send sends files, folders and/or a message, and returns when the
// receiver has them all, or why not.
func (h *Headless) Send(ctx context.Context, o SendOptions) error {
	lanes := newLaneDialer(func() peer.Config { return h.cfg }, h.checkPeer)
	dial, closeDial, desc, err := h.sendDialer(ctx, o, lanes)
	if err != nil {
		return err
	}
	defer closeDial()
	if len(o.Paths) == 0 {
		link, err := dial(ctx)
		if err != nil {
			return err
		}
		defer link.Close()
		id, err := transfer.SendText(ctx, link, o.Text)
		if err != nil {
			return err
		}
		h.report(TextDelivered{ID: id})
		return nil
	}
	offer, err := transfer.NewOffer(o.Paths, o.Text)
	if err != nil {
		return badInput(err)
	}
	files := 0
	for _, en := range offer.Entries {
		if !en.Dir {
			files++
		}
	}
	h.report(Offering{Files: files, Size: offer.TotalSize(), To: desc})
	opts := transfer.SendOptions{Offer: offer, Dial: dial, OnEvent: func(ev transfer.Event) { h.report(ev) }}
	laneOptions(&opts, lanes)
	if o.Lanes > 0 {
		opts.Lanes = o.Lanes
	}
	s := transfer.NewSender(opts)
	res, err := s.Run(ctx)
	if err != nil {
		if errors.Is(err, transfer.ErrIncomplete) && len(res.Failed) > 0 {
			names := make([]string, 0, len(res.Failed))
			for _, f := range res.Failed {
				names = append(names, f.Name+" ("+f.Message+")")
			}
			return fmt.Errorf("%d of %d files did not arrive: %s", len(res.Failed), res.Files, strings.Join(names, ", "))
		}
		return err
	}
	return nil
}

// sendDialer picks the way to the receiver that o names; desc names it for
// people.
func (h *Headless) sendDialer(ctx context.Context, o SendOptions, lanes *laneDialer) (d dialer, closeDial func(), desc string, err error) {
	nothing := func() {}
	switch {
	case o.Server != "" && o.To != "":
		// A paired device: on the LAN when it is there, else through the
		// server, by its id.
		p, err := h.FindPinned(o.To)
		if err != nil {
			if IsAmbiguous(err) {
				return nil, nil, "", err
			}
			return nil, nil, "", fmt.Errorf("no paired device called %s: pair with a code first", o.To)
		}
		d, closeDial, err = h.pairedDialer(ctx, o.Server, p, o.RelayOnly, o.Wait)
		return d, closeDial, p.Name, err
	case o.Server != "":
		if _, _, err := remote.SplitCode(o.Code); err != nil {
			return nil, nil, "", badInput(fmt.Errorf("--code %q: %w", o.Code, err))
		}
		d, closeDial, err = h.serverDialer(ctx, o.Server, o.Code, o.RelayOnly)
		return d, closeDial, "the device with code " + o.Code, err
	}
	if h.ls.On {
		return h.localSendDialer(ctx, o.To, o.Wait)
	}
	d, desc, err = h.lanDialer(ctx, o.To, o.Wait, lanes)
	return d, nothing, desc, err
}

// lanDialer finds the receiver on the LAN (an address, or a device name or
// id looked up for up to wait) and returns how to connect to it.
// lanes, when set, hears of every connection made, for the send's extra lanes.
func (h *Headless) lanDialer(ctx context.Context, to string, wait time.Duration, lanes *laneDialer) (dialer, string, error) {
	addr, isAddr, err := parseTo(to)
	if err != nil {
		return nil, "", badInput(err)
	}
	addrs, wantID, desc := []string{addr}, "", addr
	if !isAddr {
		found, err := h.findDevice(ctx, to, wait)
		if err != nil {
			return nil, "", err
		}
		d := h.describe(found)
		if d.Changed {
			// Say it now; the handshake below refuses it all the same.
			h.warn(fmt.Errorf("warning: %s (id %s) advertises another certificate than the one pinned", d.Name, d.ID))
		}
		addrs, wantID, desc = d.Addresses(), d.ID, d.Name
		h.report(Resolved{Device: d})
	}
	check := checkWanted(wantID, h.checkPeer)
	var connectOnce sync.Once
	return func(ctx context.Context) (transfer.Link, error) {
		c, addr, err := DialFirst(ctx, addrs, h.cfg, check)
		if err != nil {
			return nil, explainConnect(desc, err)
		}
		rememberAddr(h.trust, c, addr)
		if lanes != nil {
			lanes.reached(c, addr, true)
		}
		connectOnce.Do(func() { h.connected(c, "lan", addr) })
		return c, nil
	}, desc, nil
}

// checkWanted is the handshake check for a connection we open: the device
// must be the one we mean (when we know its id, want) and pass check.
func checkWanted(want string, check func(signaling.Hello) error) func(signaling.Hello) error {
	return func(h signaling.Hello) error {
		if want != "" && h.ID != want {
			return &wrongDeviceError{want: want, got: h}
		}
		return check(h)
	}
}

// connected reports a connection a send opened.
func (h *Headless) connected(c *peer.Conn, via, address string) {
	local, remote := c.Route()
	h.report(Connected{Name: c.Remote.Name, ID: c.Remote.ID, Code: c.Code, Via: via, Address: address,
		RouteLocal: local, RouteRemote: remote})
}

// dialServer connects this device to the rendezvous server at url.
func (h *Headless) dialServer(ctx context.Context, url string) (*rendezvous.Client, error) {
	return remote.DialServer(ctx, url, h.cfg, h.typ)
}

// serverDialer connects to the rendezvous server at wsURL and returns how
// to connect to the device that showed code there: the first dial pairs
// with the code, later ones (reconnects) reach the same device again. The
// returned func closes the server connection.
func (h *Headless) serverDialer(ctx context.Context, wsURL, code string, relayOnly bool) (dialer, func(), error) {
	client, err := h.dialServer(ctx, wsURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := h.cfg
	cfg.RelayOnly = relayOnly
	d, err := remote.NewDialer(client, code, cfg, h.checkPeer)
	if err != nil {
		_ = client.Close()
		return nil, nil, err
	}
	dial, closeAll := h.serverDial(d, client, wsURL, nil)
	return dial, closeAll, nil
}

// serverDial wraps a remote.Dialer for transfer.Sender: it reports the first
// connection, maps errors with mapErr (if set), and closes the dialer and
// the server connection together. When the server connection has dropped
// (our network changed, the server restarted), a dial connects to the server
// again and reaches the device already authenticated by its id.
func (h *Headless) serverDial(d *remote.Dialer, client *rendezvous.Client, wsURL string, mapErr func(error) error) (dialer, func()) {
	var (
		connectOnce sync.Once
		mu          sync.Mutex
	)
	cfg := d.Config()
	cfg.ICEServers = nil // the new connection hands out fresh TURN credentials
	dial := func(ctx context.Context) (transfer.Link, error) {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-client.Done():
			dev := d.Peer()
			if dev.ID == "" {
				break // not paired yet: the code's room is gone with the connection
			}
			h.report(ServerLost{Server: wsURL})
			nc, err := h.dialServer(ctx, wsURL)
			if err != nil {
				return nil, err
			}
			_ = d.Close()
			_ = client.Close()
			client, d = nc, remote.NewKnownDialer(nc, dev, cfg, h.checkPeer)
		default:
		}
		c, err := d.Dial(ctx)
		if err != nil {
			if mapErr != nil {
				err = mapErr(err)
			}
			return nil, err
		}
		connectOnce.Do(func() { h.connected(c, "server", wsURL) })
		return c, nil
	}
	return dial, func() {
		mu.Lock()
		defer mu.Unlock()
		_ = d.Close()
		_ = client.Close()
	}
}

// knownDialer connects to the rendezvous server at wsURL and returns how to
// connect to the paired device p there: each dial finds it by its id and
// runs the handshake, which must present the pinned fingerprint; no code.
// The returned func closes the connection.
func (h *Headless) knownDialer(ctx context.Context, wsURL string, p PinnedDevice, relayOnly bool) (dialer, func(), error) {
	client, err := h.dialServer(ctx, wsURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := h.cfg
	cfg.RelayOnly = relayOnly
	d := remote.NewKnownDialer(client, pairing.Peer{ID: p.ID, Fingerprint: p.Fingerprint}, cfg, h.checkPeer)
	dial, closeAll := h.serverDial(d, client, wsURL, func(err error) error {
		var pe interface{ Permanent() bool }
		if errors.Is(err, remote.ErrNotOnline) && errors.As(err, &pe) && pe.Permanent() {
			return &permanentError{fmt.Errorf("%s is not connected to the server", p.Name)}
		}
		return err
	})
	return dial, closeAll, nil
}

// lanFirstWait bounds the look for a paired device on the LAN before the
// server is used: a device nearby answers within a second.
const lanFirstWait = 1500 * time.Millisecond

// pairedDialer returns how to reach the paired device p: over the LAN when
// it is discovered nearby (unless relayOnly, which never reveals our
// addresses), else, and whenever the LAN fails, through the server at wsURL
// by its id. The server connection opens only when it is needed.
func (h *Headless) pairedDialer(ctx context.Context, wsURL string, p PinnedDevice, relayOnly bool, wait time.Duration) (dialer, func(), error) {
	var lan dialer
	if !relayOnly {
		if l, _, err := h.lanDialer(ctx, p.ID, min(wait, lanFirstWait), nil); err == nil {
			lan = l
		}
	}
	if lan == nil {
		return h.knownDialer(ctx, wsURL, p, relayOnly)
	}
	var (
		mu       sync.Mutex
		srv      dialer
		closeSrv = func() {}
	)
	// Once through the server, a send stays there (reconnects included).
	viaServer := func(ctx context.Context) (transfer.Link, error) {
		mu.Lock()
		if srv == nil {
			s, c, err := h.knownDialer(ctx, wsURL, p, relayOnly)
			if err != nil {
				mu.Unlock()
				return nil, err
			}
			srv, closeSrv = s, c
		}
		d := srv
		mu.Unlock()
		return d(ctx)
	}
	dial := func(ctx context.Context) (transfer.Link, error) {
		mu.Lock()
		onLAN := lan
		if srv != nil {
			onLAN = nil
		}
		mu.Unlock()
		return lanFirst(ctx, onLAN, viaServer, func(err error) bool {
			h.warnLANFailed(p.Name, err)
			return true
		})
	}
	return dial, func() {
		mu.Lock()
		defer mu.Unlock()
		closeSrv()
	}, nil
}

// warnLANFailed says that a paired device's LAN dial failed with err and
// the server is tried next.
func (h *Headless) warnLANFailed(name string, err error) {
	var ic *trust.IdentityChangedError
	if errors.As(err, &ic) {
		h.warn(fmt.Errorf("warning: the device answering as %s on the local network presents another certificate than the one paired; not sending to it, trying the server", name))
		return
	}
	h.warn(fmt.Errorf("%s is not reachable on the local network (%v); trying the server", name, strings.ReplaceAll(err.Error(), "\n", "; ")))
}

// parseTo sorts out a --to value: an address (HOST:PORT, or an IP address
// alone, meaning the default port) or else a device name or id to look up
// nearby. A HOST:PORT with a port out of range is an error, not a name.
func parseTo(to string) (addr string, isAddr bool, err error) {
	if ip := net.ParseIP(strings.Trim(to, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), strconv.Itoa(signaling.DefaultPort)), true, nil
	}
	host, port, splitErr := net.SplitHostPort(to)
	if splitErr != nil || port == "" || strings.Trim(port, "0123456789") != "" {
		return "", false, nil // "Laptop", "Bob: laptop"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", false, fmt.Errorf("--to %q: port out of range", to)
	}
	if host == "" {
		return "", false, fmt.Errorf("--to %q: missing host", to)
	}
	return to, true, nil
}
