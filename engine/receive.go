package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// receiverFor returns the Receiver writing into dir; the caller holds e.mu.
// There is one per download folder, so that a sender that reconnects finds
// its offer (and the Receiver's takeover of the old link) where it left it,
// while a new folder (SetDownloadDir) applies to new connections.
func (e *Engine) receiverFor(dir string) *transfer.Receiver {
	if r := e.receivers[dir]; r != nil {
		return r
	}
	r := &transfer.Receiver{Dir: dir, Lanes: transfer.DefaultLanes()}
	r.Choose = func(ctx context.Context, o transfer.OfferReceived) ([]int, bool) { return e.decide(ctx, r, o) }
	r.OnEvent = func(ev transfer.Event) { e.onReceiveEvent(r, ev) }
	e.receivers[dir] = r
	return r
}

// senderOf is the sender of an incoming connection, as transfer knows it: a
// web page (its hello says so) never resumes, so what it leaves unfinished
// is removed at once (transfer.Peer.Ephemeral).
func senderOf(c *peer.Conn) transfer.Peer {
	return transfer.Peer{Device: c.Remote.Device, Code: c.Code, Ephemeral: c.Remote.Web}
}

// serveConn serves one incoming connection until it closes: from a device
// on the LAN or through a server, or from a web page (through the LAN
// bridge, or like any device).
func (e *Engine) serveConn(ctx context.Context, c *peer.Conn) {
	defer c.Close()
	from := senderOf(c)
	e.mu.Lock()
	r := e.receiverFor(e.dir)
	e.mu.Unlock()
	err := r.Handle(ctx, from, c)
	switch {
	case err == nil, errors.Is(err, transfer.ErrClosed), errors.Is(err, context.Canceled):
	default:
		// Not a Problem for the user: an offer that was running says how it
		// ended in its item, and a violation outside any offer concerns no
		// one here (transfer also reports, as a violation, data the sender
		// had in flight when we cancelled).
		slog.Warn("engine: receiving ended", slog.String("peer", from.Name), slog.Any("err", err))
	}
}

// decide asks the user about a new offer (Receiver.Choose), unless quick
// save is on, or it comes from a trusted device and auto-accept is on. It
// returns when the user answers, the sender goes away or the engine stops,
// with the top-level entries chosen (nil: all). An offer too large as a
// whole (o.TooBig) is asked about too, as the user may pick a part that
// fits; accepted without asking, it is declined by r as not fitting.
func (e *Engine) decide(ctx context.Context, r *transfer.Receiver, o transfer.OfferReceived) ([]int, bool) {
	p := &pendingOffer{answer: make(chan answer, 1), entries: o.TopCount, size: o.Size, space: r.SpaceFor}
	for _, t := range o.Top {
		p.sizes = append(p.sizes, t.Size)
	}
	var (
		itemID string
		auto   bool
		runCtx context.Context
	)
	func() {
		defer e.lock()()
		runCtx = e.runCtx
		it := e.incoming[o.ID]
		if it == nil || it.State != StateWaiting {
			return // cannot happen: OfferReceived made it
		}
		it.decided = decideAnswered
		trusted := e.trust.IsTrusted(o.From.ID, o.From.Fingerprint)
		if (e.autoAccept && trusted) || e.quickSave {
			auto = true
			return
		}
		itemID = it.ID
		e.offers[itemID] = p
		e.emitItem(it, false)
		kind := o.From.Type
		if !discovery.ValidType(kind) {
			kind = ""
		}
		e.emit(OfferReceived{Offer: Offer{
			ID: it.ID, From: it.Peer, Type: kind, Code: o.From.Code, Trusted: trusted,
			Files: o.Files, Folders: o.Folders, Size: o.Size, First: slices.Clone(o.First), Text: o.Text,
			Entries: offerEntries(o.Top), EntryCount: o.TopCount, TooBig: o.TooBig, Room: o.Room,
		}})
	}()
	if auto {
		slog.Info("engine: accepting without asking", slog.String("peer", o.From.Name))
		return nil, true
	}
	if itemID == "" {
		return nil, false
	}
	var a answer
	end := decideAnswered
	select {
	case a = <-p.answer:
	case <-ctx.Done():
		end = decideSenderLeft
		if runCtx != nil && runCtx.Err() != nil {
			end = decideStopped
		}
	}
	defer e.lock()()
	if e.offers[itemID] == p {
		delete(e.offers, itemID)
	}
	if it := e.byID[itemID]; it != nil {
		it.decided = end
	}
	e.emit(OfferClosed{ID: itemID})
	return a.take, a.ok
}

// offerEntries is the app's view of an offer's top-level entries.
func offerEntries(tops []transfer.TopEntry) []OfferEntry {
	out := make([]OfferEntry, len(tops))
	for i, t := range tops {
		out[i] = OfferEntry{Name: t.Path, Folder: t.Folder, Files: t.Files, Size: t.Size}
	}
	return out
}

// eventID is the transfer id an event is about.
func eventID(ev transfer.Event) string {
	switch ev := ev.(type) {
	case transfer.Accepted:
		return ev.ID
	case transfer.Declined:
		return ev.ID
	case transfer.Progress:
		return ev.ID
	case transfer.FileDone:
		return ev.ID
	case transfer.FolderDone:
		return ev.ID
	case transfer.FileFailed:
		return ev.ID
	case transfer.Paused:
		return ev.ID
	case transfer.Resumed:
		return ev.ID
	case transfer.Interrupted:
		return ev.ID
	case transfer.TransferDone:
		return ev.ID
	}
	return ""
}

// onReceiveEvent maps a Receiver's events to incoming items and messages.
func (e *Engine) onReceiveEvent(r *transfer.Receiver, ev transfer.Event) {
	if e.applyReceiveEvent(r, ev) {
		e.saveHistory()
	}
}

// applyReceiveEvent does onReceiveEvent's work and reports whether an item
// finished.
func (e *Engine) applyReceiveEvent(r *transfer.Receiver, ev transfer.Event) (finished bool) {
	defer e.lock()()
	now := time.Now()
	switch ev := ev.(type) {
	case transfer.OfferReceived:
		e.offerArrived(r, ev, now)
		return false
	case transfer.TextReceived:
		m := Message{ID: ev.ID, Peer: peerOf(ev.From.Device), Text: ev.Text, Time: now}
		e.addMessageLocked(m)
		e.emit(MessageReceived{Message: m})
		return false
	}
	it := e.incoming[eventID(ev)]
	if it == nil || it.rcv != r {
		return false
	}
	if !finishIncoming(it, ev, now) {
		e.updateIncomingLocked(it, ev, now)
		return false
	}
	e.emitItem(it, false)
	e.trimLocked()
	return true
}

// updateIncomingLocked applies an event that moves a running incoming item
// on without ending it; the caller holds e.mu.
func (e *Engine) updateIncomingLocked(it *item, ev transfer.Event, now time.Time) {
	switch ev := ev.(type) {
	case transfer.Accepted:
		if it.State != StatePaused {
			it.State = StateRunning
		}
		it.Skipped = ev.Skipped
		if ev.Files > 0 || len(ev.Skipped) > 0 {
			it.Files = ev.Files
		}
		it.stopClock()
		e.emitItem(it, false)
		if it.offerText != "" {
			// The offer's words are a message too, once the offer is accepted.
			m := Message{ID: it.transferID, Peer: it.Peer, Text: it.offerText, Time: now}
			it.offerText = ""
			e.addMessageLocked(m)
			e.emit(MessageReceived{Message: m})
		}
	case transfer.Progress:
		it.progress(now, ev.Bytes, ev.Total)
		e.emitItem(it, true)
	case transfer.FileDone:
		if !strings.Contains(ev.Name, "/") {
			it.topPaths = append(it.topPaths, ev.Path)
		}
	case transfer.FolderDone:
		if !strings.Contains(ev.Name, "/") {
			it.topPaths = append(it.topPaths, ev.Path)
		}
	case transfer.Paused:
		it.State = StatePaused
		it.stopClock()
		e.emitItem(it, false)
	case transfer.Resumed:
		it.State = StateRunning
		it.stopClock()
		e.emitItem(it, false)
	}
}

// finishIncoming ends it with the state and words an ending event says,
// and reports whether ev was one.
func finishIncoming(it *item, ev transfer.Event, now time.Time) bool {
	name := it.peerName()
	switch ev := ev.(type) {
	case transfer.Declined:
		switch it.decided {
		case decideSenderLeft:
			it.finish(now, StateCancelled, name+" withdrew the offer")
		case decideStopped:
			it.finish(now, StateFailed, "not answered: ThePeerDrop stopped")
		default:
			it.finish(now, StateDeclined, "")
		}
	case transfer.FileFailed:
		if ev.Index >= 0 {
			return false // TransferDone lists them
		}
		// The offer could not even start (the download folder is not writable).
		it.finish(now, StateFailed, "could not save into the download folder: "+ev.Message)
	case transfer.Interrupted:
		msg := "lost the connection to " + name
		if errors.Is(ev.Err, context.Canceled) {
			msg = "interrupted: ThePeerDrop stopped"
		}
		// What arrived is kept: if the sender comes back, the item goes on.
		it.finish(now, StateFailed, msg)
	case transfer.TransferDone:
		switch {
		case ev.Cancelled && it.cancelRequested:
			it.finish(now, StateCancelled, "")
		case ev.Cancelled:
			it.finish(now, StateCancelled, name+" cancelled")
		case len(ev.Failed) > 0:
			it.finish(now, StateFailed, fmt.Sprintf("%d of %d files did not arrive: %s", len(ev.Failed), it.Files, joinNames(ev.Failed)))
		default:
			it.finish(now, StateDone, "")
		}
		it.Paths = existing(it.topPaths)
	default:
		return false
	}
	return true
}

// offerArrived makes (or, for a sender that reconnected, revives) the item
// of an incoming offer; the caller holds e.mu. A new one is reported by
// decide, which knows whether the user is asked.
func (e *Engine) offerArrived(r *transfer.Receiver, o transfer.OfferReceived, now time.Time) {
	if old := e.incoming[o.ID]; o.Resuming && old != nil && old.rcv == r &&
		old.Peer.ID == o.From.ID && old.peerFP == o.From.Fingerprint && e.byID[old.ID] == old {
		old.State, old.Error, old.Finished = StateConnecting, "", time.Time{}
		old.Code = o.From.Code
		old.cancelRequested = false
		old.stopClock()
		e.emitItem(old, false)
		return
	}
	it := &item{
		Item: Item{
			ID: transfer.NewID(), Direction: Incoming, Peer: peerOf(o.From.Device),
			Title: incomingTitle(o), Files: o.Files, Total: o.Size, State: StateWaiting, Started: now,
			Code: o.From.Code,
		},
		transferID: o.ID,
		rcv:        r,
		peerFP:     o.From.Fingerprint,
		offerText:  o.Text,
	}
	if o.Resuming {
		it.State = StateConnecting // no question: it was accepted before (and Accepted follows)
		e.emitItem(it, false)
	}
	e.addItemLocked(it)
	e.incoming[o.ID] = it
}

// existing keeps the paths that are on disk.
func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// joinNames lists a few names for a message.
func joinNames(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}
