package transfer

// The sender's side of lanes (docs/PROTOCOL.md 4.3): the session's one
// goroutine streams the queue over every association it has, a chunk per
// lane in turn, each lane held back by its own buffered amount. pion does
// the heavy work of each association (SCTP, DTLS, UDP) on goroutines of
// its own, so K associations can keep K cores busy where one keeps about
// one.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
)

// Lane growth: after laneAfter of streaming, a sender whose receiver
// allows lanes opens more when the data moves at laneRate or more (a
// slower link is the limit, not the CPU) and at least 4 ranges are left.
// rangeSize is RangeSize. (Variables for the tests.)
var (
	laneAfter = 500 * time.Millisecond
	laneRate  = 8e6 // bytes per second
	rangeSize = int64(RangeSize)
)

// sendLane is one association of a send: the first is the session's link.
type sendLane struct {
	link Link
	in   *inbox
	cur  *streaming // nil: idle
}

// streaming is a file, or a range of one, being sent on a lane.
type streaming struct {
	q     queued
	f     *os.File
	h     hash.Hash
	left  int64
	abort bool // stop it: cancelled, or the receiver gave up on it
}

// streaming reports whether file i is on its way on some lane.
func (ss *sendSession) isStreaming(i int) bool {
	for _, l := range ss.lanes {
		if l.cur != nil && l.cur.q.index == i {
			return true
		}
	}
	return false
}

// abortFile stops file i on every lane that streams it.
func (ss *sendSession) abortFile(i int) {
	for _, l := range ss.lanes {
		if l.cur != nil && l.cur.q.index == i {
			l.cur.abort = true
		}
	}
}

func (ss *sendSession) aborting() bool {
	for _, l := range ss.lanes {
		if l.cur != nil && l.cur.abort {
			return true
		}
	}
	return false
}

// pump streams the queue over the lanes until it is empty and every lane
// is idle.
func (ss *sendSession) pump() error {
	for {
		if err := ss.poll(); err != nil {
			return err
		}
		if err := ss.sendAborts(); err != nil {
			return err
		}
		if err := ss.waitWhilePaused(); err != nil {
			return err
		}
		if ss.aborting() {
			continue // a cancel came while paused
		}
		ss.maybeGrow()
		moved, busy := false, false
		for _, l := range ss.lanes {
			if l.link.BufferedAmount() > highWater {
				busy = busy || l.cur != nil
				continue
			}
			if l.cur == nil && len(ss.queue) > 0 {
				q := ss.queue[0]
				ss.queue = ss.queue[1:]
				if err := ss.startOn(l, q); err != nil {
					return err
				}
				moved = true
			}
			if l.cur != nil {
				if err := ss.step(l); err != nil {
					return err
				}
				moved, busy = true, busy || l.cur != nil
			}
		}
		if moved {
			continue
		}
		if !busy && len(ss.queue) == 0 {
			return nil
		}
		if err := ss.waitForRoom(); err != nil {
			return err
		}
	}
}

// canMove reports whether some lane has room and something to send.
func (ss *sendSession) canMove() bool {
	for _, l := range ss.lanes {
		if l.link.BufferedAmount() <= highWater && (l.cur != nil || len(ss.queue) > 0) {
			return true
		}
	}
	return false
}

// sendAborts tells the receiver, on their lanes, of the files stopped.
func (ss *sendSession) sendAborts() error {
	for _, l := range ss.lanes {
		if l.cur == nil || !l.cur.abort {
			continue
		}
		i := l.cur.q.index
		_ = l.cur.f.Close()
		l.cur = nil
		if err := ss.sendOn(l, Message{Type: TypeAbort, Index: i}); err != nil {
			return err
		}
	}
	return nil
}

func (ss *sendSession) sendOn(l *sendLane, m Message) error {
	if l == ss.lanes[0] {
		return ss.send(m)
	}
	if err := sendMessage(l.link, m); err != nil {
		return fmt.Errorf("%w: %v", errLinkLost, err)
	}
	return nil
}

// startOn opens q's file and starts it on lane l; a file that cannot be
// read is reported and skipped.
func (ss *sendSession) startOn(l *sendLane, q queued) error {
	o := ss.opts.Offer
	e := o.Entries[q.index]
	f, err := os.Open(o.Sources[q.index])
	if err != nil {
		return ss.failLocal(q.index, err)
	}
	if info, err := f.Stat(); err != nil || info.Size() != e.Size {
		f.Close()
		return ss.failLocal(q.index, fmt.Errorf("%s changed since it was offered", o.Sources[q.index]))
	}
	s := &streaming{q: q, f: f, h: sha256.New(), left: e.Size - q.offset}
	if q.end > 0 {
		s.left = q.end - q.offset
		_, err = f.Seek(q.offset, io.SeekStart)
	} else if q.offset > 0 {
		// The receiver keeps the first offset bytes; the hash still covers them.
		_, err = io.CopyN(s.h, f, q.offset)
	}
	if err != nil {
		f.Close()
		return ss.failLocal(q.index, err)
	}
	l.cur = s
	return ss.sendOn(l, Message{Type: TypeFile, Index: q.index, Offset: q.offset, End: q.end})
}

// step sends the next chunk of lane l's file, and its end after the last.
func (ss *sendSession) step(l *sendLane) error {
	o := ss.opts.Offer
	s := l.cur
	e := o.Entries[s.q.index]
	if s.left > 0 {
		n := int(min(int64(len(ss.buf)), s.left))
		if _, err := io.ReadFull(s.f, ss.buf[:n]); err != nil {
			s.f.Close()
			l.cur = nil
			if err := ss.sendOn(l, Message{Type: TypeAbort, Index: s.q.index}); err != nil {
				return err
			}
			return ss.failLocal(s.q.index, fmt.Errorf("read %s: %w", o.Sources[s.q.index], err))
		}
		s.h.Write(ss.buf[:n])
		if err := l.link.Send(ss.buf[:n]); err != nil {
			return fmt.Errorf("%w: %v", errLinkLost, err)
		}
		s.left -= int64(n)
		ss.bytes += int64(n)
		ss.progress(e.Path, false)
		if s.left > 0 {
			return nil
		}
	}
	s.f.Close()
	l.cur = nil
	ss.progress(e.Path, false)
	return ss.sendOn(l, Message{Type: TypeFileEnd, Index: s.q.index, SHA256: hexSum(s.h, &ss.hashB)})
}

// sendEnd says the queue is empty: "end" on every lane, the first one
// counting the others (the receiver answers when all of them arrived).
func (ss *sendSession) sendEnd() error {
	for _, l := range ss.lanes[1:] {
		if err := ss.sendOn(l, Message{Type: TypeEnd}); err != nil {
			return err
		}
	}
	m := Message{Type: TypeEnd, Retries: ss.retries}
	if len(ss.lanes) > 1 {
		m.Lanes = len(ss.lanes) - 1
	}
	return ss.send(m)
}

// maybeGrow opens more lanes, once, when the receiver allows them and the
// transfer has shown it moves fast enough for them to help.
func (ss *sendSession) maybeGrow() {
	if ss.grown || ss.allowed <= 1 || ss.opts.DialLane == nil {
		return
	}
	if ss.since.IsZero() {
		ss.since, ss.sinceBytes = time.Now(), ss.bytes
		return
	}
	elapsed := time.Since(ss.since)
	if elapsed < laneAfter {
		return
	}
	ss.grown = true
	rate := float64(ss.bytes-ss.sinceBytes) / elapsed.Seconds()
	var left int64
	for _, q := range ss.queue {
		if q.end > 0 {
			left += q.end - q.offset
		} else {
			left += ss.opts.Offer.Entries[q.index].Size - q.offset
		}
	}
	if rate < laneRate || left < 4*rangeSize {
		return
	}
	ss.growLanes(ss.allowed - 1)
}

// growLanes dials n more lanes on a goroutine of the session's; they
// arrive on ss.grow.
func (ss *sendSession) growLanes(n int) {
	ctx, cancel := context.WithCancel(ss.ctx)
	ch := make(chan Link)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range n {
			link, err := ss.opts.DialLane(ctx)
			if err != nil {
				if ctx.Err() == nil {
					slog.Info("no more lanes for this transfer", slog.Any("err", err))
				}
				return
			}
			select {
			case ch <- link:
			case <-ctx.Done():
				_ = link.Close()
				return
			}
		}
	}()
	ss.grow = ch
	ss.stopGrow = func() { cancel(); wg.Wait() }
}

// adopt makes link, just dialled, a lane of this transfer; one the
// receiver cannot take any more (the end was said) is closed.
func (ss *sendSession) adopt(link Link) {
	if ss.endSent || len(ss.lanes) >= ss.allowed {
		_ = link.Close()
		return
	}
	if sendMessage(link, Message{Type: TypeLane, ID: ss.opts.Offer.ID}) != nil {
		_ = link.Close()
		return
	}
	ss.lanes = append(ss.lanes, &sendLane{link: link, in: newInbox(link, lowWater)})
	slog.Debug("transfer: another lane", slog.String("id", ss.opts.Offer.ID), slog.Int("lanes", len(ss.lanes)))
}

// closeLanes ends the session's extra lanes and their files.
func (ss *sendSession) closeLanes() {
	if ss.stopGrow != nil {
		ss.stopGrow()
	}
	for k, l := range ss.lanes {
		if l.cur != nil {
			_ = l.cur.f.Close()
			l.cur = nil
		}
		if k > 0 {
			_ = l.link.Close()
		}
	}
	ss.lanes = nil
}

// agreeLanes takes the receiver's word on lanes: how many this session
// may open, and whether large files go in ranges.
func (ss *sendSession) agreeLanes(accept Message) {
	ss.lanes = []*sendLane{{link: ss.link, in: ss.in}}
	ss.allowed = 1
	if ss.lanesPossible() {
		ss.allowed = max(min(accept.Lanes, ss.opts.Lanes, MaxLanes), 1)
	}
	// Ranges only when lanes may come (or came before: the accept lists
	// ranges of files that arrived in part), so that a file on one lane
	// keeps its one SHA-256 from end to end.
	ss.ranged = ss.allowed > 1 || len(accept.Ranges) > 0
}

// lanesPossible says whether this connection may get extra lanes.
func (ss *sendSession) lanesPossible() bool {
	o := ss.opts
	return o.DialLane != nil && o.Lanes > 1 && (o.LanesOK == nil || o.LanesOK())
}

// DefaultLanes is how many associations a transfer may use: one per core,
// at most MaxLanes.
func DefaultLanes() int { return min(runtime.NumCPU(), MaxLanes) }

// laneWaits are the channels of the lanes a wait selects on, by lane
// (nil: no such lane, which a select never picks).
type laneWaits struct {
	low  [MaxLanes]<-chan struct{}
	msgs [MaxLanes]<-chan datachan.Message
	done [MaxLanes]<-chan struct{}
}

// waits gathers them; low only when the wait is for room.
func (ss *sendSession) waits(low bool) laneWaits {
	var w laneWaits
	for k, l := range ss.lanes {
		if low {
			w.low[k] = l.in.low
		}
		if k > 0 {
			w.msgs[k], w.done[k] = l.in.msgs, l.link.Done()
		}
	}
	return w
}

// laneMessage handles what a receiver says on a lane other than the
// first: nothing but an error may come there.
func (ss *sendSession) laneMessage(raw datachan.Message) error {
	m, err := ss.decode(raw)
	if err != nil {
		return err
	}
	if m.Type == TypeError {
		return &ProtocolError{Code: m.Code, Reason: m.Message, Remote: true}
	}
	return ss.violate(violation(CodeProtocol, "unexpected %s message on a lane", m.Type))
}

// pieces is what to send of file i, whose ranges have already arrived: the
// ranges missing, when the receiver knows ranges and the file is large or
// was sent in ranges before; else the whole file.
func (ss *sendSession) pieces(i int, have spans) []queued {
	size := ss.opts.Offer.Entries[i].Size
	if ss.ranged && (size > rangeSize || have != nil) {
		return have.missing(i, size)
	}
	return []queued{{index: i}}
}
