package engine

// Routing a send: the LAN first, the server for a paired device that the
// LAN does not reach.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/trust"
)

// remoteDial reaches a paired device through the server for one send: it
// holds its own server connection (a remote.Dialer owns a connection's
// events) from the first dial until close. Only the send's goroutine uses it.
type remoteDial struct {
	e      *Engine
	id     string
	client *rendezvous.Client
	d      *remote.Dialer
}

// dial connects to the device through the server.
func (r *remoteDial) dial(ctx context.Context) (*peer.Conn, error) {
	if r.client != nil {
		select {
		case <-r.client.Done():
			r.close() // the server dropped us: connect again
		default:
		}
	}
	if r.client == nil {
		r.e.mu.Lock()
		u := r.e.srv.url
		r.e.mu.Unlock()
		fp, ok := r.e.pinned(r.id)
		if u == "" || !ok {
			return nil, &permanentError{errNoRoute}
		}
		client, err := remote.DialServer(ctx, u, r.e.peerConfig(), r.e.deviceType())
		if err != nil {
			return nil, &serverError{err}
		}
		r.client = client
		r.d = remote.NewKnownDialer(client, pairing.Peer{ID: r.id, Fingerprint: fp}, r.e.peerConfig(), r.e.checkPeer)
	}
	return r.d.Dial(ctx)
}

func (r *remoteDial) close() {
	if r.d != nil {
		_ = r.d.Close()
	}
	if r.client != nil {
		_ = r.client.Close()
	}
	r.client, r.d = nil, nil
}

// errNoRoute: a device that is neither nearby, nor with an address, nor
// paired and reachable through a server.
var errNoRoute = errors.New("no way to reach the device: it is not on this network and no server is set (or it is not paired)")

// serverError: the rendezvous server could not be reached.
type serverError struct{ err error }

func (e *serverError) Error() string { return e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

// permanentError tells a reconnecting transfer.Sender to stop at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// route says how to reach a target now: the LAN addresses to try (the
// device's current ones first when it is nearby), or none, meaning through
// the server. The LAN comes first: the server is used only for a device
// that is not discovered nearby and is on the server, or has no address.
func (e *Engine) route(t Target) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.web.pages[t.ID]
	if !ok {
		d, ok = e.nearby[t.ID]
	}
	if ok && t.ID != "" {
		addrs := d.Addresses()
		for _, a := range t.Addrs {
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
		return addrs
	}
	if _, away := e.srv.away[t.ID]; away && t.ID != "" {
		return nil
	}
	return t.Addrs
}

// serverFallback says whether a LAN dial to t that failed with err may be
// tried through the server: t is pinned, a server is set, and the LAN did
// not refuse on purpose (a changed identity stays refused).
func (e *Engine) serverFallback(t Target, err error) bool {
	if t.ID == "" || !ServerMayHelp(err) {
		return false
	}
	e.mu.Lock()
	u := e.srv.url
	e.mu.Unlock()
	_, pinned := e.pinned(t.ID)
	return u != "" && pinned
}

// ServerMayHelp says whether a paired device that a LAN dial failed to
// reach with err may still be reached through the server: yes unless the
// peer, or our check, refused on purpose. A device answering under its id
// with another certificate (an impostor, or a stale record) is no reason
// to stop: the server route insists on the pinned certificate too.
func ServerMayHelp(err error) bool {
	var ic *trust.IdentityChangedError
	return !IsPermanent(err) || errors.As(err, &ic)
}

// reachable checks, before queueing, that a target can be tried at all.
func (e *Engine) reachable(t Target) error {
	if len(t.Addrs) > 0 {
		return nil
	}
	e.mu.Lock()
	_, near := e.nearby[t.ID]
	_, page := e.web.pages[t.ID]
	_, ls := e.ls.devices[t.ID]
	near = near || page || ls
	u := e.srv.url
	e.mu.Unlock()
	if near && t.ID != "" {
		return nil
	}
	if _, ok := e.pinned(t.ID); t.ID != "" && ok && u != "" {
		return nil
	}
	return fmt.Errorf("%s: %w", cmp.Or(t.Name, t.ID, "the device"), errNoRoute)
}

// lanFirst is the one routing rule of a send, the app's and the command
// line's: the LAN when a way there is known (lan not nil); the server when
// there is none, or when the LAN failed in a way the server may get around
// (ServerMayHelp, and fallback agrees: it may also say why). server nil:
// the device cannot be reached through a server.
func lanFirst[T any](ctx context.Context, lan, server func(context.Context) (T, error), fallback func(error) bool) (T, error) {
	if lan != nil {
		v, err := lan(ctx)
		if err == nil || server == nil || !ServerMayHelp(err) || !fallback(err) {
			return v, err
		}
	}
	if server == nil {
		var zero T
		return zero, &permanentError{errNoRoute}
	}
	return server(ctx)
}

// dialTarget connects to t for one attempt: on the LAN when route gives
// addresses, else through the server with rd. want is the device id the LAN
// peer must answer with ("" when only an address is known).
func (e *Engine) dialTarget(ctx context.Context, t Target, want string, rd *remoteDial) (*peer.Conn, string, error) {
	type dialed struct {
		c    *peer.Conn
		addr string
	}
	var lan, server func(context.Context) (dialed, error)
	if addrs := e.route(t); len(addrs) > 0 {
		lan = func(ctx context.Context) (dialed, error) {
			c, addr, err := DialFirst(ctx, addrs, e.peerConfig(), e.sendCheck(want))
			if err == nil {
				rememberAddr(e.trust, c, addr)
			}
			return dialed{c, addr}, err
		}
	}
	if t.ID != "" {
		server = func(ctx context.Context) (dialed, error) {
			c, err := rd.dial(ctx)
			if err != nil {
				return dialed{}, err
			}
			return dialed{c, "server"}, nil
		}
	}
	d, err := lanFirst(ctx, lan, server, func(err error) bool {
		if !e.serverFallback(t, err) {
			return false
		}
		// Listed nearby but not answering (a stale record, a laptop that
		// just left, a network that isolates its clients): a paired device
		// may still be reached through the server.
		slog.Info("engine: not reachable on the LAN, trying the server", slog.String("device", t.ID), slog.Any("err", err))
		return true
	})
	return d.c, d.addr, err
}

// Target says where to send: a device's id and name (as discovered), and
// the addresses to try, best first.
type Target struct {
	ID    string // "" when the device is only known by address
	Name  string
	Addrs []string // HOST:PORT
	// PIN is what a LocalSend device may ask for (localsend.go).
	PIN string
}

// peer is the device a send to t names.
func (t Target) peer() Peer { return Peer{ID: t.ID, Name: t.Name} }

// TargetOf is the Target for a discovered device, or for one known only by
// the address a user typed (AddressDevice: no id, and no name either, so
// that its hello names it).
func TargetOf(d Device) Target {
	if d.ID == "" {
		if len(d.Addrs) == 0 && d.Host != "" && d.Port > 0 {
			return Target{Addrs: []string{net.JoinHostPort(d.Host, strconv.Itoa(d.Port))}}
		}
		return Target{Addrs: d.Addresses()}
	}
	return Target{ID: d.ID, Name: d.Name, Addrs: d.Addresses()}
}
