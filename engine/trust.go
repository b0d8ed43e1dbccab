package engine

// Trust: certificates are pinned on first contact, once a connection
// proved them, and a known device with another one is refused.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// checkPeer is the check at hello time: it refuses a known device that
// comes with another certificate and stores nothing (a hello is a claim).
func (e *Engine) checkPeer(h signaling.Hello) error {
	return e.trust.Verify(h.ID, h.Fingerprint)
}

// provenPeer pins a peer's certificate on first contact, once DTLS has
// proven it (peer.Config.OnProven), and refuses a known device that comes
// with another one.
func (e *Engine) provenPeer(h signaling.Hello) error {
	if err := e.trust.Pin(h.ID, h.Name, h.Fingerprint); err != nil {
		return err
	}
	defer e.lock()()
	_, near := e.nearby[h.ID]
	_, page := e.web.pages[h.ID]
	if near || page {
		e.emit(DevicesChanged{Devices: e.devicesLocked()}) // it may be known now
	}
	return nil
}

// onHandshakeError hears about incoming connections that failed before a
// transfer could start.
func (e *Engine) onHandshakeError(from net.Addr, err error) { e.handshakeFailed(from.String(), err) }

// handshakeFailed reports an incoming connection from that failed: to the
// user when a known device came with another identity, else to the log.
func (e *Engine) handshakeFailed(from string, err error) {
	var ic *trust.IdentityChangedError
	if errors.As(err, &ic) {
		e.problem(plainf(err, "%s's identity changed, so its connection was refused: compare the verification code and re-pair.", ic.Name))
		return
	}
	slog.Info("engine: incoming connection failed", slog.String("from", from), slog.Any("err", err))
}

// TrustCode is what to compare with the other device's screen before
// trusting it: trust.TrustCode of this device's fingerprint and the
// device's pinned one (the one SetTrusted trusts). Both devices show the
// same code. A device not pinned yet (never connected) has none.
func (e *Engine) TrustCode(deviceID string) (string, error) {
	// Only a pinned certificate: one a connection proved. An advertised
	// one is a claim (and trusting needs the pin anyway).
	p, ok := e.trust.Pinned(deviceID)
	if !ok {
		return "", fmt.Errorf("trust code for %s: %w", deviceID, ErrUnknownDevice)
	}
	return trust.TrustCode(e.id.Fingerprint, p.Fingerprint), nil
}

// SetTrusted marks a pinned device as trusted (auto-accept) or not.
func (e *Engine) SetTrusted(deviceID string, trusted bool) error {
	if err := e.trust.SetTrusted(deviceID, trusted); err != nil {
		return fmt.Errorf("trust %s: %w", deviceID, err)
	}
	defer e.lock()()
	// Trusted devices are listed even when offline: the list changed.
	e.emit(DevicesChanged{Devices: e.devicesLocked()})
	return nil
}

// Trusted lists the pinned devices marked trusted.
func (e *Engine) Trusted() []Peer {
	var out []Peer
	for _, d := range e.trust.List() {
		if d.Trusted {
			out = append(out, peerOf(d.Device))
		}
	}
	return out
}
