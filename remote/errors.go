package remote

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// ErrNoSuchCode means the server knows no open room for the code: it
// expired, its creator retired it (after a failed pairing) or went away, or
// it was mistyped.
var ErrNoSuchCode = errors.New("no such pairing code (expired or already used?)")

// ErrPairingRefused means the code's creator ended the pairing before it
// was done: it stopped, or a pairing with the code had just failed and the
// code is retired.
var ErrPairingRefused = errors.New("the other device ended the pairing (it stopped, or retired the code after a failed attempt); ask it for a new code")

// ErrRoomFull means the code's session has the most devices the server allows.
var ErrRoomFull = errors.New("the pairing code's session is full")

// permanent marks an error after which dialling again cannot help (a
// reconnecting transfer.Sender stops at once).
type permanent struct{ err error }

func (e *permanent) Error() string   { return e.err.Error() }
func (e *permanent) Unwrap() error   { return e.err }
func (e *permanent) Permanent() bool { return true }

// authCheck is the handshake check of a pipe after the PAKE: the hello must
// name the device and certificate the pairing code authenticated (peer then
// checks that the SDP carries that certificate, and DTLS that the peer holds
// it); then the caller's own check (trust pinning) applies.
func authCheck(auth pairing.Peer, check func(signaling.Hello) error) func(signaling.Hello) error {
	return func(h signaling.Hello) error {
		if h.ID != auth.ID || !strings.EqualFold(h.Fingerprint, auth.Fingerprint) {
			return fmt.Errorf("%w (the pairing authenticated device %s with %s; the handshake came from device %s with %s)",
				pairing.ErrFingerprintSwapped, auth.ID, auth.Fingerprint, h.ID, h.Fingerprint)
		}
		if check != nil {
			return check(h)
		}
		return nil
	}
}

// handshakeErr says in plain words what a failed handshake after a good
// PAKE means: a certificate other than the authenticated one, seen by us
// or reported by the other device, is the server (or someone between)
// swapping it.
func handshakeErr(err error) error {
	if err == nil {
		return nil
	}
	var re *signaling.RemoteError
	switch {
	case errors.Is(err, pairing.ErrFingerprintSwapped):
		return &permanent{err}
	case errors.Is(err, peer.ErrFingerprint):
		return &permanent{&swappedError{cause: err}}
	case errors.As(err, &re) && (strings.Contains(re.Message, peer.ErrFingerprint.Error()) ||
		strings.Contains(re.Message, pairing.ErrFingerprintSwapped.Error())):
		return &permanent{&swappedError{cause: err, detail: "the other device saw it"}}
	}
	return err
}

// swappedError is pairing.ErrFingerprintSwapped found in a handshake: its
// text is the sentence for people, its chain keeps the cause for logs.
type swappedError struct {
	cause  error
	detail string
}

func (e *swappedError) Error() string {
	if e.detail == "" {
		return pairing.ErrFingerprintSwapped.Error()
	}
	return pairing.ErrFingerprintSwapped.Error() + " (" + e.detail + ")"
}

func (e *swappedError) Unwrap() []error { return []error{pairing.ErrFingerprintSwapped, e.cause} }

// rendezvousErr turns the server's answer to a join into plain words.
func rendezvousErr(err error) error {
	switch {
	case errors.Is(err, rendezvous.ErrBadCode):
		return &permanent{ErrNoSuchCode}
	case errors.Is(err, rendezvous.ErrRoomFull):
		return &permanent{ErrRoomFull}
	case errors.Is(err, rendezvous.ErrRateLimited):
		return fmt.Errorf("too many pairing attempts from this address; wait a minute: %w", err)
	}
	return err
}

// ICEServers returns the STUN/TURN entries the rendezvous server handed
// client, in pion's form.
func ICEServers(client *rendezvous.Client) []webrtc.ICEServer {
	in := client.ICEServers()
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		e := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			e.Credential = s.Credential
			e.CredentialType = webrtc.ICECredentialTypePassword
		}
		out = append(out, e)
	}
	return out
}

// remoteConfig gives cfg the server's ICE servers unless it has its own, and
// offers a trickle session: a pipe outlives the handshake, so candidates
// trickle through the server and ICE restarts when the path breaks.
func remoteConfig(cfg peer.Config, client *rendezvous.Client) peer.Config {
	if cfg.ICEServers == nil {
		cfg.ICEServers = ICEServers(client)
	}
	cfg.Trickle = true
	return cfg
}

// release closes p unless c keeps it as its trickle session's stream.
func release(p *Pipe, c *peer.Conn) {
	if c == nil || !c.Trickles() {
		_ = p.Close()
	}
}
