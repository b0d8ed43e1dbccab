package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// The receiver's answer to an offer: the checks, the question to the
// user, the space reserved and the accept.

// decide validates a complete manifest, asks the user (or resumes) and answers.
func (rs *recvSession) decide() error {
	o := rs.off
	if err := ValidateManifest(o.entries, o.size); err != nil {
		return err
	}
	o.dir = path.Join(StateDir, o.id)
	digest := manifestDigest(o.entries)
	meta, resuming := rs.loadMeta(o.dir, digest)
	if resuming {
		// The entries chosen at accept time are the ones resumed.
		var err error
		if o.in, o.want, err = Takes(o.entries, meta.Take); err != nil || len(meta.Take) > MaxTake {
			resuming = false
		}
		o.take = meta.Take
	}
	ev := rs.offerEvent(resuming)
	rs.emit.emit(ev)
	if !resuming {
		if stop, err := rs.choose(ev); stop {
			return err
		}
	}
	if err := rs.r.takeover(rs.ctx, o.id); err != nil {
		return err
	}
	o.done, o.failed, o.cancelled, o.autoRetried = map[int]bool{}, map[int]bool{}, map[int]bool{}, map[int]bool{}
	accept := Message{Type: TypeAccept, ID: o.id}
	if resuming {
		if stop, err := rs.reserveResumed(&accept, meta); stop {
			return err
		}
	} else if stop, err := rs.reserveNew(digest); stop {
		return err
	}
	return rs.sendAccept(accept)
}

// offerEvent is the offer as the user is asked about it.
func (rs *recvSession) offerEvent(resuming bool) OfferReceived {
	o := rs.off
	ev := OfferReceived{From: rs.from, ID: o.id, Size: o.size, Text: o.text, Resuming: resuming}
	tops, _ := TopLevel(o.entries)
	ev.Top, ev.TopCount = tops[:min(len(tops), MaxTake)], len(tops)
	for _, e := range o.entries {
		if e.Dir {
			ev.Folders++
		} else {
			ev.Files++
		}
		if len(ev.First) < 5 && !strings.Contains(e.Path, "/") {
			ev.First = append(ev.First, e.Path)
		}
	}
	return ev
}

// choose checks the free space for a new offer, asks the user about it and
// keeps the entries taken. stop says decide ends there, with err.
func (rs *recvSession) choose(ev OfferReceived) (stop bool, err error) {
	o := rs.off
	rs.r.trimPartials(o.id)
	if err := rs.r.SpaceFor(o.size); err != nil {
		// Interrupted offers nobody resumes give way to a new one.
		rs.r.makeRoom(o.id, o.size)
		if err := rs.r.SpaceFor(o.size); err != nil {
			// Someone who can choose may still take a part that fits;
			// without a choice, or when no entry fits, the answer is no.
			room, _ := rs.r.room(o.id)
			if rs.r.Choose == nil || !slices.ContainsFunc(ev.Top, func(t TopEntry) bool { return t.Size <= room }) {
				return true, rs.decline(err.Error())
			}
			ev.TooBig, ev.Room = true, room
		}
	}
	take, ok := rs.ask(ev)
	if !ok {
		return true, rs.decline("declined by the receiver")
	}
	if take != nil {
		if len(take) == 0 {
			return true, rs.decline("declined by the receiver") // nothing chosen
		}
		take = slices.Compact(slices.Sorted(slices.Values(take)))
	}
	if o.in, o.want, err = Takes(o.entries, take); err != nil {
		return true, rs.decline("the receiver's choice of files is not valid")
	}
	switch {
	case len(take) == ev.TopCount:
		take = nil // all of them: an older sender understands that too
	case len(take) > MaxTake:
		return true, rs.decline("the receiver's choice of files is not valid")
	}
	o.take = take
	return false, nil
}

// ask puts the offer to Choose (or Decide); the question ends with the
// link: a vanished sender needs no answer.
func (rs *recvSession) ask(ev OfferReceived) (take []int, ok bool) {
	if rs.r.Decide == nil && rs.r.Choose == nil {
		return nil, false
	}
	dctx, cancel := context.WithCancel(rs.ctx)
	defer cancel()
	go func() {
		select {
		case <-rs.link.Done():
			cancel()
		case <-dctx.Done():
		}
	}()
	if rs.r.Choose != nil {
		take, ok = rs.r.Choose(dctx, ev)
	} else {
		ok = rs.r.Decide(dctx, ev)
	}
	return take, ok && dctx.Err() == nil
}

// reserveResumed names a resumed offer's entries as at accept time, says
// in accept what already arrived, and reserves the space for the rest.
func (rs *recvSession) reserveResumed(accept *Message, meta stateMeta) (stop bool, err error) {
	o := rs.off
	// The top-level names were chosen at accept time; the rest follows
	// from the manifest.
	if o.names, err = planNames(o.accepted(), meta.Top, nil); err != nil {
		return true, err
	}
	kept := rs.loadRanges()
	accept.Done, accept.Resume = rs.loadProgress(kept)
	if o.reg, err = rs.r.register(o.id, rs.link, o.want-o.bytes); err != nil {
		// What arrived stays for a later attempt (or until it expires).
		return true, rs.decline(err.Error())
	}
	return false, nil
}

// reserveNew reserves the space for a new offer before anything is
// written (another offer accepted meanwhile may have taken it) and
// prepares its staging directory.
func (rs *recvSession) reserveNew(digest string) (stop bool, err error) {
	o := rs.off
	// The entries chosen must fit (those of an offer too large as a
	// whole too); kept partial data may give way to them.
	if o.reg, err = rs.r.register(o.id, rs.link, o.want); err != nil {
		rs.r.makeRoom(o.id, o.want)
		if o.reg, err = rs.r.register(o.id, rs.link, o.want); err != nil {
			return true, rs.decline(err.Error())
		}
	}
	if err := rs.prepare(digest); err != nil {
		rs.fail(-1, CodeIO, err.Error(), false)
		rs.r.unregister(o.id, o.reg)
		_ = rs.root.RemoveAll(o.dir)
		_ = rs.root.Remove(StateDir) // only if empty
		why := "the receiver cannot write to its download folder"
		if errors.Is(err, ErrTooManyPaths) {
			why = "the offer holds too many files and folders"
		}
		rs.off, rs.phase = nil, idle
		return true, rs.send(Message{Type: TypeDecline, ID: o.id, Message: why})
	}
	return false, nil
}

// sendAccept opens the resume log, goes active and accepts.
func (rs *recvSession) sendAccept(accept Message) error {
	o := rs.off
	var err error
	o.doneLog, err = rs.root.OpenFile(path.Join(o.dir, "done.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		rs.r.unregister(o.id, o.reg)
		return fmt.Errorf("open resume log: %w", err)
	}
	rs.phase = active
	accept.Take = o.take
	kept := o.ranges
	rs.agreeLanes(&accept)
	if kept != nil {
		rs.resumeRanges(&accept, kept)
	}
	files := 0
	for i, e := range o.entries {
		if !e.Dir && o.in[i] {
			files++
		}
	}
	rs.emit.emit(Accepted{ID: o.id, Skipped: skippedNames(o.entries, o.take), Files: files})
	return rs.send(accept)
}

// accepted lists the entries the receiver takes.
func (o *incoming) accepted() []Entry {
	if o.take == nil {
		return o.entries
	}
	var out []Entry
	for i, e := range o.entries {
		if o.in[i] {
			out = append(out, e)
		}
	}
	return out
}

// skippedNames lists the top-level paths a take list leaves out.
func skippedNames(entries []Entry, take []int) []string {
	if take == nil {
		return nil
	}
	tops, _ := TopLevel(entries)
	var out []string
	for k, t := range tops {
		if !slices.Contains(take, k) {
			out = append(out, t.Path)
		}
	}
	return out
}

// decline answers the offer being decided with a no; why is shown to both.
func (rs *recvSession) decline(why string) error {
	id := rs.off.id
	rs.emit.emit(Declined{ID: id, Reason: why})
	rs.off, rs.phase = nil, idle
	return rs.send(Message{Type: TypeDecline, ID: id, Message: why})
}

// spaceLeft stops the transfer when the file system holding the download
// folder has crossed the margin (someone else may be writing there too).
func (rs *recvSession) spaceLeft() error {
	rs.off.unchecked = 0
	free, ok := rs.r.free()
	if ok && free < rs.r.margin() {
		return violation(CodeNoSpace, "the receiving device ran out of free space (%s left, %s kept free)", sizeText(free), sizeText(rs.r.margin()))
	}
	return nil
}

// leftOut answers a message about an entry the accept left out.
func (rs *recvSession) leftOut(m Message) error {
	o := rs.off
	switch m.Type {
	case TypeFile:
		if o.cur != nil {
			return violation(CodeProtocol, "file %d started while file %d is open", m.Index, o.cur.index)
		}
		o.cur = &curFile{index: m.Index, discard: true}
		return rs.send(Message{Type: TypeCancel, Index: m.Index})
	case TypeFileEnd:
		if o.cur == nil || o.cur.index != m.Index {
			return violation(CodeProtocol, "file-end for a file that is not open")
		}
		o.cur = nil
	case TypeAbort, TypeFileError:
		if o.cur != nil && o.cur.index == m.Index {
			o.cur = nil
		}
	}
	return nil
}
