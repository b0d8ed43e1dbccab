package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

func (e *env) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	to := fs.String("to", "", "the receiver: a nearby device's name or id, or HOST:PORT")
	wait := fs.Duration("wait", 3*time.Second, "how long to look for a device given by name or id")
	text := fs.String("text", "", "a message to send (alone, or with the files)")
	server := fs.String("server", "", "rendezvous server URL (peerdrop serve), to reach a device on another network with --code, or a paired device with --to")
	code := fs.String("code", "", "with --server: the pairing code the receiver shows")
	relayOnly := fs.Bool("relay-only", false, "with --server: connect only through the server's TURN relay (the receiver never learns your addresses)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	paths := fs.Args()
	switch {
	case *server != "" && *to != "" && *code != "":
		return &exitError{code: 2, err: errors.New("with --server, give --code (pair with a new device) or --to (a paired device), not both")}
	case *server != "" && *to == "" && *code == "":
		return &exitError{code: 2, err: errors.New("--server needs --code (the pairing code the receiver shows) or --to (a paired device)")}
	case *server == "" && *code != "":
		return &exitError{code: 2, err: errors.New("--code needs --server: the rendezvous server the receiver uses")}
	case *server == "" && *relayOnly:
		return &exitError{code: 2, err: errors.New("--relay-only needs --server")}
	case *server == "" && *to == "":
		return &exitError{code: 2, err: errors.New("--to is required: a device name, id, or HOST:PORT (see peerdrop devices); or --server and --code for a device on another network")}
	}
	if len(paths) == 0 && *text == "" {
		return &exitError{code: 2, err: errors.New("nothing to send: give files, folders or --text")}
	}
	if *wait <= 0 || *wait > time.Hour {
		return &exitError{code: 2, err: fmt.Errorf("--wait %s: want a duration between 1ms and 1h", *wait)}
	}

	var (
		dial     transfer.Dialer
		addrDesc string
		err      error
	)
	if *server != "" && *to != "" {
		// A paired device: on the LAN when it is there, else through the
		// server, by its id.
		wsURL, err := serverURL(*server)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		d, err := e.pinned(*to)
		if err != nil {
			var amb *discovery.AmbiguousError
			if errors.As(err, &amb) {
				return err
			}
			return fmt.Errorf("no paired device called %s: pair with a code first", *to)
		}
		var closeDial func()
		dial, closeDial, err = e.pairedDialer(ctx, wsURL, d, *relayOnly, *wait)
		if err != nil {
			return err
		}
		defer closeDial()
		addrDesc = d.Name
	} else if *server != "" {
		wsURL, err := serverURL(*server)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if _, _, err := remote.SplitCode(*code); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--code %q: %w", *code, err)}
		}
		var closeDial func()
		dial, closeDial, err = e.serverDialer(ctx, wsURL, *code, *relayOnly)
		if err != nil {
			return err
		}
		defer closeDial()
		addrDesc = "the device with code " + *code
	} else {
		dial, addrDesc, err = e.lanDialer(ctx, *to, *wait)
		if err != nil {
			return err
		}
	}

	if len(paths) == 0 {
		link, err := dial(ctx)
		if err != nil {
			return err
		}
		defer link.Close()
		id, err := transfer.SendText(ctx, link, *text)
		if err != nil {
			return err
		}
		e.out.event(transfer.TextDelivered{ID: id})
		return nil
	}

	offer, err := transfer.NewOffer(paths, *text)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if !e.out.json {
		files := 0
		for _, en := range offer.Entries {
			if !en.Dir {
				files++
			}
		}
		e.out.say("Offering %d files (%s) to %s, waiting for them to accept...", files, humanBytes(offer.TotalSize()), visible.Escape(addrDesc))
	}
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, Dial: dial, OnEvent: e.out.event})
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

// lanDialer finds the receiver on the LAN (an address, or a device name or
// id looked up for up to wait) and returns how to connect to it.
func (e *env) lanDialer(ctx context.Context, to string, wait time.Duration) (transfer.Dialer, string, error) {
	var (
		addrs    []string
		wantID   string // a discovered device must answer with its own id
		addrDesc string
	)
	addr, isAddr, err := parseTo(to)
	if err != nil {
		return nil, "", &exitError{code: 2, err: err}
	}
	if isAddr {
		addrs, addrDesc = []string{addr}, addr
	} else {
		d, err := e.findDevice(ctx, to, wait)
		if err != nil {
			return nil, "", err
		}
		if e.trustMark(d) == "identity changed" {
			// Say it now; the handshake below refuses it all the same.
			e.reportError(fmt.Errorf("warning: %s (id %s) advertises another certificate than the one pinned", d.Name, d.ID))
		}
		addrs, wantID, addrDesc = d.Addresses(), d.ID, d.Name
		if e.out.json {
			e.out.jsonEvent("resolved", e.deviceFields(d))
		}
	}
	check := e.checkPeer
	if wantID != "" {
		check = func(h signaling.Hello) error {
			if h.ID != wantID {
				return fmt.Errorf("another device (%s, id %s) answered at the address of id %s", h.Name, h.ID, wantID)
			}
			return e.checkPeer(h)
		}
	}
	var connectOnce sync.Once
	return func(ctx context.Context) (transfer.Link, error) {
		c, addr, err := engine.DialFirst(ctx, addrs, e.cfg, check)
		if err != nil {
			return nil, err
		}
		connectOnce.Do(func() { e.connected(c, "lan", addr) })
		return c, nil
	}, addrDesc, nil
}

// serverDialer connects to the rendezvous server at wsURL and returns how
// to connect to the device that showed code there: the first dial pairs
// with the code, later ones (reconnects) reach the same device again. The
// returned func closes the server connection.
func (e *env) serverDialer(ctx context.Context, wsURL, code string, relayOnly bool) (transfer.Dialer, func(), error) {
	client, err := e.dialServer(ctx, wsURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := e.cfg
	cfg.RelayOnly = relayOnly
	d, err := remote.NewDialer(client, code, cfg, e.checkPeer)
	if err != nil {
		_ = client.Close()
		return nil, nil, err
	}
	dial, closeAll := e.serverDial(d, client, wsURL, nil)
	return dial, closeAll, nil
}

// serverDial wraps a remote.Dialer for transfer.Sender: it reports the first
// connection, maps errors with mapErr (if set), and closes the dialer and
// the server connection together. When the server connection has dropped
// (our network changed, the server restarted), a dial connects to the server
// again and reaches the device already authenticated by its id.
func (e *env) serverDial(d *remote.Dialer, client *rendezvous.Client, wsURL string, mapErr func(error) error) (transfer.Dialer, func()) {
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
			if !e.out.json {
				e.out.say("Lost the server %s; connecting again.", wsURL)
			}
			nc, err := e.dialServer(ctx, wsURL)
			if err != nil {
				return nil, err
			}
			_ = d.Close()
			_ = client.Close()
			client, d = nc, remote.NewKnownDialer(nc, dev, cfg, e.checkPeer)
		default:
		}
		c, err := d.Dial(ctx)
		if err != nil {
			if mapErr != nil {
				err = mapErr(err)
			}
			return nil, err
		}
		connectOnce.Do(func() { e.connected(c, "server", wsURL) })
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
// connect to the paired device id (pinned with fingerprint) there: each
// dial finds it by its id and runs the handshake, which must present the
// pinned fingerprint; no code. The returned func closes the connection.
func (e *env) knownDialer(ctx context.Context, wsURL, id, name, fingerprint string, relayOnly bool) (transfer.Dialer, func(), error) {
	client, err := e.dialServer(ctx, wsURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := e.cfg
	cfg.RelayOnly = relayOnly
	d := remote.NewKnownDialer(client, pairing.Peer{ID: id, Fingerprint: fingerprint}, cfg, e.checkPeer)
	dial, closeAll := e.serverDial(d, client, wsURL, func(err error) error {
		var pe interface{ Permanent() bool }
		if errors.Is(err, remote.ErrNotOnline) && errors.As(err, &pe) && pe.Permanent() {
			return permanentError{fmt.Errorf("%s is not connected to the server", name)}
		}
		return err
	})
	return dial, closeAll, nil
}

// lanFirstWait bounds the look for a paired device on the LAN before the
// server is used: a device nearby answers within a second.
const lanFirstWait = 1500 * time.Millisecond

// pairedDialer returns how to reach the paired device d: over the LAN when
// it is discovered nearby (unless relayOnly, which never reveals our
// addresses), else, and whenever the LAN fails, through the server at wsURL
// by its id. The server connection opens only when it is needed.
func (e *env) pairedDialer(ctx context.Context, wsURL string, d trust.Device, relayOnly bool, wait time.Duration) (transfer.Dialer, func(), error) {
	var lan transfer.Dialer
	if !relayOnly {
		if l, _, err := e.lanDialer(ctx, d.ID, min(wait, lanFirstWait)); err == nil {
			lan = l
		}
	}
	if lan == nil {
		return e.knownDialer(ctx, wsURL, d.ID, d.Name, d.Fingerprint, relayOnly)
	}
	var (
		mu       sync.Mutex
		srv      transfer.Dialer
		closeSrv = func() {}
	)
	dial := func(ctx context.Context) (transfer.Link, error) {
		mu.Lock()
		viaServer := srv != nil
		mu.Unlock()
		if !viaServer {
			link, err := lan(ctx)
			if err == nil {
				return link, nil
			}
			var ic *trust.IdentityChangedError
			switch {
			case !engine.ServerMayHelp(err):
				return nil, err // refused on purpose: no other way around
			case errors.As(err, &ic):
				e.reportError(fmt.Errorf("warning: the device answering as %s on the local network presents another certificate than the one paired; not sending to it, trying the server", d.Name))
			default:
				e.reportError(fmt.Errorf("%s is not reachable on the local network (%v); trying the server", d.Name, oneLine(err)))
			}
			mu.Lock()
			defer mu.Unlock()
			if srv == nil {
				s, c, err := e.knownDialer(ctx, wsURL, d.ID, d.Name, d.Fingerprint, relayOnly)
				if err != nil {
					return nil, err
				}
				srv, closeSrv = s, c
			}
		}
		return srv(ctx)
	}
	return dial, func() {
		mu.Lock()
		defer mu.Unlock()
		closeSrv()
	}, nil
}

// permanentError tells a reconnecting transfer.Sender to stop at once.
type permanentError struct{ error }

func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Permanent() bool { return true }

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
