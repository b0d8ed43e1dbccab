package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// requestTimeout bounds one request to the rendezvous server.
const requestTimeout = 10 * time.Second

// Host shows a pairing code and accepts the devices that join with it: the
// receiving side of an off-LAN connection.
type Host struct {
	// Config is who we are; ICEServers, when nil, are the server's.
	Config peer.Config
	// Check, when set, may refuse a peer after the pairing code has
	// authenticated it (trust pinning, blocked devices).
	Check func(signaling.Hello) error
	// Known, when set, lets a paired device that found us by our device id
	// (rendezvous find, no code) connect without the PAKE: its hello must
	// name a device pinned with that fingerprint (Known reports whether it
	// is), then Check applies. Without Known such devices are refused.
	Known func(deviceID, fingerprint string) bool
	// OnCode hears the code to show: the first one, a new one each time a
	// pairing fails (a failed run may have been a guess, so the old code is
	// retired: docs/PROTOCOL-pairing.md, P.8), and a new one when the
	// shown one expires; a zero Code when the code shown was retired and
	// none replaces it (Wanted says none is wanted).
	OnCode func(Code)
	// OnError hears about pairings and handshakes that failed. A wrong code
	// is pairing.ErrMismatch.
	OnError func(error)
	// OnFound, when set, hears the device id that a client claims when it
	// finds us by our device id (rendezvous find): typically a paired
	// device that has just come online. A claim only: look the device up
	// (find) before listing it. It runs on the event loop: no blocking.
	OnFound func(deviceID string)
	// OnPaired, when set, hears about each device that paired with a code
	// shown here, once its handshake has succeeded (Check has accepted it),
	// before its connection goes to the handler.
	// request is what Wanted said the code was made for (0 without it).
	OnPaired func(h signaling.Hello, request uint64)
	// Renew, when set, retires the code shown now and shows a new one
	// (OnCode) each time it receives: a person opened the pairing dialog
	// and needs a fresh code, or closed it and the one seen must die.
	// With Wanted, it says that Wanted changed (see there).
	Renew <-chan struct{}
	// Wanted, when set, says whether a code is wanted now (a pairing
	// dialog is open) and for which request (a number that changes with
	// each new request). Serve then holds a code only while one is
	// wanted: none at the start unless one is; on Renew it creates one if
	// none is shown, replaces one made for another request, and retires
	// the one shown without a replacement (OnCode hears a zero Code) once
	// none is wanted. Renews may merge: only what Wanted says counts. An
	// expired code, or one a failed pairing used, is replaced only while
	// one is wanted. Without Wanted a code is always shown.
	Wanted func() (want bool, request uint64)

	handlers sync.WaitGroup // handlers of every Serve, see Wait
}

// Wait waits for the handlers that a Serve which lost its server left
// running. Call it once no Serve runs any more (before exiting).
func (h *Host) Wait() { h.handlers.Wait() }

// Serve creates a pairing code on client (reported to OnCode; with
// Wanted, only once a code is wanted) and serves
// until ctx ends or the rendezvous connection does: each device that joins
// runs the PAKE with the whole code, then the LAN handshake over the same
// pipe, and handle gets the open connection in a goroutine of its own
// (handle owns it and must close it). A device that paired may connect
// again without the PAKE (a transfer resuming).
//
// When ctx ends, Serve returns after every handler has returned. When the
// server connection is lost, it returns at once, so the caller can connect
// again, and the handlers carry on peer to peer, under ctx: Wait waits for
// them.
//
// Serve takes over client.Events for as long as it runs; afterwards nobody
// reads them, so close the client.
func (h *Host) Serve(ctx context.Context, client *rendezvous.Client, handle func(context.Context, *peer.Conn)) error {
	if handle == nil {
		return errors.New("remote: Host.Serve needs a handler")
	}
	r := &hostRun{
		h:      h,
		client: client,
		cfg:    remoteConfig(h.Config, client),
		own:    h.Config.Identity.Device(),
		rooms:  map[string]*hostRoom{},
		peers:  map[string]*hostPeer{},
		failed: make(chan string, 16),
	}
	r.m = newMux(client, true, muxHooks{
		onError: func(err error) { slog.Debug("remote: the rendezvous server refused a signal", slog.Any("err", err)) },
		onJoined: func(ev rendezvous.PeerJoined) {
			if ev.Code == "" && h.OnFound != nil {
				h.OnFound(ev.Peer.Hello.ID)
			}
		},
	})
	defer r.m.close()
	lost := false
	defer func() {
		if !lost {
			h.handlers.Wait()
		}
	}()
	parent := ctx // the handlers' context: they outlive a lost server
	ctx, cancel := context.WithCancel(ctx)
	// Pairings and handshakes need the server: they end with Serve.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if want, _ := r.want(); want {
		if err := r.newCode(ctx); err != nil {
			return err
		}
	}
	defer r.retireAll()
	pending := make(chan struct{}, peer.MaxPendingHandshakes)
	expiry := time.NewTimer(r.untilExpiry())
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.m.done:
			lost = true
			return fmt.Errorf("lost the rendezvous server: %w", r.m.err)
		case room := <-r.failed:
			if err := r.retire(ctx, room); err != nil {
				return err
			}
			expiry.Reset(r.untilExpiry())
		case <-h.Renew:
			if err := r.renew(ctx, expiry); err != nil {
				return err
			}
		case <-expiry.C:
			// The server no longer admits joins with it: show a fresh one.
			if err := r.retireCurrent(ctx, expiry); err != nil {
				return err
			}
		case p := <-r.m.accept:
			r.session(ctx, parent, &wg, pending, p, handle)
		}
	}
}

// retireCurrent retires the code shown now, if any, shows a new one if a
// code is wanted, and sets expiry for it.
func (r *hostRun) retireCurrent(ctx context.Context, expiry *time.Timer) error {
	r.mu.Lock()
	room := r.current
	r.mu.Unlock()
	var err error
	if room != "" {
		err = r.retire(ctx, room)
	} else if want, _ := r.want(); want {
		err = r.newCode(ctx)
	}
	if err != nil {
		return err
	}
	expiry.Reset(r.untilExpiry())
	return nil
}

// renew acts on Renew: without Wanted, a new code replaces the one shown;
// with it, the code shown comes to match what Wanted says.
func (r *hostRun) renew(ctx context.Context, expiry *time.Timer) error {
	if r.h.Wanted == nil {
		return r.retireCurrent(ctx, expiry)
	}
	r.mu.Lock()
	room, madeFor := r.current, r.currentFor
	r.mu.Unlock()
	want, request := r.h.Wanted()
	var err error
	switch {
	case room == "" && want:
		err = r.newCode(ctx)
	case room != "" && (!want || madeFor != request):
		err = r.retire(ctx, room) // and a new one, if wanted
	}
	if err != nil {
		return err
	}
	expiry.Reset(r.untilExpiry())
	return nil
}

// want says whether a code is wanted now, and for which request.
func (r *hostRun) want() (bool, uint64) {
	if r.h.Wanted == nil {
		return true, 0
	}
	return r.h.Wanted()
}

// hostRun is one Serve.
type hostRun struct {
	h      *Host
	client *rendezvous.Client
	cfg    peer.Config
	own    pairing.Identity
	m      *mux
	failed chan string // rooms whose code a failed pairing used

	mu         sync.Mutex
	rooms      map[string]*hostRoom // by canonical room code; gone once retired
	current    string               // the room whose code is shown now
	currentFor uint64               // the request (Wanted) it was made for
	expires    time.Time            // when the server stops admitting joins with it
	peers      map[string]*hostPeer
}

// hostRoom is a code that still admits pairings.
type hostRoom struct {
	secret string
	// turn admits one pairing run at a time: every run may be a guess,
	// and a failed one retires the code before the next may start, so
	// that each code shown allows one wrong guess, not one per pipe that
	// a server can open at once.
	turn chan struct{}
	// request is what Wanted said the code was made for.
	request uint64
}

// hostPeer is a client that opened a pipe to us.
type hostPeer struct {
	auth   *pairing.Peer // set once its pairing succeeded
	busy   bool          // a pairing or handshake with it runs
	failed bool          // its pairing failed: it gets no other try
}

func (r *hostRun) report(err error) {
	if r.h.OnError != nil {
		r.h.OnError(err)
		return
	}
	slog.Warn("remote connection failed", slog.Any("err", err))
}

// session starts serving a pipe that a peer opened.
func (r *hostRun) session(ctx, parent context.Context, wg *sync.WaitGroup, pending chan struct{}, p *Pipe, handle func(context.Context, *peer.Conn)) {
	hello, rooms, ok := r.m.member(p.peer)
	r.mu.Lock()
	hp := r.peers[p.peer]
	if hp == nil {
		hp = &hostPeer{}
		r.peers[p.peer] = hp
	}
	var room string
	if ok && hp.auth == nil {
		for _, c := range rooms {
			if r.rooms[c] != nil {
				room = c
				break
			}
		}
	}
	// A device that found us by our id (a find link, room "") and has no
	// live code room with us may connect as a known, paired device.
	known := false
	if ok && hp.auth == nil && room == "" && r.h.Known != nil && slices.Contains(rooms, "") {
		known = true
	}
	refuse := !ok || hp.busy || hp.failed || (hp.auth == nil && room == "" && !known)
	auth := hp.auth
	if !refuse {
		select {
		case pending <- struct{}{}:
			hp.busy = true
		default:
			refuse = true
		}
	}
	r.mu.Unlock()
	if refuse {
		slog.Debug("remote: refusing a pipe", slog.String("from", p.peer))
		_ = p.Close()
		return
	}
	wg.Go(func() {
		var c *peer.Conn
		var err error
		if known {
			c, err = r.connectKnown(ctx, p, hello.Name)
		} else {
			c, err = r.connect(ctx, p, hp, auth, hello.Name, room)
		}
		r.mu.Lock()
		hp.busy = false
		r.mu.Unlock()
		<-pending
		if err != nil {
			if ctx.Err() == nil {
				r.report(err)
			}
			return
		}
		r.h.handlers.Go(func() { handle(parent, c) })
	})
}

// connect runs the PAKE (unless the peer paired before) and the handshake.
func (r *hostRun) connect(ctx context.Context, p *Pipe, hp *hostPeer, auth *pairing.Peer, name, room string) (c *peer.Conn, err error) {
	// Its job ends once the data channel is open, unless it carries on
	// as the trickle session's signaling.
	defer func() { release(p, c) }()
	paired := auth == nil
	var request uint64 // what the code was made for
	var finish func(ok bool)
	if auth == nil {
		a, req, fin, err := r.pairIn(ctx, p, room)
		request = req
		if err != nil {
			r.mu.Lock()
			hp.failed = true
			r.mu.Unlock()
			return nil, fmt.Errorf("pairing with %s: %w", name, err)
		}
		r.mu.Lock()
		hp.auth = &a
		r.mu.Unlock()
		auth = &a
		// The listener speaks first: our hello goes out right after M4.
		// The initiator may still reject M4; its abort then comes where
		// its hello would (PROTOCOL-pairing.md, P.4). The run is over, and
		// the code's turn free, once its hello came.
		finish = fin
	}
	check := authCheck(*auth, r.h.Check)
	if finish != nil {
		authed := check
		check = func(h signaling.Hello) error {
			finish(true)
			return authed(h)
		}
	}
	c, err = peer.AnswerConn(ctx, p, r.cfg, check)
	if finish != nil {
		// No hello came: an error frame (the initiator refused our hello)
		// still ends a good run; an abort or nothing at all, a failed one.
		var re *signaling.RemoteError
		finish(errors.As(err, &re))
	}
	if err != nil {
		if finish != nil && errors.Is(err, signaling.ErrVersion) {
			// A frame starts with its version byte, a pairing message with '{'.
			err = fmt.Errorf("%w (the other device could not verify our confirmation): %w", pairing.ErrMismatch, err)
		}
		return nil, fmt.Errorf("connection with %s: %w", name, handshakeErr(err))
	}
	if paired && r.h.OnPaired != nil {
		r.h.OnPaired(c.Remote, request)
	}
	return c, nil
}

// ErrNotPaired says that a device reached us through the server by our device
// id, but it is not pinned here (or presents another certificate).
var ErrNotPaired = errors.New("this device is not paired with the other one: pair with a code first")

// connectKnown runs the handshake, without a PAKE, with a device that found
// us by our id: only a device pinned with the fingerprint it presents (the
// SDP and DTLS then hold it to that certificate) gets through.
func (r *hostRun) connectKnown(ctx context.Context, p *Pipe, name string) (c *peer.Conn, err error) {
	defer func() { release(p, c) }()
	check := func(h signaling.Hello) error {
		if !r.h.Known(h.ID, h.Fingerprint) {
			return fmt.Errorf("%w (device %s, id %s)", ErrNotPaired, h.Name, h.ID)
		}
		if r.h.Check != nil {
			return r.h.Check(h)
		}
		return nil
	}
	c, err = peer.AnswerConn(ctx, p, r.cfg, check)
	if err != nil {
		return nil, fmt.Errorf("connection with %s: %w", name, err)
	}
	return c, nil
}

// errRetired says that the code was retired while the pipe waited for its
// turn.
var errRetired = errors.New("the pairing code was retired (a pairing with it failed); ask for the new one")

// pairIn runs the PAKE with the code of room, when its turn comes. A
// failure retires the code at once: no other run starts with it.
// On success the run goes on until the caller calls finish: ok once the
// initiator's hello came, false when it did not (the code is then retired
// too); finish may be called more than once, the first call counts.
func (r *hostRun) pairIn(ctx context.Context, p *Pipe, room string) (_ pairing.Peer, request uint64, finish func(ok bool), _ error) {
	r.mu.Lock()
	hr := r.rooms[room]
	r.mu.Unlock()
	if hr == nil {
		return pairing.Peer{}, 0, nil, errRetired
	}
	select {
	case hr.turn <- struct{}{}:
	case <-ctx.Done():
		return pairing.Peer{}, 0, nil, ctx.Err()
	}
	var once sync.Once
	finish = func(ok bool) {
		once.Do(func() {
			if !ok && ctx.Err() == nil {
				r.mu.Lock()
				delete(r.rooms, room)
				r.mu.Unlock()
				select {
				case r.failed <- room:
				default: // a retirement is queued already
				}
			}
			<-hr.turn
		})
	}
	r.mu.Lock()
	live := r.rooms[room] == hr
	r.mu.Unlock()
	if !live {
		<-hr.turn
		return pairing.Peer{}, 0, nil, errRetired
	}
	a, err := r.pair(ctx, p, room+hr.secret)
	if err != nil {
		finish(false)
		return pairing.Peer{}, hr.request, nil, err
	}
	return a, hr.request, finish, nil
}

// pair runs the PAKE as the responder.
func (r *hostRun) pair(ctx context.Context, p *Pipe, full string) (pairing.Peer, error) {
	actx, cancel := context.WithTimeout(ctx, pairing.DefaultTimeout)
	defer cancel()
	return pairing.Authenticate(actx, p, full, pairing.Responder, r.own)
}

// newCode creates a room and shows its code.
func (r *hostRun) newCode(ctx context.Context) error {
	secret, err := newSecret()
	if err != nil {
		return err
	}
	_, request := r.want()
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	room, err := r.client.Create(cctx)
	if err != nil {
		return fmt.Errorf("get a pairing code from the rendezvous server: %w", err)
	}
	key := canonicalRoom(room.Code)
	r.mu.Lock()
	r.rooms[key] = &hostRoom{secret: secret, turn: make(chan struct{}, 1), request: request}
	r.current, r.currentFor, r.expires = key, request, room.Expires
	r.mu.Unlock()
	if r.h.OnCode != nil {
		r.h.OnCode(Code{Code: showCode(key, secret), Expires: room.Expires, Request: request})
	}
	return nil
}

// untilExpiry is the time left to the current code (a day when none is
// shown: Renew starts one).
func (r *hostRun) untilExpiry() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == "" {
		return 24 * time.Hour
	}
	return max(time.Until(r.expires), time.Second)
}

// retire stops the code of room (after a failed pairing, or as it expires)
// and, if it is the one shown, shows a new one if a code is wanted. The
// room itself stays while a paired device is in it: the server relays only
// between members, and a resuming transfer needs that.
func (r *hostRun) retire(ctx context.Context, room string) error {
	r.mu.Lock()
	delete(r.rooms, room)
	current := r.current == room
	r.mu.Unlock()
	if !current {
		return nil // retired already
	}
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var err error
	if r.pairedIn(room) {
		err = r.client.CloseRoom(cctx, room)
	} else {
		err = r.client.Leave(cctx, room)
	}
	if err != nil {
		slog.Warn("remote: could not retire a pairing code", slog.Any("err", err))
	}
	if want, _ := r.want(); want {
		return r.newCode(ctx)
	}
	r.mu.Lock()
	if r.current == room {
		r.current, r.expires = "", time.Time{}
	}
	r.mu.Unlock()
	if r.h.OnCode != nil {
		r.h.OnCode(Code{})
	}
	return nil
}

// pairedIn says whether a paired device is in room.
func (r *hostRun) pairedIn(room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, hp := range r.peers {
		if hp.auth == nil {
			continue
		}
		_, rooms, ok := r.m.member(id)
		if !ok {
			continue
		}
		for _, c := range rooms {
			if c == room {
				return true
			}
		}
	}
	return false
}

// retireAll stops every code we created, best effort, as Serve ends.
func (r *hostRun) retireAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	select {
	case <-r.client.Done():
		return
	default:
	}
	_ = r.client.CloseRoom(ctx, "")
}
