package engine

// Pairing with a code through the rendezvous server: StartPairing shows a
// code, JoinPairing types one; both pin the other device once the pairing
// connection proved its certificate.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
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
		if err := e.trust.Repair(h.ID, h.Fingerprint); err != nil {
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
		e.emit(Paired{Peer: peerOf(h.Device)})
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
	p := peerOf(c.Remote.Device)
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
