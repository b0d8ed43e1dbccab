// Package engine is the one core behind both faces. Engine ties identity,
// trust, discovery, the LAN listener and transfers into a device list, a
// transfer queue and a few verbs (send, answer, pause, resume, cancel,
// retry), and reports every change as a typed Event; with a rendezvous
// server it also pairs with codes and reaches paired devices on other
// networks, and with Config.WebListen it serves the web client for phones
// and tablets. The desktop app (app/) drives it through a small interface
// of its own. Headless (face*.go) does the same work one run at a time for
// the command line (cli/): receive, send, list devices. It imports no UI
// package.
package engine

import (
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

// Config is what New needs.
type Config struct {
	ConfigDir   string // identity, pinned devices, history, settings
	Name        string // display name ("" = host name)
	Type        string // discovery.Type* ("" = discovery.DetectType())
	DownloadDir string // where received files go ("" = ~/Downloads or .)
	// Port for the LAN handshake: 0 = signaling.DefaultPort, -1 = any free port.
	Port int
	// PortFallback: when the chosen Port is taken, listen on any free port
	// and say so (a Problem) instead of failing to start. The default port
	// (Port 0) always falls back; a port the user typed in Settings should
	// too, or the app could not start at all.
	PortFallback bool
	// UDPPort is the one UDP port every peer connection uses (0: the
	// handshake's port number); PerConnectionUDP turns that off: random
	// UDP ports per connection, as pion does by default.
	UDPPort          int
	PerConnectionUDP bool
	// Hidden: do not advertise over mDNS (tests on loopback; "receiving off").
	Hidden bool
	// NoBrowse: do not look for devices (tests on loopback).
	NoBrowse bool
	// AutoAcceptTrusted: accept offers from trusted devices without asking.
	AutoAcceptTrusted bool
	// QuickSave: accept every offer, from any device, without asking
	// (LocalSend's "quick save"). Offers still pass every check (names,
	// sizes, free space) and show in the queue. SetQuickSave changes it.
	QuickSave bool
	// Server is the rendezvous server for devices on other networks
	// (pairing codes, paired devices away from the LAN): a ws(s):// URL,
	// or what remote.ServerURL reads. "" = this network only. SetServer
	// changes it while the engine runs.
	Server string
	// WebListen is where the web client for phones and tablets is served
	// (PROTOCOL.md §14), e.g. web.DefaultListen; "" = not served.
	// SetWebListen changes it while the engine runs.
	WebListen string
	// LocalSend speaks LocalSend protocol v2 (docs/PROTOCOL-localsend.md):
	// LocalSend's apps are listed among the nearby devices and exchange
	// files with this one. LocalSendHTTP also lets in the ones that speak
	// it unencrypted (HTTP). SetLocalSend changes both. LocalSendPort is
	// its port (0: localsend.DefaultPort, -1: any, for tests);
	// LocalSendPIN, when set, is asked of every LocalSend sender.
	LocalSend     bool
	LocalSendHTTP bool
	LocalSendPort int
	LocalSendPIN  string
	// OnEvent gets every Event, in order, from the engine's goroutines. It
	// must not block for long (the app hands events to the UI thread).
	OnEvent func(Event)
}

// Direction of a queue item.
type Direction string

const (
	Outgoing Direction = "send"
	Incoming Direction = "receive"
)

// State of a queue item.
type State string

const (
	StateConnecting State = "connecting" // send: dialing, or waiting for the peer to accept
	StateWaiting    State = "waiting"    // receive: waiting for the user to accept; send: waiting for an offline device to appear
	StateRunning    State = "running"
	StatePaused     State = "paused"
	StateDone       State = "done"
	StateFailed     State = "failed"    // Error says why; Retry may help (send)
	StateCancelled  State = "cancelled" // by either side
	StateDeclined   State = "declined"  // by the receiver
)

// Finished reports whether the item will not change any more (unless retried).
func (s State) Finished() bool {
	switch s {
	case StateDone, StateFailed, StateCancelled, StateDeclined:
		return true
	}
	return false
}

// Peer is the device on the other side of an item or message.
type Peer struct {
	ID   string
	Name string
}

// peerOf is the Peer a device's identity names.
func peerOf(d device.Device) Peer { return Peer{ID: d.ID, Name: d.Name} }

// Peer is the device d, as items and messages name it.
func (d Device) Peer() Peer { return peerOf(d.Info.Device) }

// Item is one transfer in the queue, either direction.
type Item struct {
	ID        string // stable queue id
	Direction Direction
	Peer      Peer
	Title     string // "photo.jpg", "Trip (3 files)", or the text for a message-only offer
	Files     int
	Bytes     int64 // moved so far
	Total     int64
	Speed     float64       // bytes per second, smoothed; 0 when not running
	ETA       time.Duration // 0 when unknown or not running
	State     State
	Error     string // plain words, for a failed item
	// Skipped lists the top-level files and folders the receiver left out
	// (Engine.AnswerSome); the item's Files and Total count the rest.
	Skipped  []string `json:",omitempty"`
	Paths    []string // send: the source paths; receive: the top-level paths on disk once done
	Started  time.Time
	Finished time.Time

	// Code is the verification code of the connection the transfer runs
	// on (the latest one, after a reconnect); "" before one opened.
	Code string
}

// Device is a nearby device, with what we know of it.
type Device struct {
	discovery.Device
	Known   bool // its fingerprint is pinned
	Trusted bool
	Changed bool // it advertises another fingerprint than the pinned one
	// Away: a paired device that is not on this network but is connected
	// to the rendezvous server; it has no addresses, and sends to it go
	// through the server.
	Away bool
	// Web: a browser page registered with this device's web client; sends
	// to it go through the bridge in this process (PROTOCOL.md §14).
	Web bool
	// Offline: a trusted device that is neither on this network nor on the
	// server; it has no addresses, and a send to it waits in the queue
	// (StateWaiting) until it appears (favourites.go).
	Offline bool
	// LocalSend: a LocalSend app (localsend.go); Unencrypted: one that
	// speaks it over plain HTTP, which sends to are refused unless
	// allowed (Config.LocalSendHTTP).
	LocalSend   bool
	Unencrypted bool
}

// Offer is an incoming offer waiting for the user.
type Offer struct {
	ID      string
	From    Peer
	Type    string // the sender's device type as its hello says (discovery.Type*), "" if it says none
	Code    string // verification code of the connection the offer came on
	Trusted bool
	Files   int
	Folders int
	Size    int64
	First   []string // the first few names
	// Entries are the top-level files and folders (at most
	// transfer.MaxTake of them), in the sender's order: what
	// AnswerSome's indexes count. EntryCount is how many there are.
	Entries    []OfferEntry
	EntryCount int
	Text       string
	// TooBig: the whole offer does not fit in the free space of the
	// download folder, but some entries do. Room is what the entries
	// chosen (AnswerSome) may add up to; a choice larger than that, or
	// Answer(id, true), is refused with ErrNoSpace and the offer stays open.
	TooBig bool
	Room   int64
}

// OfferEntry is one top-level file or folder of an offer.
type OfferEntry struct {
	Name   string
	Folder bool
	Files  int   // files in it (1 for a file)
	Size   int64 // their bytes
}

// Message is one text message in a conversation.
type Message struct {
	ID       string
	Peer     Peer
	Text     string
	Time     time.Time
	Outgoing bool
	Err      string // outgoing and not delivered
}
