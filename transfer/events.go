package transfer

import (
	"context"
	"errors"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

// Peer names the other side of a link, as its handshake introduced it. Its
// Type is the device type its hello claims ("" when it says none).
type Peer struct {
	device.Device
	// Code is the verification code of the connection (peer.Conn.Code);
	// it depends on that handshake's nonces, so each connection has its own.
	Code string
	// Ephemeral marks a sender that never resumes: a web page (its
	// identity lasts one visit, and a closed tab is gone). What it leaves
	// unfinished when the connection ends is removed at once rather than
	// kept for a resume (docs/PROTOCOL.md 6.3).
	Ephemeral bool
}

// Link is an open, ordered and reliable data channel to a peer. peer.Conn
// is one; datachan.Pipe makes an in-memory pair for tests.
type Link interface {
	// SendText sends a string message (a control message), Send a binary
	// one (file data). Neither blocks for the peer, nor keeps p.
	SendText(p []byte) error
	Send(p []byte) error
	// Messages delivers what the peer sends, in order, from the moment the
	// channel opened; when nobody reads, the peer is held back.
	Messages() <-chan datachan.Message
	// BufferedAmount is how many bytes sent still wait to reach the peer.
	BufferedAmount() uint64
	// LowWater returns a channel that receives a value each time the
	// buffered amount falls to n bytes or below; a later call replaces it.
	LowWater(n uint64) <-chan struct{}
	// Done is closed when the connection has failed or closed.
	Done() <-chan struct{}
	Close() error
}

// Event is anything a transfer reports. Each is a plain value.
type Event interface{ event() }

// OfferReceived reports that a peer offers files and/or text; the receiver
// decides.
type OfferReceived struct {
	From    Peer
	ID      string
	Files   int
	Folders int
	Size    int64
	Text    string
	// First few paths, for a prompt.
	First []string
	// Top lists the top-level entries (at most MaxTake of them), which a
	// Receiver.Choose may pick from; TopCount is how many there are.
	Top      []TopEntry
	TopCount int
	// Resuming is set when this continues an offer accepted earlier.
	Resuming bool
	// TooBig: the offer as a whole does not fit in the free space, but
	// some of its top-level entries do; Room is the bytes the entries
	// chosen may add up to (free space minus the margin and what other
	// transfers still write). Only Receiver.Choose is asked about such an
	// offer, and the event OnEvent hears leaves both unset.
	TooBig bool
	Room   int64
}

// Accepted reports that the offer was accepted (by the receiver). Skipped
// lists the top-level entries it left out (PROTOCOL.md 4.1, the accept's
// take).
type Accepted struct {
	ID      string
	Skipped []string
	Files   int // the files taken (all of them when none is skipped)
}

// Declined reports that the offer was declined.
type Declined struct {
	ID     string
	Reason string
}

// Progress reports bytes moved in a transfer (throttled by the producer).
type Progress struct {
	ID    string
	Name  string // the file being moved
	Bytes int64  // transfer-wide, including bytes resumed from disk
	Total int64
}

// FileDone reports that a file arrived and verified (receiver) or that the
// receiver confirmed it (sender).
type FileDone struct {
	ID     string
	Index  int
	Name   string // manifest path
	Path   string // final path on disk (receiver only)
	Size   int64
	SHA256 string
	// ResumedFrom is the bytes that arrived on an earlier connection: the
	// resume offset, or for a file sent in ranges the ranges verified.
	ResumedFrom int64
}

// FolderDone reports that a folder entry was created (receiver).
type FolderDone struct {
	ID   string
	Name string
	Path string
}

// FileFailed reports that a file could not be moved; the transfer goes on
// with the rest.
type FileFailed struct {
	ID      string
	Index   int
	Name    string
	Code    string
	Message string
}

// Paused reports that the transfer was paused, by either side.
type Paused struct {
	ID     string
	Remote bool
}

// Resumed reports that the transfer was resumed, by either side.
type Resumed struct {
	ID     string
	Remote bool
}

// Reconnecting reports that the connection was lost; the sender tries again.
type Reconnecting struct {
	ID      string
	Attempt int
	Err     error
}

// Interrupted reports that the connection was lost mid-transfer (receiver);
// partial data is kept.
type Interrupted struct {
	ID  string
	Err error
}

// TransferDone reports that the offer ended. Failed lists the manifest paths
// that did not arrive.
type TransferDone struct {
	ID        string
	Files     int
	Bytes     int64
	Failed    []string
	Cancelled bool
}

// TextReceived carries a text message from a peer (receiver side).
type TextReceived struct {
	From Peer
	ID   string
	Text string
}

// TextDelivered reports that the peer confirmed a text message (sender side).
type TextDelivered struct{ ID string }

func (OfferReceived) event() {}
func (Accepted) event()      {}
func (Declined) event()      {}
func (Progress) event()      {}
func (FileDone) event()      {}
func (FolderDone) event()    {}
func (FileFailed) event()    {}
func (Paused) event()        {}
func (Resumed) event()       {}
func (Reconnecting) event()  {}
func (Interrupted) event()   {}
func (TransferDone) event()  {}
func (TextReceived) event()  {}
func (TextDelivered) event() {}

// inbox gathers what the goroutine that owns a session waits for: the
// peer's messages and the "buffer has room again" signal.
type inbox struct {
	msgs <-chan datachan.Message
	low  <-chan struct{}
}

func newInbox(link Link, lowWater uint64) *inbox {
	return &inbox{msgs: link.Messages(), low: link.LowWater(lowWater)}
}

// sendMessage encodes and sends a control message.
func sendMessage(link Link, m Message) error {
	p, err := Encode(m)
	if err != nil {
		return err
	}
	if err := link.SendText(p); err != nil {
		return errors.Join(ErrClosed, err)
	}
	return nil
}

// flush waits until the peer has acknowledged everything sent on link:
// used before a deliberate close, whose teardown would otherwise drop the
// last message (an "error", a "cancel") still queued behind file data. It
// gives up once max passes with nothing acknowledged (a stalled link), and
// after flushLimit times max in all: a slow but moving peer (a loaded
// machine draining megabytes of queued chunks) still gets the message.
func flush(link Link, max time.Duration) {
	start := time.Now()
	stall := start.Add(max)
	last := link.BufferedAmount()
	for last > 0 {
		time.Sleep(5 * time.Millisecond)
		now := time.Now()
		if b := link.BufferedAmount(); b < last {
			last, stall = b, now.Add(max)
		}
		if now.After(stall) || now.Sub(start) > flushLimit*max {
			return
		}
	}
}

// flushLimit bounds a flush that keeps moving, in multiples of its max.
const flushLimit = 6

// emitter delivers events to a callback, never blocking on a nil one.
type emitter func(Event)

func (e emitter) emit(ev Event) {
	if e != nil {
		e(ev)
	}
}

func ctxErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return ctx.Err()
}
