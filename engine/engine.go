package engine

import (
	"context"
	"errors"
)

// errNotImplemented marks the skeleton; the engine helper replaces it.
var errNotImplemented = errors.New("engine: not implemented yet")

// Engine is the running core of one device. Create it with New, start it
// with Run; every other method may be called from any goroutine, before or
// while Run runs.
type Engine struct {
	cfg Config
}

// Target says where to send: a device's id and name (as discovered), and
// the addresses to try, best first.
type Target struct {
	ID    string // "" when the device is only known by address
	Name  string
	Addrs []string // HOST:PORT
}

// TargetOf is the Target for a discovered device.
func TargetOf(d Device) Target {
	return Target{ID: d.ID, Name: d.Name, Addrs: d.Addresses()}
}

// New loads (or creates) the identity, pinned devices and history in
// cfg.ConfigDir.
func New(cfg Config) (*Engine, error) { return &Engine{cfg: cfg}, errNotImplemented }

// Run listens, advertises and browses until ctx ends, and returns once every
// goroutine it started has ended (running transfers are interrupted).
func (e *Engine) Run(ctx context.Context) error { return errNotImplemented }

// Self is this device.
func (e *Engine) Self() Peer { return Peer{} }

// Fingerprint is this device's certificate fingerprint.
func (e *Engine) Fingerprint() string { return "" }

// Addr is the LAN handshake address ("" until Run listens).
func (e *Engine) Addr() string { return "" }

// Devices is the nearby list, sorted by name.
func (e *Engine) Devices() []Device { return nil }

// Send queues an offer of paths (files and folders) to a device and starts
// it; the returned Item is already in the queue.
func (e *Engine) Send(to Target, paths []string) (Item, error) { return Item{}, errNotImplemented }

// SendText sends a text message; delivery is reported by MessageReceived.
func (e *Engine) SendText(to Target, text string) (Message, error) {
	return Message{}, errNotImplemented
}

// Answer accepts or declines a waiting offer.
func (e *Engine) Answer(offerID string, accept bool) error { return errNotImplemented }

// Pause, Resume, Cancel and Retry act on a queue item. Retry starts a
// failed, cancelled or declined send again (same paths, same peer).
func (e *Engine) Pause(itemID string) error  { return errNotImplemented }
func (e *Engine) Resume(itemID string) error { return errNotImplemented }
func (e *Engine) Cancel(itemID string) error { return errNotImplemented }
func (e *Engine) Retry(itemID string) error  { return errNotImplemented }

// Items is the queue, newest first, history included.
func (e *Engine) Items() []Item { return nil }

// ClearFinished removes finished items from the queue and its history file.
func (e *Engine) ClearFinished() {}

// Messages is the conversation with a peer, oldest first.
func (e *Engine) Messages(peerID string) []Message { return nil }

// SetTrusted marks a pinned device as trusted (auto-accept) or not.
func (e *Engine) SetTrusted(deviceID string, trusted bool) error { return errNotImplemented }

// Trusted lists the pinned devices marked trusted.
func (e *Engine) Trusted() []Peer { return nil }

// SetAutoAcceptTrusted turns auto-accept from trusted devices on or off.
func (e *Engine) SetAutoAcceptTrusted(on bool) {}

// SetDownloadDir changes where received files go (for new offers).
func (e *Engine) SetDownloadDir(dir string) error { return errNotImplemented }
