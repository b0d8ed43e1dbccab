package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// Accept says which offers a Headless receive takes without asking.
type Accept int

const (
	AcceptAsk     Accept = iota // ask ReceiveOptions.Ask about every offer
	AcceptAll                   // take every offer
	AcceptTrusted               // take offers from trusted devices, ask about others
)

// ReceiveOptions says how a Headless receive runs.
type ReceiveOptions struct {
	Dir    string // download folder, created if missing
	Accept Accept
	// Ask asks the person about an offer; one question at a time. A false
	// answer declines.
	Ask func(ctx context.Context, o IncomingOffer) bool
	// Once: stop after the first offer or message has ended; its outcome
	// is Receive's result.
	Once   bool
	Hidden bool // not advertised: senders need HOST:PORT
	// Port for the LAN handshake (0: any free port). With Server the LAN
	// listens on any free port unless PortGiven.
	Port      int
	PortGiven bool
	// UDPPort and PerConnectionUDP: as in Config.
	UDPPort          int
	PerConnectionUDP bool
	Server           string // rendezvous server URL: also show a pairing code
	RelayOnly        bool   // with Server: only through the server's TURN relay
	WebListen        string // also serve the web client there ("" = not)
}

// receiveRun is one Receive: its options, its outcome for Once, and the
// means to stop it.
type receiveRun struct {
	h      *Headless
	o      ReceiveOptions
	dir    string
	cancel context.CancelFunc
	handle func(context.Context, *peer.Conn) // every connection: LAN, server, a page's through the LAN bridge
	udp    *peer.UDPPort                     // the LAN listener's shared UDP port; nil: none

	mu       sync.Mutex
	result   error
	finished bool
	askMu    sync.Mutex // one prompt at a time
}

// Receive takes offers and messages until ctx ends (or, with Once, the
// first one has ended).
func (h *Headless) Receive(ctx context.Context, o ReceiveOptions) error {
	dir, err := prepareDir(o.Dir)
	if err != nil {
		return err
	}
	transfer.CleanStale(dir, transfer.StaleAfter)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &receiveRun{h: h, o: o, dir: dir, cancel: cancel}
	rcv := &transfer.Receiver{Dir: dir, Decide: r.decide, OnEvent: r.onEvent, Lanes: transfer.DefaultLanes()}
	r.handle = r.handler(rcv)
	if h.ls.On {
		n, err := h.startLocalSend(true, o.Hidden, func(ctx context.Context, from transfer.Peer, link transfer.Link) {
			r.serveLink(ctx, rcv, from, link)
		}, nil)
		if err != nil {
			return err
		}
		defer n.Close()
		h.report(LocalSendListening{Port: n.Port(), HTTP: h.ls.HTTP, PIN: h.ls.PIN != ""})
	}
	if o.Server != "" {
		err = r.lanAndServer(ctx)
	} else {
		err = r.lan(ctx, o.Port)
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if o.Once && !r.finished {
		return errors.New("stopped before anything arrived")
	}
	return r.result
}

// lanAndServer receives through the server and, beside it, on the LAN:
// devices nearby reach us directly, as without a server (on any free port
// unless the port was given); the server is for the others. Not being able
// to listen on the LAN is no reason to stop.
func (r *receiveRun) lanAndServer(ctx context.Context) error {
	port := r.o.Port
	if !r.o.PortGiven {
		port = 0
	}
	var lan sync.WaitGroup
	lan.Go(func() {
		if err := r.lan(ctx, port); err != nil && ctx.Err() == nil {
			r.h.warn(fmt.Errorf("not receiving on the local network, only through the server: %w", err))
		}
	})
	err := r.remote(ctx)
	r.cancel()
	lan.Wait()
	return err
}

// finish records the outcome of an offer or message: with Once, the first
// decides the result, and the run stops soon after.
func (r *receiveRun) finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished || !r.o.Once {
		return
	}
	r.finished, r.result = true, err
	// Give the sender a moment to read our last message and close; then go.
	time.AfterFunc(5*time.Second, r.cancel)
}

// decide answers an offer as the options say.
func (r *receiveRun) decide(ctx context.Context, o transfer.OfferReceived) bool {
	switch {
	case r.o.Accept == AcceptAll:
		return true
	case r.o.Accept == AcceptTrusted && r.h.trust.IsTrusted(o.From.ID, o.From.Fingerprint):
		r.h.report(TrustedAccepted{Name: o.From.Name})
		return true
	case r.o.Ask == nil:
		return false
	}
	r.askMu.Lock()
	defer r.askMu.Unlock()
	return r.o.Ask(ctx, o)
}

// onEvent reports a transfer event and notes what ends an offer.
func (r *receiveRun) onEvent(ev transfer.Event) {
	r.h.report(ev)
	switch ev := ev.(type) {
	case transfer.TransferDone:
		switch {
		case ev.Cancelled:
			r.finish(errors.New("the transfer was cancelled"))
		case len(ev.Failed) > 0:
			r.finish(fmt.Errorf("%d files did not arrive: %s", len(ev.Failed), strings.Join(ev.Failed, ", ")))
		default:
			r.finish(nil)
		}
	case transfer.Declined:
		if ev.Reason != "" && ev.Reason != "declined by the receiver" {
			r.finish(fmt.Errorf("the offer was declined: %s", ev.Reason))
		} else {
			r.finish(errors.New("you declined the offer"))
		}
	case transfer.TextReceived:
		r.finish(nil)
	}
}

// handler serves one connection with rcv.
func (r *receiveRun) handler(rcv *transfer.Receiver) func(context.Context, *peer.Conn) {
	return func(ctx context.Context, c *peer.Conn) {
		defer c.Close()
		p := senderOf(c)
		p.Type = ""
		r.serveLink(ctx, rcv, p, c)
	}
}

// serveLink serves one sender's link with rcv: a connection, or a
// LocalSend sender's.
func (r *receiveRun) serveLink(ctx context.Context, rcv *transfer.Receiver, p transfer.Peer, link transfer.Link) {
	err := rcv.Handle(ctx, p, link)
	var pe *transfer.ProtocolError
	switch {
	case errors.As(err, &pe):
		r.h.warn(fmt.Errorf("%s: %w", p.Name, err))
		r.finish(err)
	case errors.Is(err, transfer.ErrClosed), errors.Is(err, context.Canceled), err == nil:
	default:
		r.h.warn(fmt.Errorf("%s: %w", p.Name, err))
	}
	r.mu.Lock()
	done := r.finished
	r.mu.Unlock()
	if done {
		r.cancel() // the sender has closed: no need to wait
	}
}
