package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// Favourites: trusted devices stay in the device list while they are away
// from the LAN and off the server (Device.Offline), and a send to one of
// them waits in the queue (StateWaiting) until it appears: discovered
// nearby, registered as a page, or found on the server. Waiting sends live
// in memory only; when the engine stops they fail ("ThePeerDrop stopped").

// maxWaitingSends bounds the sends that wait for their device.
const maxWaitingSends = 100

// maxSeenTypes bounds the device types remembered for offline devices.
const maxSeenTypes = 1024

// ErrTooManyWaiting: maxWaitingSends sends already wait for their devices.
var ErrTooManyWaiting = errors.New("too many sends are waiting for their devices")

// presentLocked says whether device id can be tried now: discovered
// nearby, a page of our web client, or on the server; the caller holds
// e.mu.
func (e *Engine) presentLocked(id string) bool {
	_, near := e.nearby[id]
	_, page := e.web.pages[id]
	_, away := e.srv.away[id]
	return near || page || away
}

// waitsLocked says whether a send to t waits for its device: t is a
// trusted device, named by id with no addresses of its own (as TargetOf
// gives for an offline one), that is not present. The caller holds e.mu.
func (e *Engine) waitsLocked(t Target) bool {
	if t.ID == "" || len(t.Addrs) > 0 || e.presentLocked(t.ID) {
		return false
	}
	d, ok := e.trust.Pinned(t.ID)
	return ok && d.Trusted
}

// waitingLocked counts the sends waiting for their device.
func (e *Engine) waitingLocked() int {
	n := 0
	for _, it := range e.items {
		if it.Direction == Outgoing && it.State == StateWaiting {
			n++
		}
	}
	return n
}

// offlineDevicesLocked lists the trusted devices that are not present,
// given the pins; the caller holds e.mu.
func (e *Engine) offlineDevicesLocked(pins map[string]trust.Device) []Device {
	var out []Device
	for id, p := range pins {
		if !p.Trusted || e.presentLocked(id) {
			continue
		}
		out = append(out, Device{
			Device: discovery.Device{Info: discovery.Info{
				Device:  device.Device{ID: id, Name: cmp.Or(p.Name, id), Type: e.seenType[id], Fingerprint: p.Fingerprint},
				Version: int(signaling.Version),
			}},
			Known:   true,
			Trusted: true,
			Offline: true,
		})
	}
	return out
}

// noteTypeLocked remembers the type a device was last seen with, for when
// it is offline; the caller holds e.mu. Only for trusted devices, the only
// ones listed offline: a flood of advertised ids stores nothing.
func (e *Engine) noteTypeLocked(id, typ string) {
	if !discovery.ValidType(typ) || e.seenType[id] == typ {
		return
	}
	if d, ok := e.trust.Pinned(id); !ok || !d.Trusted {
		return
	}
	if len(e.seenType) >= maxSeenTypes {
		clear(e.seenType) // rare: a LAN with a thousand devices
	}
	e.seenType[id] = typ
}

// runWaiting starts the waiting sends whose device has appeared, at once
// and whenever the device list changes, until ctx ends.
func (e *Engine) runWaiting(ctx context.Context) {
	for {
		e.startWaiting()
		select {
		case <-ctx.Done():
			return
		case <-e.waitWake:
		}
	}
}

// startWaiting starts the waiting sends whose device is present now. The
// files are read again (they may have changed while it waited).
func (e *Engine) startWaiting() {
	e.mu.Lock()
	var ready []*item
	for _, it := range e.items {
		if it.Direction == Outgoing && it.State == StateWaiting && it.sender == nil && e.presentLocked(it.target.ID) {
			ready = append(ready, it)
		}
	}
	e.mu.Unlock()
	for _, it := range ready {
		e.mu.Lock()
		paths := slices.Clone(it.Paths)
		e.mu.Unlock()
		offer, err := transfer.NewOffer(paths, "")
		failed := false
		func() {
			defer e.lock()()
			if e.stopped || e.byID[it.ID] != it || it.State != StateWaiting || !e.presentLocked(it.target.ID) {
				return
			}
			if err != nil {
				slog.Info("engine: a waiting send cannot start", slog.String("item", it.ID), slog.Any("err", err))
				it.finish(time.Now(), StateFailed, fmt.Sprintf("the files changed while it waited: %v", err))
				e.emitItem(it, false)
				failed = true
				return
			}
			slog.Info("engine: the device appeared, sending", slog.String("item", it.ID), slog.String("device", it.target.ID))
			t, files := offerTitle(offer)
			it.Title, it.Files, it.Total = t, files, offer.TotalSize()
			it.State, it.Started = StateConnecting, time.Now()
			it.fromWaiting = true
			e.startSendLocked(it, offer)
			e.emitItem(it, false)
		}()
		if failed {
			e.saveHistory()
		}
	}
}

// cancelWaiting cancels a send that waits for its device; done says
// whether itemID is one (or was asked something else it cannot do).
func (e *Engine) cancelWaiting(itemID, action string) (done bool, err error) {
	func() {
		defer e.lock()()
		it := e.byID[itemID]
		if it == nil || it.Direction != Outgoing || it.State != StateWaiting || it.sender != nil {
			return
		}
		done = true
		if action != "cancel" {
			err = fmt.Errorf("%s %s: it waits for %s to appear: %w", action, itemID, it.peerName(), ErrNotActive)
			return
		}
		it.finish(time.Now(), StateCancelled, "")
		e.emitItem(it, false)
		e.trimLocked()
	}()
	if done && err == nil {
		e.saveHistory()
	}
	return done, err
}

// failWaitingLocked ends the sends still waiting when the engine stops;
// it reports whether there were any. The caller holds e.mu.
func (e *Engine) failWaitingLocked() bool {
	any := false
	for _, it := range e.items {
		if it.Direction == Outgoing && it.State == StateWaiting && it.sender == nil {
			it.finish(time.Now(), StateFailed, "not sent: ThePeerDrop stopped before "+it.peerName()+" appeared")
			e.emitItem(it, false)
			any = true
		}
	}
	return any
}
