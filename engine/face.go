package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/localsend"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// Headless is the engine for a face without a window (the peerdrop
// command): one run does one thing (receive, send, list devices) on this
// device's identity and pinned devices, and reports what happens through
// OnEvent. The face keeps only flags, prompts and printing.
type Headless struct {
	cfg   peer.Config
	trust *trust.Store
	typ   string
	// ls: whether runs speak LocalSend (face_localsend.go); lsPins its
	// devices' pinned fingerprints.
	ls     LocalSendOptions
	lsPins *localsend.Pins

	// OnEvent gets every event of a run (face_events.go), in order, from
	// the run's goroutines; it must not block for long.
	OnEvent func(any)
}

// BadInputError is a mistake in what the face was given (a --to that is
// not an address, a malformed code): the command line is wrong, not the
// network.
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string { return e.Err.Error() }
func (e *BadInputError) Unwrap() error { return e.Err }

func badInput(err error) error { return &BadInputError{Err: err} }

// DefaultPort is the LAN handshake's port unless told otherwise.
const DefaultPort = signaling.DefaultPort

// PinnedDevice is a device this one has met: its pinned identity.
type PinnedDevice = trust.Device

// DetectType guesses this machine's device type (desktop, laptop, ...).
func DetectType() string { return discovery.DetectType() }

// ServerURL reads a rendezvous server address as a user types it.
func ServerURL(s string) (string, error) { return remote.ServerURL(s) }

// OpenHeadless loads (or creates) the identity and the pinned devices in
// configDir. name and typ are what other devices see.
func OpenHeadless(configDir, name, typ string) (*Headless, error) {
	if err := device.ValidateName(name); err != nil {
		return nil, badInput(fmt.Errorf("--name: %w", err))
	}
	if !device.ValidType(typ) {
		return nil, badInput(fmt.Errorf("--type %q: want desktop, laptop, phone, tablet or server", typ))
	}
	id, err := identity.Load(configDir)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	pins, err := trust.Open(configDir)
	if err != nil {
		return nil, fmt.Errorf("load trusted devices: %w", err)
	}
	lsPins, err := localsend.OpenPins(configDir)
	if err != nil {
		return nil, err
	}
	h := &Headless{trust: pins, lsPins: lsPins, typ: typ, cfg: peer.Config{Identity: id, Name: name, Type: typ}}
	h.cfg.OnPath = func(ev peer.PathEvent) {
		h.report(PathChanged{Restored: ev.Restored, Restarts: ev.Restarts, Local: ev.Local, Remote: ev.Remote})
	}
	h.cfg.OnProven = func(hello signaling.Hello) error { return pins.Pin(hello.ID, hello.Name, hello.Fingerprint) }
	return h, nil
}

// Close saves what changed about pinned devices.
func (h *Headless) Close() error {
	if err := h.trust.Close(); err != nil {
		slog.Warn("save trusted devices", slog.Any("err", err))
		return err
	}
	return nil
}

// Self is this device: its id, name, type and fingerprint.
func (h *Headless) Self() device.Device {
	return device.Device{ID: h.cfg.Identity.DeviceID, Name: h.cfg.Name, Type: h.typ, Fingerprint: h.cfg.Identity.Fingerprint}
}

func (h *Headless) report(ev any) {
	if h.OnEvent != nil {
		h.OnEvent(ev)
	}
}

func (h *Headless) warn(err error) { h.report(Warning{Err: err}) }

// checkPeer is the check at hello time: it refuses a known device that
// comes with another certificate and stores nothing (a hello is a claim).
func (h *Headless) checkPeer(hello signaling.Hello) error {
	return h.trust.Verify(hello.ID, hello.Fingerprint)
}

// describe adds what the pinned devices say to a discovered device.
func (h *Headless) describe(d discovery.Device) Device {
	p, known := h.trust.Pinned(d.ID)
	return Device{
		Device:  d,
		Known:   known,
		Trusted: known && p.Trusted && p.Fingerprint == d.Fingerprint,
		Changed: known && p.Fingerprint != d.Fingerprint,
	}
}

// TrustMark says how this device knows d: "trusted", "known" (pinned),
// "identity changed" or "new".
func TrustMark(d Device) string {
	switch {
	case d.Changed:
		return "identity changed"
	case d.Trusted:
		return "trusted"
	case d.Known:
		return "known"
	}
	return "new"
}

// DeviceChange is one change to the nearby list: Kind is "appeared",
// "updated" or "gone".
type DeviceChange struct {
	Kind   string
	Device Device
}

// Devices looks for nearby devices for wait and lists them.
func (h *Headless) Devices(ctx context.Context, wait time.Duration) ([]Device, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := newBrowser(h.cfg.Identity.DeviceID, h.trust, nil)
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	var ls []Device
	lsErr := make(chan error, 1)
	go func() {
		if !h.ls.On {
			lsErr <- nil
			return
		}
		var err error
		ls, err = h.localSendDevices(ctx, wait)
		lsErr <- err
	}()
	select {
	case err := <-errc:
		cancel()
		<-lsErr
		if err != nil {
			return nil, fmt.Errorf("look for nearby devices: %w", err)
		}
		return nil, ctx.Err()
	case <-time.After(wait):
	case <-ctx.Done():
	}
	list := b.Devices()
	if err := <-lsErr; err != nil {
		h.warn(err)
	}
	cancel()
	<-errc
	out := make([]Device, len(list), len(list)+len(ls))
	for i, d := range list {
		out[i] = h.describe(d)
	}
	for _, d := range ls {
		if !slices.ContainsFunc(list, func(n discovery.Device) bool { return n.Fingerprint == d.Fingerprint }) {
			out = append(out, d) // not one of ours that speaks LocalSend too
		}
	}
	return out, nil
}

// WatchDevices reports every change to the nearby list until ctx ends.
func (h *Headless) WatchDevices(ctx context.Context, onChange func(DeviceChange)) error {
	b := newBrowser(h.cfg.Identity.DeviceID, h.trust, nil)
	b.OnEvent = func(ev discovery.Event) {
		onChange(DeviceChange{Kind: ev.Kind.String(), Device: h.describe(ev.Device)})
	}
	if err := b.Run(ctx); err != nil {
		return fmt.Errorf("look for nearby devices: %w", err)
	}
	return nil
}

// resolveSettle: after the first device that matches appears, how long to
// keep listening for another one with the same name.
const resolveSettle = 500 * time.Millisecond

// findDevice browses until query names a device, or until wait is over.
func (h *Headless) findDevice(ctx context.Context, query string, wait time.Duration) (discovery.Device, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	found := make(chan struct{})
	b := newBrowser(h.cfg.Identity.DeviceID, h.trust, nil)
	b.OnEvent = func(ev discovery.Event) {
		if ev.Kind == discovery.Gone {
			return
		}
		if _, err := discovery.Resolve([]discovery.Device{ev.Device}, query); err == nil {
			once.Do(func() { close(found) })
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case err := <-errc:
		if err != nil {
			return discovery.Device{}, fmt.Errorf("look for %q nearby: %w", query, err)
		}
	case <-found:
		select {
		case <-time.After(resolveSettle):
		case <-ctx.Done():
		}
	case <-deadline.C:
	case <-ctx.Done():
	}
	list := b.Devices()
	cancel()
	<-errc
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return discovery.Device{}, err
	}
	return discovery.Resolve(list, query)
}

// Pinned lists the pinned devices.
func (h *Headless) Pinned() []PinnedDevice { return h.trust.List() }

// FindPinned finds a pinned device by id, unique id prefix or name.
func (h *Headless) FindPinned(query string) (PinnedDevice, error) {
	list := h.trust.List()
	devs := make([]discovery.Device, 0, len(list))
	for _, k := range list {
		devs = append(devs, discovery.Device{Info: discovery.Info{Device: k.Device}})
	}
	d, err := discovery.Resolve(devs, query)
	if err != nil {
		var nf *discovery.NotFoundError
		if errors.As(err, &nf) {
			names := make([]string, 0, len(list))
			for _, k := range list {
				names = append(names, fmt.Sprintf("%s (id %s)", k.Name, k.ID))
			}
			return PinnedDevice{}, fmt.Errorf("no pinned device %q; pinned: %s", query, strings.Join(names, ", "))
		}
		return PinnedDevice{}, err
	}
	if k, ok := h.trust.Pinned(d.ID); ok {
		return k, nil
	}
	return PinnedDevice{}, fmt.Errorf("no pinned device %q", query)
}

// IsAmbiguous reports whether err says a name fits several devices.
func IsAmbiguous(err error) bool {
	var amb *discovery.AmbiguousError
	return errors.As(err, &amb)
}

// SetTrustedPinned trusts a pinned device, or stops trusting it.
func (h *Headless) SetTrustedPinned(id string, trusted bool) error {
	return h.trust.SetTrusted(id, trusted)
}

// Forget forgets a pinned device's identity: the next connection pins it again.
func (h *Headless) Forget(id string) error { return h.trust.Forget(id) }
