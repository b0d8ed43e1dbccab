package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/localsend"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// perAddressTimeout bounds one attempt when a device has several addresses.
const perAddressTimeout = 5 * time.Second

// textTimeout bounds sending one text message, connection included.
const textTimeout = 30 * time.Second

// DialFirst tries addrs in order and returns the first connection and its
// address. A refusal by the peer itself, or by check (identity changed), is
// not retried elsewhere; every address but the last gets perAddressTimeout.
func DialFirst(ctx context.Context, addrs []string, cfg peer.Config, check func(signaling.Hello) error) (*peer.Conn, string, error) {
	if len(addrs) == 0 {
		return nil, "", errors.New("no address to connect to")
	}
	var errs []error
	for i, addr := range addrs {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if i < len(addrs)-1 {
			actx, cancel = context.WithTimeout(ctx, perAddressTimeout)
		}
		c, err := peer.Dial(actx, addr, cfg, check)
		cancel()
		if err == nil {
			return c, addr, nil
		}
		if ctx.Err() != nil || IsPermanent(err) {
			return nil, "", err
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, "", errs[0]
	}
	return nil, "", fmt.Errorf("no address answered: %w", errors.Join(errs...))
}

// IsPermanent reports whether trying again (or elsewhere) will not help:
// the peer refused us on purpose, or our own check refused it.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	var r interface{ RemoteRefused() bool }
	return (errors.As(err, &p) && p.Permanent()) || (errors.As(err, &r) && r.RemoteRefused())
}

// sendCheck is the handshake check for a connection we open: the device
// must be the one we mean (when we know its id) and pass trust on first use.
func (e *Engine) sendCheck(wantID string) func(signaling.Hello) error {
	return checkWanted(wantID, e.checkPeer)
}

func (e *Engine) send(to Target, paths []string) (Item, error) {
	if len(paths) == 0 {
		return Item{}, errors.New("send: nothing to send")
	}
	e.mu.Lock()
	wait := e.waitsLocked(to)
	e.mu.Unlock()
	if !wait {
		if err := e.reachable(to); err != nil {
			return Item{}, fmt.Errorf("send to %w", err)
		}
	}
	abs := make([]string, 0, len(paths))
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return Item{}, fmt.Errorf("send %s: %w", p, err)
		}
		abs = append(abs, a)
	}
	offer, err := transfer.NewOffer(abs, "")
	if err != nil {
		return Item{}, fmt.Errorf("send: %w", err)
	}
	t, files := offerTitle(offer)
	it := &item{
		Item: Item{
			ID: transfer.NewID(), Direction: Outgoing, Peer: to.peer(),
			Title: t, Files: files, Total: offer.TotalSize(), State: StateConnecting,
			Paths: abs, Started: time.Now(),
		},
		target: Target{ID: to.ID, Name: to.Name, Addrs: slices.Clone(to.Addrs), PIN: to.PIN},
	}
	defer e.lock()()
	if e.stopped {
		return Item{}, fmt.Errorf("send: %w", ErrStopped)
	}
	if e.waitsLocked(it.target) {
		// A trusted device that is off: the send waits for it (favourites.go).
		if e.waitingLocked() >= maxWaitingSends {
			return Item{}, fmt.Errorf("send to %s: %w (%d)", it.peerName(), ErrTooManyWaiting, maxWaitingSends)
		}
		it.State = StateWaiting
		e.addItemLocked(it)
		e.emitItem(it, false)
		return it.snapshot(), nil
	}
	e.addItemLocked(it)
	e.startSendLocked(it, offer)
	e.emitItem(it, false)
	return it.snapshot(), nil
}

// startSendLocked runs a new attempt at sending it; the caller holds e.mu
// and has checked that the engine has not stopped.
func (e *Engine) startSendLocked(it *item, offer *transfer.Offer) {
	it.gen++
	gen, id, target := it.gen, it.ID, it.target
	it.transferID = offer.ID
	it.connected, it.accepted, it.cancelRequested = false, false, false
	ctx, cancel := context.WithCancel(e.root)
	it.cancel = cancel
	// Only the sender's goroutine dials: want needs no lock. Once a device
	// known only by address has answered, reconnects must reach the same one.
	want := target.ID
	rd := &remoteDial{e: e, id: target.ID}
	lanes := newLaneDialer(e.peerConfig, e.checkPeer)
	viaLocalSend := false
	dial := func(ctx context.Context) (transfer.Link, error) {
		if d, n, ok := e.localSendDevice(target.ID); ok {
			viaLocalSend = true
			link, h, err := e.dialLocalSend(ctx, n, d, target.PIN)
			if err == nil {
				e.onConnected(id, gen, h, "")
			}
			return link, err
		}
		if viaLocalSend {
			// A LocalSend device is reached only with LocalSend: not by
			// our handshake, nor through a server.
			return nil, &lsError{errLocalSendGone}
		}
		c, addr, err := e.dialTarget(ctx, target, want, rd)
		if err != nil {
			return nil, err
		}
		want = c.Remote.ID
		lanes.reached(c, addr, addr != "server")
		slog.Debug("engine: connected", slog.String("item", id), slog.String("addr", addr))
		e.onConnected(id, gen, c.Remote, c.Code)
		return c, nil
	}
	opts := transfer.SendOptions{
		Offer:   offer,
		Dial:    dial,
		OnEvent: func(ev transfer.Event) { e.onSendEvent(id, gen, ev) },
	}
	laneOptions(&opts, lanes)
	s := transfer.NewSender(opts)
	it.sender = s
	e.work.Go(func() {
		defer cancel()
		defer rd.close()
		res, err := s.Run(ctx)
		e.finishSend(id, gen, res, err)
	})
}

// current returns the item of attempt gen, or nil when it has moved on;
// the caller holds e.mu.
func (e *Engine) current(id string, gen int) *item {
	it := e.byID[id]
	if it == nil || it.gen != gen {
		return nil
	}
	return it
}

// onConnected notes that an attempt reached the device.
func (e *Engine) onConnected(id string, gen int, h signaling.Hello, code string) {
	defer e.lock()()
	it := e.current(id, gen)
	if it == nil {
		return
	}
	it.connected = true
	changed := it.Code != code
	it.Code = code
	if it.Peer.ID == "" {
		it.Peer.ID, it.target.ID, changed = h.ID, h.ID, true
	}
	if it.Peer.Name == "" {
		it.Peer.Name, it.target.Name, changed = h.Name, h.Name, true
	}
	if changed {
		e.emitItem(it, false)
	}
}

// onSendEvent maps the sender's events to the item. The final state comes
// from Run's result (finishSend), not from here.
func (e *Engine) onSendEvent(id string, gen int, ev transfer.Event) {
	defer e.lock()()
	it := e.current(id, gen)
	if it == nil {
		return
	}
	switch ev := ev.(type) {
	case transfer.Accepted:
		it.accepted = true
		it.Skipped = ev.Skipped
		if ev.Files > 0 || len(ev.Skipped) > 0 {
			it.Files = ev.Files
		}
		if it.State != StatePaused {
			it.State = StateRunning
		}
		it.stopClock()
		e.emitItem(it, false)
	case transfer.Progress:
		it.progress(time.Now(), ev.Bytes, ev.Total)
		e.emitItem(it, true)
	case transfer.Paused:
		it.State = StatePaused
		it.stopClock()
		e.emitItem(it, false)
	case transfer.Resumed:
		it.State = StateConnecting
		if it.accepted {
			it.State = StateRunning
		}
		it.stopClock()
		e.emitItem(it, false)
	case transfer.Reconnecting:
		if it.State != StatePaused {
			it.State = StateConnecting
		}
		it.accepted = false // the receiver answers again on the new link
		it.stopClock()
		e.emitItem(it, false)
	case transfer.TextReceived:
		m := Message{ID: ev.ID, Peer: it.Peer, Text: ev.Text, Time: time.Now()}
		e.addMessageLocked(m)
		e.emit(MessageReceived{Message: m})
	}
}

// finishSend records how an attempt ended.
func (e *Engine) finishSend(id string, gen int, res transfer.Result, err error) {
	func() {
		defer e.lock()()
		it := e.current(id, gen)
		if it == nil {
			return
		}
		it.sender, it.cancel = nil, nil
		stopping := e.root.Err() != nil
		state, msg := sendOutcome(it, res, err, stopping)
		if err != nil {
			slog.Info("engine: send ended", slog.String("item", id), slog.String("state", string(state)), slog.Any("err", err))
		}
		if it.fromWaiting && !it.connected && state == StateFailed && !stopping {
			// What appeared was not the device (another one advertising
			// its id at its own address), or it went again: wait on.
			it.fromWaiting = false
			it.State, it.Error = StateWaiting, ""
			e.emitItem(it, false)
			return
		}
		it.fromWaiting = false
		it.finish(time.Now(), state, msg)
		e.emitItem(it, false)
		e.trimLocked()
	}()
	e.saveHistory()
}

// sendOutcome is the final state of a send attempt and, unless it worked,
// why, in plain words. stopping: the engine is stopping.
func sendOutcome(it *item, res transfer.Result, err error, stopping bool) (State, string) {
	name := it.peerName()
	switch {
	case err == nil:
		return StateDone, ""
	case errors.Is(err, transfer.ErrIncomplete):
		names := make([]string, 0, len(res.Failed))
		for _, f := range res.Failed {
			names = append(names, f.Name)
		}
		return StateFailed, fmt.Sprintf("%d of %d files did not arrive: %s", len(res.Failed), res.Files, joinNames(names))
	case errors.Is(err, transfer.ErrDeclined):
		var de *transfer.DeclinedError
		if errors.As(err, &de) && de.Reason != "" && de.Reason != "declined by the receiver" {
			return StateDeclined, name + " declined: " + de.Reason
		}
		return StateDeclined, name + " declined"
	case it.cancelRequested:
		// Whatever error followed our cancel is its consequence.
		return StateCancelled, ""
	case errors.Is(err, transfer.ErrCancelled):
		return StateCancelled, name + " cancelled"
	case stopping:
		return StateFailed, "interrupted: ThePeerDrop stopped"
	}
	return StateFailed, describeSendError(name, err, it.connected)
}

// describeSendError says in plain words why a connection to name failed.
func describeSendError(name string, err error, connected bool) string {
	var (
		wd *wrongDeviceError
		re *signaling.RemoteError
		pe *transfer.ProtocolError
	)
	var se *serverError
	var me interface{ Permanent() bool }
	switch {
	case errors.Is(err, localsend.ErrNotEncrypted):
		return name + " is a LocalSend device without encryption (HTTP): allow unencrypted LocalSend devices in Settings (or --localsend-http) to send to it"
	case errors.Is(err, errLocalSendGone):
		return "lost " + name + ": " + errLocalSendGone.Error()
	case isLocalSend(err) && errors.Is(err, trust.ErrIdentityChanged):
		return "refused: " + name + "'s identity changed (its LocalSend certificate is not the one it had before)"
	case isLocalSend(err) && errors.As(err, &me) && me.Permanent():
		return "refused: " + name + "'s certificate does not match the one it announced"
	case isLocalSend(err):
		return "could not reach " + name + " (LocalSend): " + err.Error()
	case errors.Is(err, remote.ErrNotOnline):
		return name + " is not connected to the server (it is off, or has no server set)"
	case errors.Is(err, errNoRoute):
		return "no way to reach " + name + ": it is not on this network (pair it and set a server to reach it elsewhere)"
	case errors.As(err, &se):
		return "could not reach the server to connect to " + name
	case errors.Is(err, pairing.ErrFingerprintSwapped):
		return "refused: the server (or someone between) swapped " + name + "'s certificate"
	case errors.Is(err, trust.ErrIdentityChanged):
		return name + "'s identity changed: compare the verification code and re-pair"
	case errors.As(err, &wd):
		return fmt.Sprintf("another device (%s) answered at %s's address", wd.got.Name, name)
	case errors.As(err, &re) && re.RemoteRefused():
		if strings.Contains(re.Message, remote.ErrNotPaired.Error()) {
			return name + " does not know this device any more: pair again with a code"
		}
		if strings.Contains(re.Message, "identity changed") {
			return name + " knows this device by another identity: compare the verification code and re-pair"
		}
		return fmt.Sprintf("%s refused the connection: %s", name, re.Message)
	case errors.As(err, &pe) && pe.Remote:
		return fmt.Sprintf("%s stopped the transfer: %s", name, pe.Reason)
	case errors.As(err, &pe):
		return fmt.Sprintf("%s broke the transfer protocol: %s", name, pe.Reason)
	case !connected:
		if msg, ok := connectFailure(name, err); ok {
			return msg
		}
		return "could not reach " + name
	}
	return "lost the connection to " + name
}

func (e *Engine) sendText(to Target, text string) (Message, error) {
	if text == "" || len(text) > transfer.MaxTextBytes {
		return Message{}, fmt.Errorf("send text: a message must be 1 to %d bytes", transfer.MaxTextBytes)
	}
	if err := e.reachable(to); err != nil {
		return Message{}, fmt.Errorf("send text to %w", err)
	}
	m := Message{ID: transfer.NewID(), Peer: to.peer(), Text: text, Time: time.Now(), Outgoing: true}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return Message{}, fmt.Errorf("send text: %w", ErrStopped)
	}
	e.addMessageLocked(m)
	to.Addrs = slices.Clone(to.Addrs)
	e.work.Go(func() {
		ctx, cancel := context.WithTimeout(e.root, textTimeout)
		defer cancel()
		rd := &remoteDial{e: e, id: to.ID}
		defer rd.close()
		var remote signaling.Hello
		if d, n, ok := e.localSendDevice(to.ID); ok {
			link, h, err := e.dialLocalSend(ctx, n, d, to.PIN)
			if err == nil {
				remote = h
				_, err = transfer.SendText(ctx, link, text)
				_ = link.Close()
			}
			e.textSent(m, remote, err)
			return
		}
		c, _, err := e.dialTarget(ctx, to, to.ID, rd)
		if err == nil {
			remote = c.Remote
			_, err = transfer.SendText(ctx, c, text)
			_ = c.Close()
		}
		e.textSent(m, remote, err)
	})
	return m, nil
}

// textSent records how sending m ended and reports it.
func (e *Engine) textSent(m Message, remote signaling.Hello, err error) {
	defer e.lock()()
	old := m.Peer.ID
	if m.Peer.ID == "" && remote.ID != "" {
		m.Peer.ID = remote.ID
	}
	if m.Peer.Name == "" {
		m.Peer.Name = remote.Name
	}
	if err != nil {
		slog.Info("engine: text not delivered", slog.Any("err", err))
		name := cmp.Or(m.Peer.Name, "the other device")
		switch {
		case errors.Is(err, context.Canceled):
			m.Err = "not sent: ThePeerDrop stopped"
		case remote.ID != "" && !IsPermanent(err):
			m.Err = name + " did not confirm the message"
		default:
			m.Err = describeSendError(name, err, false)
		}
	}
	// Put it where it belongs now (its peer may be known only now).
	conv := e.messages[old]
	if i := slices.IndexFunc(conv, func(x Message) bool { return x.ID == m.ID }); i >= 0 {
		if old == m.Peer.ID {
			conv[i] = m
		} else {
			e.messages[old] = slices.Delete(conv, i, i+1)
			e.addMessageLocked(m)
		}
	} else {
		e.addMessageLocked(m)
	}
	e.emit(MessageReceived{Message: m})
}

// control pauses, resumes or cancels an item.
func (e *Engine) control(itemID, action string) error {
	if done, err := e.cancelWaiting(itemID, action); done {
		return err
	}
	defer e.lock()()
	it := e.byID[itemID]
	if it == nil {
		return fmt.Errorf("%s %s: %w", action, itemID, ErrUnknownItem)
	}
	if it.State.Finished() {
		return fmt.Errorf("%s %s: it has finished: %w", action, itemID, ErrNotActive)
	}
	if it.Direction == Outgoing {
		s := it.sender
		if s == nil {
			return fmt.Errorf("%s %s: %w", action, itemID, ErrNotActive)
		}
		switch action {
		case "pause":
			s.Pause()
		case "resume":
			s.Resume()
		case "cancel":
			it.cancelRequested = true
			if !it.accepted {
				// Dialing, waiting for the answer or reconnecting: the
				// sender may not read commands for a while; dropping the
				// link is the answer (the receiver's question closes).
				it.cancel()
			} else {
				s.Cancel()
			}
		}
		return nil
	}
	if it.State == StateWaiting {
		if action != "cancel" {
			return fmt.Errorf("%s %s: it waits for your answer: %w", action, itemID, ErrNotActive)
		}
		if p := e.offers[it.ID]; p != nil {
			delete(e.offers, it.ID)
			p.answer <- answer{}
		}
		return nil
	}
	ok := false
	switch action {
	case "pause":
		ok = it.rcv.Pause(it.transferID)
	case "resume":
		ok = it.rcv.Resume(it.transferID)
	case "cancel":
		it.cancelRequested = true
		ok = it.rcv.Cancel(it.transferID)
	}
	if !ok {
		return fmt.Errorf("%s %s: it is not being received now: %w", action, itemID, ErrNotActive)
	}
	return nil
}

// retry starts a finished send again, in the same item.
func (e *Engine) retry(itemID string) error {
	e.mu.Lock()
	it := e.byID[itemID]
	switch {
	case it == nil:
		e.mu.Unlock()
		return fmt.Errorf("retry %s: %w", itemID, ErrUnknownItem)
	case it.Direction != Outgoing:
		e.mu.Unlock()
		return fmt.Errorf("retry %s: only a send can be retried: %w", itemID, ErrNotActive)
	case it.State != StateFailed && it.State != StateCancelled && it.State != StateDeclined:
		e.mu.Unlock()
		return fmt.Errorf("retry %s: it is %s: %w", itemID, it.State, ErrNotActive)
	}
	paths := slices.Clone(it.Paths)
	e.mu.Unlock()

	// Read the files again outside the lock: they may have changed.
	offer, err := transfer.NewOffer(paths, "")
	if err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	func() {
		defer e.lock()()
		if e.stopped {
			err = fmt.Errorf("retry: %w", ErrStopped)
			return
		}
		if e.byID[itemID] != it || it.sender != nil || !it.State.Finished() || it.State == StateDone {
			err = fmt.Errorf("retry %s: it changed meanwhile: %w", itemID, ErrNotActive)
			return
		}
		// A device seen nearby now may have moved: try where it is first.
		if d, ok := e.nearby[it.target.ID]; ok && it.target.ID != "" {
			fresh := d.Addresses()
			for _, a := range it.target.Addrs {
				if !slices.Contains(fresh, a) {
					fresh = append(fresh, a)
				}
			}
			it.target.Addrs = fresh
		}
		t, files := offerTitle(offer)
		it.Title, it.Files, it.Total, it.Bytes = t, files, offer.TotalSize(), 0
		it.State, it.Error, it.Finished, it.Started = StateConnecting, "", time.Time{}, time.Now()
		it.stopClock()
		if e.waitsLocked(it.target) {
			it.State = StateWaiting // its device is off: wait for it
		} else {
			e.startSendLocked(it, offer)
		}
		e.emitItem(it, false)
	}()
	if err == nil {
		e.saveHistory() // it is not finished any more
	}
	return err
}

// Send queues an offer of paths (files and folders) to a device and starts
// it; the returned Item is already in the queue. Paths that cannot be sent
// are an error, and then nothing is queued.
func (e *Engine) Send(to Target, paths []string) (Item, error) { return e.send(to, paths) }

// SendText sends a text message. The Message returned is in the
// conversation at once; delivery is reported by MessageReceived with the
// same ID, Err set when it failed.
func (e *Engine) SendText(to Target, text string) (Message, error) { return e.sendText(to, text) }
