package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// StateDir is the hidden folder, inside the download folder, where partial
// files and resume state live. Keeping it on the same file system makes the
// final link or rename atomic.
const StateDir = ".peerdrop"

// syncThreshold is the size from which files are fsynced before they get
// their final name. Smaller ones are not: thousands of small files would spend
// most of their time in fsync, and a crash loses at most a few of them.
const syncThreshold = 1 << 20

// DefaultMargin is the free space a Receiver keeps on the download folder's
// file system unless told otherwise (Receiver.Margin).
const DefaultMargin = 64 << 20

// StaleAfter is how long the resume state of an offer waits for a resume
// (from its newest file's mtime) before it is removed. A sender retries for
// a minute (ReconnectWindow) and a restarted sender makes a new offer, so
// hours are plenty.
const StaleAfter = 6 * time.Hour

// Defaults for Receiver.PeerPartials and Receiver.AllPartials.
const (
	DefaultPeerPartials = 1 << 30
	DefaultAllPartials  = 4 << 30
)

// spaceCheckEvery is how many bytes are written between two measures of free
// space. Free space is also measured before each file.
const spaceCheckEvery = 4 << 20

// Receiver accepts offers into Dir.
type Receiver struct {
	// Dir is the download folder. It must exist.
	Dir string
	// Decide is asked about each new offer (not about resumed ones) and
	// returns true to accept. Nil declines everything.
	Decide func(ctx context.Context, o OfferReceived) bool
	// Choose, when set, is asked instead of Decide and may keep only some
	// of the offer's top-level entries (OfferReceived.Top): take lists
	// their indexes, nil for all of them. Unlike Decide, it is also asked
	// about an offer too large for the free space as a whole when some of
	// its entries fit (OfferReceived.TooBig, Room): the entries taken must
	// then fit, or the offer is declined with the space error.
	Choose func(ctx context.Context, o OfferReceived) (take []int, ok bool)
	// OnEvent hears every event, from the session's goroutine.
	OnEvent func(Event)
	// Margin is kept free on the download folder's file system: an offer
	// that would leave less is declined, a transfer that crosses it stops.
	// Zero means DefaultMargin, a negative value none.
	Margin int64
	// PeerPartials caps the partial data kept for one sender's interrupted
	// offers: beyond it, its older offers' state is removed (its latest
	// stays, whatever its size). AllPartials caps it for all senders
	// together, oldest first. Zero means the default; negative, no cap.
	PeerPartials, AllPartials int64
	// Lanes is how many associations one transfer may use here (the
	// sender's extra lanes and ranges, docs/PROTOCOL.md 4.3; DefaultLanes:
	// one per core). 0 announces none: one association, whole files.
	Lanes int

	// statfs measures free space (freeSpace; tests replace it).
	statfs func(dir string) (int64, bool)

	mu     sync.Mutex
	active map[string]*activeOffer
	naming sync.Mutex // held while an offer picks its names
}

// activeOffer is an offer being received on some link.
type activeOffer struct {
	cmds  chan command
	link  Link
	ended chan struct{} // closed when its session lets go of the offer
	// remaining: bytes this offer may still write, reserved against the
	// free space other offers see.
	remaining atomic.Int64
	// Lanes (lanes_recv.go), under Receiver.mu: the sender's certificate,
	// the lanes allowed in all and those joined; lanes carries their
	// events to the offer's session.
	from            string
	allowed, joined int
	lanes           chan laneEvent
}

func (r *Receiver) control(id string, c command) bool {
	r.mu.Lock()
	a := r.active[id]
	r.mu.Unlock()
	if a == nil {
		return false
	}
	select {
	case a.cmds <- c:
		return true
	default:
		return false
	}
}

// Pause asks the sender of offer id to stop sending until Resume.
func (r *Receiver) Pause(id string) bool { return r.control(id, command{kind: cmdPause}) }

// Resume continues a paused offer.
func (r *Receiver) Resume(id string) bool { return r.control(id, command{kind: cmdResume}) }

// Cancel ends offer id; complete files are kept, partial ones removed.
func (r *Receiver) Cancel(id string) bool { return r.control(id, command{kind: cmdCancel, index: -1}) }

// CancelItem skips one file of offer id.
func (r *Receiver) CancelItem(id string, i int) bool {
	return r.control(id, command{kind: cmdCancel, index: i})
}

// Retry asks for a failed or cancelled file of offer id again.
func (r *Receiver) Retry(id string, i int) bool {
	return r.control(id, command{kind: cmdRetry, index: i})
}

// takeover waits until no other link is receiving offer id. A sender that
// reconnects may reach us before we notice its old link died; the old
// session is closed so that the two never write the same partial file.
func (r *Receiver) takeover(ctx context.Context, id string) error {
	r.mu.Lock()
	old := r.active[id]
	r.mu.Unlock()
	if old == nil {
		return nil
	}
	_ = old.link.Close()
	select {
	case <-old.ended:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the earlier connection for this offer did not end")
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// register records offer id as in flight on link, reserving need bytes; it
// fails with a *NoSpaceError when they do not fit.
func (r *Receiver) register(id string, link Link, need int64) (*activeOffer, error) {
	a := &activeOffer{cmds: make(chan command, 16), link: link, ended: make(chan struct{}), lanes: make(chan laneEvent, 16)}
	a.remaining.Store(need)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkSpace(id, need); err != nil {
		return nil, err
	}
	if r.active == nil {
		r.active = map[string]*activeOffer{}
	}
	r.active[id] = a
	return a, nil
}

func (r *Receiver) unregister(id string, a *activeOffer) {
	r.mu.Lock()
	if r.active[id] == a {
		delete(r.active, id)
	}
	r.mu.Unlock()
	close(a.ended)
}

// Handle serves one link until it closes: offers, files and text messages
// from the peer. It returns the reason the link ended: ErrClosed when the
// peer went away, a *ProtocolError when the peer broke the protocol (the peer
// has been told), ctx's error when ctx ended. Complete files are always kept.
func (r *Receiver) Handle(ctx context.Context, from Peer, link Link) error {
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return fmt.Errorf("open download folder: %w", err)
	}
	defer root.Close()
	in := newInbox(link, lowWater)
	rs := &recvSession{r: r, ctx: ctx, link: link, in: in, root: root, from: from, emit: r.OnEvent}
	return rs.run()
}
