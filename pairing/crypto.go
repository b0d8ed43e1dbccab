package pairing

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/schollz/pake/v3"
)

// curve is the pake/v3 curve. P-256 rather than pake's siec: browsers and
// every crypto library have it, Go's implementation is constant time, and
// its cofactor is 1.
const curve = "p256"

// Labels of the key schedule (docs/PROTOCOL-pairing.md, "Keys").
const (
	labelContext          = "peerdrop-pairing-v1"
	labelTranscript       = "peerdrop-pairing-v1 transcript"
	labelInitiatorKey     = "peerdrop-pairing-v1 initiator key"
	labelResponderKey     = "peerdrop-pairing-v1 responder key"
	labelResponderConfirm = "peerdrop-pairing-v1 responder confirm"
	labelInitiatorConfirm = "peerdrop-pairing-v1 initiator confirm"
	labelResponderOK      = "peerdrop-pairing-v1 responder ok"
)

// appendLP appends s with a 4-byte big-endian length prefix, so that no two
// different field lists encode to the same bytes.
func appendLP(dst []byte, s []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func lp(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = appendLP(b, f)
	}
	return b
}

// password is the PAKE password for a normalised code: a hash that binds the
// code to this protocol and its two roles, so the same code used elsewhere
// gives another password. pake uses it as a P-256 scalar (32 bytes).
func password(normCode string) []byte {
	sum := sha256.Sum256(lp([]byte(labelContext), []byte("initiator"), []byte("responder"), []byte(normCode)))
	return sum[:]
}

func newPAKE(pw []byte, role Role) (*pake.Pake, error) {
	p, err := pake.InitCurve(pw, role.pakeRole(), curve)
	if err != nil {
		return nil, fmt.Errorf("pairing: start pake: %w", err)
	}
	return p, nil
}

// sessionKey feeds the peer's point to p and returns pake's session key. The
// wire carries points in SEC 1 form, not pake's JSON (Bytes), whose
// big-number fields a browser cannot parse with JSON.parse; this rebuilds
// the one field Update reads from it.
func sessionKey(p *pake.Pake, from Role, point []byte) ([]byte, error) {
	if err := checkPoint(point); err != nil { // decode checked it; Update must never see a bad point
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	x := new(big.Int).SetBytes(point[1:33])
	y := new(big.Int).SetBytes(point[33:65])
	q := &pake.Pake{Role: from.pakeRole()}
	if from == Initiator {
		q.Xᵤ, q.Xᵥ = x, y
	} else {
		q.Yᵤ, q.Yᵥ = x, y
	}
	if err := p.Update(q.Bytes()); err != nil {
		return nil, fmt.Errorf("%w: pake: %v", ErrProtocol, err)
	}
	k, err := p.SessionKey()
	if err != nil {
		return nil, fmt.Errorf("%w: pake: %v", ErrProtocol, err)
	}
	return k, nil
}

func encodePoint(x, y *big.Int) []byte {
	b := make([]byte, pointLen)
	b[0] = 4
	x.FillBytes(b[1:33])
	y.FillBytes(b[33:65])
	return b
}

// transcriptHash binds the keys to both PAKE messages as sent, so messages
// replayed from another run, or points the relay substituted, give other keys.
func transcriptHash(x, y []byte) []byte {
	sum := sha256.Sum256(lp([]byte(labelTranscript), x, y))
	return sum[:]
}

// keys are the two confirmation keys, one per direction, so that a message
// reflected back to its sender never verifies.
type keys struct {
	initiator, responder []byte
	th                   []byte
}

func deriveKeys(sessionKey, th []byte) keys {
	return keys{
		initiator: mustHKDF(sessionKey, th, labelInitiatorKey),
		responder: mustHKDF(sessionKey, th, labelResponderKey),
		th:        th,
	}
}

func mustHKDF(secret, salt []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, secret, salt, info, 32)
	if err != nil {
		panic(err) // only for lengths beyond 255*32
	}
	return k
}

func mac(key []byte, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

// responderConfirm is the MAC in the responder's PAKE message.
func (k keys) responderConfirm(r Peer) []byte {
	return mac(k.responder, lp([]byte(labelResponderConfirm), []byte(r.ID), []byte(r.Fingerprint), k.th))
}

// initiatorConfirm is the MAC in the initiator's confirm message; it covers
// the responder's identity too: what the initiator accepted.
func (k keys) initiatorConfirm(i, r Peer) []byte {
	return mac(k.initiator, lp([]byte(labelInitiatorConfirm), []byte(i.ID), []byte(i.Fingerprint),
		[]byte(r.ID), []byte(r.Fingerprint), k.th))
}

// responderOK is the MAC in the responder's ok: the responder accepted i.
func (k keys) responderOK(i, r Peer) []byte {
	return mac(k.responder, lp([]byte(labelResponderOK), []byte(i.ID), []byte(i.Fingerprint),
		[]byte(r.ID), []byte(r.Fingerprint), k.th))
}

func (k keys) verify(got, want []byte) bool { return hmac.Equal(got, want) }
