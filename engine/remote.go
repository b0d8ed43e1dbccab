package engine

// Off the LAN: with a rendezvous server set (Config.Server, SetServer) the
// engine keeps a connection to it while Run runs, reconnecting with
// backoff. On that connection it announces this device and serves a
// remote.Host, whose connections go to the same receiver as LAN ones; a
// second connection finds paired devices that are not on the LAN and lists
// them as away (presence.go). Pairing with codes is in pairing.go; routing a
// send, LAN first and the server for an away device through
// remote.NewKnownDialer, in route.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

const (
	// Reconnecting to the server waits backoffMin, doubling up to
	// backoffMax; a connection that lasted stableAfter starts over.
	backoffMin  = time.Second
	backoffMax  = 30 * time.Second
	stableAfter = 30 * time.Second
)

// serverState is the engine's side of the rendezvous server; its fields
// are guarded by Engine.mu, except the channels, which never change.
type serverState struct {
	wake    chan struct{} // the URL changed (buffered 1)
	renew   chan struct{} // Host.Renew (buffered 1)
	refresh chan struct{} // look for paired devices now (buffered 1)

	url       string // canonical WebSocket URL, "" = LAN only
	connected bool
	err       error  // why it is not connected (plain words); nil while connecting
	pairing   bool   // a pairing dialog shows the code
	pairGen   uint64 // counts StartPairing, CancelPairing and pairings: a late failure of an older dialog leaves a newer one alone
	code      PairingCode
	codeWait  chan struct{}              // closed when the next code arrives
	away      map[string]rendezvous.Peer // paired devices present on the server, by device id
	finds     findSchedule               // whom to look for on the server, when (presence.go)
}

func newServerState(url string) serverState {
	return serverState{
		wake: make(chan struct{}, 1), renew: make(chan struct{}, 1), refresh: make(chan struct{}, 1),
		url: url, codeWait: make(chan struct{}), away: map[string]rendezvous.Peer{},
		finds: newFindSchedule(presenceEvery, time.Now),
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
	var b backoff
	for {
		start := time.Now()
		err := e.serverSession(ctx, u, h)
		if ctx.Err() != nil {
			return
		}
		wait := b.next(start, true)
		slog.Warn("engine: rendezvous server connection ended", slog.String("server", u), slog.Any("err", err), slog.Duration("retry_in", wait))
		e.setServerStatus(u, false, serverProblem(u, err, wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the one reconnect policy for the rendezvous server, the app's
// and the command line's: wait backoffMin, doubling up to backoffMax; a
// connection that served for stableAfter starts over (a new outage).
type backoff struct{ wait time.Duration }

// next is the wait before the next attempt, after one that started at
// start and served (got as far as serving), or not.
func (b *backoff) next(start time.Time, served bool) time.Duration {
	if b.wait == 0 || served && time.Since(start) > stableAfter {
		b.wait = backoffMin
	}
	w := b.wait
	b.wait = min(b.wait*2, backoffMax)
	return w
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
