package rendezvous

import (
	"bufio"
	"bytes"
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

	// store holds the rooms, presence, pins and rate limits (shared with
	// other instances when it is Redis).
	store Store

	mu       sync.Mutex
	closing  bool
	conns    map[string]*conn // by client id
	ips      map[string]int   // open connections per client address
	prefixes map[string]int   // open connections per network, none at 0

	wg        sync.WaitGroup // every connection's goroutines
	closeOnce sync.Once
	closeErr  error

	m           metrics
	storeLogged atomic.Int64 // unix nanoseconds of the last store failure logged
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
		store:    cfg.Store,
		conns:    make(map[string]*conn),
		ips:      make(map[string]int),
		prefixes: make(map[string]int),
	}
	if s.store == nil {
		s.store = NewMemoryStore()
	}
	s.newCode = func() (string, error) { return newCode(s.rand) }
	s.hardCtx, s.hardCancel = context.WithCancel(context.Background())
	s.m.init()
	if err := s.store.start(hooks{local: s.deliverLocal, gone: s.tellLeft, live: s.live, lost: s.dropAll}, &s.cfg); err != nil {
		return nil, fmt.Errorf("rendezvous store: %w", err)
	}
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
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.hardCancel()
		for _, c := range conns {
			_ = c.ws.CloseNow()
		}
		<-done
		err = ctx.Err()
	}
	if cerr := s.store.close(); err == nil {
		err = cerr
	}
	return err
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

// handleHealth says "ok" while the server takes new clients, and 503 (so
// that a load balancer sends them elsewhere) once shutdown begins or while
// its store is unreachable.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if err := s.store.ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	ip, prefix := clientIP(r, s.cfg.ClientIPHeader, s.cfg.PrefixBits4, s.cfg.PrefixBits6)
	status := s.admit(r.Context(), ip, prefix)
	if status != 0 {
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
		prefix:     prefix,
		writerDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(s.hardCtx)
	c.touch()
	ws, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
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

// connBuffer is the size of a connection's read and write buffers.
const connBuffer = 512

// smallBuffers hands the WebSocket library small buffers for the hijacked
// connection: the 4 KiB reader and 4 KiB writer net/http gives it were a
// third of what an idle connection holds. Frames larger than the buffers
// are read and written past them, in place.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over (no http.Hijacker)")
	}
	c, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// What the client sent right behind the handshake is read first.
	var r io.Reader = c
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(b)), c)
	}
	return c, bufio.NewReadWriter(bufio.NewReaderSize(r, connBuffer), bufio.NewWriterSize(c, connBuffer)), nil
}

// admit counts a new connection against the limits. On success (0) it has
// added one to s.wg for the handler; otherwise it returns the HTTP status
// of the refusal.
func (s *Server) admit(ctx context.Context, ip, prefix string) int {
	s.mu.Lock()
	switch {
	case s.closing || s.store.ready() != nil:
		s.mu.Unlock()
		return http.StatusServiceUnavailable
	case len(s.conns) >= s.cfg.MaxConns || (s.ips[ip] == 0 && len(s.ips) >= s.cfg.MaxIPs):
		s.mu.Unlock()
		s.m.refused.Add(1)
		return http.StatusServiceUnavailable
	case s.prefixes[prefix] >= s.cfg.MaxConnsPerPrefix || s.ips[ip] >= s.cfg.MaxConnsPerIP:
		// The counts are checked first: their refusals spend no token of
		// the address.
		s.mu.Unlock()
		s.m.limited[limitConnect].Add(1)
		return http.StatusTooManyRequests
	}
	s.ips[ip]++
	s.prefixes[prefix]++
	s.wg.Add(1)
	s.mu.Unlock()
	ok, err := s.store.allow(ctx, limitConnect, ip, s.cfg.Now(), s.cfg.ConnectRate)
	if err == nil && ok {
		return 0
	}
	s.mu.Lock()
	s.releaseLocked(ip, prefix)
	s.mu.Unlock()
	s.wg.Done()
	var e *Error
	switch {
	case errors.As(err, &e):
		s.m.refused.Add(1)
		return http.StatusServiceUnavailable
	case err != nil:
		s.storeFailed("admit", err)
		return http.StatusServiceUnavailable
	}
	s.m.limited[limitConnect].Add(1)
	return http.StatusTooManyRequests
}

// storeFailed counts a failure of the store (Redis unreachable, ...) and
// logs it, at most once every storeLogEvery (an outage fails every
// request: the log must not grow with them).
func (s *Server) storeFailed(op string, err error) {
	n := s.m.storeErrors.Add(1)
	now := time.Now().UnixNano()
	last := s.storeLogged.Load()
	if now-last < int64(storeLogEvery) || !s.storeLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("rendezvous: store failed", slog.String("op", op), slog.Any("err", err), slog.Uint64("failures_so_far", n))
}

// storeLogEvery bounds the log lines of a failing store.
const storeLogEvery = 10 * time.Second

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
	// The store's prefix tells other instances where the client is.
	prefix := s.store.idPrefix()
	for {
		var id [8]byte
		if _, err := io.ReadFull(s.rand, id[:]); err != nil {
			return err
		}
		c.id = prefix + hex.EncodeToString(id[:])[len(prefix):]
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
	s.releaseLocked(c.ip, c.prefix)
	s.mu.Unlock()
}

// releaseLocked gives back a connection's share of its address's and
// network's counts.
func (s *Server) releaseLocked(ip, prefix string) {
	if s.ips[ip]--; s.ips[ip] <= 0 {
		delete(s.ips, ip)
	}
	if s.prefixes[prefix]--; s.prefixes[prefix] <= 0 {
		delete(s.prefixes, prefix)
	}
}

// unregister takes c out of every room and table, telling the others.
func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.releaseLocked(c.ip, c.prefix)
	s.mu.Unlock()
	if !c.stored {
		return // never in the store
	}
	// The store may be failing: its own retries are bounded by this.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	left, err := s.store.drop(ctx, c.id, c.announced)
	if err != nil {
		s.storeFailed("drop", err)
		return
	}
	s.tellLeft(ctx, c.id, left)
}

// tellLeft tells the members of the rooms client id left.
func (s *Server) tellLeft(ctx context.Context, id string, left []departure) {
	for _, d := range left {
		s.tellAll(ctx, d.others, &Envelope{Type: TypePeerLeft, Code: showCode(d.code), Peer: &Peer{ClientID: id}})
	}
}

// live reports whether client id is connected to this instance.
func (s *Server) live(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id] != nil
}

// dropAll closes every connection: the store lost them.
func (s *Server) dropAll() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.kill(websocket.StatusTryAgainLater, "the server lost its state; connect again")
	}
}

// deliverLocal queues msg for the connection of id on this instance.
func (s *Server) deliverLocal(id string, msg []byte, signal bool) bool {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	if signal {
		return c.enqueue(msg)
	}
	c.sendRaw(msg)
	return true
}

// tellAll sends a server message to each client in ids, wherever it is.
func (s *Server) tellAll(ctx context.Context, ids []string, e *Envelope) {
	if len(ids) == 0 {
		return
	}
	b, err := jsonMarshal(e)
	if err != nil {
		s.log.Error("rendezvous: encode", slog.String("type", e.Type), slog.Any("err", err))
		return
	}
	for _, id := range ids {
		if _, err := s.store.deliver(ctx, id, b, false); err != nil {
			s.storeFailed("deliver", err)
		}
	}
}

// showCode is a room's code as clients see it ("" for a presence link).
func showCode(k string) string {
	if k == "" {
		return ""
	}
	return FormatCode(k)
}

// Stats is a snapshot of the server's state, as /metrics shows it.
type Stats struct {
	Conns, Rooms, Links, OpenCodes, Announced int
}

// Stats returns the current counts: the connections of this instance, the
// rest of the store (all instances', with Redis). Those it cannot read are 0.
func (s *Server) Stats() Stats {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.store.stats(ctx, s.cfg.Now())
	if err != nil {
		s.storeFailed("stats", err)
	}
	s.mu.Lock()
	st.Conns = len(s.conns)
	s.mu.Unlock()
	return st
}
