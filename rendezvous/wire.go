package rendezvous

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/device"
)

// Subprotocol is the WebSocket subprotocol a client must ask for; the server
// refuses a connection without it. A version bump changes the name.
const Subprotocol = "peerdrop-rendezvous.v1"

// Version is the protocol version announced in welcome.
const Version = 1

// Message types, client to server.
const (
	TypeHello    = "hello"
	TypeCreate   = "create"
	TypeJoin     = "join"
	TypeLeave    = "leave"
	TypeClose    = "close"
	TypeAnnounce = "announce"
	TypeFind     = "find"
	TypeSignal   = "signal" // both directions
)

// Message types, server to client.
const (
	TypeWelcome    = "welcome"
	TypeOK         = "ok"
	TypeCreated    = "created"
	TypeJoined     = "joined"
	TypePeerJoined = "peer-joined"
	TypePeerLeft   = "peer-left"
	TypeFound      = "found"
	TypeError      = "error"
)

// Default limits of the wire (the server's Config can change the server's).
const (
	// DefaultMaxPayload caps a signal payload: an SDP with a few dozen
	// candidates is well under 16 KiB.
	DefaultMaxPayload = 64 * 1024
	// maxField bounds the short string fields (codes, keys, signatures).
	maxField = 256
	// maxCertificate bounds an announce's base64 certificate: a device's
	// self-signed P-256 certificate is about 550 characters.
	maxCertificate = 2048
	// messageOverhead is what an envelope may add around its payload.
	messageOverhead = 16 * 1024
)

// Envelope is every message of the protocol, in both directions: a type and
// the fields that type uses (docs/PROTOCOL-rendezvous.md, section 3).
type Envelope struct {
	Type string `json:"type"`
	// Req is chosen by the client for a request and echoed in its reply
	// (or error); 0 means "no reply wanted".
	Req uint32 `json:"req,omitempty"`

	// welcome
	Version    int         `json:"version,omitempty"`
	ClientID   string      `json:"client_id,omitempty"`
	Nonce      string      `json:"nonce,omitempty"`
	ICEServers []ICEServer `json:"ice_servers,omitzero"`

	// hello
	Device *Hello `json:"device,omitempty"`
	// peer-joined, peer-left, found
	Peer *Peer `json:"peer,omitempty"`

	// create, join, leave, close, created, joined, peer-joined, peer-left:
	// the pairing code; error: the error code.
	Code    string    `json:"code,omitempty"`
	Expires time.Time `json:"expires,omitzero"`

	// announce, find
	DeviceID    string `json:"device_id,omitempty"`
	Certificate string `json:"certificate,omitempty"` // base64 of the device certificate's DER
	Sig         string `json:"sig,omitempty"`         // base64 of an ASN.1 ECDSA signature

	// signal
	To      string          `json:"to,omitempty"`
	From    string          `json:"from,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`

	// error
	Message string `json:"message,omitempty"`
}

// Hello is what a device says about itself: the fields of the LAN hello
// (docs/PROTOCOL.md, section 2.1) and the device type of its DNS-SD record
// (section 12), as device.Device, whose JSON form this protocol defines.
// They are claims; the fingerprint is checked end to end by DTLS and the
// pairing PAKE, never by this server. A hello must pass
// device.Device.ValidateAdvertised (a known type included).
type Hello = device.Device

// Peer is another client as the server describes it: its connection's
// client id and the hello it sent. In peer-left only ClientID is set.
type Peer struct {
	ClientID string `json:"client_id"`
	Hello
}

// ICEServer is one STUN or TURN server entry, in the shape of the WebRTC
// RTCIceServer dictionary.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

var clientIDRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// DecodeEnvelope parses and checks one message a client sent, as the server
// does before acting on it. On error the returned Envelope still carries the
// request's Type and Req when they could be read, so that the error reply can
// be correlated; the error is an *Error with the code to send.
func DecodeEnvelope(data []byte, maxPayload int) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		// Salvage req for the reply; a broken message has no other use.
		var r struct {
			Req uint32 `json:"req"`
		}
		_ = json.Unmarshal(data, &r)
		return Envelope{Req: r.Req}, newError(CodeBadMessage, "message is not a JSON object of this protocol")
	}
	if err := e.check(maxPayload); err != nil {
		return e, err
	}
	return e, nil
}

func (e *Envelope) check(maxPayload int) error {
	switch e.Type {
	case TypeHello:
		if e.Device == nil {
			return newError(CodeBadHello, "hello without a device")
		}
		if err := e.Device.ValidateAdvertised(); err != nil {
			return newError(CodeBadHello, err.Error())
		}
	case TypeCreate:
	case TypeJoin, TypeLeave:
		if e.Code == "" || len(e.Code) > maxField {
			return newError(CodeBadCode, "")
		}
	case TypeClose:
		if len(e.Code) > maxField {
			return newError(CodeBadCode, "")
		}
	case TypeAnnounce:
		if device.ValidateID(e.DeviceID) != nil {
			return newError(CodeBadMessage, "announce: bad device id")
		}
		if e.Certificate == "" || len(e.Certificate) > maxCertificate || e.Sig == "" || len(e.Sig) > maxField {
			return newError(CodeBadMessage, "announce: certificate and sig are required")
		}
	case TypeFind:
		if device.ValidateID(e.DeviceID) != nil {
			return newError(CodeBadMessage, "find: bad device id")
		}
	case TypeSignal:
		if !clientIDRe.MatchString(e.To) {
			return newError(CodeBadMessage, "signal: bad recipient")
		}
		if len(e.Payload) == 0 || string(e.Payload) == "null" {
			return newError(CodeBadMessage, "signal: no payload")
		}
		if len(e.Payload) > maxPayload {
			return newError(CodeTooLarge, fmt.Sprintf("signal payload over %d bytes", maxPayload))
		}
	default:
		return newError(CodeBadMessage, "unknown message type")
	}
	return nil
}

// announceContext separates announce signatures from every other use of the
// device key.
const announceContext = "peerdrop rendezvous announce v1\n"

// fingerprintOf is the SHA-256 fingerprint of a certificate's DER, in the
// form of SDP and the hello ("sha-256 AB:CD:...").
func fingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, len("sha-256 ")+3*len(sum)-1)
	b = append(b, "sha-256 "...)
	for i, c := range sum {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&15])
	}
	return string(b)
}

// AnnounceDigest is the SHA-256 that an announce signature covers: the
// context string, the nonce from welcome, a newline and the device id.
func AnnounceDigest(nonce, deviceID string) []byte {
	sum := sha256.Sum256([]byte(announceContext + nonce + "\n" + deviceID))
	return sum[:]
}
