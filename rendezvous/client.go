package rendezvous

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Event is something the server tells a client unasked: PeerJoined,
// PeerLeft, Signal, or an *Error that answers no pending request (a signal
// that could not be delivered, say).
type Event interface{ isEvent() }

// PeerJoined reports that Peer can now be signalled. Code is the room's
// pairing code, or "" when Peer found this device by its id (Client.Find).
type PeerJoined struct {
	Peer Peer
	Code string
}

// PeerLeft reports that the peer left the room with Code ("" for a find
// link). It may still share another room with this client.
type PeerLeft struct {
	ClientID string
	Code     string
}

// Signal is a payload relayed from another client.
type Signal struct {
	From    string
	Payload json.RawMessage
}

func (PeerJoined) isEvent() {}
func (PeerLeft) isEvent()   {}
func (Signal) isEvent()     {}

// Room is a pairing code this client created or joined.
type Room struct {
	Code    string // as shown: "XXXXX-XXXXX"
	Expires time.Time
}

// DialOption changes how Dial connects.
type DialOption func(*dialOptions)

type dialOptions struct {
	header    http.Header
	client    *http.Client
	keepAlive time.Duration
}

// WithHTTPHeader adds headers to the WebSocket handshake request.
func WithHTTPHeader(h http.Header) DialOption { return func(o *dialOptions) { o.header = h } }

// WithHTTPClient dials with hc (a custom TLS configuration, a proxy).
func WithHTTPClient(hc *http.Client) DialOption { return func(o *dialOptions) { o.client = hc } }

// WithKeepAlive sets how long the client waits without hearing from the
// server before it pings; an unanswered ping within the same time ends the
// connection. Default 15 s, so a server (or path) that vanished silently
// is noticed within about 40 s.
func WithKeepAlive(d time.Duration) DialOption { return func(o *dialOptions) { o.keepAlive = d } }

const (
	clientWriteTimeout = 10 * time.Second
	clientReadLimit    = 1 << 20 // above any server's payload cap
	clientEventQueue   = 128
)

// Client is one connection to a rendezvous server. Its methods are safe for
// concurrent use. Events must be read: while nobody reads them, the client
// stops reading from the server (which then drops it as too slow).
type Client struct {
	ws        *websocket.Conn
	id        string
	nonce     string
	ice       []ICEServer
	hello     Hello
	keepAlive time.Duration

	events  chan Event
	nextReq atomic.Uint32
	heard   atomic.Int64 // unix nanoseconds of the last frame from the server

	mu      sync.Mutex
	pending map[uint32]chan *Envelope

	life      context.Context // ends with Close
	cancel    context.CancelFunc
	closing   chan struct{}
	done      chan struct{} // the read loop ended; err is set
	err       error
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Dial connects to the server at url ("wss://host/ws"), reads its welcome
// and says hello. ctx bounds only this setup; the connection lasts until
// Close or until the server goes away (Done, Err).
func Dial(ctx context.Context, url string, hello Hello, opts ...DialOption) (*Client, error) {
	if err := hello.ValidateAdvertised(); err != nil {
		return nil, fmt.Errorf("rendezvous hello: %w", err)
	}
	o := dialOptions{keepAlive: 15 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Client{
		hello:     hello,
		keepAlive: o.keepAlive,
		events:    make(chan Event, clientEventQueue),
		pending:   make(map[uint32]chan *Envelope),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.touch()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:     o.client,
		HTTPHeader:     o.header,
		Subprotocols:   []string{Subprotocol},
		OnPingReceived: func(context.Context, []byte) bool { c.touch(); return true },
		OnPongReceived: func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return nil, fmt.Errorf("dial rendezvous server: %w", &Error{Code: CodeRateLimited, Message: "too many connections from this address"})
		}
		return nil, fmt.Errorf("dial rendezvous server: %w", err)
	}
	if ws.Subprotocol() != Subprotocol {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("dial rendezvous server: it does not speak %s", Subprotocol)
	}
	ws.SetReadLimit(clientReadLimit)
	c.ws = ws
	_, data, err := ws.Read(ctx)
	if err != nil {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("rendezvous server: no welcome: %w", err)
	}
	var w Envelope
	if err := json.Unmarshal(data, &w); err != nil || w.Type != TypeWelcome || w.ClientID == "" {
		_ = ws.CloseNow()
		return nil, errors.New("rendezvous server: the first message is not a welcome")
	}
	if w.Version != Version {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("rendezvous server speaks version %d, we speak %d", w.Version, Version)
	}
	c.id, c.nonce, c.ice = w.ClientID, w.Nonce, w.ICEServers
	c.life, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(2)
	go c.readLoop()
	go c.keepAliveLoop()
	if _, err := c.request(ctx, &Envelope{Type: TypeHello, Device: &hello}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("rendezvous hello: %w", err)
	}
	return c, nil
}

// ClientID is this connection's id, which peers address signals to.
func (c *Client) ClientID() string { return c.id }

// ICEServers are the STUN/TURN servers the server handed out on connect.
func (c *Client) ICEServers() []ICEServer { return c.ice }

// Events delivers PeerJoined, PeerLeft, Signal and *Error events in the
// order the server sent them. It is closed when the connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (nil while it is open, ErrClosed after
// Close). A server that shuts down closes with websocket.StatusGoingAway.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close ends the connection and waits for the client's goroutines. It is
// idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
		c.cancel()
	})
	c.wg.Wait()
	return nil
}

// Create asks for a pairing code; this client is the room's creator.
func (c *Client) Create(ctx context.Context) (Room, error) {
	r, err := c.request(ctx, &Envelope{Type: TypeCreate})
	if err != nil {
		return Room{}, err
	}
	return Room{Code: r.Code, Expires: r.Expires}, nil
}

// Join enters the room of a code (typed in any case, with or without the
// hyphen). The members arrive as PeerJoined events.
func (c *Client) Join(ctx context.Context, code string) (Room, error) {
	if _, err := NormalizeCode(code); err != nil {
		// A typo need not cost one of the few attempts the server allows.
		return Room{}, &Error{Code: CodeBadCode, Message: err.Error()}
	}
	r, err := c.request(ctx, &Envelope{Type: TypeJoin, Code: code})
	if err != nil {
		return Room{}, err
	}
	return Room{Code: r.Code, Expires: r.Expires}, nil
}

// Leave leaves the room of code. If this client created it, the code dies.
func (c *Client) Leave(ctx context.Context, code string) error {
	_, err := c.request(ctx, &Envelope{Type: TypeLeave, Code: code})
	return err
}

// CloseRoom stops the code (or, with "", every code this client created)
// from admitting anyone else. The members stay and can go on signalling.
func (c *Client) CloseRoom(ctx context.Context, code string) error {
	_, err := c.request(ctx, &Envelope{Type: TypeClose, Code: code})
	return err
}

// Announce makes this device findable by its device id: it sends cert,
// the device certificate in DER (whose fingerprint the hello named and the
// id derives from), and proves with key, the certificate's ECDSA P-256
// key, that it holds it.
func (c *Client) Announce(ctx context.Context, key crypto.Signer, cert []byte) error {
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return errors.New("announce: the device key must be ECDSA P-256")
	}
	if fingerprintOf(cert) != c.hello.Fingerprint {
		return errors.New("announce: the certificate is not the hello's")
	}
	// An ECDSA crypto.Signer returns an ASN.1 signature.
	sig, err := key.Sign(rand.Reader, AnnounceDigest(c.nonce, c.hello.ID), crypto.SHA256)
	if err != nil {
		return fmt.Errorf("announce: sign: %w", err)
	}
	_, err = c.request(ctx, &Envelope{
		Type:        TypeAnnounce,
		DeviceID:    c.hello.ID,
		Certificate: base64.StdEncoding.EncodeToString(cert),
		Sig:         base64.StdEncoding.EncodeToString(sig),
	})
	return err
}

// Find reaches an announced device: both can signal each other from now on
// (the device gets a PeerJoined with Code "").
func (c *Client) Find(ctx context.Context, deviceID string) (Peer, error) {
	r, err := c.request(ctx, &Envelope{Type: TypeFind, DeviceID: deviceID})
	if err != nil {
		return Peer{}, err
	}
	if r.Peer == nil {
		return Peer{}, errors.New("rendezvous server: found without a peer")
	}
	if r.Peer.ID != deviceID || r.Peer.Hello.ValidateAdvertised() != nil {
		return Peer{}, errors.New("rendezvous server: found another device, or one whose id is not its certificate's")
	}
	return *r.Peer, nil
}

// Signal sends payload (any JSON value; json.RawMessage is sent as is) to
// the client to, which must share a room with this one. It does not wait:
// a refusal (unknown-peer, peer-busy, rate-limited) comes back as an *Error
// event.
func (c *Client) Signal(to string, payload any) error {
	raw, err := jsonMarshal(payload)
	if err != nil {
		return fmt.Errorf("signal payload: %w", err)
	}
	if len(raw) > DefaultMaxPayload {
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("signal payload of %d bytes, limit %d", len(raw), DefaultMaxPayload)}
	}
	return c.write(&Envelope{Type: TypeSignal, To: to, Payload: raw})
}

func (c *Client) touch() { c.heard.Store(time.Now().UnixNano()) }

func (c *Client) write(e *Envelope) error {
	b, err := jsonMarshal(e)
	if err != nil {
		return err
	}
	// The connection's own context: coder/websocket closes a connection
	// whose write is cancelled, so a caller's deadline must not reach here.
	ctx, cancel := context.WithTimeout(c.life, clientWriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return c.closedErr(err)
	}
	return nil
}

// request sends e with a fresh req and waits for its reply.
func (c *Client) request(ctx context.Context, e *Envelope) (*Envelope, error) {
	req := c.nextReq.Add(1)
	if req == 0 { // wrapped
		req = c.nextReq.Add(1)
	}
	e.Req = req
	ch := make(chan *Envelope, 1)
	c.mu.Lock()
	c.pending[req] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req)
		c.mu.Unlock()
	}()
	if err := c.write(e); err != nil {
		return nil, err
	}
	var r *Envelope
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		// The reply may have come just before the close (an error, then
		// the server hangs up): it is the better answer.
		select {
		case r = <-ch:
		default:
			return nil, c.closedErr(nil)
		}
	}
	if r.Type == TypeError {
		return nil, &Error{Code: r.Code, Message: r.Message, Req: r.Req}
	}
	return r, nil
}

func (c *Client) closedErr(err error) error {
	select {
	case <-c.done:
		if c.err != nil && !errors.Is(c.err, ErrClosed) {
			return fmt.Errorf("%w: %w", ErrClosed, c.err)
		}
		return ErrClosed
	default:
	}
	if err == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	var err error
	for {
		var typ websocket.MessageType
		var data []byte
		typ, data, err = c.ws.Read(c.life)
		if err != nil {
			break
		}
		c.touch()
		if typ != websocket.MessageText {
			continue
		}
		var e Envelope
		if json.Unmarshal(data, &e) != nil {
			continue
		}
		if e.Req != 0 && c.deliver(&e) {
			continue
		}
		ev := eventOf(&e)
		if ev == nil {
			continue
		}
		select {
		case c.events <- ev:
		case <-c.closing:
		}
	}
	select {
	case <-c.closing:
		c.err = ErrClosed
	default:
		c.err = err
	}
	close(c.done)
	close(c.events)
}

func (c *Client) deliver(e *Envelope) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.pending[e.Req]
	if ok {
		delete(c.pending, e.Req)
		ch <- e // buffered for its one reply
	}
	return ok
}

func eventOf(e *Envelope) Event {
	switch e.Type {
	case TypePeerJoined:
		// A peer whose hello breaks the rules (an id that is not its
		// fingerprint's) comes from a server that lies: ignored.
		if e.Peer != nil && e.Peer.Hello.ValidateAdvertised() == nil {
			return PeerJoined{Peer: *e.Peer, Code: e.Code}
		}
	case TypePeerLeft:
		if e.Peer != nil {
			return PeerLeft{ClientID: e.Peer.ClientID, Code: e.Code}
		}
	case TypeSignal:
		return Signal{From: e.From, Payload: e.Payload}
	case TypeError:
		return &Error{Code: e.Code, Message: e.Message, Req: e.Req, To: e.To}
	}
	return nil
}

// keepAliveLoop pings a server it has not heard from for a while, so that a
// vanished server (or path) is noticed even when nothing is sent.
func (c *Client) keepAliveLoop() {
	defer c.wg.Done()
	t := time.NewTicker(max(c.keepAlive/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.heard.Load())) < c.keepAlive {
			continue
		}
		ctx, cancel := context.WithTimeout(c.life, c.keepAlive)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			_ = c.ws.CloseNow()
			return
		}
	}
}
