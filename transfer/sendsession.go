package transfer

// One connection's part of a send: the offer, the receiver's accept, the
// queue of files, their bytes with backpressure, and the receiver's control
// messages. Sender.Run runs one session a connection.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
)

type sendSession struct {
	*Sender
	ctx  context.Context
	link Link
	in   *inbox

	lanes      []*sendLane // the first is link
	allowed    int         // lanes the receiver allows, the first included
	ranged     bool        // the receiver knows ranges: large files go in ranges
	grow       chan Link   // lanes dialled, to adopt (growLanes)
	stopGrow   func()
	grown      bool
	since      time.Time // when lane growth started measuring
	sinceBytes int64
}

func (ss *sendSession) send(m Message) error {
	if err := sendMessage(ss.link, m); err != nil {
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("%w: %v", errLinkLost, err)
		}
		return err // a message we cannot encode: no reconnect will help
	}
	return nil
}

func (ss *sendSession) run() error {
	o := ss.opts.Offer
	// Retry requests are counted per connection, as the receiver counts them.
	ss.retries, ss.endSent, ss.accepted = 0, false, false
	offer := Message{Type: TypeOffer, ID: o.ID, Text: o.Text, Count: len(o.Entries), Size: o.TotalSize()}
	if ss.lanesPossible() {
		offer.Lanes = min(ss.opts.Lanes, MaxLanes)
	}
	if err := ss.send(offer); err != nil {
		return err
	}
	for _, batch := range entryBatches(o.Entries) {
		if err := ss.send(Message{Type: TypeEntries, ID: o.ID, Entries: batch}); err != nil {
			return err
		}
	}
	// Wait for the decision; a person may take their time.
	var accept Message
	for {
		m, err := ss.next(true)
		if err != nil {
			return err
		}
		if m.Type == TypeDecline && m.ID == o.ID {
			ss.emit.emit(Declined{ID: o.ID, Reason: m.Message})
			return &DeclinedError{Reason: m.Message}
		}
		if m.Type == TypeAccept && m.ID == o.ID {
			accept = m
			ss.accepted = true
			break
		}
		if err := ss.handle(m); err != nil {
			return err
		}
	}
	if err := ss.choose(accept); err != nil {
		return err
	}
	files := 0
	for i, e := range o.Entries {
		if !e.Dir && !ss.isSkipped(i) {
			files++
		}
	}
	ss.emit.emit(Accepted{ID: o.ID, Skipped: ss.skipNames, Files: files})
	ss.lostSince = time.Time{} // the receiver answered: the reconnect window starts afresh
	ss.agreeLanes(accept)
	ss.plan(accept)
	if ss.paused {
		// Paused before this connection (or before the decision): say so now.
		if err := ss.send(Message{Type: TypePause}); err != nil {
			return err
		}
	}
	for {
		if err := ss.pump(); err != nil {
			return err
		}
		ss.progress("", true) // the last figure is never throttled away
		if err := ss.sendEnd(); err != nil {
			return err
		}
		ss.endSent = true
		// Wait for "done", serving retries and acknowledgements meanwhile.
		for len(ss.queue) == 0 {
			m, err := ss.next(true)
			if err != nil {
				return err
			}
			if m.Type == TypeDone {
				ss.finish(m)
				return nil
			}
			if err := ss.handle(m); err != nil {
				return err
			}
		}
	}
}

// choose applies the accept's take list: the top-level entries it leaves
// out are not sent, and the receiver may not ask for them later.
func (ss *sendSession) choose(accept Message) error {
	o := ss.opts.Offer
	if len(accept.Take) == 0 { // absent or empty: all of them
		ss.skipped, ss.skipNames = nil, nil
		return nil
	}
	in, _, err := Takes(o.Entries, accept.Take)
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			return ss.violate(pe)
		}
		return err
	}
	ss.skipped = make([]bool, len(in))
	for i := range in {
		ss.skipped[i] = !in[i]
	}
	ss.skipNames = skippedNames(o.Entries, accept.Take)
	return nil
}

// isSkipped reports whether the receiver left entry i out; an index that
// names no entry (-1 is "all" in a cancel) is not skipped.
func (s *Sender) isSkipped(i int) bool { return i >= 0 && i < len(s.skipped) && s.skipped[i] }

// plan builds the queue from the receiver's accept: skip what it has, resume
// what it has in part.
func (ss *sendSession) plan(accept Message) {
	o := ss.opts.Offer
	for _, i := range accept.Done {
		if i < len(o.Entries) && !o.Entries[i].Dir && !ss.isSkipped(i) && !ss.done[i] {
			ss.done[i] = true
		}
	}
	offsets := map[int]int64{}
	for _, r := range accept.Resume {
		if r.Index < len(o.Entries) && r.Offset <= o.Entries[r.Index].Size {
			offsets[r.Index] = r.Offset
		}
	}
	verified := map[int][]span{} // about 2,000 at most: the accept is one control message
	for _, r := range accept.Ranges {
		if r.Index < len(o.Entries) && !o.Entries[r.Index].Dir && r.End <= o.Entries[r.Index].Size {
			verified[r.Index] = append(verified[r.Index], span{r.Offset, r.End})
		}
	}
	ranges := make(map[int]spans, len(verified))
	for i, v := range verified {
		ranges[i] = mergeSpans(v)
	}
	ss.queue = ss.queue[:0]
	ss.bytes = 0
	ss.total = 0
	for i, e := range o.Entries {
		if e.Dir || ss.isSkipped(i) {
			continue
		}
		ss.total += e.Size
		if ss.done[i] {
			ss.bytes += e.Size
			continue
		}
		if ss.cancelled[i] {
			continue
		}
		if _, failed := ss.failed[i]; failed {
			continue
		}
		if have, ok := ranges[i]; ok || offsets[i] == 0 {
			ss.bytes += have.bytes()
			ss.queue = append(ss.queue, ss.pieces(i, have)...)
			continue
		}
		ss.bytes += offsets[i]
		ss.queue = append(ss.queue, queued{index: i, offset: offsets[i]})
	}
}

func (ss *sendSession) finish(Message) {
	o := ss.opts.Offer
	for i, e := range o.Entries {
		if e.Dir || ss.isSkipped(i) || ss.done[i] || ss.cancelled[i] {
			continue
		}
		if _, ok := ss.failed[i]; !ok {
			ss.failed[i] = FileFailed{ID: o.ID, Index: i, Name: e.Path, Code: CodeIO, Message: "the receiver did not confirm it"}
		}
	}
	r := ss.result()
	names := make([]string, 0, len(r.Failed))
	for _, f := range r.Failed {
		names = append(names, f.Name)
	}
	ss.emit.emit(TransferDone{ID: o.ID, Files: r.Sent, Bytes: r.Bytes, Failed: names})
}

// next returns the next control message. With block false it returns a
// zero Message when nothing is waiting. Local commands are applied on the way.
func (ss *sendSession) next(block bool) (Message, error) {
	for {
		var (
			raw datachan.Message
			got bool
		)
		if block {
			select {
			case raw = <-ss.in.msgs:
				got = true
			case c := <-ss.cmds:
				if err := ss.local(c); err != nil {
					return Message{}, err
				}
				continue
			case <-ss.link.Done():
				// What the peer said before it closed still counts (an
				// "error" explains why it closed).
				select {
				case raw = <-ss.in.msgs:
					got = true
				default:
					return Message{}, errLinkLost
				}
			case <-ss.ctx.Done():
				return Message{}, ctxErr(ss.ctx)
			}
		} else {
			select {
			case raw = <-ss.in.msgs:
				got = true
			case c := <-ss.cmds:
				if err := ss.local(c); err != nil {
					return Message{}, err
				}
				continue
			default:
				return Message{}, nil
			}
		}
		if got {
			return ss.decode(raw)
		}
	}
}

// decode checks one message from the receiver; a bad one is a violation.
func (ss *sendSession) decode(raw datachan.Message) (Message, error) {
	defer raw.Release()
	if !raw.IsString {
		return Message{}, ss.violate(violation(CodeProtocol, "the receiver sent file data"))
	}
	m, err := DecodeMessage(raw.Data)
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			return Message{}, ss.violate(pe)
		}
		return Message{}, err
	}
	return m, nil
}

// violate reports a protocol violation to the peer and returns it.
func (ss *sendSession) violate(pe *ProtocolError) error {
	if sendMessage(ss.link, Message{Type: TypeError, Code: pe.Code, Message: pe.Reason}) == nil {
		flush(ss.link, time.Second)
	}
	return pe
}

// local applies a command from our user.
func (ss *sendSession) local(c command) error {
	o := ss.opts.Offer
	switch c.kind {
	case cmdPause:
		if !ss.paused {
			ss.paused = true
			ss.emit.emit(Paused{ID: o.ID})
			if ss.accepted {
				return ss.send(Message{Type: TypePause})
			}
		}
	case cmdResume:
		if ss.paused {
			ss.paused = false
			ss.emit.emit(Resumed{ID: o.ID})
			if ss.accepted {
				return ss.send(Message{Type: TypeResume})
			}
		}
	case cmdCancel:
		if c.index < 0 {
			sent := ss.send(Message{Type: TypeCancel, Index: -1}) == nil
			// Cancelled for our user at once; the link closes once the
			// cancel has reached the peer (a slow one may take a while).
			ss.emit.emit(TransferDone{ID: o.ID, Cancelled: true})
			if sent {
				flush(ss.link, 5*time.Second)
			}
			return ErrCancelled
		}
		if c.index >= len(o.Entries) || ss.isSkipped(c.index) || ss.done[c.index] {
			return nil
		}
		ss.cancelItem(c.index)
		if !ss.accepted {
			return nil
		}
		return ss.send(Message{Type: TypeCancel, Index: c.index})
	case cmdRetry:
		if ss.endSent {
			// The receiver may already be closing the offer; a retry now
			// would reach it after "done". Send the file in a new offer.
			slog.Warn("retry ignored: the transfer is finishing", slog.Int("index", c.index))
			return nil
		}
		ss.requeue(c.index)
	}
	return nil
}

func (ss *sendSession) cancelItem(i int) {
	ss.cancelled[i] = true
	ss.abortFile(i)
	ss.unqueue(i)
}

// unqueue drops file i (all its ranges) from the queue.
func (ss *sendSession) unqueue(i int) {
	ss.queue = slices.DeleteFunc(ss.queue, func(q queued) bool { return q.index == i })
}

// requeue sends file i again from the start, if it is a file not yet done.
func (ss *sendSession) requeue(i int) {
	o := ss.opts.Offer
	if i >= len(o.Entries) || o.Entries[i].Dir || ss.isSkipped(i) || ss.done[i] || ss.isStreaming(i) {
		return
	}
	for _, q := range ss.queue {
		if q.index == i {
			return
		}
	}
	delete(ss.failed, i)
	delete(ss.cancelled, i)
	ss.queue = append(ss.queue, ss.pieces(i, nil)...)
}

// handle applies a control message from the receiver during a transfer.
func (ss *sendSession) handle(m Message) error {
	o := ss.opts.Offer
	// An entry the receiver left out is not part of this transfer.
	inRange := m.Index >= 0 && m.Index < len(o.Entries) && !ss.isSkipped(m.Index)
	switch m.Type {
	case TypeFileOK:
		if !inRange || o.Entries[m.Index].Dir {
			return ss.violate(violation(CodeProtocol, "file-ok for index %d", m.Index))
		}
		if !ss.done[m.Index] {
			ss.done[m.Index] = true
			delete(ss.failed, m.Index)
			e := o.Entries[m.Index]
			ss.emit.emit(FileDone{ID: o.ID, Index: m.Index, Name: e.Path, Size: e.Size})
		}
	case TypeFileError:
		if !inRange {
			return ss.violate(violation(CodeProtocol, "file-error for index %d", m.Index))
		}
		f := FileFailed{ID: o.ID, Index: m.Index, Name: o.Entries[m.Index].Path, Code: m.Code, Message: m.Message}
		ss.failed[m.Index] = f
		ss.abortFile(m.Index) // the receiver has given up on it: stop streaming
		ss.unqueue(m.Index)
		ss.emit.emit(f)
	case TypeRetry:
		if !inRange {
			return ss.violate(violation(CodeProtocol, "retry for index %d", m.Index))
		}
		ss.retries++
		ss.requeue(m.Index)
	case TypePause:
		if !ss.paused {
			ss.paused = true
			ss.emit.emit(Paused{ID: o.ID, Remote: true})
		}
	case TypeResume:
		if ss.paused {
			ss.paused = false
			ss.emit.emit(Resumed{ID: o.ID, Remote: true})
		}
	case TypeCancel:
		if m.Index < 0 {
			ss.emit.emit(TransferDone{ID: o.ID, Cancelled: true})
			return ErrCancelled
		}
		if inRange {
			ss.cancelItem(m.Index)
		}
	case TypeText:
		ss.emit.emit(TextReceived{ID: m.ID, Text: m.Text})
		return ss.send(Message{Type: TypeTextAck, ID: m.ID})
	case TypeTextAck:
	case TypeError:
		return &ProtocolError{Code: m.Code, Reason: m.Message, Remote: true}
	default:
		return ss.violate(violation(CodeProtocol, "unexpected %s message from the receiver", m.Type))
	}
	return nil
}

// poll applies whatever control messages are waiting, without blocking.
func (ss *sendSession) poll() error {
	for {
		m, err := ss.next(false)
		if err != nil {
			return err
		}
		if m.Type == "" {
			return nil
		}
		if err := ss.handle(m); err != nil {
			return err
		}
	}
}

// waitWhilePaused blocks until the transfer is resumed, by either side.
func (ss *sendSession) waitWhilePaused() error {
	return ss.waitWhile(func() bool { return ss.paused && !ss.aborting() }, false)
}

// waitForRoom blocks while too much data waits in the channel's buffer.
func (ss *sendSession) waitForRoom() error {
	return ss.waitWhile(func() bool { return !ss.canMove() }, true)
}

// waitWhile blocks while cond holds, applying the receiver's messages and
// our own commands as they come (either may end the wait: our Resume, the
// receiver's resume or cancel); wake, if not nil, also starts a new round.
// It selects itself rather than calling next(true), which after a local
// command goes on waiting for the peer.
func (ss *sendSession) waitWhile(cond func() bool, wake bool) error {
	for cond() {
		w := ss.waits(wake)
		select {
		case <-w.low[0]:
		case <-w.low[1]:
		case <-w.low[2]:
		case <-w.low[3]:
		case raw := <-ss.in.msgs:
			m, err := ss.decode(raw)
			if err != nil {
				return err
			}
			if err := ss.handle(m); err != nil {
				return err
			}
		case raw := <-w.msgs[1]:
			return ss.laneMessage(raw)
		case raw := <-w.msgs[2]:
			return ss.laneMessage(raw)
		case raw := <-w.msgs[3]:
			return ss.laneMessage(raw)
		case link := <-ss.grow:
			ss.adopt(link)
		case c := <-ss.cmds:
			if err := ss.local(c); err != nil {
				return err
			}
		case <-ss.link.Done():
			return errLinkLost
		case <-w.done[1]:
			return errLinkLost
		case <-w.done[2]:
			return errLinkLost
		case <-w.done[3]:
			return errLinkLost
		case <-ss.ctx.Done():
			return ctxErr(ss.ctx)
		}
	}
	return nil
}

// failLocal reports a file we cannot read to the receiver and goes on.
func (ss *sendSession) failLocal(i int, err error) error {
	o := ss.opts.Offer
	f := FileFailed{ID: o.ID, Index: i, Name: o.Entries[i].Path, Code: CodeIO, Message: err.Error()}
	ss.failed[i] = f
	ss.emit.emit(f)
	return ss.send(Message{Type: TypeFileError, Index: i, Code: CodeIO, Message: "the sender could not read the file"})
}

func (ss *sendSession) progress(name string, force bool) {
	now := time.Now()
	if !force && now.Sub(ss.lastEvent) < progressEvery {
		return
	}
	ss.lastEvent = now
	ss.emit.emit(Progress{ID: ss.opts.Offer.ID, Name: name, Bytes: ss.bytes, Total: ss.total})
}

func hexSum(h hash.Hash, scratch *[]byte) string {
	*scratch = h.Sum((*scratch)[:0])
	return hex.EncodeToString(*scratch)
}

// entryBatches splits entries into "entries" messages that stay under the
// control message limit, however long the paths are.
func entryBatches(entries []Entry) [][]Entry {
	const budget = MaxControlSize - 1024 // room for the envelope
	var batches [][]Entry
	start, size := 0, 0
	for i, e := range entries {
		// A path's JSON can be up to 6 bytes per byte (\u00XX escapes).
		n := 64 + 6*len(e.Path)
		if i > start && (size+n > budget || i-start == MaxEntriesPerMessage) {
			batches = append(batches, entries[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(entries) {
		batches = append(batches, entries[start:])
	}
	return batches
}
