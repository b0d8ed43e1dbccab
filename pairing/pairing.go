// Package pairing owns the pairing-code PAKE: two devices that share a
// pairing code authenticate each other's DTLS certificate fingerprints
// through a relay they do not trust (the rendezvous server), so that a
// server which later swaps the fingerprints in the SDP it relays is caught.
//
// The flow, its key derivation and its wire format are specified in
// docs/PROTOCOL-pairing.md, which another implementation (a browser) can be
// written from. The PAKE is github.com/schollz/pake/v3 (SPAKE2 on P-256).
//
// The protection is exactly as strong as the part of the code the server
// never sees: a relay that knows the whole code can run the PAKE with each
// side itself. See Authenticate.
package pairing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/device"
)

// ErrMismatch means the confirmation of the other side did not verify: the
// two devices used different codes, or the relay changed a message.
var ErrMismatch = errors.New("the pairing code did not match, or someone in the middle changed the messages")

// ErrProtocol means a pairing message was malformed, out of order or of an
// unexpected version. A relay that garbles messages causes it too.
var ErrProtocol = errors.New("the pairing messages were malformed or out of order (another version, or someone in the middle changed them)")

// ErrFingerprintSwapped means a remote SDP names another DTLS certificate
// than the one the pairing authenticated.
var ErrFingerprintSwapped = errors.New("the connection offer carries another certificate than the one the pairing code authenticated: " +
	"the server (or someone between you) swapped it, so the connection is refused")

// DefaultTimeout bounds Authenticate when ctx has no deadline of its own: a
// whole run is four relayed messages.
const DefaultTimeout = 30 * time.Second

// abortTimeout bounds the best-effort abort message sent on failure.
const abortTimeout = 2 * time.Second

// Transport is the relay channel between exactly two devices. Messages are
// delivered whole (one Send is one Recv), but the relay may read, drop,
// replay, reorder or rewrite them: Authenticate trusts nothing it carries.
// Recv must return when ctx is done.
type Transport interface {
	Send(ctx context.Context, msg []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

// Role says which side of the PAKE a device plays. The two devices must take
// different roles; the zero value is invalid, so a forgotten role fails
// loudly instead of pairing two initiators.
type Role int

const (
	// Initiator speaks first. Use it for the device that joins with the
	// code: it knows the other device is already there.
	Initiator Role = iota + 1
	// Responder answers. Use it for the device that created the code.
	Responder
)

func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Responder:
		return "responder"
	default:
		return fmt.Sprintf("Role(%d)", int(r))
	}
}

// pakeRole is the role number pake/v3 uses: 0 computes X first, 1 answers.
func (r Role) pakeRole() int {
	if r == Initiator {
		return 0
	}
	return 1
}

// RoleByDeviceID picks roles when neither device is naturally first (two
// devices that meet in a room of several): the lower device id initiates.
// Both sides compute complementary roles from the same two ids.
func RoleByDeviceID(own, other string) (Role, error) {
	switch {
	case own < other:
		return Initiator, nil
	case own > other:
		return Responder, nil
	default:
		return 0, errors.New("pairing: both devices have the same device id")
	}
}

// Identity is what a device asserts about itself: its device id and the
// SHA-256 fingerprint of its DTLS certificate, as in SDP ("sha-256 AA:BB:...").
// Name and Type are not used.
type Identity = device.Device

// Peer is the other device as the pairing authenticated it: its id and its
// Fingerprint, in canonical form ("sha-256 " and upper-case hex), as
// identity and trust write it. Name and Type are not set.
type Peer = device.Device

// Authenticate runs the pairing PAKE over tr and returns the other device's
// authenticated identity. code is the pairing code as the user typed or was
// shown it (NormalizeCode is applied). Both sides must use the same code and
// different roles.
//
// On success the caller must still check that the DTLS fingerprint in the
// SDP it later receives is Peer.Fingerprint (CheckSDPFingerprint), and pin
// it. Errors: ErrMismatch (wrong code or tampering), ErrProtocol (malformed
// or unexpected messages), or a wrapped ctx error on timeout; any other
// error comes from tr. On ErrMismatch and ErrProtocol the other side is told
// (best effort), so it fails at once instead of timing out.
//
// Security rests on the code having a part that the relay never learns: a
// server that knows the whole code can run a PAKE with each side and swap
// everything. A code the rendezvous server drew is only a nameplate; the
// creator must append a secret group of its own and send the server only
// the nameplate (docs/PROTOCOL-pairing.md, P.2). A relay without it gets one guess per run, and every wrong
// guess makes the run fail visibly, so the code's creator should let a code
// fail at most once (then show a new one).
//
// If ctx has no deadline, DefaultTimeout applies. Authenticate starts no
// goroutines and reads no message beyond its own, so the same transport can
// carry the signaling that follows.
func Authenticate(ctx context.Context, tr Transport, code string, role Role, own Identity) (Peer, error) {
	if role != Initiator && role != Responder {
		return Peer{}, fmt.Errorf("pairing: invalid role %v", role)
	}
	norm, err := NormalizeCode(code)
	if err != nil {
		return Peer{}, err
	}
	fp, ok := canonicalFingerprint(own.Fingerprint)
	if !ok || device.ValidateID(own.ID) != nil || device.CheckID(own.ID, fp) != nil {
		return Peer{}, errors.New("pairing: malformed own device id or fingerprint")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	s := &session{
		tr:   tr,
		role: role,
		own:  Peer{ID: own.ID, Fingerprint: fp},
		pw:   password(norm),
	}
	var peer Peer
	if role == Initiator {
		peer, err = s.initiate(ctx)
	} else {
		peer, err = s.respond(ctx)
	}
	if err != nil {
		s.abort(ctx, err)
		return Peer{}, err
	}
	return peer, nil
}

// session is one run of Authenticate.
type session struct {
	tr   Transport
	role Role
	own  Peer
	pw   []byte
	// peerAborted is set when the failure is the peer's abort message:
	// there is no one left to tell.
	peerAborted bool
}

// initiate is the Initiator's side: send X; receive Y with the responder's
// confirmation; send ours; receive the responder's ok.
func (s *session) initiate(ctx context.Context) (Peer, error) {
	p, err := newPAKE(s.pw, Initiator)
	if err != nil {
		return Peer{}, err
	}
	x := encodePoint(p.Xᵤ, p.Xᵥ)
	if err := s.send(ctx, message{Type: typePAKE, Role: Initiator.String(), PAKE: x}); err != nil {
		return Peer{}, err
	}

	m2, err := s.recv(ctx, typePAKE)
	if err != nil {
		return Peer{}, err
	}
	if m2.Role != Responder.String() {
		return Peer{}, fmt.Errorf("%w: the other device also took the initiator role", ErrProtocol)
	}
	key, err := sessionKey(p, Responder, m2.PAKE)
	if err != nil {
		return Peer{}, err
	}
	ks := deriveKeys(key, transcriptHash(x, m2.PAKE))
	responder := Peer{ID: m2.DeviceID, Fingerprint: m2.Fingerprint}
	if !ks.verify(m2.MAC, ks.responderConfirm(responder)) {
		return Peer{}, fmt.Errorf("%w (the responder's confirmation did not verify)", ErrMismatch)
	}

	confirm := message{Type: typeConfirm, Role: Initiator.String(),
		DeviceID: s.own.ID, Fingerprint: s.own.Fingerprint, MAC: ks.initiatorConfirm(s.own, responder)}
	if err := s.send(ctx, confirm); err != nil {
		return Peer{}, err
	}

	ok, err := s.recv(ctx, typeOK)
	if err != nil {
		return Peer{}, err
	}
	if !ks.verify(ok.MAC, ks.responderOK(s.own, responder)) {
		return Peer{}, fmt.Errorf("%w (the responder's ok did not verify)", ErrMismatch)
	}
	return responder, nil
}

// respond is the Responder's side: receive X; send Y with our confirmation;
// receive the initiator's; send ok.
func (s *session) respond(ctx context.Context) (Peer, error) {
	m1, err := s.recv(ctx, typePAKE)
	if err != nil {
		return Peer{}, err
	}
	if m1.Role != Initiator.String() {
		return Peer{}, fmt.Errorf("%w: expected the initiator's pake message, got the responder's", ErrProtocol)
	}
	p, err := newPAKE(s.pw, Responder)
	if err != nil {
		return Peer{}, err
	}
	key, err := sessionKey(p, Initiator, m1.PAKE)
	if err != nil {
		return Peer{}, err
	}
	y := encodePoint(p.Yᵤ, p.Yᵥ)
	ks := deriveKeys(key, transcriptHash(m1.PAKE, y))
	m2 := message{Type: typePAKE, Role: Responder.String(), PAKE: y,
		DeviceID: s.own.ID, Fingerprint: s.own.Fingerprint, MAC: ks.responderConfirm(s.own)}
	if err := s.send(ctx, m2); err != nil {
		return Peer{}, err
	}

	m3, err := s.recv(ctx, typeConfirm)
	if err != nil {
		return Peer{}, err
	}
	initiator := Peer{ID: m3.DeviceID, Fingerprint: m3.Fingerprint}
	if !ks.verify(m3.MAC, ks.initiatorConfirm(initiator, s.own)) {
		return Peer{}, fmt.Errorf("%w (the initiator's confirmation did not verify)", ErrMismatch)
	}
	if err := s.send(ctx, message{Type: typeOK, Role: Responder.String(), MAC: ks.responderOK(initiator, s.own)}); err != nil {
		return Peer{}, err
	}
	return initiator, nil
}

func (s *session) send(ctx context.Context, m message) error {
	b, err := encode(m)
	if err != nil {
		return fmt.Errorf("pairing: encode %s message: %w", m.Type, err)
	}
	if err := s.tr.Send(ctx, b); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pairing: sending to the other device: %w", ctx.Err())
		}
		return fmt.Errorf("pairing: send: %w", err)
	}
	return nil
}

// recv reads the next message, which must be of type want (or an abort).
func (s *session) recv(ctx context.Context, want string) (message, error) {
	b, err := s.tr.Recv(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return message{}, fmt.Errorf("pairing: waiting for the other device: %w", ctx.Err())
		}
		return message{}, fmt.Errorf("pairing: receive: %w", err)
	}
	m, err := decode(b)
	if err != nil {
		return message{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if m.Type == typeAbort {
		s.peerAborted = true
		if m.Reason == reasonMismatch {
			return message{}, fmt.Errorf("%w (the other device could not verify us)", ErrMismatch)
		}
		return message{}, fmt.Errorf("%w (the other device gave up: %q)", ErrProtocol, m.Reason)
	}
	if m.Type != want {
		return message{}, fmt.Errorf("%w: expected a %q message, got %q", ErrProtocol, want, m.Type)
	}
	return m, nil
}

// abort tells the peer, best effort, why we stopped, so that it fails now
// rather than at its timeout. The abort is not authenticated (nothing is,
// before the keys are confirmed); a relay that forges one could as well
// have dropped a message.
func (s *session) abort(ctx context.Context, cause error) {
	if s.peerAborted || ctx.Err() != nil {
		return
	}
	reason := reasonMalformed
	switch {
	case errors.Is(cause, ErrMismatch):
		reason = reasonMismatch
	case errors.Is(cause, ErrProtocol):
	default:
		return // the transport failed: nothing would get through
	}
	ctx, cancel := context.WithTimeout(ctx, abortTimeout)
	defer cancel()
	_ = s.send(ctx, message{Type: typeAbort, Reason: reason})
}
