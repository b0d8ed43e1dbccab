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
	MaxConnsPerIP   int           // open connections per client address (IPv6: per /64) [64]
	// MaxConnsPerPrefix is the open connections of one network: the
	// addresses that share a /PrefixBits4 (IPv4) or /PrefixBits6 (IPv6)
	// prefix. One host with many addresses (a /24 is cheap to rent) cannot
	// fill the server alone. [256]
	MaxConnsPerPrefix int
	PrefixBits4       int           // prefix length of an IPv4 network [24]
	PrefixBits6       int           // prefix length of an IPv6 network [56]
	MaxCodes          int           // live codes plus tombstones [100000]
	MaxPins           int           // device keys remembered [100000]
	MaxIPs            int           // client addresses tracked for rate limits [100000]
	PinTTL            time.Duration // a pin is forgotten this long after its last announce [720h]

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
		{&c.MaxConns, 10000}, {&c.MaxConnsPerIP, 64}, {&c.MaxConnsPerPrefix, 256},
		{&c.PrefixBits4, 24}, {&c.PrefixBits6, 56}, {&c.MaxCodes, 100000},
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
	if c.PrefixBits4 > 32 || c.PrefixBits6 > 128 {
		return fmt.Errorf("rendezvous config: prefix lengths /%d, /%d too long", c.PrefixBits4, c.PrefixBits6)
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
	prefixes  map[string]int      // open connections per network, none at 0
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
		prefixes: make(map[string]int),
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
	ip, prefix := clientIP(r, s.cfg.ClientIPHeader, s.cfg.PrefixBits4, s.cfg.PrefixBits6)
	now := s.cfg.Now()
	st, status := s.admit(ip, prefix, now)
	if st == nil {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	// handed tells whether the connection's own goroutine took over the
	// count admit added for it.
	handed := false
	defer func() {
		if !handed {
			s.wg.Done()
		}
	}()
	c := &conn{
		s:          s,
		ip:         ip,
		ipst:       st,
		prefix:     prefix,
		writerDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(s.hardCtx)
	c.touch()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: s.cfg.OriginPatterns,
		OnPongReceived: func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		c.cancel()
		s.release(c)
		return
	}
	c.ws = ws
	if ws.Subprotocol() != Subprotocol {
		_ = ws.Close(websocket.StatusPolicyViolation, "subprotocol "+Subprotocol+" required")
		c.cancel()
		s.release(c)
		return
	}
	// A message is a payload plus a little envelope; anything bigger ends
	// the connection with "message too big" (1009).
	ws.SetReadLimit(int64(s.cfg.MaxPayload + messageOverhead))
	if err := s.register(c); err != nil {
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		c.cancel()
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

	// An idle connection holds one goroutine (the reader) and a timer: the
	// writer runs only while there is something to write. The reader is a
	// goroutine of its own, not this handler's, whose stack grew while it
	// served HTTP: an idle connection keeps only a small stack.
	// timerMu: the callback, however soon it runs, sees c.timer set.
	c.timerMu.Lock()
	c.started = time.Now()
	c.timer = time.AfterFunc(min(s.cfg.HelloTimeout, s.cfg.PingInterval), c.onTimer)
	c.timerMu.Unlock()
	handed = true
	go c.serve()
}

// serve reads c until it ends, then takes it out of the server.
func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.cancel()
	c.readLoop()
	c.s.unregister(c)
	c.kill(websocket.StatusNormalClosure, "")
	c.stopTimer()
	<-c.writerDone
	c.s.log.Debug("rendezvous: disconnected", slog.String("client", c.id))
}

// admit counts a new connection against the limits. On success it has
// added one to s.wg for the handler.
func (s *Server) admit(ip, prefix string, now time.Time) (*ipState, int) {
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
	// The network's count is checked first: its refusals spend no token of
	// the address.
	if s.prefixes[prefix] >= s.cfg.MaxConnsPerPrefix || st.conns >= s.cfg.MaxConnsPerIP ||
		!st.connect.allow(now, s.cfg.ConnectRate) {
		s.m.limited[limitConnect].Add(1)
		return nil, http.StatusTooManyRequests
	}
	st.conns++
	s.prefixes[prefix]++
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
	s.releaseLocked(c)
	s.mu.Unlock()
}

// releaseLocked gives back c's share of its address's and network's counts.
func (s *Server) releaseLocked(c *conn) {
	c.ipst.conns--
	if s.prefixes[c.prefix]--; s.prefixes[c.prefix] <= 0 {
		delete(s.prefixes, c.prefix)
	}
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
	s.releaseLocked(c)
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
	s      *Server
	ws     *websocket.Conn
	id     string
	ip     string
	ipst   *ipState
	prefix string // the address prefix counted in s.prefixes

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

	// The hello deadline and keepalive pings: one timer, whose callback
	// holds timerMu while it runs.
	started      time.Time
	timer        *time.Timer
	timerMu      sync.Mutex
	timerStopped bool

	// Outgoing messages, under qmu. A writer goroutine runs only while the
	// queue has messages, or to close the connection after kill.
	qmu        sync.Mutex
	queue      [][]byte // nil when empty: an idle connection holds no buffer
	queued     int      // bytes in queue
	writing    bool     // a writer goroutine runs
	killed     bool
	closed     bool // the connection is closed: nothing more is written
	killCode   websocket.StatusCode
	killReason string
	flushBy    time.Time // after kill, what is queued is written by then
	killOnce   sync.Once
	doneOnce   sync.Once
	writerDone chan struct{} // closed once nothing will write to ws again
}

// maxQueued is the messages queued for one connection (besides
// Config.SendQueue bytes): a client that lets more pile up is too slow.
const maxQueued = 64

func (c *conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

// kill asks the writer to close the connection with code and reason, after
// flushing what is queued. The first call decides.
func (c *conn) kill(code websocket.StatusCode, reason string) {
	c.killOnce.Do(func() {
		c.cancel()
		c.qmu.Lock()
		c.killed, c.killCode, c.killReason = true, code, reason
		c.flushBy = time.Now().Add(time.Second)
		c.startWriterLocked()
		c.qmu.Unlock()
	})
}

// startWriterLocked starts the writer unless one runs or the connection is
// closed; call with c.qmu held. The handler's goroutine holds a count of
// s.wg until writerDone, so adding to it here is safe.
func (c *conn) startWriterLocked() {
	if c.writing || c.closed {
		return
	}
	c.writing = true
	c.s.wg.Add(1)
	go c.writer()
}

// enqueue queues a marshalled message without blocking; false when the
// connection's queue is full.
func (c *conn) enqueue(b []byte) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed {
		return true // nobody reads it any more; nothing to punish
	}
	if c.queued+len(b) > c.s.cfg.SendQueue || len(c.queue) >= maxQueued {
		return false
	}
	c.queue = append(c.queue, b)
	c.queued += len(b)
	c.startWriterLocked()
	return true
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

// writer writes the queue out and ends when it is empty; after kill it
// flushes what is queued (within a second) and closes the connection.
func (c *conn) writer() {
	defer c.s.wg.Done()
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 {
			if !c.killed {
				c.writing, c.queue = false, nil
				c.qmu.Unlock()
				return
			}
			c.closed, c.writing = true, false
			code, reason := c.killCode, c.killReason
			c.qmu.Unlock()
			_ = c.ws.Close(code, reason)
			c.doneOnce.Do(func() { close(c.writerDone) })
			return
		}
		b := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queued -= len(b)
		timeout := c.s.cfg.WriteTimeout
		if c.killed {
			timeout = min(timeout, time.Until(c.flushBy))
		}
		c.qmu.Unlock()
		if timeout <= 0 || !c.write(b, timeout) {
			c.qmu.Lock()
			c.closed, c.writing, c.queue, c.queued = true, false, nil, 0
			c.qmu.Unlock()
			_ = c.ws.CloseNow()
			c.doneOnce.Do(func() { close(c.writerDone) })
			return
		}
	}
}

func (c *conn) write(b []byte, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(c.s.hardCtx, timeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b) == nil
}

// onTimer enforces the hello deadline, then pings a quiet connection every
// ping interval and closes one silent for the idle timeout.
func (c *conn) onTimer() {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if c.timerStopped || c.ctx.Err() != nil {
		return
	}
	next := c.s.cfg.PingInterval
	if !c.helloed.Load() {
		left := c.s.cfg.HelloTimeout - time.Since(c.started)
		if left <= 0 {
			c.kill(websocket.StatusPolicyViolation, "no hello")
			return
		}
		next = min(next, left)
	}
	if !c.keepAlive() {
		if c.ctx.Err() == nil { // not a ping cut short by our own close
			c.s.m.idle.Add(1)
			_ = c.ws.CloseNow()
		}
		return
	}
	c.timer.Reset(next)
}

// stopTimer stops the timer and waits for a callback that is running
// (kill has ended its ping first).
func (c *conn) stopTimer() {
	c.timer.Stop()
	c.timerMu.Lock()
	c.timerStopped = true
	c.timerMu.Unlock()
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
