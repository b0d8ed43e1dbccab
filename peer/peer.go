// Package peer turns a LAN handshake into a working WebRTC connection: it is
// the one place that configures pion (SettingEngine, certificate, ICE
// servers, data channel) and the one place that checks that the DTLS
// certificate in the SDP is the one the peer introduced itself with. The
// handshake runs over TCP on the LAN (Dial, Listen) or over any other byte
// stream (DialConn, AnswerConn), such as a pipe through a rendezvous server.
package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// ChannelLabel names the one data channel a transfer uses.
const ChannelLabel = "peerdrop/2"

// MaxMessageSize is the largest data channel message we accept. It bounds the
// memory a hostile peer can make us allocate for one message.
const MaxMessageSize = 256 * 1024

// ConnectTimeout bounds the time from handshake to an open data channel.
const ConnectTimeout = 15 * time.Second

// Config says who we are and how to build connections.
type Config struct {
	Identity *identity.Identity
	Name     string
	// Type is this device's type for our hello (discovery.Type*; "" = say
	// none), so that a receiver that cannot see our advertisement can show it.
	Type string
	// ICEServers are STUN and TURN servers to gather candidates from (the
	// entries a rendezvous server hands out). None on the LAN: host
	// candidates are all a LAN needs.
	ICEServers []webrtc.ICEServer
	// RelayOnly restricts ICE to relay candidates (TURN): the peer never
	// learns our addresses and the bytes always flow through the relay.
	// Gathering no relay candidate is then an error that says why
	// (relay.Check), not a connection that fails after its ICE timeouts.
	RelayOnly bool
	// Trickle offers a trickle session (docs/PROTOCOL.md section 2.4) in
	// our hello: for handshake streams that outlive the handshake, such as a
	// pipe through a rendezvous server. When the peer offers it too,
	// candidates trickle, the Conn keeps the stream (and closes it with
	// itself) and restarts ICE when the path breaks. Without it, or with a
	// peer that does not offer it, the stream is the caller's as before.
	Trickle bool
	// OnPath, when set, hears when a trickle session's path breaks and when
	// an ICE restart restored it.
	OnPath func(PathEvent)
	// OnProven, when set, runs once a connection is open, before it is
	// handed over: DTLS has then proven that the peer holds the
	// certificate its hello named (the SDP's fingerprint, which must equal
	// the hello's). A hello is only a claim, checked by the handshake's
	// check function; what is learnt from it is recorded here (trust
	// pins the device). An error closes the connection.
	OnProven func(remote signaling.Hello) error
	// UDP, when set, is the one UDP port every connection's host
	// candidates use (OpenUDP); nil: random ports per connection.
	UDP *UDPPort
	// Tune, when set, adjusts the SettingEngine after our defaults (tests, benchmarks).
	Tune func(*webrtc.SettingEngine)
}

// ErrFingerprint means the SDP named another certificate than the hello did.
var ErrFingerprint = errors.New("the peer's certificate does not match its introduction")

func (c Config) hello() signaling.Hello {
	return signaling.Hello{
		Device:  device.Device{ID: c.Identity.DeviceID, Name: c.Name, Fingerprint: c.Identity.Fingerprint, Type: c.Type},
		Version: int(signaling.Version),
		Trickle: c.Trickle,
	}
}

// trickles says whether a session with remote trickles.
func (c Config) trickles(remote signaling.Hello) bool { return c.Trickle && remote.Trickle }

// NewSettingEngine returns pion settings tuned for bulk transfer on a LAN.
func NewSettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	// A larger receive window keeps the pipe full at LAN speeds, within
	// what our UDP sockets can hold (sctpWindow).
	se.SetSCTPMaxReceiveBufferSize(sctpWindow(grantedBuffer()))
	// DTLS already authenticates every packet; the CRC32c is wasted work. pion
	// only uses it when the other end announces support in its SCTP INIT.
	se.EnableSCTPZeroChecksum(true)
	se.SetSCTPMaxMessageSize(MaxMessageSize)
	// Notice a dead peer within a few seconds, so resume can start.
	se.SetICETimeouts(2*time.Second, 5*time.Second, 500*time.Millisecond)
	// Two peers on one machine (tests, loopback) need loopback candidates.
	se.SetIncludeLoopbackCandidate(true)
	// Our own host candidates are plain addresses (both ends are ours and
	// pinned; hiding a LAN address buys nothing). A peer that hides its own
	// behind .local names, as browsers do, is resolved with pion's mDNS
	// (github.com/pion/mdns/v2): query only, we never answer for names.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryOnly)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	return se
}

func (c Config) newPeerConnection() (*webrtc.PeerConnection, error) {
	se := NewSettingEngine()
	policy := webrtc.ICETransportPolicyAll
	if c.RelayOnly {
		policy = webrtc.ICETransportPolicyRelay
		// pion waits 2 s before it nominates a relay pair in case a better
		// one turns up; with relay candidates only, none will.
		se.SetRelayAcceptanceMinWait(0)
	}
	if c.Trickle {
		// After an outage mended by an ICE restart, SCTP resends at its next
		// timeout; pion lets that back off to a minute.
		se.SetSCTPRTOMax(3 * time.Second)
	}
	if c.UDP != nil {
		se.SetICEUDPMux(c.UDP.mux)
	} else if n, err := newBufferedNet(); err == nil {
		se.SetNet(n)
	}
	se.DetachDataChannels()
	if c.Tune != nil {
		c.Tune(&se)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		Certificates:       []webrtc.Certificate{c.Identity.Certificate},
		ICEServers:         c.ICEServers,
		ICETransportPolicy: policy,
	})
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	return pc, nil
}

// inboxSize is how many data channel messages wait for the consumer before
// pion's read loop blocks, which pushes back on the sender through SCTP.
const inboxSize = 32

// Conn is an established peer connection with its open data channel.
type Conn struct {
	Remote signaling.Hello
	pc     *webrtc.PeerConnection
	dc     *webrtc.DataChannel
	msgs   chan datachan.Message

	// Code is this connection's verification code (trust.Code): the six
	// digits both screens show, which a device in the middle cannot make
	// equal on both sides except by a one-in-a-million chance.
	Code string

	done      chan struct{}
	doneOnce  sync.Once
	closeOnce sync.Once
	reading   atomic.Bool // readLoop runs: it marks Done once it has read all

	sess        *session    // a trickle session, or nil
	restartable atomic.Bool // a failed path waits for ICE restarts
	errMu       sync.Mutex
	err         error // why the connection ended, when we know better than pion
}

func newConn(pc *webrtc.PeerConnection) *Conn {
	c := &Conn{pc: pc, done: make(chan struct{}), msgs: make(chan datachan.Message, inboxSize)}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		slog.Debug("peer connection state", slog.String("state", s.String()))
		switch {
		case s == webrtc.PeerConnectionStateClosed:
			c.peerClosed() // the peer closed (our own Close marks Done itself)
		case s == webrtc.PeerConnectionStateFailed && !c.restartable.Load():
			c.markDone()
		}
	})
	return c
}

func (c *Conn) markDone() { c.doneOnce.Do(func() { close(c.done) }) }

// peerClosed handles the channel or the connection closing from the
// peer's side. What it sent before may still wait in pion's buffers:
// readLoop delivers it and marks Done at the end of the stream. Done comes
// at once if nothing reads, and after drainTimeout if the end never shows.
func (c *Conn) peerClosed() {
	if !c.reading.Load() {
		c.markDone()
		return
	}
	time.AfterFunc(drainTimeout, c.markDone)
}

// fail ends the connection (Done closes) for err; the owner still closes it.
func (c *Conn) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
	c.markDone()
}

// Trickles says whether the connection is a trickle session: it owns the
// handshake stream, and a broken path is mended by ICE restarts over it.
func (c *Conn) Trickles() bool { return c.sess != nil }

// Err says why the connection ended, when it ended for a reason of its own
// (ErrPathLost, ErrFingerprint on an ICE restart); nil otherwise.
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// setChannel adopts dc; onOpen runs once it is open (for the side that
// created it, dialer: once the peer has acknowledged it), with our own
// goroutine reading it (read.go).
func (c *Conn) setChannel(dc *webrtc.DataChannel, dialer bool, onOpen func()) {
	c.dc = dc
	dc.OnClose(c.peerClosed)
	dc.OnOpen(func() { c.startReading(dc, dialer, onOpen) })
}

// Messages delivers the data channel's messages in order. Nobody reading
// it holds the peer back: that is the flow control.
func (c *Conn) Messages() <-chan datachan.Message { return c.msgs }

// DataChannel returns the connection's data channel.
func (c *Conn) DataChannel() *webrtc.DataChannel { return c.dc }

// Send sends p as a binary message; pion copies it before it returns.
func (c *Conn) Send(p []byte) error { return c.dc.Send(p) }

// SendText sends p as a string message.
func (c *Conn) SendText(p []byte) error { return c.dc.SendText(string(p)) }

// BufferedAmount is how many bytes sent the peer has not acknowledged yet.
func (c *Conn) BufferedAmount() uint64 { return c.dc.BufferedAmount() }

// LowWater returns a channel that receives a value each time the buffered
// amount falls to n bytes or below; values nobody takes merge into one. A
// later call replaces the earlier one.
func (c *Conn) LowWater(n uint64) <-chan struct{} {
	low := make(chan struct{}, 1)
	c.dc.SetBufferedAmountLowThreshold(n)
	c.dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	return low
}

// Done is closed when the connection has failed or closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close tears the connection down; it is safe to call more than once.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		// Done first: a message handler waiting for room in the inbox
		// gives up, so pion's read loop can end. The stream next: a
		// candidate callback blocked writing to it returns, so pion's
		// gatherer can end.
		c.markDone()
		if c.sess != nil {
			_ = c.sess.conn.Close()
		}
		err = c.pc.GracefulClose()
		if c.sess != nil {
			c.sess.stop()
		}
	})
	return err
}

// Route returns the candidate types of the selected ICE pair, local and
// remote: "host", "srflx", "prflx" or "relay" ("" when there is no pair, as
// before the connection opened or after it closed). A "relay" on either end
// means the bytes go through a TURN server.
func (c *Conn) Route() (local, remote string) {
	sctp := c.pc.SCTP()
	if sctp == nil {
		return "", ""
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return "", ""
	}
	return pair.Local.Typ.String(), pair.Remote.Typ.String()
}

// openGrace is how long a connection that ended before its data channel
// opened waits for pion's word that the channel did open.
const openGrace = 100 * time.Millisecond

// waitOpen waits until the data channel is open or the connection fails.
func (c *Conn) waitOpen(ctx context.Context, opened <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	var noRelay <-chan error
	if c.sess != nil {
		noRelay = c.sess.relayCheck(ctx)
	}
	select {
	case <-opened:
		if c.sess != nil {
			c.sess.opened()
		}
		return nil
	case err := <-noRelay:
		return err
	case <-c.done:
		if err := c.Err(); err != nil {
			return err
		}
		// It may have opened, then closed at once (the peer only
		// paired, say): pion reports both on goroutines of their own, in
		// any order. The owner finds it closed.
		t := time.NewTimer(openGrace)
		defer t.Stop()
		select {
		case <-opened:
			return nil
		case <-t.C:
		}
		return &NoPathError{Err: errors.New("peer connection failed before the data channel opened")}
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &NoPathError{Err: fmt.Errorf("no connection within %s (is a firewall blocking UDP?)", ConnectTimeout)}
		}
		return ctx.Err()
	}
}

// gather sets desc as the local description and waits for ICE gathering to
// finish, returning the SDP with every candidate in it. Gathering host
// candidates takes a few milliseconds on a LAN, less than one trickle round
// trip would, so the handshake stays three frames long.
func gather(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	complete := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-complete:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// ErrNoRelay means a relay-only connection gathered no relay candidate, so
// it could never connect. It wraps what relay.Check found.
var ErrNoRelay = errors.New("relay only: no TURN relay address could be allocated")

// gather is the package gather plus the relay-only rule: when every TURN
// allocation failed, pion gathers no candidate at all and would sit in
// "checking" until its ICE timeouts, then fail without a reason. Stop at
// once instead, with the reason relay.Check finds.
func (c Config) gather(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	sdp, err := gather(ctx, pc, desc)
	if err != nil || !c.RelayOnly || hasRelayCandidate(sdp) {
		return sdp, err
	}
	return "", c.noRelay(ctx)
}

// noRelay is the error for a relay-only gathering that found no relay.
func (c Config) noRelay(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, relayCheckTimeout)
	defer cancel()
	return fmt.Errorf("%w: %w", ErrNoRelay, relay.Check(cctx, c.ICEServers))
}

// relayCheckTimeout bounds relay.Check after a relay-only gathering failed.
const relayCheckTimeout = 5 * time.Second

// hasRelayCandidate says whether an SDP offers a relayed candidate.
func hasRelayCandidate(sdp string) bool {
	for line := range strings.SplitSeq(sdp, "\n") {
		if strings.HasPrefix(line, "a=candidate:") && strings.Contains(line, " typ relay") {
			return true
		}
	}
	return false
}

// proven runs cfg.OnProven for an open connection.
func (c Config) proven(remote signaling.Hello) error {
	if c.OnProven == nil {
		return nil
	}
	return c.OnProven(remote)
}

// checkFingerprint verifies that every DTLS fingerprint in raw is want.
func checkFingerprint(raw, want string) error {
	found, err := signaling.SDPFingerprints(raw)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return fmt.Errorf("%w: no fingerprint in sdp", ErrFingerprint)
	}
	for _, fp := range found {
		if !strings.EqualFold(strings.TrimSpace(fp), want) {
			return ErrFingerprint
		}
	}
	return nil
}
