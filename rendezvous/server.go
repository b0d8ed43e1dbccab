package rendezvous

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

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
