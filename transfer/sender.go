package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Flow control: the sender stops queueing data while more than highWater
// bytes wait in the channel and goes on when the link reports lowWater.
const (
	highWater = 4 * 1024 * 1024
	lowWater  = 1 * 1024 * 1024
)

// DefaultReconnectWindow is how long a sender keeps trying to reach the
// receiver again after the connection drops.
const DefaultReconnectWindow = 60 * time.Second

// progressEvery throttles Progress events.
const progressEvery = 100 * time.Millisecond

// ErrIncomplete means some files did not arrive; the Result says which.
var ErrIncomplete = errors.New("some files did not arrive")

// linkErr is why link ended, when it knows (peer.Conn.Err).
func linkErr(link Link) error {
	if e, ok := link.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}

// errLinkLost means the connection dropped and a reconnect may help.
var errLinkLost = errors.New("connection lost")

// Dialer opens a new link to the receiver; the sender calls it again after a drop.
type Dialer func(ctx context.Context) (Link, error)

// SendOptions configure a Sender.
type SendOptions struct {
	Offer *Offer
	Dial  Dialer
	// OnEvent hears every event; it is called from the sender's goroutine.
	OnEvent func(Event)
	// ReconnectWindow is how long to keep redialling after a drop (default 60 s).
	ReconnectWindow time.Duration
	// DialLane, when set, opens one more association to the same receiver
	// for this transfer (docs/PROTOCOL.md 4.3: the receiver proves it is
	// the same device, as for Dial); Lanes is how many the transfer may
	// use in all, the first included (0 or 1: one, DefaultLanes: one per
	// core).
	DialLane Dialer
	Lanes    int
	// LanesOK, when set, says whether the connection just dialled may get
	// extra lanes (the engine: only on the LAN, not through a server);
	// nil: whenever DialLane is set.
	LanesOK func() bool
}

// Result summarises a finished send.
type Result struct {
	Files  int   // files in the offer the receiver took
	Sent   int   // files the receiver verified
	Bytes  int64 // bytes of verified files
	Failed []FileFailed
	// Skipped lists the top-level entries the receiver left out.
	Skipped []string
}

type cmdKind int

const (
	cmdPause cmdKind = iota
	cmdResume
	cmdCancel
	cmdRetry
)

type command struct {
	kind  cmdKind
	index int // -1: the whole transfer
}

// queued is a file to send from offset, or, with end set, the range of
// it up to end.
type queued struct {
	index  int
	offset int64
	end    int64
}

// Sender sends one offer, reconnecting and resuming as needed. Create it with
// NewSender, run it with Run; Pause, Resume, Cancel and Retry may be called
// from any goroutine while it runs.
type Sender struct {
	opts  SendOptions
	emit  emitter
	cmds  chan command
	buf   []byte
	hashB []byte

	queue     []queued
	done      map[int]bool
	failed    map[int]FileFailed
	cancelled map[int]bool
	skipped   []bool // per entry: left out by the receiver's accept (nil: none)
	skipNames []string
	paused    bool
	retries   int  // retry requests from the receiver on this connection, echoed in "end"
	accepted  bool // the receiver accepted on this connection
	endSent   bool // "end" went out on this connection
	lostSince time.Time

	bytes     int64
	total     int64
	lastEvent time.Time
}

// NewSender prepares a send.
func NewSender(opts SendOptions) *Sender {
	if opts.ReconnectWindow == 0 {
		opts.ReconnectWindow = DefaultReconnectWindow
	}
	return &Sender{
		opts:      opts,
		emit:      opts.OnEvent,
		cmds:      make(chan command, 16),
		buf:       make([]byte, ChunkSize),
		done:      map[int]bool{},
		failed:    map[int]FileFailed{},
		cancelled: map[int]bool{},
		total:     opts.Offer.TotalSize(),
	}
}

func (s *Sender) command(c command) {
	select {
	case s.cmds <- c:
	default:
		slog.Warn("sender busy, command dropped")
	}
}

// Pause stops sending data until Resume; the receiver is told.
func (s *Sender) Pause() { s.command(command{kind: cmdPause}) }

// Resume continues a paused transfer.
func (s *Sender) Resume() { s.command(command{kind: cmdResume}) }

// Cancel ends the whole transfer; files already verified stay with the receiver.
func (s *Sender) Cancel() { s.command(command{kind: cmdCancel, index: -1}) }

// CancelItem skips one file.
func (s *Sender) CancelItem(i int) { s.command(command{kind: cmdCancel, index: i}) }

// Retry sends a failed or cancelled file again, from the start.
func (s *Sender) Retry(i int) { s.command(command{kind: cmdRetry, index: i}) }

// Run sends the offer and returns when the receiver has confirmed every file
// (nil), declined (ErrDeclined), the transfer was cancelled (ErrCancelled),
// some files failed (ErrIncomplete), or the receiver stayed out of reach for
// longer than the reconnect window.
func (s *Sender) Run(ctx context.Context) (Result, error) {
	link, err := s.opts.Dial(ctx)
	if err != nil {
		return s.result(), err
	}
	for attempt := 0; ; {
		err := s.session(ctx, link)
		_ = link.Close()
		if !errors.Is(err, errLinkLost) {
			res := s.result()
			if err == nil && len(res.Failed) > 0 {
				err = fmt.Errorf("%w: %d of %d files failed", ErrIncomplete, len(res.Failed), res.Files)
			}
			return res, err
		}
		if cause := linkErr(link); cause != nil {
			// The connection knows why it ended: a refusal (a certificate
			// swapped in an ICE restart) ends the transfer; anything else
			// is said in the reconnect.
			var pe interface{ Permanent() bool }
			if errors.As(cause, &pe) && pe.Permanent() {
				return s.result(), fmt.Errorf("the connection was ended: %w", cause)
			}
			err = fmt.Errorf("%w: %w", err, cause)
		}
		slog.Info("connection lost, reconnecting", slog.Any("err", err))
		if s.lostSince.IsZero() {
			s.lostSince = time.Now()
		}
		link, err = s.reconnect(ctx, &attempt, err)
		if err != nil {
			return s.result(), err
		}
	}
}

// reconnect redials with backoff until it succeeds or the window closes.
func (s *Sender) reconnect(ctx context.Context, attempt *int, cause error) (Link, error) {
	// The window counts from the first loss that no accepted session has
	// followed, so a link that keeps dropping cannot keep us going forever.
	deadline := s.lostSince.Add(s.opts.ReconnectWindow)
	backoff := 250 * time.Millisecond
	for {
		*attempt++
		s.emit.emit(Reconnecting{ID: s.opts.Offer.ID, Attempt: *attempt, Err: cause})
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctxErr(ctx)
		case c := <-s.cmds:
			t.Stop()
			if c.kind == cmdCancel && c.index < 0 {
				return nil, ErrCancelled
			}
			s.applyOffline(c)
			continue
		case <-t.C:
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		link, err := s.opts.Dial(dctx)
		cancel()
		if err == nil {
			return link, nil
		}
		cause = err
		var re interface{ RemoteRefused() bool }
		var pe interface{ Permanent() bool }
		if (errors.As(err, &re) && re.RemoteRefused()) || (errors.As(err, &pe) && pe.Permanent()) {
			return nil, err // refused on purpose, by the peer or by our own check
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the receiver did not come back within %s: %w", s.opts.ReconnectWindow, err)
		}
		backoff = min(backoff*2, 4*time.Second)
	}
}

// applyOffline records a command given while there is no connection.
func (s *Sender) applyOffline(c command) {
	switch c.kind {
	case cmdPause:
		s.paused = true
	case cmdResume:
		s.paused = false
	case cmdCancel:
		s.cancelled[c.index] = true
	case cmdRetry:
		delete(s.failed, c.index)
		delete(s.cancelled, c.index)
	}
}

func (s *Sender) result() Result {
	r := Result{Skipped: s.skipNames}
	for i, e := range s.opts.Offer.Entries {
		if e.Dir || s.isSkipped(i) {
			continue
		}
		r.Files++
		switch {
		case s.done[i]:
			r.Sent++
			r.Bytes += e.Size
		case s.cancelled[i]:
			r.Failed = append(r.Failed, FileFailed{ID: s.opts.Offer.ID, Index: i, Name: e.Path, Code: CodeCancelled, Message: "cancelled"})
		default:
			f, ok := s.failed[i]
			if !ok {
				f = FileFailed{ID: s.opts.Offer.ID, Index: i, Name: e.Path, Code: CodeIO, Message: "not confirmed by the receiver"}
			}
			r.Failed = append(r.Failed, f)
		}
	}
	return r
}

// session runs the offer over one link. It returns nil when the receiver
// reports the transfer done, errLinkLost when the link drops, another error
// when the transfer cannot go on.
func (s *Sender) session(ctx context.Context, link Link) error {
	in := newInbox(link, lowWater)
	sess := &sendSession{Sender: s, ctx: ctx, link: link, in: in}
	defer sess.closeLanes()
	return sess.run()
}

// SendText sends a chat message over link and waits for the peer to confirm it.
func SendText(ctx context.Context, link Link, text string) (string, error) {
	if text == "" || len(text) > MaxTextBytes {
		return "", fmt.Errorf("a text message must be 1 to %d bytes", MaxTextBytes)
	}
	in := newInbox(link, lowWater)
	id := NewID()
	if err := sendMessage(link, Message{Type: TypeText, ID: id, Text: text}); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		select {
		case raw := <-in.msgs:
			if !raw.IsString {
				continue
			}
			m, err := DecodeMessage(raw.Data)
			if err != nil {
				return "", err
			}
			switch {
			case m.Type == TypeTextAck && m.ID == id:
				return id, nil
			case m.Type == TypeError:
				return "", &ProtocolError{Code: m.Code, Reason: m.Message, Remote: true}
			}
		case <-link.Done():
			return "", fmt.Errorf("text not confirmed: %w", ErrClosed)
		case <-ctx.Done():
			return "", fmt.Errorf("text not confirmed: %w", ctxErr(ctx))
		}
	}
}
