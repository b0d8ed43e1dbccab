// Package signaling carries the LAN handshake: a short exchange of framed
// messages over TCP (hello, SDP offer, SDP answer) that lets two devices set up
// a WebRTC peer connection. It knows nothing of files; see docs/PROTOCOL.md.
package signaling

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/thepeerdrop/peerdrop/internal/device"
)

// Version is the handshake protocol version, the first byte of every frame.
const Version byte = 2

// DefaultPort is the TCP port a receiver listens on unless told otherwise.
const DefaultPort = 53318

// MaxPayload bounds one frame's payload; an SDP with a few dozen host
// candidates is well under 16 KiB.
const MaxPayload = 64 * 1024

const headerLen = 6 // version, type, uint32 length

// FrameType says what a frame's payload is.
type FrameType byte

// Frame types, in the order they are exchanged.
const (
	TypeHello  FrameType = 1
	TypeOffer  FrameType = 2
	TypeAnswer FrameType = 3
	TypeError  FrameType = 4
	// TypeCandidate trickles one ICE candidate (or the end of them) after
	// the handshake, on a session both hellos opened with "trickle"
	// (docs/PROTOCOL.md section 2.4). On such a session, offer and answer
	// frames that follow the handshake are ICE restarts.
	TypeCandidate FrameType = 5
	// TypeProbe asks a listener "who are you" in place of the dialer's
	// hello (docs/PROTOCOL.md section 2.5): a listener that may be found
	// answers with its hello again and closes, a hidden one just closes.
	TypeProbe FrameType = 6
)

func (t FrameType) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeOffer:
		return "offer"
	case TypeAnswer:
		return "answer"
	case TypeError:
		return "error"
	case TypeCandidate:
		return "candidate"
	case TypeProbe:
		return "probe"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// Errors a caller may branch on.
var (
	ErrVersion    = errors.New("unsupported handshake protocol version")
	ErrTooLarge   = errors.New("frame too large")
	ErrMalformed  = errors.New("malformed frame")
	ErrUnexpected = errors.New("unexpected frame")
	// ErrCommit means the listener's answer revealed a nonce that is not
	// the one its hello committed to: someone in the middle, or a broken
	// peer. The dialer closes without an error frame.
	ErrCommit = errors.New("the other device's nonce does not match its commitment (someone in the middle?)")
)

// Frame is one handshake message.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// WriteFrame writes f to w.
func WriteFrame(w io.Writer, f Frame) error {
	if len(f.Payload) > MaxPayload {
		return fmt.Errorf("write %s frame: %w (%d bytes)", f.Type, ErrTooLarge, len(f.Payload))
	}
	buf := make([]byte, headerLen+len(f.Payload))
	buf[0] = Version
	buf[1] = byte(f.Type)
	binary.BigEndian.PutUint32(buf[2:6], uint32(len(f.Payload)))
	copy(buf[headerLen:], f.Payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame from r. It never allocates more than MaxPayload.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	if hdr[0] != Version {
		return Frame{}, fmt.Errorf("%w: got %d, want %d", ErrVersion, hdr[0], Version)
	}
	t := FrameType(hdr[1])
	if t < TypeHello || t > TypeProbe {
		return Frame{}, fmt.Errorf("%w: unknown type %d", ErrMalformed, hdr[1])
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, MaxPayload)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Frame{}, fmt.Errorf("read %s frame: %w", t, err)
	}
	return Frame{Type: t, Payload: payload}, nil
}

// Hello introduces a device. The listener sends its own first, the dialer
// replies with its own once it has checked the listener's.
//
// Its Device's Type is the sender's device type as it advertises it
// (desktop, laptop, phone, tablet, server; section 2.3), for a device that
// is not advertised (a command line that only sends). A claim, like the
// name; DecodeHello drops what is not a short lower-case word.
type Hello struct {
	device.Device
	Version int
	// Trickle says the sender keeps the stream open after the handshake for
	// trickled candidates and ICE restarts (section 2.4). Only streams that
	// outlive the handshake offer it (a pipe through a rendezvous server);
	// a session trickles when both hellos say so.
	Trickle bool
	// Commit is the listener's commitment to its nonce:
	// hex(SHA-256(nonce)), 64 lower-case hex digits (section 2.2).
	Commit string
	// Nonce is the dialer's nonce: 32 random bytes in 64 lower-case hex
	// digits, sent once it holds the listener's commitment.
	Nonce string
	// Web says the sender is a web page (PROTOCOL 14): its identity lasts
	// one visit and it never resumes, so a receiver removes what it left
	// unfinished as soon as its connection is gone (6.3). A peer can only
	// lose its own partial files by claiming it.
	Web bool
}

// helloWire is a hello as it is sent (section 2.1): the device's fields
// are spelled as this protocol spells them, in this order.
type helloWire struct {
	ID          string `json:"device_id"`
	Name        string `json:"name"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	Type        string `json:"type,omitempty"`
	Trickle     bool   `json:"trickle,omitempty"`
	Commit      string `json:"commit,omitempty"`
	Nonce       string `json:"nonce,omitempty"`
	Web         bool   `json:"web,omitempty"`
}

// MarshalJSON writes h as section 2.1 spells it.
func (h Hello) MarshalJSON() ([]byte, error) {
	return json.Marshal(helloWire{
		ID: h.ID, Name: h.Name, Version: h.Version, Fingerprint: h.Fingerprint,
		Type: h.Type, Trickle: h.Trickle, Commit: h.Commit, Nonce: h.Nonce, Web: h.Web,
	})
}

// UnmarshalJSON reads a hello as section 2.1 spells it.
func (h *Hello) UnmarshalJSON(b []byte) error {
	var w helloWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = Hello{
		Device:  device.Device{ID: w.ID, Name: w.Name, Type: w.Type, Fingerprint: w.Fingerprint},
		Version: w.Version, Trickle: w.Trickle, Commit: w.Commit, Nonce: w.Nonce, Web: w.Web,
	}
	return nil
}

// SDP carries an offer or an answer. The handshake's answer also reveals
// the listener's nonce (Nonce), which the dialer checks against the
// commitment of the listener's hello.
type SDP struct {
	SDP   string `json:"sdp"`
	Nonce string `json:"nonce,omitempty"`
}

// NonceSize is the length of a handshake nonce in bytes.
const NonceSize = 32

var hex64Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ErrorMessage is sent before closing when a side refuses to go on.
type ErrorMessage struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes carried in an error frame.
const (
	CodeBadFrame   = "bad-frame"
	CodeBadHello   = "bad-hello"
	CodeVersion    = "unsupported-version"
	CodeRefused    = "refused"
	CodeInternal   = "internal"
	CodeBadSDP     = "bad-sdp"
	CodeUnexpected = "unexpected-frame"
)

// RemoteError is an error frame received from the peer.
type RemoteError struct{ ErrorMessage }

// RemoteRefused reports whether the peer refused us on purpose (as opposed
// to a malformed exchange): trying again will not help.
func (e *RemoteError) RemoteRefused() bool { return e.Code == CodeRefused }

func (e *RemoteError) Error() string {
	return fmt.Sprintf("peer refused the handshake (%s): %s", e.Code, e.Message)
}

// Validate reports whether h is well formed, its id included: it must be
// device.IDFor(h.Fingerprint) (an error that wraps both ErrMalformed and
// device.ErrIDMismatch otherwise). The id and name are checked before the
// version, so that a peer of another version that names itself well is
// told ErrVersion.
func (h Hello) Validate() error {
	if err := device.ValidateID(h.ID); err != nil {
		return fmt.Errorf("%w: hello: %w", ErrMalformed, err)
	}
	if err := device.ValidateName(h.Name); err != nil {
		return fmt.Errorf("%w: hello: %w", ErrMalformed, err)
	}
	if h.Version != int(Version) {
		return fmt.Errorf("%w: hello says version %d", ErrVersion, h.Version)
	}
	// Self-certifying ids: a hello names the certificate it claims, so an
	// id cannot be claimed without it (DTLS later proves the certificate).
	if err := h.Device.Validate(); err != nil {
		return fmt.Errorf("%w: hello: %w", ErrMalformed, err)
	}
	if h.Commit != "" && !hex64Re.MatchString(h.Commit) {
		return fmt.Errorf("%w: hello: bad commit", ErrMalformed)
	}
	if h.Nonce != "" && !hex64Re.MatchString(h.Nonce) {
		return fmt.Errorf("%w: hello: bad nonce", ErrMalformed)
	}
	return nil
}

// ValidateName is device.ValidateName: 1 to 64 bytes of printable UTF-8.
func ValidateName(name string) error { return device.ValidateName(name) }

// DecodeHello parses and validates a hello payload.
func DecodeHello(p []byte) (Hello, error) {
	var h Hello
	if err := json.Unmarshal(p, &h); err != nil {
		return Hello{}, fmt.Errorf("%w: hello: %v", ErrMalformed, err)
	}
	if !typeRe.MatchString(h.Type) {
		h.Type = "" // an optional hint: a type we cannot read is no type
	}
	return h, h.Validate()
}

// typeRe is what a hello's type may look like; which types mean something
// is the reader's business (discovery.ValidType).
var typeRe = regexp.MustCompile(`^[a-z]{1,16}$`)

// DecodeSDP parses an offer or answer payload.
func DecodeSDP(p []byte) (string, error) {
	s, err := decodeSDP(p)
	return s.SDP, err
}

func decodeSDP(p []byte) (SDP, error) {
	var s SDP
	if err := json.Unmarshal(p, &s); err != nil {
		return SDP{}, fmt.Errorf("%w: sdp: %v", ErrMalformed, err)
	}
	if s.SDP == "" {
		return SDP{}, fmt.Errorf("%w: empty sdp", ErrMalformed)
	}
	if s.Nonce != "" && !hex64Re.MatchString(s.Nonce) {
		return SDP{}, fmt.Errorf("%w: sdp: bad nonce", ErrMalformed)
	}
	return s, nil
}

// Candidate is one trickled ICE candidate: the a=candidate value without
// its "a=" ("candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host") and the
// media it belongs to. An empty Candidate ends this ICE generation's
// candidates.
type Candidate struct {
	Candidate string `json:"candidate,omitempty"`
	Mid       string `json:"mid,omitempty"`
}

// MaxCandidate bounds one candidate line; real ones are under 200 bytes.
const MaxCandidate = 1024

// DecodeCandidate parses a candidate payload.
func DecodeCandidate(p []byte) (Candidate, error) {
	var c Candidate
	if err := json.Unmarshal(p, &c); err != nil {
		return Candidate{}, fmt.Errorf("%w: candidate: %v", ErrMalformed, err)
	}
	if len(c.Candidate) > MaxCandidate || len(c.Mid) > 32 {
		return Candidate{}, fmt.Errorf("%w: candidate too long", ErrMalformed)
	}
	if c.Candidate != "" && !strings.HasPrefix(c.Candidate, "candidate:") {
		return Candidate{}, fmt.Errorf("%w: candidate does not start with \"candidate:\"", ErrMalformed)
	}
	if strings.ContainsAny(c.Candidate, "\r\n") {
		return Candidate{}, fmt.Errorf("%w: candidate spans lines", ErrMalformed)
	}
	return c, nil
}

// DecodeError parses an error payload.
func DecodeError(p []byte) (*RemoteError, error) {
	var e ErrorMessage
	if err := json.Unmarshal(p, &e); err != nil {
		return nil, fmt.Errorf("%w: error frame: %v", ErrMalformed, err)
	}
	if len(e.Message) > 1024 {
		e.Message = e.Message[:1024]
	}
	return &RemoteError{e}, nil
}
