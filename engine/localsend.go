package engine

// LocalSend's apps (localsend/, docs/PROTOCOL-localsend.md): while
// Config.LocalSend (or SetLocalSend) is on, Run serves LocalSend protocol
// v2 on its port and lists the LocalSend devices it finds among the
// nearby ones. A LocalSend sender's offer comes in through the same
// Receiver as a device's (the prompt, names, limits, free space, queue);
// a send or a text to a LocalSend device runs the same Sender over a link
// whose far end uploads to it.

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/thepeerdrop/peerdrop/localsend"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// lsState is the LocalSend part of the engine; e.mu guards it.
type lsState struct {
	mode    string        // "" = off, lsHTTPS, or lsHTTPS+lsHTTP (unencrypted peers allowed)
	changed chan struct{} // closed (and replaced) when mode changes
	node    *localsend.Node
	gen     int                         // counts the nodes started and stopped: a report of an old one is dropped
	devices map[string]localsend.Device // by device id
	pins    *localsend.Pins
}

const (
	lsHTTPS = "https"
	lsBoth  = "https+http"
)

func lsMode(on, allowHTTP bool) string {
	switch {
	case !on:
		return ""
	case allowHTTP:
		return lsBoth
	}
	return lsHTTPS
}

// SetLocalSend turns LocalSend on or off, and whether unencrypted (HTTP)
// LocalSend devices may exchange files with this one. Off, nothing listens
// on its port.
func (e *Engine) SetLocalSend(on, allowHTTP bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	mode := lsMode(on, allowHTTP)
	if e.ls.mode == mode {
		return
	}
	e.ls.mode = mode
	close(e.ls.changed)
	e.ls.changed = make(chan struct{})
}

// LocalSendPort is the port the LocalSend server listens on, 0 while off.
func (e *Engine) LocalSendPort() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ls.node == nil {
		return 0
	}
	return e.ls.node.Port()
}

func (e *Engine) runLocalSend(ctx context.Context) {
	e.serveLatest(ctx, func() (string, <-chan struct{}) { return e.ls.mode, e.ls.changed }, e.serveLocalSend)
}

// serveLocalSend runs a LocalSend node until ctx ends.
func (e *Engine) serveLocalSend(ctx context.Context, mode string) {
	self := e.peerConfig()
	port := e.cfg.LocalSendPort
	e.mu.Lock()
	e.ls.gen++
	gen := e.ls.gen
	e.mu.Unlock()
	node, err := localsend.Start(localsend.Config{
		Alias: self.Name, Type: self.Type, Model: runtime.GOOS,
		Cert:        tls.Certificate{Certificate: [][]byte{e.id.CertificateDER()}, PrivateKey: e.id.Signer()},
		Port:        port,
		AllowHTTP:   mode == lsBoth,
		PIN:         e.cfg.LocalSendPIN,
		NoDiscovery: e.cfg.NoBrowse && e.cfg.Hidden,
		Pins:        e.ls.pins,
		Serve:       e.serveLocalSender,
		OnDevices:   func(list []localsend.Device) { e.onLocalSendDevices(gen, list) },
	})
	if err != nil {
		e.problem(plainf(err, "LocalSend devices cannot see or send to this one: its port (%d) could not be opened. Another LocalSend app may be running here.",
			cmp.Or(port, localsend.DefaultPort)))
		<-ctx.Done()
		return
	}
	slog.Info("engine: speaking LocalSend", slog.Int("port", node.Port()), slog.Bool("http", mode == lsBoth))
	func() {
		defer e.lock()()
		e.ls.node = node
	}()
	<-ctx.Done()
	func() {
		defer e.lock()()
		e.ls.node = nil
		e.ls.gen++
		if len(e.ls.devices) > 0 {
			clear(e.ls.devices)
			e.emit(DevicesChanged{Devices: e.devicesLocked()})
		}
	}()
	_ = node.Close()
}

// serveLocalSender serves a LocalSend sender's link like any incoming
// connection.
func (e *Engine) serveLocalSender(ctx context.Context, from transfer.Peer, link transfer.Link) {
	e.mu.Lock()
	r := e.receiverFor(e.dir)
	e.mu.Unlock()
	err := r.Handle(ctx, from, link)
	if err != nil && !errors.Is(err, transfer.ErrClosed) && !errors.Is(err, context.Canceled) {
		slog.Info("engine: LocalSend transfer ended", slog.String("peer", from.Name), slog.Any("err", err))
	}
}

func (e *Engine) onLocalSendDevices(gen int, list []localsend.Device) {
	defer e.lock()()
	if gen != e.ls.gen {
		return // from a node that stopped
	}
	clear(e.ls.devices)
	for _, d := range list {
		e.ls.devices[d.ID()] = d
	}
	e.emit(DevicesChanged{Devices: e.devicesLocked()})
}

// localSendDevicesLocked are the LocalSend devices as the device list
// shows them; the caller holds e.mu.
func (e *Engine) localSendDevicesLocked() []Device {
	out := make([]Device, 0, len(e.ls.devices))
	for _, d := range e.ls.devices {
		if ours(d, e.nearby) {
			continue
		}
		out = append(out, lsDevice(d, e.ls.pins))
	}
	return out
}

// localSendDevice is the LocalSend device listed under id.
func (e *Engine) localSendDevice(id string) (localsend.Device, *localsend.Node, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.ls.devices[id]
	if id == "" || !ok || e.ls.node == nil {
		return localsend.Device{}, nil, false
	}
	return d, e.ls.node, true
}

// errLocalSendGone: a send to a LocalSend device that is no longer listed
// (it left, or LocalSend was switched off here).
var errLocalSendGone error = lsGone{}

type lsGone struct{}

func (lsGone) Error() string {
	return "it is no longer listed (gone, or LocalSend was switched off here)"
}
func (lsGone) Permanent() bool { return true }

// lsError marks an error of a LocalSend dial, which describeSendError
// words on its own.
type lsError struct{ err error }

func (e *lsError) Error() string { return e.err.Error() }
func (e *lsError) Unwrap() error { return e.err }

func isLocalSend(err error) bool {
	var le *lsError
	return errors.As(err, &le)
}

// dialLocalSend opens a link to a LocalSend device for a Sender.
func (e *Engine) dialLocalSend(ctx context.Context, n *localsend.Node, d localsend.Device, pin string) (transfer.Link, signaling.Hello, error) {
	link, err := n.Dial(ctx, d, pin)
	if err != nil {
		return nil, signaling.Hello{}, &lsError{fmt.Errorf("LocalSend %s: %w", d.Alias, err)}
	}
	return link, signaling.Hello{Device: d.Peer()}, nil
}
