// Package transfer implements the ThePeerDrop transfer protocol
// (docs/PROTOCOL.md) over one WebRTC data channel: offers with a manifest of
// files and folders, text messages, streaming with backpressure, SHA-256
// verification, pause/resume/cancel/retry and resume after a lost connection.
// It knows nothing of how the connection was made.
package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Protocol limits. A peer that exceeds one is disconnected with an error code.
const (
	// MaxControlSize bounds one JSON control message.
	MaxControlSize = 64 * 1024
	// MaxChunkSize bounds one binary data message.
	MaxChunkSize = 256 * 1024
	// ChunkSize is what we send; 64 KiB keeps SCTP busy without large buffers.
	ChunkSize = 64 * 1024
	// MaxEntries bounds the number of files and folders in one offer.
	MaxEntries = 100_000
	// MaxManifestBytes bounds the sum of all path lengths in one offer.
	MaxManifestBytes = 16 * 1024 * 1024
	// MaxEntriesPerMessage bounds one "entries" message.
	MaxEntriesPerMessage = 256
	// MaxTextBytes bounds a text message or an offer's text. Even if every
	// byte needs a 6-byte JSON escape, the message stays under MaxControlSize.
	MaxTextBytes = 8 * 1024
	// MaxFileSize bounds one file (1 PiB): sizes must fit comfortably in int64 sums.
	MaxFileSize = 1 << 50
	// MaxPathBytes and MaxNameBytes bound a manifest path and one of its parts.
	MaxPathBytes = 4096
	MaxNameBytes = 255
	// MaxDepth bounds the number of parts of a manifest path.
	MaxDepth = 32
	// MaxDirs bounds the distinct folders of one offer, its entries' parent
	// folders included.
	MaxDirs = 10_000
	// MaxTake bounds an accept's take list: a receiver that keeps more
	// top-level entries of an offer than this takes them all.
	MaxTake = 1000
)

// Message types.
const (
	TypeOffer     = "offer"
	TypeEntries   = "entries"
	TypeAccept    = "accept"
	TypeDecline   = "decline"
	TypeFile      = "file"
	TypeFileEnd   = "file-end"
	TypeFileOK    = "file-ok"
	TypeFileError = "file-error"
	TypeAbort     = "abort"
	TypePause     = "pause"
	TypeResume    = "resume"
	TypeCancel    = "cancel"
	TypeRetry     = "retry"
	TypeEnd       = "end"
	TypeDone      = "done"
	TypeText      = "text"
	TypeTextAck   = "text-ack"
	TypeError     = "error"
	TypeLane      = "lane" // the first message on an extra association (PROTOCOL 4.3)
)

// Error codes, in "error" and "file-error" messages.
const (
	CodeProtocol     = "protocol"      // a message that breaks the protocol
	CodeTooLarge     = "too-large"     // a message or manifest over a limit
	CodeBadManifest  = "bad-manifest"  // an invalid or unsafe manifest
	CodeSizeMismatch = "size-mismatch" // more or fewer bytes than announced
	CodeHashMismatch = "hash-mismatch" // SHA-256 differs: the data is discarded
	CodeIO           = "io"            // the receiver could not write, the sender could not read
	CodeCancelled    = "cancelled"     // the item or transfer was cancelled
	CodeBusy         = "busy"          // an offer arrived while another one runs
	CodeNoSpace      = "no-space"      // the receiving device ran out of free space
)

// Entry is one file or folder of an offer.
type Entry struct {
	// Path is relative, with "/" between parts; see ValidatePath.
	Path string `json:"path"`
	// Size in bytes; 0 for folders.
	Size int64 `json:"size"`
	// Dir marks a folder (sent so that empty folders arrive too).
	Dir bool `json:"dir,omitempty"`
	// MTime is the modification time, Unix seconds, 0 if unknown.
	MTime int64 `json:"mtime,omitempty"`
}

// ResumePoint tells the sender to continue file Index at Offset.
type ResumePoint struct {
	Index  int   `json:"index"`
	Offset int64 `json:"offset"`
}

// Message is every control message; which fields are set depends on Type.
type Message struct {
	Type    string        `json:"type"`
	ID      string        `json:"id,omitempty"`
	Text    string        `json:"text,omitempty"`
	Count   int           `json:"count,omitempty"`
	Size    int64         `json:"size,omitempty"`
	Entries []Entry       `json:"entries,omitempty"`
	Index   int           `json:"index,omitempty"`
	Offset  int64         `json:"offset,omitempty"`
	SHA256  string        `json:"sha256,omitempty"`
	Resume  []ResumePoint `json:"resume,omitempty"`
	Done    []int         `json:"done,omitempty"`
	Take    []int         `json:"take,omitempty"`
	Failed  []int         `json:"failed,omitempty"`
	Retries int           `json:"retries,omitempty"`
	Code    string        `json:"code,omitempty"`
	Message string        `json:"message,omitempty"`
	// Lanes: in an offer, the associations the sender could use for it;
	// in an accept, those the receiver allows, which also says it knows
	// ranges and lanes (PROTOCOL 4.3). End: a file message's range end.
	// Ranges: in an accept, the ranges of files already verified.
	Lanes  int          `json:"lanes,omitempty"`
	End    int64        `json:"end,omitempty"`
	Ranges []RangePoint `json:"ranges,omitempty"`
}

// ProtocolError is a violation of the protocol by the peer, or reported by it.
type ProtocolError struct {
	Code   string
	Reason string
	Remote bool // reported by the peer in an "error" message
}

func (e *ProtocolError) Error() string {
	if e.Remote {
		return fmt.Sprintf("the peer stopped the transfer (%s): %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("the peer broke the protocol (%s): %s", e.Code, e.Reason)
}

func violation(code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// DeclinedError is ErrDeclined with the receiver's reason (its words, to
// be shown escaped).
type DeclinedError struct{ Reason string }

func (e *DeclinedError) Error() string {
	if e.Reason == "" || e.Reason == "declined by the receiver" {
		return ErrDeclined.Error()
	}
	return ErrDeclined.Error() + ": " + e.Reason
}

func (e *DeclinedError) Is(target error) bool { return target == ErrDeclined }

// Sentinel errors callers branch on.
var (
	ErrDeclined  = errors.New("the receiver declined the offer")
	ErrCancelled = errors.New("the transfer was cancelled")
	ErrClosed    = errors.New("the connection closed")
)

var (
	idRe  = regexp.MustCompile(`^[0-9a-f]{8,64}$`)
	shaRe = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Encode marshals m, checking the size limit.
func Encode(m Message) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<" in a file name need not cost 6 bytes
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	p := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(p) > MaxControlSize {
		return nil, fmt.Errorf("%s message is %d bytes, limit %d", m.Type, len(p), MaxControlSize)
	}
	return p, nil
}

// DecodeMessage parses and validates one control message from the network.
// It checks every field that a receiver or sender relies on.
func DecodeMessage(p []byte) (Message, error) {
	if len(p) > MaxControlSize {
		return Message{}, violation(CodeTooLarge, "control message of %d bytes", len(p))
	}
	var m Message
	if err := json.Unmarshal(p, &m); err != nil {
		return Message{}, violation(CodeProtocol, "malformed control message: %v", err)
	}
	if err := m.validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// validate checks a control message's fields for its type.
func (m *Message) validate() error {
	if len(m.Text) > MaxTextBytes {
		return violation(CodeTooLarge, "%s: text of %d bytes, limit %d", m.Type, len(m.Text), MaxTextBytes)
	}
	if len(m.Message) > 1024 {
		m.Message = strings.ToValidUTF8(m.Message[:1024], "")
	}
	switch m.Type {
	case TypeOffer:
		if err := m.needID(); err != nil {
			return err
		}
		if m.Count < 0 || m.Count > MaxEntries {
			return violation(CodeTooLarge, "offer of %d entries, limit %d", m.Count, MaxEntries)
		}
		if m.Size < 0 {
			return violation(CodeProtocol, "offer: negative size")
		}
		if m.Lanes < 0 {
			return violation(CodeProtocol, "offer: negative lanes")
		}
	case TypeEntries:
		return m.validateEntries()
	case TypeAccept:
		if err := m.validateRanges(); err != nil {
			return err
		}
		return m.validateAccept()
	case TypeLane:
		return m.needID()
	case TypeDecline, TypeText, TypeTextAck:
		return m.needID()
	case TypeFile, TypeFileEnd, TypeFileOK, TypeFileError, TypeAbort, TypeRetry, TypeCancel:
		return m.validateIndexed()
	case TypePause, TypeResume, TypeError:
	case TypeEnd:
		if m.Retries < 0 {
			return violation(CodeProtocol, "end: negative retries")
		}
	case TypeDone:
		if len(m.Failed) > MaxEntries {
			return violation(CodeTooLarge, "done: too many failed items")
		}
	default:
		return violation(CodeProtocol, "unknown message type %q", m.Type)
	}
	return nil
}

// needID checks the message's offer (or text) id.
func (m *Message) needID() error {
	if !idRe.MatchString(m.ID) {
		return violation(CodeProtocol, "%s: bad id", m.Type)
	}
	return nil
}

// checkIndex checks the message's entry index.
func (m *Message) checkIndex() error {
	if m.Index < 0 || m.Index >= MaxEntries {
		return violation(CodeProtocol, "%s: index %d out of range", m.Type, m.Index)
	}
	return nil
}

// validateEntries checks a part of the manifest.
func (m *Message) validateEntries() error {
	if err := m.needID(); err != nil {
		return err
	}
	if len(m.Entries) == 0 || len(m.Entries) > MaxEntriesPerMessage {
		return violation(CodeProtocol, "entries: %d entries in one message, want 1 to %d", len(m.Entries), MaxEntriesPerMessage)
	}
	for _, e := range m.Entries {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// validateAccept checks an accept: what to resume, what is done, what is
// taken.
func (m *Message) validateAccept() error {
	if err := m.needID(); err != nil {
		return err
	}
	if len(m.Resume)+len(m.Done) > MaxEntries {
		return violation(CodeTooLarge, "accept: too many items")
	}
	for _, r := range m.Resume {
		if r.Index < 0 || r.Index >= MaxEntries || r.Offset < 0 || r.Offset > MaxFileSize {
			return violation(CodeProtocol, "accept: bad resume point")
		}
	}
	for _, i := range m.Done {
		if i < 0 || i >= MaxEntries {
			return violation(CodeProtocol, "accept: bad done index")
		}
	}
	if len(m.Take) == 0 {
		m.Take = nil // "take":[] is all of them, as an absent list
	}
	if len(m.Take) > MaxTake {
		return violation(CodeTooLarge, "accept: take lists %d entries, limit %d", len(m.Take), MaxTake)
	}
	for k, i := range m.Take {
		if i < 0 || i >= MaxEntries || (k > 0 && i <= m.Take[k-1]) {
			return violation(CodeProtocol, "accept: take indexes must increase, within 0..%d", MaxEntries-1)
		}
	}
	return nil
}

// validateIndexed checks the messages about one entry.
func (m *Message) validateIndexed() error {
	if m.Type == TypeCancel {
		if m.Index < -1 || m.Index >= MaxEntries {
			return violation(CodeProtocol, "cancel: index %d out of range", m.Index)
		}
		return nil
	}
	if err := m.checkIndex(); err != nil {
		return err
	}
	switch {
	case m.Type == TypeFile && (m.Offset < 0 || m.Offset > MaxFileSize):
		return violation(CodeProtocol, "file: bad offset")
	case m.Type == TypeFile && m.End != 0 && (m.End <= m.Offset || m.End > MaxFileSize):
		return violation(CodeProtocol, "file: bad range end")
	case m.Type == TypeFileEnd && !shaRe.MatchString(m.SHA256):
		return violation(CodeProtocol, "file-end: sha256 must be 64 lowercase hex digits")
	}
	return nil
}
