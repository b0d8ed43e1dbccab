package engine

// The device list: nearby devices as discovery reports them, with web
// pages, away devices (presence.go) and offline favourites (favourites.go).

import (
	"cmp"
	"slices"
	"strings"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/trust"
)

// onDiscovery applies a change to the nearby list.
func (e *Engine) onDiscovery(ev discovery.Event) {
	defer e.lock()()
	if ev.Kind == discovery.Gone {
		delete(e.nearby, ev.Device.ID)
	} else {
		e.nearby[ev.Device.ID] = ev.Device
		e.noteTypeLocked(ev.Device.ID, ev.Device.Type)
	}
	e.emit(DevicesChanged{Devices: e.devicesLocked()})
}

// devicesLocked is the nearby list with what we know of each; the caller
// holds e.mu.
func (e *Engine) devicesLocked() []Device {
	pins := map[string]trust.Device{}
	for _, p := range e.trust.List() {
		pins[p.ID] = p
	}
	out := make([]Device, 0, len(e.nearby)+len(e.web.pages))
	describe := func(d discovery.Device) Device {
		p, known := pins[d.ID]
		return Device{
			Device:  d,
			Known:   known,
			Trusted: known && p.Trusted && p.Fingerprint == d.Fingerprint,
			Changed: known && p.Fingerprint != d.Fingerprint,
		}
	}
	for _, d := range e.nearby {
		if _, page := e.web.pages[d.ID]; page {
			continue // our own page's advertisement: listed below, reached here
		}
		out = append(out, describe(d))
	}
	for _, d := range e.web.pages {
		dev := describe(d)
		dev.Web = true
		out = append(out, dev)
	}
	out = append(out, e.localSendDevicesLocked()...)
	out = append(out, e.awayDevicesLocked(pins)...)
	out = append(out, e.offlineDevicesLocked(pins)...)
	slices.SortFunc(out, func(a, b Device) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Devices is the nearby list, sorted by name: the devices discovered on
// the LAN, the paired ones away (on the server, not nearby), and the
// trusted ones that are neither (Offline).
func (e *Engine) Devices() []Device {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.devicesLocked()
}
