package pairing

import (
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/thepeerdrop/peerdrop/internal/device"
)

// Version is the pairing protocol version, the "v" of every message.
const Version = 1

// MaxMessageSize bounds one pairing message. The largest honest one (the
// responder's PAKE message) is about 400 bytes.
const MaxMessageSize = 1024

// Message types.
const (
	typePAKE    = "pake"
	typeConfirm = "confirm"
	typeOK      = "ok"
	typeAbort   = "abort"
)

// Abort reasons.
const (
	reasonMismatch  = "mismatch"
	reasonMalformed = "malformed"
)

const (
	pointLen  = 65 // SEC 1 uncompressed P-256 point: 0x04 || x || y
	macLen    = 32 // HMAC-SHA256
	reasonMax = 64
)

// message is one pairing message on the wire, as JSON. Which fields a type
// carries is checked by decode; []byte fields are standard base64 with
// padding, as encoding/json writes them.
type message struct {
	V           int    `json:"v"`
	Type        string `json:"type"`
	Role        string `json:"role,omitempty"`
	PAKE        []byte `json:"pake,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	MAC         []byte `json:"mac,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

var fpHexRe = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)

// canonicalFingerprint returns fp as "sha-256 " and upper-case hex, or false
// if it is not a SHA-256 fingerprint. SDP compares the hex case-insensitively
// (RFC 8122); the MACs cover the canonical form only.
func canonicalFingerprint(fp string) (string, bool) {
	alg, hex, ok := strings.Cut(strings.TrimSpace(fp), " ")
	if !ok || !strings.EqualFold(alg, "sha-256") {
		return "", false
	}
	hex = strings.ToUpper(strings.TrimSpace(hex))
	if !fpHexRe.MatchString(hex) {
		return "", false
	}
	return "sha-256 " + hex, true
}

func encode(m message) ([]byte, error) {
	m.V = Version
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// decode parses and validates one message: a decoded message has exactly the
// fields its type needs, in canonical form, and a PAKE point on the curve.
func decode(b []byte) (message, error) {
	if len(b) > MaxMessageSize {
		return message{}, fmt.Errorf("message of %d bytes, more than %d", len(b), MaxMessageSize)
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return message{}, fmt.Errorf("malformed message: %w", err)
	}
	if m.V != Version {
		return message{}, fmt.Errorf("pairing version %d, want %d", m.V, Version)
	}
	if err := m.validate(); err != nil {
		return message{}, err
	}
	return m, nil
}

func (m message) validate() error {
	var need, forbid []string
	switch m.Type {
	case typePAKE:
		switch m.Role {
		case "initiator":
			need, forbid = []string{"pake"}, []string{"device_id", "fingerprint", "mac", "reason"}
		case "responder":
			need, forbid = []string{"pake", "device_id", "fingerprint", "mac"}, []string{"reason"}
		default:
			return fmt.Errorf("pake message with role %q", m.Role)
		}
	case typeConfirm:
		if m.Role != "initiator" {
			return fmt.Errorf("confirm message with role %q", m.Role)
		}
		need, forbid = []string{"device_id", "fingerprint", "mac"}, []string{"pake", "reason"}
	case typeOK:
		if m.Role != "responder" {
			return fmt.Errorf("ok message with role %q", m.Role)
		}
		need, forbid = []string{"mac"}, []string{"pake", "device_id", "fingerprint", "reason"}
	case typeAbort:
		need, forbid = []string{"reason"}, []string{"role", "pake", "device_id", "fingerprint", "mac"}
	default:
		return fmt.Errorf("unknown message type %q", m.Type)
	}
	for _, f := range need {
		if !m.has(f) {
			return fmt.Errorf("%s message without %s", m.Type, f)
		}
	}
	for _, f := range forbid {
		if m.has(f) {
			return fmt.Errorf("%s message with %s", m.Type, f)
		}
	}
	if m.PAKE != nil {
		if err := checkPoint(m.PAKE); err != nil {
			return err
		}
	}
	if m.DeviceID != "" && device.ValidateID(m.DeviceID) != nil {
		return errors.New("malformed device id")
	}
	if m.Fingerprint != "" {
		// Only the canonical form: the MAC covers the string as sent.
		if fp, ok := canonicalFingerprint(m.Fingerprint); !ok || fp != m.Fingerprint {
			return errors.New("malformed fingerprint")
		}
	}
	if m.DeviceID != "" && device.CheckID(m.DeviceID, m.Fingerprint) != nil {
		// The shapes above pair a device id with its fingerprint: the id
		// must be the one the certificate derives.
		return device.ErrIDMismatch
	}
	if m.MAC != nil && len(m.MAC) != macLen {
		return fmt.Errorf("mac of %d bytes", len(m.MAC))
	}
	if len(m.Reason) > reasonMax {
		return errors.New("abort reason too long")
	}
	return nil
}

func (m message) has(field string) bool {
	switch field {
	case "role":
		return m.Role != ""
	case "pake":
		return m.PAKE != nil
	case "device_id":
		return m.DeviceID != ""
	case "fingerprint":
		return m.Fingerprint != ""
	case "mac":
		return m.MAC != nil
	case "reason":
		return m.Reason != ""
	}
	panic("pairing: unknown field " + field)
}

// checkPoint accepts a P-256 point in SEC 1 uncompressed form that is on the
// curve and not the identity.
func checkPoint(b []byte) error {
	if len(b) != pointLen || b[0] != 4 {
		return errors.New("pake point is not an uncompressed P-256 point")
	}
	if _, err := ecdh.P256().NewPublicKey(b); err != nil {
		return errors.New("pake point is not on P-256")
	}
	return nil
}
