package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// This device as others see it: its name and type. SetName and SetType
// apply at once: the mDNS advertisement registers again (a goodbye for the
// old record, then the new one), the LAN listener's hello gives the new
// name, the rendezvous server connection is made again (its hello names
// the device), and the web client is served again (its page shows the
// name and type).

// selfState is the name and type; e.selfMu guards it. selfMu is a leaf:
// nothing else is locked while it is held (e.mu may be held when it is
// taken).
type selfState struct {
	name, typ string
	changed   chan struct{} // closed (and replaced) when either changes
}

// peerConfig is the configuration of connections with the current name
// and type.
func (e *Engine) peerConfig() peer.Config {
	e.selfMu.Lock()
	defer e.selfMu.Unlock()
	c := e.peerCfg
	c.Name, c.Type = e.self.name, e.self.typ
	return c
}

// deviceType is this device's current type.
func (e *Engine) deviceType() string {
	e.selfMu.Lock()
	defer e.selfMu.Unlock()
	return e.self.typ
}

// SetName renames this device and applies it at once (see above). The name
// is checked like Config.Name.
func (e *Engine) SetName(name string) error {
	if err := signaling.ValidateName(name); err != nil {
		return fmt.Errorf("name %q: %w", name, err)
	}
	return e.setSelf(name, "")
}

// SetType changes the type this device gives (desktop, laptop, phone,
// tablet, server) and applies it at once, like SetName.
func (e *Engine) SetType(typ string) error {
	if !discovery.ValidType(typ) {
		return fmt.Errorf("device type %q: want desktop, laptop, phone, tablet or server", typ)
	}
	return e.setSelf("", typ)
}

// setSelf changes the name or the type ("" = unchanged) and announces the
// device again where it changed.
func (e *Engine) setSelf(name, typ string) error {
	defer e.lock()()
	if e.stopped {
		return ErrStopped
	}
	e.selfMu.Lock()
	if (name == "" || name == e.self.name) && (typ == "" || typ == e.self.typ) {
		e.selfMu.Unlock()
		return nil
	}
	if name != "" {
		e.self.name = name
	}
	if typ != "" {
		e.self.typ = typ
	}
	close(e.self.changed)
	e.self.changed = make(chan struct{})
	name, typ = e.self.name, e.self.typ
	e.selfMu.Unlock()
	slog.Info("engine: this device changed", slog.String("name", name), slog.String("type", typ))

	if e.ln != nil {
		e.ln.SetSelf(name, typ)
	}
	if e.srv.url != "" {
		// The server knows the device by its hello: connect again.
		e.srv.connected, e.srv.err = false, nil
		e.emit(ServerStatus{URL: e.srv.url})
		poke(e.srv.wake)
	}
	if e.web.listen != "" {
		// The page shows the name and type: serve it again.
		close(e.web.changed)
		e.web.changed = make(chan struct{})
	}
	return nil
}

// runAdvertiser advertises this device over mDNS on port until ctx ends,
// again under the new name or type when they change.
func (e *Engine) runAdvertiser(ctx context.Context, port int) {
	e.serveLatest(ctx, func() (string, <-chan struct{}) {
		e.selfMu.Lock()
		defer e.selfMu.Unlock()
		return e.self.name + "\x00" + e.self.typ, e.self.changed
	}, func(ctx context.Context, _ string) {
		e.selfMu.Lock()
		info := discovery.Info{
			Device:  device.Device{ID: e.id.DeviceID, Name: e.self.name, Type: e.self.typ, Fingerprint: e.id.Fingerprint},
			Version: int(signaling.Version),
		}
		e.selfMu.Unlock()
		adv := &discovery.Advertiser{
			Info: info,
			Port: port,
			OnError: func(err error) {
				e.problem(plainf(err, "This device cannot be announced on the network; others may not see it."))
			},
		}
		if err := adv.Run(ctx); err != nil {
			e.problem(plainf(err, "This device cannot be announced on the network; others will not see it."))
		}
	})
}

// Self is this device.
func (e *Engine) Self() Peer { return Peer{ID: e.id.DeviceID, Name: e.peerConfig().Name} }

// Type is this device's type (discovery.Type*).
func (e *Engine) Type() string { return e.deviceType() }

// Fingerprint is this device's certificate fingerprint.
func (e *Engine) Fingerprint() string { return e.id.Fingerprint }
