package rendezvous

import "errors"

// Error codes carried in error messages (docs/PROTOCOL-rendezvous.md, section 6).
const (
	CodeBadMessage   = "bad-message"    // not JSON, unknown type, bad field
	CodeBadHello     = "bad-hello"      // hello breaks a hello rule (the server then closes)
	CodeProtocol     = "protocol"       // message in the wrong state (before hello, hello twice, ...)
	CodeTooLarge     = "too-large"      // signal payload over the cap
	CodeBadCode      = "bad-code"       // unknown, expired, closed or malformed pairing code
	CodeRoomFull     = "room-full"      // the room has its maximum of members
	CodeTooManyRooms = "too-many-rooms" // this client (or the found device) is in too many rooms
	CodeUnknownPeer  = "unknown-peer"   // signal recipient shares no room with the sender
	CodePeerBusy     = "peer-busy"      // the recipient's queue is full; the signal was dropped
	CodeNotFound     = "not-found"      // find: no such device is announced
	CodeBadSignature = "bad-signature"  // announce: key or signature invalid
	CodeKeyMismatch  = "key-mismatch"   // announce: the device id is pinned to another key
	CodeRateLimited  = "rate-limited"   // over a rate limit; the message was dropped
	CodeServerFull   = "server-full"    // a global limit of the server is reached
	CodeInternal     = "internal"       // the server failed (no randomness, ...)
)

// errorCodes lists every code, for metrics.
var errorCodes = []string{
	CodeBadMessage, CodeBadHello, CodeProtocol, CodeTooLarge, CodeBadCode,
	CodeRoomFull, CodeTooManyRooms, CodeUnknownPeer, CodePeerBusy, CodeNotFound,
	CodeBadSignature, CodeKeyMismatch, CodeRateLimited, CodeServerFull, CodeInternal,
}

// Error is an error message from the server. errors.Is matches it against
// the sentinels below by code.
type Error struct {
	Code    string
	Message string
	// Req is the request it answers (0: none, e.g. a dropped signal
	// without req).
	Req uint32
	// To is the recipient of the signal it answers ("" when it answers
	// no signal, or the server is older than this field).
	To string
}

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

func (e *Error) Error() string {
	if e.Message == "" {
		return "rendezvous server: " + e.Code
	}
	return "rendezvous server: " + e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func (*Error) isEvent() {}

// Sentinels for errors.Is.
var (
	ErrBadCode      = &Error{Code: CodeBadCode}
	ErrRoomFull     = &Error{Code: CodeRoomFull}
	ErrRateLimited  = &Error{Code: CodeRateLimited}
	ErrNotFound     = &Error{Code: CodeNotFound}
	ErrUnknownPeer  = &Error{Code: CodeUnknownPeer}
	ErrBadSignature = &Error{Code: CodeBadSignature}
	ErrKeyMismatch  = &Error{Code: CodeKeyMismatch}
	ErrTooLarge     = &Error{Code: CodeTooLarge}
)

// ErrClosed is returned by a Client's methods once its connection is gone;
// Client.Err says why.
var ErrClosed = errors.New("rendezvous connection closed")
