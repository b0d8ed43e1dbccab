package transfer

// The receiver's side of lanes and ranges (docs/PROTOCOL.md 4.3). An
// extra association starts with "lane"; its own session checks it (the
// offer is running here, from the same device, which DTLS proved, and has
// room for one more lane) and then only forwards what the lane carries to
// the offer's session, whose one goroutine handles every lane in order:
// each lane has its own open file (curFile), swapped in while its message
// is handled, so the file, range, data and end rules are the ones of the
// first lane.

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
)

// recvLane is an extra association of an offer being received.
type recvLane struct {
	link  Link
	cur   *curFile // its open file (or range); the first lane's is incoming.cur
	ended bool     // it said "end" in this round
}

// laneEvent is what a lane's session hands the offer's session: the lane
// joining, then each message, then its loss.
type laneEvent struct {
	lane   *recvLane
	join   bool
	closed bool
	raw    datachan.Message
}

// errLaneLost means an extra association of the offer dropped: the offer
// is interrupted as when the first one drops, and resumes as a whole.
var errLaneLost = errors.New("a lane of the transfer was lost")

// join admits one more lane for offer id from the device whose
// certificate has fingerprint from.
func (r *Receiver) join(id, from string) (*activeOffer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.active[id]
	switch {
	case a == nil || a.from != from:
		return nil, violation(CodeProtocol, "lane for a transfer that is not running")
	case a.joined+1 >= a.allowed:
		return nil, violation(CodeProtocol, "lane beyond the %d agreed", a.allowed)
	}
	a.joined++
	return a, nil
}

// serveLane makes this link a lane of the offer m names and forwards what
// it carries to that offer's session until either ends.
func (rs *recvSession) serveLane(m Message) error {
	if rs.phase != idle {
		return violation(CodeProtocol, "lane on a link that carries an offer")
	}
	a, err := rs.r.join(m.ID, rs.from.Fingerprint)
	if err != nil {
		return err
	}
	l := &recvLane{link: rs.link}
	deliver := func(ev laneEvent) bool {
		select {
		case a.lanes <- ev:
			return true
		case <-a.ended:
		case <-rs.ctx.Done():
		}
		ev.raw.Release()
		return false
	}
	if !deliver(laneEvent{lane: l, join: true}) {
		return ErrClosed
	}
	for {
		select {
		case raw := <-rs.in.msgs:
			if !deliver(laneEvent{lane: l, raw: raw}) {
				return ErrClosed
			}
		case <-rs.link.Done():
			select {
			case raw := <-rs.in.msgs: // sent before it closed: still counts
				if !deliver(laneEvent{lane: l, raw: raw}) {
					return ErrClosed
				}
				continue
			default:
			}
			deliver(laneEvent{lane: l, closed: true})
			return ErrClosed
		case <-a.ended:
			return ErrClosed
		case <-rs.ctx.Done():
			return ctxErr(rs.ctx)
		}
	}
}

// onLane handles an event of one of the offer's extra lanes.
func (rs *recvSession) onLane(ev laneEvent) error {
	o := rs.off
	switch {
	case ev.join:
		o.lanes = append(o.lanes, ev.lane)
		return nil
	case ev.closed:
		return errLaneLost
	}
	defer ev.raw.Release()
	o.cur, ev.lane.cur = ev.lane.cur, o.cur
	defer func() { o.cur, ev.lane.cur = ev.lane.cur, o.cur }()
	if !ev.raw.IsString {
		return rs.onData(ev.raw.Data)
	}
	m, err := DecodeMessage(ev.raw.Data)
	if err != nil {
		return err
	}
	switch m.Type {
	case TypeFile, TypeFileEnd, TypeAbort:
		return rs.onTransfer(m)
	case TypeEnd:
		ev.lane.ended = true
		return rs.maybeEnd()
	case TypeError:
		return &ProtocolError{Code: m.Code, Reason: m.Message, Remote: true}
	}
	return violation(CodeProtocol, "unexpected %s message on a lane", m.Type)
}

// maybeEnd answers the sender's end once it arrived on every lane: on the
// first, counting the others, and on each of them. What a lane sent before
// its end has then been handled.
func (rs *recvSession) maybeEnd() error {
	o := rs.off
	if o.end == nil {
		return nil
	}
	if o.end.Lanes < len(o.lanes) {
		return violation(CodeProtocol, "end counts %d lanes, %d joined", o.end.Lanes, len(o.lanes))
	}
	if o.end.Lanes > len(o.lanes) {
		return nil // a lane has not joined yet
	}
	for _, l := range o.lanes {
		if !l.ended {
			return nil
		}
	}
	end := *o.end
	o.end = nil
	for _, l := range o.lanes {
		l.ended = false
	}
	if end.Retries < o.retryRequests {
		return nil // the sender has not seen our retry yet; another end follows
	}
	if o.cur != nil {
		return violation(CodeProtocol, "end while a file is open")
	}
	for _, l := range o.lanes {
		if l.cur != nil {
			return violation(CodeProtocol, "end while a file is open")
		}
	}
	return rs.finish()
}

// closeLanes closes the offer's extra lanes and their open files.
func (rs *recvSession) closeLanes() {
	o := rs.off
	if o == nil {
		return
	}
	for _, l := range o.lanes {
		if l.cur != nil && l.cur.f != nil {
			_ = l.cur.f.Close()
		}
		l.cur = nil
		_ = l.link.Close()
	}
	o.lanes = nil
}

// openRange opens a range of a file (a file message with an end).
func (rs *recvSession) openRange(m Message) error {
	o := rs.off
	e := o.entries[m.Index]
	switch {
	case o.lanesAllowed == 0:
		return violation(CodeProtocol, "a range, but ranges were not agreed")
	case e.Dir:
		return violation(CodeProtocol, "file data for folder %q", e.Path)
	case m.End > e.Size:
		return violation(CodeSizeMismatch, "range end %d beyond the size of %q", m.End, e.Path)
	case m.End-m.Offset < MinRange && m.End != e.Size:
		return violation(CodeProtocol, "a range of %d bytes of %q", m.End-m.Offset, e.Path)
	case rs.rangeTaken(m.Index, m.Offset, m.End):
		return violation(CodeProtocol, "a range of %q sent twice", e.Path)
	case len(o.ranges[m.Index]) >= MaxRanges:
		return violation(CodeTooLarge, "%q in more than %d ranges", e.Path, MaxRanges)
	}
	if err := rs.openable(m); err != nil {
		return err
	}
	if _, ok := o.ranges[m.Index]; !ok {
		o.ranges[m.Index] = spans{}
		rs.logRange(m.Index, 0, 0) // from now on, its partial file has holes
	}
	f, err := rs.root.OpenFile(partName(o.dir, m.Index), os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.Seek(m.Offset, io.SeekStart)
	}
	o.cur = &curFile{index: m.Index, f: f, h: sha256.New(), size: m.End, written: m.Offset, start: m.Offset, ranged: true}
	if err != nil {
		return rs.ioFail(err)
	}
	return nil
}

// rangeTaken reports whether [start, end) of file i has arrived already
// or is open on another lane.
func (rs *recvSession) rangeTaken(i int, start, end int64) bool {
	o := rs.off
	if o.ranges[i].overlaps(start, end) {
		return true
	}
	for _, l := range o.lanes {
		if c := l.cur; c != nil && c.index == i && c.ranged && start < c.size && c.start < end {
			return true
		}
	}
	return false
}

// endRange verifies a range; the last one of a file places it.
func (rs *recvSession) endRange(sum string) error {
	o := rs.off
	cur := o.cur
	i := cur.index
	e := o.entries[i]
	if cur.f != nil {
		_ = cur.f.Close()
	}
	o.cur = nil
	switch {
	case cur.discard:
		return nil
	case cur.written != cur.size:
		rs.dropRanges(i)
		rs.fail(i, CodeSizeMismatch, fmt.Sprintf("a range of %d bytes arrived with %d", cur.size-cur.start, cur.written-cur.start), true)
		return nil
	case fmt.Sprintf("%x", cur.h.Sum(nil)) != sum:
		resumed := o.resumedRanges[i] > 0
		rs.dropRanges(i)
		if resumed && !o.autoRetried[i] {
			o.autoRetried[i] = true
			o.retryRequests++
			return rs.send(Message{Type: TypeRetry, Index: i})
		}
		rs.fail(i, CodeHashMismatch, "the data does not match its SHA-256; it was discarded", true)
		return nil
	}
	o.ranges[i] = o.ranges[i].add(cur.start, cur.size)
	rs.logRange(i, cur.start, cur.size)
	if !o.ranges[i].covers(e.Size) {
		return nil
	}
	return rs.placeRanged(i)
}

// placeRanged places a file whose ranges all arrived.
func (rs *recvSession) placeRanged(i int) error {
	o := rs.off
	name := partName(o.dir, i)
	f, err := rs.root.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return rs.rangedIOFail(i, err)
	}
	// The whole file's SHA-256, for the event: no range carries it.
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err == nil && o.entries[i].Size >= syncThreshold {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rs.rangedIOFail(i, err)
	}
	delete(o.ranges, i)
	return rs.placeFile(i, fmt.Sprintf("%x", h.Sum(nil)), o.resumedRanges[i])
}

func (rs *recvSession) rangedIOFail(i int, err error) error {
	rs.dropRanges(i)
	rs.fail(i, CodeIO, err.Error(), true)
	return nil
}

// dropRanges discards what arrived of file i in ranges, its open ranges
// on other lanes included: their data is dropped as it comes.
func (rs *recvSession) dropRanges(i int) {
	o := rs.off
	o.bytes -= o.ranges[i].bytes()
	delete(o.ranges, i)
	delete(o.resumedRanges, i)
	for _, l := range o.lanes {
		if l.cur != nil && l.cur.index == i {
			l.cur.discard = true
		}
	}
	_ = rs.root.Remove(partName(o.dir, i))
	rs.logRange(i, -1, -1) // forgotten
}

// rangeLogSlack is how many lines ranges.log may grow by before it is
// compared with the state it describes (see logRange).
const rangeLogSlack = 1024

// logRange appends to ranges.log: a range of file i verified; 0 0 marks
// a file sent in ranges, -1 -1 one whose ranges were dropped. A sender
// can make the log grow without end (a short last range failing its hash
// over and over adds two lines each time), so when the log holds more
// than twice the lines that describe o.ranges, it is rewritten from
// them: its size stays within twice the state's, plus rangeLogSlack.
func (rs *recvSession) logRange(i int, start, end int64) {
	o := rs.off
	o.logLines++
	if o.logLines >= o.logCheck {
		n := rangeLines(o.ranges)
		compacted := o.logLines > 2*n && rs.writeRangeLog() == nil
		if compacted {
			o.logLines = n // the line for this call included: o.ranges has it
		}
		o.logCheck = o.logLines + max(rangeLogSlack, n)
		if compacted {
			return
		}
	}
	f, err := rs.root.OpenFile(path.Join(o.dir, "ranges.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%d\t%d\t%d\n", i, start, end)
	f.Close()
}

// rangeLines is how many lines of ranges.log describe ranges.
func rangeLines(ranges map[int]spans) int {
	n := 0
	for _, s := range ranges {
		n += 1 + len(s)
	}
	return n
}

// writeRangeLog replaces ranges.log with the lines that describe
// o.ranges, through a new file renamed over the old one.
func (rs *recvSession) writeRangeLog() error {
	o := rs.off
	var sb strings.Builder
	for _, i := range slices.Sorted(maps.Keys(o.ranges)) {
		fmt.Fprintf(&sb, "%d\t0\t0\n", i)
		for _, x := range o.ranges[i] {
			fmt.Fprintf(&sb, "%d\t%d\t%d\n", i, x.start, x.end)
		}
	}
	name := path.Join(o.dir, "ranges.log")
	f, err := rs.root.OpenFile(name+".new", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(sb.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rs.root.Rename(name+".new", name)
	}
	return err
}

// loadRanges reads ranges.log back on a resume: the files sent in ranges
// and the ranges of them verified.
func (rs *recvSession) loadRanges() map[int]spans {
	o := rs.off
	out := map[int]spans{}
	f, err := rs.root.Open(path.Join(o.dir, "ranges.log"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		o.logLines++
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 {
			continue
		}
		i, err1 := strconv.Atoi(parts[0])
		start, err2 := strconv.ParseInt(parts[1], 10, 64)
		end, err3 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || i < 0 || i >= len(o.entries) || !o.in[i] || o.entries[i].Dir {
			continue
		}
		switch {
		case start < 0:
			delete(out, i)
		case end == 0:
			if _, ok := out[i]; !ok {
				out[i] = spans{}
			}
		case start < end && end <= o.entries[i].Size && len(out[i]) < MaxRanges:
			out[i] = out[i].add(start, end)
		}
	}
	return out
}

// cancelFile drops file i, cancelled by either side: its open file or
// ranges, on every lane, keep nothing.
func (rs *recvSession) cancelFile(i int) {
	o := rs.off
	o.cancelled[i] = true
	if o.cur != nil && o.cur.index == i {
		o.cur.discard = true
	}
	if _, ok := o.ranges[i]; ok {
		rs.dropRanges(i)
	}
}

// agreeLanes fills in the accept's lanes: as many as the offer proposed
// and we allow (Receiver.Lanes); any lanes at all also say we take ranges.
func (rs *recvSession) agreeLanes(accept *Message) {
	o := rs.off
	if o.offerLanes > 0 && rs.r.Lanes > 0 {
		o.lanesAllowed = min(o.offerLanes, rs.r.Lanes, MaxLanes)
	}
	accept.Lanes = o.lanesAllowed
	if o.ranges == nil {
		o.ranges = map[int]spans{}
	}
	if o.resumedRanges == nil {
		o.resumedRanges = map[int]int64{}
	}
	rs.r.mu.Lock()
	o.reg.from, o.reg.allowed = rs.from.Fingerprint, max(o.lanesAllowed, 1)
	rs.r.mu.Unlock()
}

// resumeRanges reads the ranges an earlier connection verified into the
// accept. Without lanes agreed this time, or with a file whose ranges all
// arrived but that was not placed, they are dropped: sent again.
func (rs *recvSession) resumeRanges(accept *Message, kept map[int]spans) {
	o := rs.off
	o.ranges, o.resumedRanges = map[int]spans{}, map[int]int64{}
	for i, have := range kept {
		if o.done[i] {
			continue
		}
		if o.lanesAllowed == 0 || have.covers(o.entries[i].Size) {
			o.ranges[i] = spans{} // none counted in o.bytes
			rs.dropRanges(i)
			continue
		}
		o.ranges[i] = have
		o.resumedRanges[i] = have.bytes()
		o.bytes += have.bytes()
		for _, x := range have {
			accept.Ranges = append(accept.Ranges, RangePoint{Index: i, Offset: x.start, End: x.end})
		}
	}
}
