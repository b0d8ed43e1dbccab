package engine

// Finding paired devices that are not on the LAN: a second connection to
// the server looks them up and lists them as away.

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// presenceLoop looks for paired devices on the server through finder
// until ctx ends or finder's connection does: at once, every
// srv.every, and when asked (srv.refresh). A device found stays away until
// the server says its connection left.
func (e *Engine) presenceLoop(ctx context.Context, finder *rendezvous.Client) {
	e.mu.Lock()
	every := e.srv.every
	// A new connection looks for everyone once more.
	clear(e.srv.misses)
	clear(e.srv.wanted)
	e.mu.Unlock()
	tick := time.NewTicker(every)
	defer tick.Stop()
	e.findPaired(ctx, finder)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-finder.Events():
			if !ok {
				return
			}
			if left, isLeft := ev.(rendezvous.PeerLeft); isLeft && left.Code == "" {
				e.dropAway(left.ClientID)
			}
		case <-tick.C:
			e.findPaired(ctx, finder)
		case <-e.srv.refresh:
			e.findPaired(ctx, finder)
		}
	}
}

// onFound hears that a client claiming device id found us on the server:
// if that is a device paired here and not listed, it is looked for at once
// (the find checks the claim: only the device itself announces its id).
// At most maxFoundPerMinute such lookups a minute: a claim costs one of
// our finds, which the server limits per address, and anyone can claim.
func (e *Engine) onFound(id string) {
	e.mu.Lock()
	_, pinned := e.trust.Pinned(id)
	_, near := e.nearby[id]
	_, away := e.srv.away[id]
	now := time.Now()
	e.srv.foundRecent = slices.DeleteFunc(e.srv.foundRecent, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	look := pinned && !near && !away && !e.srv.wanted[id] && len(e.srv.foundRecent) < maxFoundPerMinute
	if look {
		e.srv.wanted[id] = true
		e.srv.foundRecent = append(e.srv.foundRecent, now)
	}
	e.mu.Unlock()
	if look {
		poke(e.srv.refresh)
	}
}

// findPaired looks for the pinned devices that are neither nearby nor
// known to be on the server: first those that found us, then, in turns,
// those not found lately (each one found nothing waits longer, up to
// maxFindPause).
func (e *Engine) findPaired(ctx context.Context, finder *rendezvous.Client) {
	var look []trust.Device
	func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		// Half a round of slack: a pause of one round is measured from
		// the end of the find, a little after the round that is due.
		soon := time.Now().Add(e.srv.every / 2)
		var missing []trust.Device
		pinned := map[string]bool{}
		for _, d := range e.trust.List() {
			pinned[d.ID] = true
			_, near := e.nearby[d.ID]
			_, away := e.srv.away[d.ID]
			switch m, missed := e.srv.misses[d.ID]; {
			case near || away:
				delete(e.srv.wanted, d.ID)
			case e.srv.wanted[d.ID]:
				look = append(look, d)
			case !missed || !soon.Before(m.next):
				missing = append(missing, d)
			}
		}
		for id := range e.srv.wanted {
			if !pinned[id] { // forgotten meanwhile
				delete(e.srv.wanted, id)
			}
		}
		// A round looks for a few; the next ones take their turn in the
		// next round.
		for i := 0; i < len(missing) && len(look) < maxFindsPerRound; i++ {
			look = append(look, missing[(e.srv.findNext+i)%len(missing)])
		}
		look = look[:min(len(look), maxFindsPerRound)]
	}()
	for _, d := range look {
		fctx, cancel := context.WithTimeout(ctx, findTimeout)
		p, err := finder.Find(fctx, d.ID)
		cancel()
		// Another certificate under that id is not the device we paired
		// with (the handshake would refuse it anyway): a miss too.
		impostor := err == nil && !strings.EqualFold(p.Hello.Fingerprint, d.Fingerprint)
		if err == nil || errors.Is(err, rendezvous.ErrNotFound) {
			// Looked for: the next round starts after it. A round cut
			// short (below) starts the next one where it stopped.
			func() {
				defer e.lock()()
				e.srv.findNext++
				delete(e.srv.wanted, d.ID)
				if err == nil && !impostor {
					delete(e.srv.misses, d.ID)
					return
				}
				m := e.srv.misses[d.ID]
				m.next = time.Now().Add(min(e.srv.every<<min(m.n, 10), max(maxFindPause, e.srv.every)))
				m.n++
				e.srv.misses[d.ID] = m
			}()
		}
		switch {
		case errors.Is(err, rendezvous.ErrNotFound):
			continue
		case err != nil:
			if ctx.Err() == nil {
				slog.Info("engine: looking for paired devices on the server", slog.Any("err", err))
			}
			return // rate limited, or the connection is going: next round
		case impostor:
			continue
		}
		func() {
			defer e.lock()()
			e.srv.away[d.ID] = p
			if _, near := e.nearby[d.ID]; !near {
				e.emit(DevicesChanged{Devices: e.devicesLocked()})
			}
		}()
	}
}

// dropAway forgets the away device whose server connection left.
func (e *Engine) dropAway(clientID string) {
	defer e.lock()()
	for id, p := range e.srv.away {
		if p.ClientID == clientID {
			delete(e.srv.away, id)
			if _, near := e.nearby[id]; !near {
				e.emit(DevicesChanged{Devices: e.devicesLocked()})
			}
		}
	}
}

// awayDevicesLocked lists the away devices that are not nearby, given the
// pins; the caller holds e.mu.
func (e *Engine) awayDevicesLocked(pins map[string]trust.Device) []Device {
	var out []Device
	for id, p := range e.srv.away {
		if _, near := e.nearby[id]; near {
			continue
		}
		pin, known := pins[id]
		if !known || !strings.EqualFold(pin.Fingerprint, p.Hello.Fingerprint) {
			continue
		}
		typ := p.Hello.Type
		if !discovery.ValidType(typ) {
			typ = discovery.TypeDesktop
		}
		out = append(out, Device{
			Device: discovery.Device{Info: discovery.Info{
				Device:  device.Device{ID: id, Name: cmp.Or(p.Hello.Name, pin.Name), Type: typ, Fingerprint: pin.Fingerprint},
				Version: int(signaling.Version),
			}},
			Known:   true,
			Trusted: pin.Trusted,
			Away:    true,
		})
	}
	return out
}
