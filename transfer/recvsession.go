package transfer

// One connection's part of a receive: the protocol's state machine, from
// the offer through the question, the files and their checks, to done.
// Receiver.Handle runs one session a connection.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
)

type phase int

const (
	idle phase = iota
	collecting
	active
)

type recvSession struct {
	r    *Receiver
	ctx  context.Context
	link Link
	in   *inbox
	root *os.Root
	from Peer
	emit emitter

	phase phase
	off   *incoming
	// draining: we cancelled the whole transfer; what the sender had already
	// sent of it (data, file, file-end, ...) is dropped, not a violation,
	// until its next offer.
	draining bool
}

type incoming struct {
	id      string
	text    string
	count   int
	size    int64
	entries []Entry
	take    []int      // the top-level entries accepted (nil: all)
	in      []bool     // per entry: accepted
	want    int64      // bytes of the accepted files
	dir     string     // state dir, relative to root
	names   *diskNames // manifest path -> path on disk

	done          map[int]bool
	failed        map[int]bool
	cancelled     map[int]bool
	autoRetried   map[int]bool
	retryRequests int
	paused        bool

	cur       *curFile
	doneLog   *os.File
	reg       *activeOffer
	pathBytes int
	bytes     int64
	lastEvent time.Time
	unchecked int64    // bytes written since free space was last measured
	made      []string // folders this connection created, parents first

	// Lanes and ranges (lanes_recv.go).
	offerLanes    int           // the lanes the offer proposed
	lanesAllowed  int           // the lanes our accept allows (0: no ranges either)
	lanes         []*recvLane   // the extra lanes that joined
	end           *Message      // the first lane's end, waiting for the others'
	ranges        map[int]spans // files sent in ranges: the ranges verified
	resumedRanges map[int]int64 // files sent in ranges: the bytes verified on earlier connections
	logLines      int           // lines in ranges.log
	logCheck      int           // logLines at which to see whether to compact it
}

type curFile struct {
	index       int
	f           *os.File
	h           hash.Hash
	written     int64
	size        int64
	resumedFrom int64
	discard     bool
	start       int64 // a range: its first byte (size is then its end)
	ranged      bool
}

func (rs *recvSession) run() error {
	for {
		var cmds chan command
		var lanes chan laneEvent
		if rs.off != nil && rs.phase == active {
			cmds, lanes = rs.off.reg.cmds, rs.off.reg.lanes
		}
		var err error
		// Our user's commands go first: a Retry given while an event was
		// being reported must reach the sender before we read its "end".
		select {
		case c := <-cmds:
			err = rs.local(c)
		default:
			select {
			case raw := <-rs.in.msgs:
				err = rs.onMessage(raw)
			case c := <-cmds:
				err = rs.local(c)
			case ev := <-lanes:
				err = rs.onLane(ev)
			case <-rs.link.Done():
				// What the peer sent before it closed still counts: a
				// "cancel" may sit behind the last chunks of data.
				select {
				case raw := <-rs.in.msgs:
					err = rs.onMessage(raw)
				default:
					rs.interrupted(ErrClosed)
					return ErrClosed
				}
			case <-rs.ctx.Done():
				rs.interrupted(ctxErr(rs.ctx))
				return ctxErr(rs.ctx)
			}
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				// Not the peer's fault (the link closed under a send): keep
				// what arrived so that the sender can resume.
				rs.interrupted(err)
				return err
			}
			if !pe.Remote {
				if sendMessage(rs.link, Message{Type: TypeError, Code: pe.Code, Message: pe.Reason}) == nil {
					flush(rs.link, time.Second)
				}
			}
			rs.abandon(err)
			return err
		}
	}
}

func (rs *recvSession) send(m Message) error { return sendMessage(rs.link, m) }

func (rs *recvSession) onMessage(raw datachan.Message) error {
	defer raw.Release() // nothing keeps Data: it is written, hashed, decoded
	if !raw.IsString {
		return rs.onData(raw.Data)
	}
	m, err := DecodeMessage(raw.Data)
	if err != nil {
		return err
	}
	switch m.Type {
	case TypeText:
		rs.emit.emit(TextReceived{From: rs.from, ID: m.ID, Text: m.Text})
		return rs.send(Message{Type: TypeTextAck, ID: m.ID})
	case TypeTextAck:
		return nil
	case TypeError:
		return &ProtocolError{Code: m.Code, Reason: m.Message, Remote: true}
	case TypeLane:
		return rs.serveLane(m)
	case TypeOffer:
		rs.draining = false
		if rs.phase != idle {
			return violation(CodeBusy, "an offer arrived while another one runs")
		}
		rs.phase = collecting
		rs.off = &incoming{id: m.ID, text: m.Text, count: m.Count, size: m.Size, offerLanes: m.Lanes}
		if m.Count == 0 {
			return rs.decide()
		}
		return nil
	case TypeEntries:
		if rs.phase != collecting || m.ID != rs.off.id {
			return violation(CodeProtocol, "entries outside an offer")
		}
		if len(rs.off.entries)+len(m.Entries) > rs.off.count {
			return violation(CodeBadManifest, "more entries than the %d announced", rs.off.count)
		}
		for _, e := range m.Entries {
			rs.off.pathBytes += len(e.Path)
		}
		if rs.off.pathBytes > MaxManifestBytes {
			return violation(CodeTooLarge, "manifest over %d bytes", MaxManifestBytes)
		}
		rs.off.entries = append(rs.off.entries, m.Entries...)
		if len(rs.off.entries) == rs.off.count {
			return rs.decide()
		}
		return nil
	}
	if rs.phase != active {
		switch m.Type {
		case TypeFile, TypeFileEnd, TypeFileError, TypeAbort, TypeEnd:
			if rs.draining {
				return nil // in flight when we cancelled
			}
		case TypePause, TypeResume:
			return nil // about an offer we declined or have not decided yet
		case TypeCancel:
			if rs.phase == collecting {
				rs.off, rs.phase = nil, idle
			}
			return nil
		}
		return violation(CodeProtocol, "unexpected %s message", m.Type)
	}
	return rs.onTransfer(m)
}

func (rs *recvSession) onTransfer(m Message) error {
	o := rs.off
	switch m.Type {
	case TypeFile, TypeFileEnd, TypeFileError, TypeAbort, TypeCancel:
		if m.Index >= len(o.entries) {
			return violation(CodeProtocol, "%s: index %d out of range", m.Type, m.Index)
		}
		if m.Index >= 0 && !o.in[m.Index] {
			// Left out of the accept: nothing of it is written, whatever
			// the sender says. A sender older than the take list sends
			// it anyway: it is told to skip it, as after a cancel, and
			// its data is dropped.
			return rs.leftOut(m)
		}
	}
	switch m.Type {
	case TypeFile:
		if m.End > 0 {
			return rs.openRange(m)
		}
		return rs.openFile(m)
	case TypeFileEnd:
		if o.cur == nil || o.cur.index != m.Index {
			return violation(CodeProtocol, "file-end for a file that is not open")
		}
		if o.cur.ranged {
			return rs.endRange(m.SHA256)
		}
		return rs.endFile(m.SHA256)
	case TypeFileError:
		if o.cur != nil && o.cur.index == m.Index {
			rs.discardCurrent()
		}
		rs.fail(m.Index, CodeIO, "the sender could not read it", false)
	case TypeAbort:
		if o.cur != nil && o.cur.index == m.Index {
			rs.discardCurrent()
		}
		if !o.done[m.Index] && !o.failed[m.Index] {
			o.cancelled[m.Index] = true
			rs.emit.emit(FileFailed{ID: o.id, Index: m.Index, Name: o.entries[m.Index].Path, Code: CodeCancelled, Message: "cancelled"})
		}
	case TypePause:
		if !o.paused {
			o.paused = true
			rs.emit.emit(Paused{ID: o.id, Remote: true})
		}
	case TypeResume:
		if o.paused {
			o.paused = false
			rs.emit.emit(Resumed{ID: o.id, Remote: true})
		}
	case TypeCancel:
		if m.Index < 0 {
			rs.cancelAll()
			return nil
		}
		rs.cancelFile(m.Index)
	case TypeEnd:
		o.end = &m
		return rs.maybeEnd()
	default:
		return violation(CodeProtocol, "unexpected %s message", m.Type)
	}
	return nil
}

// openable checks what a file message, whole or a range, needs: no file
// open, a file not received yet; then it clears the file's cancel or
// failure (the sender is sending it again) and checks the free space.
func (rs *recvSession) openable(m Message) error {
	o := rs.off
	e := o.entries[m.Index]
	switch {
	case o.cur != nil:
		return violation(CodeProtocol, "file %d started while file %d is open", m.Index, o.cur.index)
	case e.Dir:
		return violation(CodeProtocol, "file data for folder %q", e.Path)
	case o.done[m.Index]:
		return violation(CodeProtocol, "%q was already received", e.Path)
	}
	delete(o.cancelled, m.Index)
	delete(o.failed, m.Index)
	return rs.spaceLeft()
}

func (rs *recvSession) openFile(m Message) error {
	o := rs.off
	e := o.entries[m.Index]
	switch {
	case o.ranges[m.Index] != nil:
		return violation(CodeProtocol, "%q whole after ranges of it", e.Path)
	case m.Offset > e.Size:
		return violation(CodeSizeMismatch, "offset %d beyond the size of %q", m.Offset, e.Path)
	}
	if err := rs.openable(m); err != nil {
		return err
	}
	name := partName(o.dir, m.Index)
	f, err := rs.root.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		rs.fail(m.Index, CodeIO, err.Error(), true)
		o.cur = &curFile{index: m.Index, discard: true}
		return nil
	}
	cur := &curFile{index: m.Index, f: f, h: sha256.New(), size: e.Size}
	o.cur = cur
	info, err := f.Stat()
	if err != nil {
		return rs.ioFail(err)
	}
	if m.Offset == 0 {
		o.bytes -= info.Size()
		o.reg.remaining.Add(info.Size())
		if err := f.Truncate(0); err != nil {
			return rs.ioFail(err)
		}
		return nil
	}
	if m.Offset != info.Size() {
		return violation(CodeProtocol, "resume of %q at %d, but %d bytes are here", e.Path, m.Offset, info.Size())
	}
	// Continue the hash over what is already on disk: the final check then
	// covers the kept bytes too.
	if _, err := io.Copy(cur.h, io.LimitReader(f, m.Offset)); err != nil {
		return rs.ioFail(err)
	}
	cur.written, cur.resumedFrom = m.Offset, m.Offset
	return nil
}

// ioFail turns a local write error into a failed file; the transfer goes on.
func (rs *recvSession) ioFail(err error) error {
	cur := rs.off.cur
	rs.fail(cur.index, CodeIO, err.Error(), true)
	rs.discardCurrent()
	rs.off.cur = &curFile{index: cur.index, discard: true}
	return nil
}

func (rs *recvSession) onData(p []byte) error {
	o := rs.off
	if rs.phase != active && rs.draining {
		return nil // in flight when we cancelled the transfer
	}
	if rs.phase != active || o.cur == nil {
		return violation(CodeProtocol, "file data outside a file")
	}
	cur := o.cur
	if len(p) > MaxChunkSize {
		return violation(CodeTooLarge, "a data message of %d bytes", len(p))
	}
	if cur.discard {
		return nil
	}
	if cur.written+int64(len(p)) > cur.size {
		return violation(CodeSizeMismatch, "more than the %d bytes announced for %q", cur.size, o.entries[cur.index].Path)
	}
	if _, err := cur.f.Write(p); err != nil {
		return rs.ioFail(err)
	}
	cur.h.Write(p)
	cur.written += int64(len(p))
	o.bytes += int64(len(p))
	o.reg.remaining.Add(-int64(len(p)))
	if o.unchecked += int64(len(p)); o.unchecked >= spaceCheckEvery {
		if err := rs.spaceLeft(); err != nil {
			return err
		}
	}
	if now := time.Now(); now.Sub(o.lastEvent) >= progressEvery {
		o.lastEvent = now
		rs.emit.emit(Progress{ID: o.id, Name: o.entries[cur.index].Path, Bytes: o.bytes, Total: o.want})
	}
	return nil
}

func (rs *recvSession) endFile(sum string) error {
	o := rs.off
	cur := o.cur
	e := o.entries[cur.index]
	if cur.discard {
		rs.discardCurrent()
		if o.cancelled[cur.index] {
			// Cancelled here while the last bytes were already on their way.
			rs.emit.emit(FileFailed{ID: o.id, Index: cur.index, Name: e.Path, Code: CodeCancelled, Message: "cancelled"})
		}
		return nil
	}
	if cur.written != cur.size {
		rs.discardCurrent()
		rs.fail(cur.index, CodeSizeMismatch, fmt.Sprintf("%d of %d bytes arrived", cur.written, cur.size), true)
		return nil
	}
	if got := fmt.Sprintf("%x", cur.h.Sum(nil)); got != sum {
		rs.discardCurrent()
		if cur.resumedFrom > 0 && !o.autoRetried[cur.index] {
			// The kept part may have been damaged on disk: start over, once.
			o.autoRetried[cur.index] = true
			o.retryRequests++
			slog.Warn("resumed file failed verification, starting it over", slog.String("file", e.Path))
			return rs.send(Message{Type: TypeRetry, Index: cur.index})
		}
		rs.fail(cur.index, CodeHashMismatch, "the data does not match its SHA-256; it was discarded", true)
		return nil
	}
	if cur.size >= syncThreshold {
		if err := cur.f.Sync(); err != nil {
			return rs.ioFail(err)
		}
	}
	if err := cur.f.Close(); err != nil {
		return rs.ioFail(err)
	}
	o.cur = nil
	return rs.placeFile(cur.index, sum, cur.resumedFrom)
}

// discardCurrent closes and deletes the open partial file.
func (rs *recvSession) discardCurrent() {
	o := rs.off
	if o == nil || o.cur == nil {
		return
	}
	if cur := o.cur; cur.ranged {
		// A range stopped: the file's other ranges go with it.
		if cur.f != nil {
			_ = cur.f.Close()
		}
		o.cur = nil
		o.bytes -= cur.written - cur.start
		rs.dropRanges(cur.index)
		return
	}
	if o.cur.f != nil {
		_ = o.cur.f.Close()
		_ = rs.root.Remove(partName(o.dir, o.cur.index))
		o.bytes -= o.cur.written
	}
	o.cur = nil
}

// fail records a failed file and tells the sender when tell is set.
func (rs *recvSession) fail(i int, code, msg string, tell bool) {
	o := rs.off
	name := ""
	if i >= 0 {
		o.failed[i] = true
		name = o.entries[i].Path
	}
	rs.emit.emit(FileFailed{ID: o.id, Index: i, Name: name, Code: code, Message: msg})
	if tell && i >= 0 {
		if code == CodeIO {
			msg = "the receiver could not write it" // local details stay local
		}
		_ = rs.send(Message{Type: TypeFileError, Index: i, Code: code, Message: msg})
	}
}

func (rs *recvSession) finish() error {
	o := rs.off
	var failed []int
	var names []string
	files := 0
	var bytes int64
	for i, e := range o.entries {
		if e.Dir || !o.in[i] {
			continue
		}
		if o.done[i] {
			files++
			bytes += e.Size
			continue
		}
		failed = append(failed, i)
		names = append(names, e.Path)
	}
	// Clean up before answering, so that a sender that exits on "done"
	// leaves a tidy folder behind.
	rs.emit.emit(Progress{ID: o.id, Bytes: o.bytes, Total: o.want})
	rs.makeFolders()
	rs.cleanup()
	rs.emit.emit(TransferDone{ID: o.id, Files: files, Bytes: bytes, Failed: names})
	return rs.send(Message{Type: TypeDone, Failed: failed})
}

func (rs *recvSession) cancelAll() {
	o := rs.off
	var names []string
	for i, e := range o.entries {
		if !e.Dir && o.in[i] && !o.done[i] {
			names = append(names, e.Path)
		}
	}
	rs.removeMade()
	rs.cleanup()
	rs.emit.emit(TransferDone{ID: o.id, Failed: names, Cancelled: true})
}

// interrupted keeps what arrived so that the sender can resume.
func (rs *recvSession) interrupted(err error) {
	o := rs.off
	if o == nil || rs.phase != active {
		return
	}
	if o.cur != nil && o.cur.f != nil {
		_ = o.cur.f.Close()
	}
	rs.closeLanes()
	if o.doneLog != nil {
		_ = o.doneLog.Close()
	}
	rs.r.unregister(o.id, o.reg)
	rs.off, rs.phase = nil, idle
	if rs.from.Ephemeral {
		// Nobody will come back for it: complete files stay, partial ones go.
		_ = rs.root.RemoveAll(o.dir)
		_ = rs.root.Remove(StateDir) // only if empty
	} else {
		rs.r.trimPartials(o.id)
	}
	rs.emit.emit(Interrupted{ID: o.id, Err: err})
}

// abandon ends an offer after a protocol violation: partial data is removed,
// complete files stay.
func (rs *recvSession) abandon(err error) {
	o := rs.off
	if o == nil || rs.phase != active {
		return
	}
	var names []string
	for i, e := range o.entries {
		if !e.Dir && o.in[i] && !o.done[i] {
			names = append(names, e.Path)
		}
	}
	files := len(o.done)
	rs.removeMade()
	rs.cleanup()
	rs.emit.emit(TransferDone{ID: o.id, Files: files, Failed: names})
	slog.Warn("transfer abandoned", slog.String("id", o.id), slog.Any("err", err))
}

// local applies a command from our user.
func (rs *recvSession) local(c command) error {
	o := rs.off
	switch c.kind {
	case cmdPause:
		if !o.paused {
			o.paused = true
			rs.emit.emit(Paused{ID: o.id})
			return rs.send(Message{Type: TypePause})
		}
	case cmdResume:
		if o.paused {
			o.paused = false
			rs.emit.emit(Resumed{ID: o.id})
			return rs.send(Message{Type: TypeResume})
		}
	case cmdCancel:
		if c.index < 0 {
			err := rs.send(Message{Type: TypeCancel, Index: -1})
			rs.cancelAll()
			rs.draining = true
			return err
		}
		if c.index >= len(o.entries) || o.entries[c.index].Dir || !o.in[c.index] || o.done[c.index] {
			return nil
		}
		rs.cancelFile(c.index)
		return rs.send(Message{Type: TypeCancel, Index: c.index})
	case cmdRetry:
		if c.index >= len(o.entries) || o.entries[c.index].Dir || !o.in[c.index] || o.done[c.index] {
			return nil
		}
		delete(o.failed, c.index)
		delete(o.cancelled, c.index)
		o.retryRequests++
		return rs.send(Message{Type: TypeRetry, Index: c.index})
	}
	return nil
}
