package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// Dialer connects to the device that showed a pairing code: the sending
// side of an off-LAN connection. The first Dial joins the code's room,
// runs the PAKE with the whole code and then the LAN handshake over the same
// pipe; later Dials (a transfer resuming after a drop) open a new pipe to
// the same device and run only the handshake, which must again name the
// certificate the code authenticated. Its Dial fits transfer.Sender's.
type Dialer struct {
	client *rendezvous.Client
	room   string // the server's part of the code, canonical
	full   string // the whole code, canonical
	cfg    peer.Config
	check  func(signaling.Hello) error
	m      *mux
	find   string // presence: the device id to find (no code, no PAKE)

	mu     sync.Mutex // one Dial at a time
	joined bool
	host   string        // the code creator's client id
	auth   *pairing.Peer // what the PAKE authenticated
	failed error         // a failure no new Dial can mend
	dialed bool          // a Dial succeeded: the device is ours to reach again
}

// NewDialer prepares to connect with code (as typed) through client. cfg's
// ICEServers, when nil, are the server's; check, when set, may refuse the
// peer after the pairing authenticated it (trust pinning). The Dialer takes
// over client.Events until Close (or until the client is closed).
func NewDialer(client *rendezvous.Client, code string, cfg peer.Config, check func(signaling.Hello) error) (*Dialer, error) {
	room, full, err := SplitCode(code)
	if err != nil {
		return nil, err
	}
	d := &Dialer{client: client, room: room, full: full, cfg: remoteConfig(cfg, client), check: check}
	d.m = newMux(client, false, muxHooks{}) // a refused signal breaks the pipes, which say so
	return d, nil
}

// ErrNotOnline means the device to find is not connected to the server
// (it has not announced itself there).
var ErrNotOnline = errors.New("the device is not connected to the server")

// NewKnownDialer prepares to connect, through client, to a device paired
// before: it finds dev (pinned device id and fingerprint) by its id on the
// server and runs only the handshake, which must name that fingerprint
// (check, when set, applies after). No code, no PAKE. The Dialer takes
// over client.Events until Close.
func NewKnownDialer(client *rendezvous.Client, dev pairing.Peer, cfg peer.Config, check func(signaling.Hello) error) *Dialer {
	d := &Dialer{client: client, cfg: remoteConfig(cfg, client), check: check, find: dev.ID, auth: &dev}
	d.m = newMux(client, false, muxHooks{})
	return d
}

// Join connects to the device that showed code: NewDialer and one Dial. The
// Dialer it makes reads the client's events until the client is closed.
func Join(ctx context.Context, client *rendezvous.Client, code string, cfg peer.Config, check func(signaling.Hello) error) (*peer.Conn, error) {
	d, err := NewDialer(client, code, cfg, check)
	if err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	return c, nil
}

// Config is the configuration the dialer connects with (the caller's, with
// the server's ICE servers).
func (d *Dialer) Config() peer.Config { return d.cfg }

// Peer is the device the code authenticated (zero before the first
// successful Dial).
func (d *Dialer) Peer() pairing.Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.auth == nil {
		return pairing.Peer{}
	}
	return *d.auth
}

// Dial returns a new open connection to the code's creator.
func (d *Dialer) Dial(ctx context.Context) (*peer.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed != nil {
		return nil, d.failed
	}
	if d.auth == nil {
		c, err := d.pair(ctx)
		if err != nil && d.auth == nil && d.joined {
			// Joined but not paired: the code's creator gives a device one
			// pairing run, and the code may be retired by now.
			d.failed = &permanent{err}
			return nil, d.failed
		}
		return c, err
	}
	if d.find != "" && (d.host == "" || !d.m.present(d.host)) {
		fctx, cancel := context.WithTimeout(ctx, requestTimeout)
		found, err := d.client.Find(fctx, d.find)
		cancel()
		if err != nil {
			if errors.Is(err, rendezvous.ErrNotFound) {
				if d.dialed {
					// It was there: it may be connecting to the server
					// again (a new network). The caller's reconnect window
					// decides how long to keep looking.
					return nil, fmt.Errorf("%w (yet)", ErrNotOnline)
				}
				return nil, &permanent{ErrNotOnline}
			}
			return nil, rendezvousErr(err)
		}
		d.m.link(found)
		d.host = found.ClientID
	}
	p, err := d.m.open(d.host)
	if err != nil {
		return nil, &permanent{fmt.Errorf("reach the other device again: %w", err)}
	}
	c, err := peer.DialConn(ctx, p, d.cfg, authCheck(*d.auth, d.check))
	release(p, c)
	if err == nil {
		d.dialed = true
	}
	return c, handshakeErr(err)
}

// pair is the first Dial: join, PAKE, handshake.
func (d *Dialer) pair(ctx context.Context) (*peer.Conn, error) {
	if !d.joined {
		jctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, err := d.client.Join(jctx, d.room)
		cancel()
		if err != nil {
			return nil, rendezvousErr(err)
		}
		d.joined = true
	}
	wctx, cancel := context.WithTimeout(ctx, requestTimeout)
	host, err := d.m.first(wctx, d.room)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// We got into the room, but its creator had left it: the code
			// was retired (a failed pairing) just as we joined.
			return nil, fmt.Errorf("%w (the device that showed it is no longer there)", ErrNoSuchCode)
		}
		return nil, fmt.Errorf("waiting for the device that showed the code: %w", err)
	}
	p, err := d.m.open(host.ClientID)
	if err != nil {
		return nil, err
	}
	var c *peer.Conn
	defer func() { release(p, c) }()
	own := d.cfg.Identity.Device()
	auth, err := pairing.Authenticate(ctx, p, d.full, pairing.Initiator, own)
	if errors.Is(err, io.EOF) || errors.Is(err, ErrPeerLeft) {
		return nil, fmt.Errorf("%w: %w", ErrPairingRefused, err)
	}
	if err != nil {
		return nil, err
	}
	// Later Dials find the device by its id when its connection to the
	// server is not the one it paired on any more.
	d.host, d.auth, d.find = host.ClientID, &auth, auth.ID
	c, err = peer.DialConn(ctx, p, d.cfg, authCheck(auth, d.check))
	if err != nil {
		err = handshakeErr(err)
		// A swapped certificate is the end; a handshake that merely failed
		// (a timeout) may be dialled again over a new pipe.
		if pe, ok := err.(*permanent); ok {
			d.failed = pe
		}
		return nil, err
	}
	d.dialed = true
	return c, nil
}

// Close stops reading the client's events and leaves the code's room.
// Connections already open keep working, but lose their signaling: a path
// that breaks from then on is not mended by an ICE restart.
func (d *Dialer) Close() error {
	d.m.close()
	d.mu.Lock()
	joined := d.joined
	d.mu.Unlock()
	if joined {
		select {
		case <-d.client.Done():
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = d.client.Leave(ctx, d.room)
		}
	}
	return nil
}
