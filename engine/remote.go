package engine

// Off the LAN: with a rendezvous server set (Config.Server, SetServer) the
// engine keeps a connection to it while Run runs, reconnecting with
// backoff. On that connection it announces this device and serves a
// remote.Host, whose connections go to the same receiver as LAN ones; a
// second connection finds paired devices that are not on the LAN and lists
// them as away. Sends to an away device go through remote.NewKnownDialer on
// a connection of their own; a device on the LAN is always reached there.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

const (
	// presenceEvery is how often paired devices that are neither nearby
	// nor known to be on the server are looked for there.
	presenceEvery = 30 * time.Second
	// maxFindsPerRound keeps the finds of one round well under the
	// server's presence limit (30 a minute per address).
	maxFindsPerRound = 8
	// findTimeout bounds one find.
	findTimeout = 5 * time.Second
	// maxFindPause caps the pause before a device that was not found is
	// looked for again (presenceEvery, doubling). An app that comes online
	// finds us, and then is looked for at once (Host.OnFound); a CLI
	// receiver does not, so the cap is what it may wait to be listed.
	maxFindPause = 2 * time.Minute
	// maxFoundPerMinute bounds the finds of us that make us look the
	// finder up out of turn (a fifth of the server's presence limit).
	maxFoundPerMinute = 6
	// Reconnecting to the server waits backoffMin, doubling up to
	// backoffMax; a connection that lasted stableAfter starts over.
	backoffMin  = time.Second
	backoffMax  = 30 * time.Second
	stableAfter = 30 * time.Second
)

// Sentinel errors of the pairing verbs.
var (
	// ErrNoServer: no rendezvous server is set (LAN only).
	ErrNoServer = errors.New("no server is set: set one in Settings to pair with devices on other networks")
	// ErrServerUnreachable: the server is set but not connected.
	ErrServerUnreachable = errors.New("the server cannot be reached")
	// ErrOwnCode: JoinPairing with the code this device shows.
	ErrOwnCode = errors.New("that is this device's own code: type it on the other device")
	// ErrPairingCancelled: CancelPairing, a newer StartPairing or a
	// pairing ended the wait of StartPairing for its code.
	ErrPairingCancelled = errors.New("pairing cancelled")
)

// PairingCode is a code to show to the person at the other device.
type PairingCode struct {
	Code    string    // "7KQ2M-XW4PD-R8T3Z"
	Link    string    // what a QR code holds (the code in the URL fragment)
	Expires time.Time // the server stops admitting joins with it
}

// PairingCodeShown: while pairing (StartPairing), the code to show
// changed: it expired, or a pairing with it failed.
type PairingCodeShown struct{ Code PairingCode }

// Paired: a device paired with a code (shown here, or typed here); it is
// pinned and, while it is on the server and not nearby, listed as away.
type Paired struct{ Peer Peer }

// ServerStatus: the connection to the rendezvous server changed. URL is
// "" when none is set; Err says in plain words why it is down.
type ServerStatus struct {
	URL       string
	Connected bool
	Err       error
}

func (PairingCodeShown) isEvent() {}
func (Paired) isEvent()           {}
func (ServerStatus) isEvent()     {}

// serverState is the engine's side of the rendezvous server; its fields
// are guarded by Engine.mu, except the channels, which never change.
type serverState struct {
	wake    chan struct{} // the URL changed (buffered 1)
	renew   chan struct{} // Host.Renew (buffered 1)
	refresh chan struct{} // look for paired devices now (buffered 1)
	every   time.Duration // presenceEvery; tests shorten it

	url         string // canonical WebSocket URL, "" = LAN only
	connected   bool
	err         error  // why it is not connected (plain words); nil while connecting
	pairing     bool   // a pairing dialog shows the code
	pairGen     uint64 // counts StartPairing, CancelPairing and pairings: a late failure of an older dialog leaves a newer one alone
	code        PairingCode
	codeWait    chan struct{}              // closed when the next code arrives
	away        map[string]rendezvous.Peer // paired devices present on the server, by device id
	findNext    int                        // where the next round of finds starts
	misses      map[string]findMiss        // paired devices not found, by device id
	wanted      map[string]bool            // paired devices that found us: looked for first
	foundRecent []time.Time                // when finds of us made devices wanted, the last minute's
}

// findMiss counts the finds of a device that found nothing in a row, and
// says when to look again.
type findMiss struct {
	n    int
	next time.Time
}

func newServerState(url string) serverState {
	return serverState{
		wake: make(chan struct{}, 1), renew: make(chan struct{}, 1), refresh: make(chan struct{}, 1),
		every: presenceEvery, url: url, codeWait: make(chan struct{}), away: map[string]rendezvous.Peer{},
		misses: map[string]findMiss{}, wanted: map[string]bool{},
	}
}

// poke sends on a buffered-1 channel without waiting: one pending signal
// is as good as several.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// canonicalServer reads a server URL as typed ("" stays "": LAN only).
func canonicalServer(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	u, err := remote.ServerURL(s)
	if err != nil {
		return "", plainf(err, "The server address %q is not valid: %v.", strings.TrimSpace(s), err)
	}
	return u, nil
}

// serverHost is the host of a server URL, for messages.
func serverHost(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

// SetServer sets the rendezvous server ("" = LAN only) and applies it at
// once: the connection to the old one ends (a pairing in progress with it),
// and, while Run runs, one to the new one starts.
func (e *Engine) SetServer(server string) error {
	u, err := canonicalServer(server)
	if err != nil {
		return err
	}
	defer e.lock()()
	if u == e.srv.url {
		if u != "" && !e.srv.connected && e.srv.err != nil {
			// Apply on a server that could not be reached: try again
			// now, not after the backoff.
			e.srv.err = nil
			e.emit(ServerStatus{URL: u})
			poke(e.srv.wake)
		}
		return nil
	}
	e.srv.url = u
	e.srv.pairing = false
	e.srv.pairGen++
	e.wakeCodeWaitLocked() // a StartPairing still waiting returns
	e.srv.code = PairingCode{}
	e.srv.connected, e.srv.err = false, nil
	e.clearAwayLocked()
	e.emit(ServerStatus{URL: u})
	poke(e.srv.wake)
	return nil
}

// Server is the rendezvous server's URL ("" = LAN only).
func (e *Engine) Server() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv.url
}

// clearAwayLocked forgets the away devices; the caller holds e.mu.
func (e *Engine) clearAwayLocked() {
	if len(e.srv.away) == 0 {
		return
	}
	clear(e.srv.away)
	e.emit(DevicesChanged{Devices: e.devicesLocked()})
}

// runServer keeps a connection to the server that is set, if any, until
// ctx ends; a new URL (SetServer) replaces the connection.
func (e *Engine) runServer(ctx context.Context) {
	select {
	case <-e.srv.wake: // a SetServer before Run: the loop reads the URL anyway
	default:
	}
	e.serveLatest(ctx, func() (string, <-chan struct{}) { return e.srv.url, e.srv.wake }, e.serveServer)
}

// serveLatest runs serve with the setting that read returns (under e.mu),
// and again with the new one each time the channel read returned with it
// fires, until ctx ends; an empty setting serves nothing. The serve of an
// old setting has returned before the next one starts.
func (e *Engine) serveLatest(ctx context.Context, read func() (string, <-chan struct{}), serve func(context.Context, string)) {
	for {
		e.mu.Lock()
		v, changed := read()
		e.mu.Unlock()
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if v != "" {
				serve(sctx, v)
			}
		}()
		select {
		case <-ctx.Done():
		case <-changed:
		}
		cancel()
		<-done
		if ctx.Err() != nil {
			return
		}
	}
}

// serveServer connects to the server at u and reconnects, with backoff,
// whenever the connection drops, until ctx ends. Connections that came
// through a connection that dropped carry on peer to peer; serveServer
// returns after them.
func (e *Engine) serveServer(ctx context.Context, u string) {
	h := &remote.Host{
		Config:   e.peerConfig(),
		Check:    e.pairCheck,
		Known:    e.trust.IsPinned,
		OnCode:   func(c remote.Code) { e.onCode(u, c) },
		OnError:  e.onRemoteError,
		OnPaired: e.onPaired,
		OnFound:  e.onFound,
		Renew:    e.srv.renew,
		// A code only while the pairing dialog is open (no room held on
		// the server otherwise: the server limits them per client), a
		// fresh one for each StartPairing.
		Wanted: func() (bool, uint64) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.srv.pairing && e.srv.url == u && !e.stopped, e.srv.pairGen
		},
	}
	defer h.Wait()
	wait := backoffMin
	for {
		start := time.Now()
		err := e.serverSession(ctx, u, h)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > stableAfter {
			wait = backoffMin
		}
		slog.Warn("engine: rendezvous server connection ended", slog.String("server", u), slog.Any("err", err), slog.Duration("retry_in", wait))
		e.setServerStatus(u, false, serverProblem(u, err, wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, backoffMax)
	}
}

// serverProblem puts a failed server connection in plain words.
func serverProblem(u string, err error, retry time.Duration) error {
	var re *rendezvous.Error
	if errors.As(err, &re) {
		switch re.Code {
		case rendezvous.CodeRateLimited:
			return plainf(err, "The server %s asks this device to slow down; trying again in %s.", serverHost(u), retry.Round(time.Second))
		case rendezvous.CodeServerFull:
			return plainf(err, "The server %s is full; trying again in %s.", serverHost(u), retry.Round(time.Second))
		}
	}
	if errors.Is(err, errLostServer) {
		return plainf(err, "Lost the connection to the server %s; connecting again in %s.", serverHost(u), retry.Round(time.Second))
	}
	return plainf(err, "Cannot reach the server %s; trying again in %s.", serverHost(u), retry.Round(time.Second))
}

// errLostServer: a connection to the server that worked ended.
var errLostServer = errors.New("lost the rendezvous server")

// setServerStatus records and reports the connection state, if u is still
// the server set.
func (e *Engine) setServerStatus(u string, connected bool, err error) {
	defer e.lock()()
	if e.srv.url != u {
		return
	}
	e.srv.connected, e.srv.err = connected, err
	if !connected {
		e.srv.code = PairingCode{}
		e.clearAwayLocked()
	}
	e.emit(ServerStatus{URL: u, Connected: connected, Err: err})
}

// serverSession is one connection to the server: it announces this device,
// serves paired and pairing devices (h) and looks for paired devices, until
// ctx ends or the server goes away.
func (e *Engine) serverSession(ctx context.Context, u string, h *remote.Host) error {
	host, err := remote.DialServer(ctx, u, e.peerConfig(), e.deviceType())
	if err != nil {
		return err
	}
	defer host.Close()
	err = remote.Announce(ctx, host, e.id.Signer(), e.id.CertificateDER())
	switch {
	case errors.Is(err, remote.ErrIDBound):
		e.problem(plainf(err, "The server %s has this device's id bound to another certificate, so paired devices cannot reach it there by name; pairing with a code still works.", serverHost(u)))
	case err != nil:
		return fmt.Errorf("announce this device: %w", err)
	}
	// Host.Serve owns host's events: finds need a connection of their own.
	finder, err := remote.DialServer(ctx, u, e.peerConfig(), e.deviceType())
	if err != nil {
		return err
	}
	defer finder.Close()
	slog.Info("engine: connected to the rendezvous server", slog.String("server", u))
	e.setServerStatus(u, true, nil)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		// The finder gone, the session goes (and reconnects): closing the
		// host connection ends Serve without touching connections in
		// progress, which run under ctx.
		defer host.Close()
		e.presenceLoop(sctx, finder)
	})
	select {
	case <-e.srv.renew: // asked of an earlier session: this one starts with a fresh code
	default:
	}
	err = h.Serve(ctx, host, e.serveConn)
	stop()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = errLostServer
	}
	if !errors.Is(err, errLostServer) {
		err = fmt.Errorf("%w: %w", errLostServer, err)
	}
	return err
}

// pinned is the fingerprint pinned for device id.
func (e *Engine) pinned(id string) (string, bool) {
	d, ok := e.trust.Pinned(id)
	return d.Fingerprint, ok
}

// pairCheck is the handshake check for a device whose certificate a
// pairing code authenticated (or, for a known device, the pin already
// matched): it is pinned, replacing an older pin, since the person paired
// it again on purpose.
func (e *Engine) pairCheck(h signaling.Hello) error {
	err := e.checkPeer(h)
	var ic *trust.IdentityChangedError
	if errors.As(err, &ic) {
		if err := e.trust.Repair(h.DeviceID, h.Fingerprint); err != nil {
			return fmt.Errorf("pin %s again: %w", h.Name, err)
		}
		err = e.checkPeer(h)
	}
	return err
}

// onCode hears a new code from the Host.
func (e *Engine) onCode(u string, c remote.Code) {
	defer e.lock()()
	if e.srv.url != u {
		return
	}
	if c.Code == "" { // retired, none wanted now
		e.srv.code = PairingCode{}
		return
	}
	e.srv.code = PairingCode{Code: c.Code, Link: remote.PairingLink(u, c.Code), Expires: c.Expires}
	if e.srv.pairing && c.Request != e.srv.pairGen {
		// Made for an earlier dialog while this one opened: the Renew
		// that this one asked for replaces it. Neither shown nor given.
		return
	}
	e.wakeCodeWaitLocked()
	if e.srv.pairing {
		e.emit(PairingCodeShown{Code: e.srv.code})
	}
}

// wakeCodeWaitLocked wakes every StartPairing waiting for a code; each
// then sees whether the code is for it. The caller holds e.mu.
func (e *Engine) wakeCodeWaitLocked() {
	close(e.srv.codeWait)
	e.srv.codeWait = make(chan struct{})
}

// onRemoteError hears about connections through the server that failed.
func (e *Engine) onRemoteError(err error) {
	if errors.Is(err, pairing.ErrMismatch) || errors.Is(err, pairing.ErrProtocol) {
		e.mu.Lock()
		showing := e.srv.pairing
		e.mu.Unlock()
		if showing {
			e.problem(plainf(err, "A device tried to pair with a wrong code. This device shows a new code now."))
			return
		}
	}
	slog.Info("engine: connection through the server failed", slog.Any("err", err))
}

// onPaired hears that a device paired with the code shown here.
// The pairing dialog's work is done if the code was made for it; a code
// of an earlier dialog (a pairing that was under way as it closed) leaves
// the dialog open now alone.
func (e *Engine) onPaired(h signaling.Hello, request uint64) {
	func() {
		defer e.lock()()
		if e.srv.pairing && request == e.srv.pairGen {
			e.srv.pairing = false
			e.srv.pairGen++
			e.wakeCodeWaitLocked() // a StartPairing still waiting returns
		}
		e.emit(Paired{Peer: Peer{ID: h.DeviceID, Name: h.Name}})
	}()
	poke(e.srv.renew) // the code was seen: it dies
	poke(e.srv.refresh)
}

// StartPairing returns a fresh code to show to the person at the other
// device and, until it pairs or CancelPairing, reports each later code
// (PairingCodeShown: the code expired, or a pairing with it failed). It
// waits, within ctx, for the server to give the code.
func (e *Engine) StartPairing(ctx context.Context) (code PairingCode, err error) {
	e.mu.Lock()
	u, connected, lastErr, wait := e.srv.url, e.srv.connected, e.srv.err, e.srv.codeWait
	stopped := e.stopped
	e.srv.pairGen++
	gen := e.srv.pairGen
	if u != "" && !stopped {
		e.srv.pairing = true
	}
	e.mu.Unlock()
	defer func() {
		if err == nil {
			return
		}
		// Not pairing after all: no code events, no wrong-code problems,
		// and a code that came late is retired. Unless a newer dialog
		// (or CancelPairing) took over: it decides.
		e.mu.Lock()
		mine := e.srv.pairGen == gen
		if mine {
			e.srv.pairing = false
		}
		e.mu.Unlock()
		if mine {
			poke(e.srv.renew)
		}
	}()
	switch {
	case u == "":
		return PairingCode{}, ErrNoServer
	case stopped:
		return PairingCode{}, fmt.Errorf("pairing: %w", ErrStopped)
	case !connected && lastErr != nil:
		return PairingCode{}, unreachable(u, lastErr)
	case connected:
		// A code made for this request (Host.Wanted): nobody has seen
		// it. (Not connected: the session that connects starts with one.)
		poke(e.srv.renew)
	}
	select {
	case <-wait:
	case <-ctx.Done():
		e.mu.Lock()
		lastErr = e.srv.err
		e.mu.Unlock()
		return PairingCode{}, unreachable(u, cmp.Or(lastErr, ctx.Err()))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv.pairGen != gen && e.srv.url == u {
		return PairingCode{}, ErrPairingCancelled
	}
	if e.srv.url != u || e.srv.code.Code == "" {
		return PairingCode{}, unreachable(u, cmp.Or(e.srv.err, errors.New("the connection to the server ended")))
	}
	return e.srv.code, nil
}

// unreachable says that the server u cannot be reached, and why.
func unreachable(u string, err error) error {
	return plainf(fmt.Errorf("%w: %w", ErrServerUnreachable, err),
		"Cannot reach the server %s: check its address in Settings and the network connection.", serverHost(u))
}

// CancelPairing stops showing the pairing code: the code shown is retired,
// so nobody can pair with it any more.
func (e *Engine) CancelPairing() {
	e.mu.Lock()
	was := e.srv.pairing
	e.srv.pairing = false
	e.srv.pairGen++
	e.wakeCodeWaitLocked() // a StartPairing still waiting returns
	e.mu.Unlock()
	if was {
		poke(e.srv.renew)
	}
}

// JoinPairing pairs with the device that shows code (as typed): the code
// authenticates both certificates, both devices pin each other, and each
// lists the other (as away while it is not nearby).
func (e *Engine) JoinPairing(ctx context.Context, code string) (Peer, error) {
	e.mu.Lock()
	u, stopped, own := e.srv.url, e.stopped, e.srv.code.Code
	e.mu.Unlock()
	switch {
	case u == "":
		return Peer{}, ErrNoServer
	case stopped:
		return Peer{}, fmt.Errorf("pairing: %w", ErrStopped)
	}
	_, full, err := remote.SplitCode(code)
	if err != nil {
		return Peer{}, plainf(err, "That is not a pairing code: %v.", err)
	}
	if _, ownFull, _ := remote.SplitCode(own); own != "" && ownFull == full {
		return Peer{}, ErrOwnCode
	}
	client, err := remote.DialServer(ctx, u, e.peerConfig(), e.deviceType())
	if err != nil {
		return Peer{}, unreachable(u, err)
	}
	c, err := remote.Join(ctx, client, code, e.peerConfig(), e.pairCheck)
	if err != nil {
		_ = client.Close()
		slog.Info("engine: pairing failed", slog.Any("err", err))
		return Peer{}, describePairError(err)
	}
	p := Peer{ID: c.Remote.DeviceID, Name: c.Remote.Name}
	// Pairing only: files go on connections of their own. The other
	// device counts the pairing done when its end of the data channel
	// opens, a moment after ours did: closing at once could beat that.
	// So the connection stays a while (an engine on the other end waits
	// for offers on it, so it is usually the full while; a CLI may close
	// it sooner).
	e.mu.Lock()
	stopped = e.stopped
	if !stopped {
		e.work.Go(func() {
			lingerClose(e.root, c, pairingLinger)
			_ = client.Close()
		})
	}
	e.emit(Paired{Peer: p})
	e.mu.Unlock()
	e.events.flush()
	if stopped {
		_ = c.Close()
		_ = client.Close()
	}
	poke(e.srv.refresh)
	return p, nil
}

// pairingLinger is how long a connection made only to pair stays open for
// the other device to take note.
const pairingLinger = 5 * time.Second

// lingerClose closes c once the other end has closed it, d has passed or
// ctx has ended, whichever comes first.
func lingerClose(ctx context.Context, c *peer.Conn, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.Done():
	case <-t.C:
	case <-ctx.Done():
	}
	_ = c.Close()
}

// describePairError says in plain words why joining with a code failed.
func describePairError(err error) error {
	switch {
	case errors.Is(err, remote.ErrNoSuchCode):
		return plainf(err, "No device shows this code: check it, or ask for a new one (a code lasts 10 minutes).")
	case errors.Is(err, pairing.ErrMismatch):
		return plainf(err, "The code is wrong. The other device shows a new code now: type that one.")
	case errors.Is(err, remote.ErrPairingRefused):
		return plainf(err, "The other device ended the pairing: ask it for a new code.")
	case errors.Is(err, pairing.ErrFingerprintSwapped):
		return plainf(err, "Pairing refused: someone between the devices (the server?) swapped a certificate.")
	case errors.Is(err, rendezvous.ErrRateLimited):
		return plainf(err, "Too many pairing attempts from this network: wait a minute and try again.")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return plainf(err, "Pairing took too long: the other device did not answer.")
	}
	return plainf(err, "Pairing failed: %v.", err)
}

// presenceLoop looks for paired devices on the server through finder
// until ctx ends or finder's connection does: at once, every
// srv.every, and when asked (srv.refresh). A device found stays away until
// the server says its connection left.
func (e *Engine) presenceLoop(ctx context.Context, finder *rendezvous.Client) {
	e.mu.Lock()
	every := e.srv.every
	// A new connection looks for everyone once more.
	clear(e.srv.misses)
	clear(e.srv.wanted)
	e.mu.Unlock()
	tick := time.NewTicker(every)
	defer tick.Stop()
	e.findPaired(ctx, finder)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-finder.Events():
			if !ok {
				return
			}
			if left, isLeft := ev.(rendezvous.PeerLeft); isLeft && left.Code == "" {
				e.dropAway(left.ClientID)
			}
		case <-tick.C:
			e.findPaired(ctx, finder)
		case <-e.srv.refresh:
			e.findPaired(ctx, finder)
		}
	}
}

// onFound hears that a client claiming device id found us on the server:
// if that is a device paired here and not listed, it is looked for at once
// (the find checks the claim: only the device itself announces its id).
// At most maxFoundPerMinute such lookups a minute: a claim costs one of
// our finds, which the server limits per address, and anyone can claim.
func (e *Engine) onFound(id string) {
	e.mu.Lock()
	_, pinned := e.trust.Pinned(id)
	_, near := e.nearby[id]
	_, away := e.srv.away[id]
	now := time.Now()
	e.srv.foundRecent = slices.DeleteFunc(e.srv.foundRecent, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	look := pinned && !near && !away && !e.srv.wanted[id] && len(e.srv.foundRecent) < maxFoundPerMinute
	if look {
		e.srv.wanted[id] = true
		e.srv.foundRecent = append(e.srv.foundRecent, now)
	}
	e.mu.Unlock()
	if look {
		poke(e.srv.refresh)
	}
}

// findPaired looks for the pinned devices that are neither nearby nor
// known to be on the server: first those that found us, then, in turns,
// those not found lately (each one found nothing waits longer, up to
// maxFindPause).
func (e *Engine) findPaired(ctx context.Context, finder *rendezvous.Client) {
	var look []trust.Device
	func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		// Half a round of slack: a pause of one round is measured from
		// the end of the find, a little after the round that is due.
		soon := time.Now().Add(e.srv.every / 2)
		var missing []trust.Device
		pinned := map[string]bool{}
		for _, d := range e.trust.List() {
			pinned[d.ID] = true
			_, near := e.nearby[d.ID]
			_, away := e.srv.away[d.ID]
			switch m, missed := e.srv.misses[d.ID]; {
			case near || away:
				delete(e.srv.wanted, d.ID)
			case e.srv.wanted[d.ID]:
				look = append(look, d)
			case !missed || !soon.Before(m.next):
				missing = append(missing, d)
			}
		}
		for id := range e.srv.wanted {
			if !pinned[id] { // forgotten meanwhile
				delete(e.srv.wanted, id)
			}
		}
		// A round looks for a few; the next ones take their turn in the
		// next round.
		for i := 0; i < len(missing) && len(look) < maxFindsPerRound; i++ {
			look = append(look, missing[(e.srv.findNext+i)%len(missing)])
		}
		look = look[:min(len(look), maxFindsPerRound)]
	}()
	for _, d := range look {
		fctx, cancel := context.WithTimeout(ctx, findTimeout)
		p, err := finder.Find(fctx, d.ID)
		cancel()
		// Another certificate under that id is not the device we paired
		// with (the handshake would refuse it anyway): a miss too.
		impostor := err == nil && !strings.EqualFold(p.Hello.Fingerprint, d.Fingerprint)
		if err == nil || errors.Is(err, rendezvous.ErrNotFound) {
			// Looked for: the next round starts after it. A round cut
			// short (below) starts the next one where it stopped.
			func() {
				defer e.lock()()
				e.srv.findNext++
				delete(e.srv.wanted, d.ID)
				if err == nil && !impostor {
					delete(e.srv.misses, d.ID)
					return
				}
				m := e.srv.misses[d.ID]
				m.next = time.Now().Add(min(e.srv.every<<min(m.n, 10), max(maxFindPause, e.srv.every)))
				m.n++
				e.srv.misses[d.ID] = m
			}()
		}
		switch {
		case errors.Is(err, rendezvous.ErrNotFound):
			continue
		case err != nil:
			if ctx.Err() == nil {
				slog.Info("engine: looking for paired devices on the server", slog.Any("err", err))
			}
			return // rate limited, or the connection is going: next round
		case impostor:
			continue
		}
		func() {
			defer e.lock()()
			e.srv.away[d.ID] = p
			if _, near := e.nearby[d.ID]; !near {
				e.emit(DevicesChanged{Devices: e.devicesLocked()})
			}
		}()
	}
}

// dropAway forgets the away device whose server connection left.
func (e *Engine) dropAway(clientID string) {
	defer e.lock()()
	for id, p := range e.srv.away {
		if p.ClientID == clientID {
			delete(e.srv.away, id)
			if _, near := e.nearby[id]; !near {
				e.emit(DevicesChanged{Devices: e.devicesLocked()})
			}
		}
	}
}

// awayDevicesLocked lists the away devices that are not nearby, given the
// pins; the caller holds e.mu.
func (e *Engine) awayDevicesLocked(pins map[string]trust.Device) []Device {
	var out []Device
	for id, p := range e.srv.away {
		if _, near := e.nearby[id]; near {
			continue
		}
		pin, known := pins[id]
		if !known || !strings.EqualFold(pin.Fingerprint, p.Hello.Fingerprint) {
			continue
		}
		typ := p.Hello.Type
		if !discovery.ValidType(typ) {
			typ = discovery.TypeDesktop
		}
		out = append(out, Device{
			Device: discovery.Device{Info: discovery.Info{
				ID: id, Name: cmp.Or(p.Hello.Name, pin.Name), Type: typ,
				Version: int(signaling.Version), Fingerprint: pin.Fingerprint,
			}},
			Known:   true,
			Trusted: pin.Trusted,
			Away:    true,
		})
	}
	return out
}

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
		r.d = remote.NewKnownDialer(client, pairing.Peer{DeviceID: r.id, Fingerprint: fp}, r.e.peerConfig(), r.e.checkPeer)
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
	near = near || page
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

// dialTarget connects to t for one attempt: on the LAN when route gives
// addresses, else through the server with rd. want is the device id the LAN
// peer must answer with ("" when only an address is known).
func (e *Engine) dialTarget(ctx context.Context, t Target, want string, rd *remoteDial) (*peer.Conn, string, error) {
	if addrs := e.route(t); len(addrs) > 0 {
		c, addr, err := DialFirst(ctx, addrs, e.peerConfig(), e.sendCheck(want))
		if err == nil || !e.serverFallback(t, err) {
			return c, addr, err
		}
		// Listed nearby but not answering (a stale record, a laptop that
		// just left, a network that isolates its clients): a paired device
		// may still be reached through the server.
		slog.Info("engine: not reachable on the LAN, trying the server", slog.String("device", t.ID), slog.Any("err", err))
	}
	if t.ID == "" {
		return nil, "", &permanentError{errNoRoute}
	}
	c, err := rd.dial(ctx)
	if err != nil {
		return nil, "", err
	}
	return c, "server", nil
}
