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

const (
	// presenceEvery is how often paired devices that are neither nearby
	// nor known to be on the server are looked for there.
	presenceEvery = 30 * time.Second
	// maxFindsPerRound keeps the finds of one round well under the
	// server's presence limit (30 a minute per address).
	maxFindsPerRound = 8
	// findTimeout bounds one find.
	findTimeout = 5 * time.Second
	// maxFindPause caps the pause before a device that was not found is
	// looked for again (presenceEvery, doubling). An app that comes online
	// finds us, and then is looked for at once (Host.OnFound); a CLI
	// receiver does not, so the cap is what it may wait to be listed.
	maxFindPause = 2 * time.Minute
	// maxFoundPerMinute bounds the finds of us that make us look the
	// finder up out of turn (a fifth of the server's presence limit).
	maxFoundPerMinute = 6
)

// findSchedule says which paired devices to look for on the server, and
// when: first those that found us (want), then, in turns of at most
// maxFindsPerRound, those not found lately, each miss in a row doubling
// the pause before the next look (every, up to maxFindPause). The engine's
// lock guards it; now is its clock (time.Now, or a test's).
type findSchedule struct {
	every time.Duration // presenceEvery; tests shorten it
	now   func() time.Time

	next        int                 // where the next round of finds starts
	misses      map[string]findMiss // paired devices not found, by device id
	wanted      map[string]bool     // paired devices that found us: looked for first
	foundRecent []time.Time         // when finds of us made devices wanted, the last minute's
}

// findMiss counts the finds of a device that found nothing in a row, and
// says when to look again.
type findMiss struct {
	n    int
	next time.Time
}

func newFindSchedule(every time.Duration, now func() time.Time) findSchedule {
	return findSchedule{every: every, now: now, misses: map[string]findMiss{}, wanted: map[string]bool{}}
}

// reset forgets the misses and the wants: a new connection looks for
// everyone once more.
func (s *findSchedule) reset() {
	clear(s.misses)
	clear(s.wanted)
}

// want asks for id to be looked for in the next round, ahead of the
// others, and reports whether it will be: not if it is already wanted,
// nor beyond maxFoundPerMinute wants a minute. The caller checks that id
// is paired and neither nearby nor away.
func (s *findSchedule) want(id string) bool {
	now := s.now()
	s.foundRecent = slices.DeleteFunc(s.foundRecent, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	if s.wanted[id] || len(s.foundRecent) >= maxFoundPerMinute {
		return false
	}
	s.wanted[id] = true
	s.foundRecent = append(s.foundRecent, now)
	return true
}

// due lists whom to look for now, at most maxFindsPerRound of the paired
// devices (ids, in the trust store's order): the wanted ones first, then
// the missing ones whose pause is over, in turns. present says whether a
// device is nearby or known to be on the server: it is not looked for.
func (s *findSchedule) due(paired []string, present func(id string) bool) []string {
	// Half a round of slack: a pause of one round is measured from
	// the end of the find, a little after the round that is due.
	soon := s.now().Add(s.every / 2)
	var look, missing []string
	isPaired := map[string]bool{}
	for _, id := range paired {
		isPaired[id] = true
		switch m, missed := s.misses[id]; {
		case present(id):
			delete(s.wanted, id)
		case s.wanted[id]:
			look = append(look, id)
		case !missed || !soon.Before(m.next):
			missing = append(missing, id)
		}
	}
	for id := range s.wanted {
		if !isPaired[id] { // forgotten meanwhile
			delete(s.wanted, id)
		}
	}
	// A round looks for a few; the next ones take their turn in the
	// next round.
	for i := 0; i < len(missing) && len(look) < maxFindsPerRound; i++ {
		look = append(look, missing[(s.next+i)%len(missing)])
	}
	return look[:min(len(look), maxFindsPerRound)]
}

// looked records a find of id that got an answer: found, or not (nobody
// there, or another certificate under that id). The next round starts
// after it; a round cut short starts the next one where it stopped.
func (s *findSchedule) looked(id string, found bool) {
	s.next++
	delete(s.wanted, id)
	if found {
		delete(s.misses, id)
		return
	}
	m := s.misses[id]
	m.next = s.now().Add(min(s.every<<min(m.n, 10), max(maxFindPause, s.every)))
	m.n++
	s.misses[id] = m
}

// presenceLoop looks for paired devices on the server through finder
// until ctx ends or finder's connection does: at once, every
// srv.finds.every, and when asked (srv.refresh). A device found stays away until
// the server says its connection left.
func (e *Engine) presenceLoop(ctx context.Context, finder *rendezvous.Client) {
	e.mu.Lock()
	every := e.srv.finds.every
	e.srv.finds.reset()
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
	look := pinned && !near && !away && e.srv.finds.want(id)
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
		pinned := map[string]trust.Device{}
		var ids []string
		for _, d := range e.trust.List() {
			pinned[d.ID] = d
			ids = append(ids, d.ID)
		}
		present := func(id string) bool {
			_, near := e.nearby[id]
			_, away := e.srv.away[id]
			return near || away
		}
		for _, id := range e.srv.finds.due(ids, present) {
			look = append(look, pinned[id])
		}
	}()
	for _, d := range look {
		fctx, cancel := context.WithTimeout(ctx, findTimeout)
		p, err := finder.Find(fctx, d.ID)
		cancel()
		// Another certificate under that id is not the device we paired
		// with (the handshake would refuse it anyway): a miss too.
		impostor := err == nil && !strings.EqualFold(p.Hello.Fingerprint, d.Fingerprint)
		if err == nil || errors.Is(err, rendezvous.ErrNotFound) {
			func() {
				defer e.lock()()
				e.srv.finds.looked(d.ID, err == nil && !impostor)
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
