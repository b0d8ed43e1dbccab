package rendezvous

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Config is what New needs. Zero fields take the defaults in brackets.
type Config struct {
	// ICEServers returns the STUN/TURN entries for a new client (fresh TURN
	// credentials per client). Nil: an empty list.
	ICEServers func(clientID string) []ICEServer
	// Now is the clock of codes, pins and rate limits (tests). [time.Now]
	// Idle and ping timers always use the real clock.
	Now func() time.Time
	// Logger gets connection-level events at debug level. [discard]
	Logger *slog.Logger
	// ClientIPHeader names a header that holds the client address, set by
	// a reverse proxy in front of the server ("X-Forwarded-For": its last
	// entry is used). Empty: the TCP peer address. Set it only behind a
	// proxy that overwrites the header, or clients choose their own address.
	ClientIPHeader string
	// OriginPatterns lets browsers on these origins connect (see
	// websocket.AcceptOptions). Native clients send no Origin and are
	// always accepted; by default a browser must come from the server's
	// own origin.
	OriginPatterns []string
	// Site, when set, serves every request the protocol's paths (/ws,
	// /healthz) do not: peerdrop serve puts the web client there.
	Site http.Handler

	CodeTTL         time.Duration // pairing code lifetime [10m]
	MaxRoomMembers  int           // members of one code room, creator included [8]
	MaxRoomsPerConn int           // code rooms and presence links of one connection [16]
	MaxPayload      int           // bytes of a signal payload [64 KiB]
	MaxConns        int           // open connections in all [10000]
	MaxConnsPerIP   int           // open connections per client address [64]
	MaxCodes        int           // live codes plus tombstones [100000]
	MaxPins         int           // device keys remembered [100000]
	MaxIPs          int           // client addresses tracked for rate limits [100000]
	PinTTL          time.Duration // a pin is forgotten this long after its last announce [720h]

	ConnectRate  Limit // new connections per address [1/s, burst 30]
	PairRate     Limit // create and join per address [10/min, burst 10]
	PresenceRate Limit // announce and find per address [30/min, burst 30]
	MessageRate  Limit // messages per address [50/s, burst 200]
	// MaxStrikes: after this many refused messages (rate-limited, malformed,
	// out of order) a connection is closed. [5]
	MaxStrikes int

	IdleTimeout  time.Duration // no message and no pong for this long: closed [2m]
	PingInterval time.Duration // ping a connection quiet for this long [30s]
	HelloTimeout time.Duration // the hello must come within [10s]
	WriteTimeout time.Duration // one message write [10s]
	SendQueue    int           // bytes queued for one connection [1 MiB]
}

func (c *Config) setDefaults() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	durs := []struct {
		p *time.Duration
		d time.Duration
	}{
		{&c.CodeTTL, 10 * time.Minute}, {&c.PinTTL, 30 * 24 * time.Hour},
		{&c.IdleTimeout, 2 * time.Minute}, {&c.PingInterval, 30 * time.Second},
		{&c.HelloTimeout, 10 * time.Second}, {&c.WriteTimeout, 10 * time.Second},
	}
	for _, d := range durs {
		if *d.p < 0 {
			return fmt.Errorf("rendezvous config: negative duration %v", *d.p)
		}
		if *d.p == 0 {
			*d.p = d.d
		}
	}
	ints := []struct {
		p *int
		d int
	}{
		{&c.MaxRoomMembers, 8}, {&c.MaxRoomsPerConn, 16}, {&c.MaxPayload, DefaultMaxPayload},
		{&c.MaxConns, 10000}, {&c.MaxConnsPerIP, 64}, {&c.MaxCodes, 100000},
		{&c.MaxPins, 100000}, {&c.MaxIPs, 100000}, {&c.MaxStrikes, 5}, {&c.SendQueue, 1 << 20},
	}
	for _, i := range ints {
		if *i.p < 0 {
			return fmt.Errorf("rendezvous config: negative limit %d", *i.p)
		}
		if *i.p == 0 {
			*i.p = i.d
		}
	}
	if c.MaxRoomMembers < 2 {
		return errors.New("rendezvous config: a room needs at least 2 members")
	}
	limits := []struct {
		p *Limit
		d Limit
	}{
		{&c.ConnectRate, Limit{Every: time.Second, Burst: 30}},
		{&c.PairRate, PerMinute(10)},
		{&c.PresenceRate, PerMinute(30)},
		{&c.MessageRate, Limit{Every: 20 * time.Millisecond, Burst: 200}},
	}
	for _, l := range limits {
		if l.p.Every < 0 || l.p.Burst < 0 {
			return errors.New("rendezvous config: negative rate limit")
		}
		if l.p.Every == 0 {
			l.p.Every = l.d.Every
		}
		if l.p.Burst == 0 {
			l.p.Burst = l.d.Burst
		}
	}
	return nil
}

// Server is the rendezvous server: an http.Handler serving /ws and /healthz.
// Its counters are served by Metrics, on a listener of their own (they say
// how busy the server is and what it refuses: not for everyone). Serve runs
// it on a listener; Shutdown (or Close) ends every connection and waits for
// their goroutines.
type Server struct {
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	rand io.Reader // codes, ids and nonces

	// newCode draws a pairing code; tests replace it.
	newCode func() (string, error)

	// hardCtx ends every read and ping when Shutdown runs out of time.
	hardCtx    context.Context
	hardCancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	conns     map[string]*conn    // by client id
	codes     map[string]*code    // canonical code -> live room or tombstone
	presence  map[string]*conn    // announced device id -> its connection
	pins      map[string]*pin     // device id -> the key it first announced
	ips       map[string]*ipState // rate limits per client address
	rooms     int                 // code rooms with members
	links     int                 // presence links (find)
	openCodes int
	lastSweep time.Time

	wg        sync.WaitGroup // every connection's goroutines
	closeOnce sync.Once
	closeErr  error

	m metrics
}

// code is an issued pairing code. Once dead (closed, creator gone, expired)
// room is nil, and the entry stays as a tombstone until the code's expiry so
// that the code is never issued again in its lifetime.
type code struct {
	room    *room
	expires time.Time
}

// room is a set of connections allowed to signal each other: a code room, or
// a two-member presence link made by find (code "").
type room struct {
	code    string
	creator *conn
	members []*conn
	open    bool // the code still admits joins
	expires time.Time
}

type pin struct {
	key      string // PKIX DER
	lastSeen time.Time
}

// New returns a server; it starts no goroutine.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		rand:     rand.Reader,
		conns:    make(map[string]*conn),
		codes:    make(map[string]*code),
		presence: make(map[string]*conn),
		pins:     make(map[string]*pin),
		ips:      make(map[string]*ipState),
	}
	s.newCode = func() (string, error) { return newCode(s.rand) }
	s.hardCtx, s.hardCancel = context.WithCancel(context.Background())
	s.m.init()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /ws", s.handleWS)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	if cfg.Site != nil {
		s.mux.Handle("/", cfg.Site)
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers HTTP on ln until ctx is cancelled, then shuts down: no new
// connections, every WebSocket closed with "going away", every goroutine
// ended. It returns nil after a shutdown asked for by ctx. Wrap ln with
// tls.NewListener for TLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Stop accepting first, then end the WebSockets (which http.Server
	// does not track once they are hijacked).
	_ = hs.Shutdown(sctx)
	if serr := s.Shutdown(sctx); err == nil {
		err = serr
	}
	if e := <-errc; err == nil && !errors.Is(e, http.ErrServerClosed) {
		err = e
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Shutdown refuses new connections, closes every open one with "going away"
// and waits for their goroutines. When ctx ends first it drops the rest
// without the closing handshake, still waits, and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.kill(websocket.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.hardCancel()
	for _, c := range conns {
		_ = c.ws.CloseNow()
	}
	<-done
	return ctx.Err()
}

// Close shuts down with a 10 s grace period. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = s.Shutdown(ctx)
		s.hardCancel()
	})
	return s.closeErr
}

// handleHealth says "ok" until shutdown begins, then 503 so that a load
// balancer stops sending clients here.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r, s.cfg.ClientIPHeader)
	now := s.cfg.Now()
	st, status := s.admit(ip, now)
	if st == nil {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	defer s.wg.Done()
	c := &conn{
		s:          s,
		ip:         ip,
		ipst:       st,
		out:        make(chan []byte, 64),
		dead:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(s.hardCtx)
	defer c.cancel()
	c.touch()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: s.cfg.OriginPatterns,
		OnPongReceived: func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		s.release(c)
		return
	}
	c.ws = ws
	if ws.Subprotocol() != Subprotocol {
		_ = ws.Close(websocket.StatusPolicyViolation, "subprotocol "+Subprotocol+" required")
		s.release(c)
		return
	}
	// A message is a payload plus a little envelope; anything bigger ends
	// the connection with "message too big" (1009).
	ws.SetReadLimit(int64(s.cfg.MaxPayload + messageOverhead))
	if err := s.register(c); err != nil {
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		s.release(c)
		return
	}
	var ice []ICEServer
	if s.cfg.ICEServers != nil {
		ice = s.cfg.ICEServers(c.id)
	}
	if ice == nil {
		ice = []ICEServer{}
	}
	c.send(&Envelope{Type: TypeWelcome, Version: Version, ClientID: c.id, Nonce: c.nonce, ICEServers: ice})
	s.log.Debug("rendezvous: connected", slog.String("client", c.id), slog.String("ip", ip))

	s.wg.Add(1)
	go c.writeLoop()
	c.readLoop()
	s.unregister(c)
	c.kill(websocket.StatusNormalClosure, "")
	<-c.writerDone
	s.log.Debug("rendezvous: disconnected", slog.String("client", c.id))
}

// admit counts a new connection against the limits. On success it has
// added one to s.wg for the handler.
func (s *Server) admit(ip string, now time.Time) (*ipState, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, http.StatusServiceUnavailable
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.m.refused.Add(1)
		return nil, http.StatusServiceUnavailable
	}
	s.maybeSweep(now)
	st := s.ips[ip]
	if st == nil {
		if len(s.ips) >= s.cfg.MaxIPs {
			s.m.refused.Add(1)
			return nil, http.StatusServiceUnavailable
		}
		st = &ipState{}
		s.ips[ip] = st
	}
	if st.conns >= s.cfg.MaxConnsPerIP || !st.connect.allow(now, s.cfg.ConnectRate) {
		s.m.limited[limitConnect].Add(1)
		return nil, http.StatusTooManyRequests
	}
	st.conns++
	s.wg.Add(1)
	return st, 0
}

// register gives c its id and nonce and makes it reachable.
func (s *Server) register(c *conn) error {
	var nonce [32]byte
	if _, err := io.ReadFull(s.rand, nonce[:]); err != nil {
		return err
	}
	c.nonce = hex.EncodeToString(nonce[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("closing")
	}
	for {
		var id [8]byte
		if _, err := io.ReadFull(s.rand, id[:]); err != nil {
			return err
		}
		c.id = hex.EncodeToString(id[:])
		if s.conns[c.id] == nil {
			break
		}
	}
	s.conns[c.id] = c
	s.m.connsTotal.Add(1)
	return nil
}

// release gives back what admit took, for a connection never registered.
func (s *Server) release(c *conn) {
	s.mu.Lock()
	c.ipst.conns--
	s.mu.Unlock()
}

// unregister removes c from every room and table, telling the others.
func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(c.rooms) > 0 {
		s.leaveLocked(c, c.rooms[len(c.rooms)-1])
	}
	if c.announced != "" && s.presence[c.announced] == c {
		delete(s.presence, c.announced)
	}
	delete(s.conns, c.id)
	c.ipst.conns--
}

// maybeSweep forgets expired codes, old pins and idle addresses, at most
// every 10 s (so the work is bounded and needs no goroutine).
func (s *Server) maybeSweep(now time.Time) {
	if el := now.Sub(s.lastSweep); el >= 0 && el < 10*time.Second {
		return
	}
	s.sweep(now)
}

func (s *Server) sweep(now time.Time) {
	s.lastSweep = now
	for k, e := range s.codes {
		if now.Before(e.expires) {
			continue
		}
		if e.room != nil {
			e.room.open = false
			s.openCodes--
		}
		delete(s.codes, k)
	}
	for k, p := range s.pins {
		if s.presence[k] == nil && now.Sub(p.lastSeen) > s.cfg.PinTTL {
			delete(s.pins, k)
		}
	}
	for k, st := range s.ips {
		if st.conns == 0 && st.connect.full(now, s.cfg.ConnectRate) && st.pair.full(now, s.cfg.PairRate) &&
			st.presence.full(now, s.cfg.PresenceRate) && st.message.full(now, s.cfg.MessageRate) {
			delete(s.ips, k)
		}
	}
}

// Stats is a snapshot of the server's state, as /metrics shows it.
type Stats struct {
	Conns, Rooms, Links, OpenCodes, Announced int
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Conns: len(s.conns), Rooms: s.rooms, Links: s.links, OpenCodes: s.openCodes, Announced: len(s.presence)}
}

type conn struct {
	s    *Server
	ws   *websocket.Conn
	id   string
	ip   string
	ipst *ipState

	nonce string

	// Under s.mu:
	hello     *Hello
	rooms     []*room
	announced string

	// Reader goroutine only.
	strikes int

	helloed  atomic.Bool
	lastSeen atomic.Int64 // unix nanoseconds, real clock: last message or pong

	// ctx ends with kill (or a forced shutdown); it bounds pings.
	ctx    context.Context
	cancel context.CancelFunc

	out        chan []byte
	queued     atomic.Int64 // bytes in out
	dead       chan struct{}
	killOnce   sync.Once
	killCode   websocket.StatusCode
	killReason string
	writerDone chan struct{}
}

func (c *conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

// kill asks the writer to close the connection with code and reason, after
// flushing what is queued. The first call decides.
func (c *conn) kill(code websocket.StatusCode, reason string) {
	c.killOnce.Do(func() {
		c.killCode, c.killReason = code, reason
		close(c.dead)
		c.cancel()
	})
}

// enqueue queues a marshalled message without blocking; false when the
// connection's queue is full.
func (c *conn) enqueue(b []byte) bool {
	if c.queued.Add(int64(len(b))) > int64(c.s.cfg.SendQueue) {
		c.queued.Add(-int64(len(b)))
		return false
	}
	select {
	case c.out <- b:
		return true
	default:
		c.queued.Add(-int64(len(b)))
		return false
	}
}

// send queues a server message to c; a client that does not keep up with
// its own messages is dropped.
func (c *conn) send(e *Envelope) {
	b, err := jsonMarshal(e)
	if err != nil {
		c.s.log.Error("rendezvous: encode", slog.String("type", e.Type), slog.Any("err", err))
		return
	}
	if !c.enqueue(b) {
		c.s.m.slow.Add(1)
		c.kill(websocket.StatusPolicyViolation, "too slow")
	}
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer close(c.writerDone)
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	hello := time.NewTimer(c.s.cfg.HelloTimeout)
	defer hello.Stop()
	for {
		select {
		case b := <-c.out:
			c.queued.Add(-int64(len(b)))
			if !c.write(b) {
				_ = c.ws.CloseNow()
				return
			}
		case <-hello.C:
			if !c.helloed.Load() {
				c.kill(websocket.StatusPolicyViolation, "no hello")
			}
		case <-ping.C:
			if !c.keepAlive() {
				select {
				case <-c.dead: // the ping failed because we are closing
				default:
					c.s.m.idle.Add(1)
					_ = c.ws.CloseNow()
					return
				}
			}
		case <-c.dead:
			c.flush()
			_ = c.ws.Close(c.killCode, c.killReason)
			return
		}
	}
}

func (c *conn) write(b []byte) bool {
	ctx, cancel := context.WithTimeout(c.s.hardCtx, c.s.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b) == nil
}

// flush writes what is queued (an error reply before a close, say) within
// one second.
func (c *conn) flush() {
	ctx, cancel := context.WithTimeout(c.s.hardCtx, time.Second)
	defer cancel()
	for {
		select {
		case b := <-c.out:
			c.queued.Add(-int64(len(b)))
			if c.ws.Write(ctx, websocket.MessageText, b) != nil {
				return
			}
		default:
			return
		}
	}
}

// keepAlive pings a connection that has been quiet for a ping interval and
// reports false when it has been silent (no message, no pong) for the idle
// timeout.
func (c *conn) keepAlive() bool {
	quiet := time.Since(time.Unix(0, c.lastSeen.Load()))
	if quiet >= c.s.cfg.IdleTimeout {
		return false
	}
	if quiet < c.s.cfg.PingInterval {
		return true
	}
	// c.ctx ends when the connection is killed meanwhile.
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.IdleTimeout-quiet)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		return false
	}
	c.touch()
	return true
}
