package localsend

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// The server: HTTPS on the port (and plain HTTP on the same port, told
// apart by the first byte, when AllowHTTP), with the spec's five calls.

// Bounds on what one peer can hold of the server.
const (
	maxConns      = 64               // open connections in all
	maxConnsPerIP = 16               // open connections from one address
	headerTimeout = 10 * time.Second // request line and headers

	pinAttempts    = 5 // wrong PINs per address per pinWindow, then 429
	pinWindow      = time.Minute
	maxPINBytes    = 64
	maxPINAddrs    = 1024            // addresses whose wrong PINs are counted
	pinBudget      = 50              // wrong PINs from everyone per pinWindow
	stallTimeout   = time.Minute     // an upload body that sends nothing for this long is broken
	decideTimeout  = 5 * time.Minute // a prepare-upload waits this long for the user
	sessionIdle    = 2 * time.Minute // a session with no upload for this long ends
	resultTimeout  = time.Minute     // a file's check by our receiver
	maxHeaderBytes = 16 << 10
)

// bodyTimeout bounds the arrival of a request's JSON body (a variable:
// tests shorten it).
var bodyTimeout = 10 * time.Second

func (n *Node) newServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"info", n.handleInfo)
	mux.HandleFunc("POST "+apiPrefix+"register", n.handleRegister)
	mux.HandleFunc("POST "+apiPrefix+"prepare-upload", n.handlePrepare)
	mux.HandleFunc("POST "+apiPrefix+"upload", n.handleUpload)
	mux.HandleFunc("POST "+apiPrefix+"cancel", n.handleCancel)
	tracked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.handlers.Add(1)
		defer n.handlers.Done()
		if n.ctx.Err() != nil {
			fail(w, http.StatusServiceUnavailable, "stopping")
			return
		}
		mux.ServeHTTP(w, r)
	})
	return &http.Server{
		Handler:           tracked,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return n.ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
}

// sniff wraps ln: each connection is TLS when its first byte is a TLS
// handshake record, else plain HTTP, served only when AllowHTTP. The first
// byte is read on the connection's own goroutine (under the server's
// header timeout), so a peer that sends nothing holds up no one else.
// It also bounds the open connections, in all and per address.
func (n *Node) sniff(ln net.Listener) net.Listener {
	return &sniffer{Listener: ln, n: n, perIP: map[netip.Addr]int{},
		tls: &tls.Config{Certificates: []tls.Certificate{n.cfg.Cert}, MinVersion: tls.VersionTLS12}}
}

type sniffer struct {
	net.Listener
	n   *Node
	tls *tls.Config

	mu    sync.Mutex
	open  int
	perIP map[netip.Addr]int
}

func (s *sniffer) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := netip.Addr{}
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			ip = ap.Addr().Unmap()
		}
		s.mu.Lock()
		full := s.open >= maxConns || s.perIP[ip] >= maxConnsPerIP
		if !full {
			s.open++
			s.perIP[ip]++
		}
		s.mu.Unlock()
		if full {
			_ = c.Close() // the peers already connected keep working
			continue
		}
		return &sniffConn{raw: c, s: s, ip: ip}, nil
	}
}

func (s *sniffer) release(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// sniffConn decides on its first Read whether it is TLS or plain HTTP.
type sniffConn struct {
	raw   net.Conn
	s     *sniffer
	ip    netip.Addr
	once  sync.Once
	inner net.Conn
	tls   bool // set by init, before the request is read
	err   error
	close sync.Once
}

var errHTTPOff = errors.New("unencrypted LocalSend is off")

func (c *sniffConn) init() {
	br := bufio.NewReaderSize(c.raw, 512)
	first, err := br.Peek(1)
	if err != nil {
		c.err = err
		return
	}
	pc := &peekedConn{Conn: c.raw, r: br}
	switch {
	case first[0] == 0x16: // a TLS handshake record
		c.inner, c.tls = tls.Server(pc, c.s.tls), true
	case c.s.n.cfg.AllowHTTP:
		c.inner = pc
	default:
		writeRefusal(c.raw)
		c.err = errHTTPOff
	}
}

func (c *sniffConn) Read(p []byte) (int, error) {
	c.once.Do(c.init)
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Read(p)
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.once.Do(c.init)
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Write(p)
}

func (c *sniffConn) Close() error {
	var err error
	c.close.Do(func() {
		err = c.raw.Close()
		c.s.release(c.ip)
	})
	return err
}

func (c *sniffConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *sniffConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *sniffConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *sniffConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *sniffConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

type connKey struct{}

// isTLS says whether a request came over TLS (the server sees our sniffing
// connection, never a *tls.Conn, so r.TLS is always nil).
func isTLS(r *http.Request) bool {
	c, ok := r.Context().Value(connKey{}).(*sniffConn)
	return ok && c.tls
}

// writeRefusal answers a plain HTTP request when HTTP is off.
func writeRefusal(c net.Conn) {
	body := `{"message":"unencrypted LocalSend is off on this device: use https"}`
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body))
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readBody decodes a request's JSON body of at most limit bytes, which must
// arrive within bodyTimeout; the deadline is lifted afterwards (a handler
// may wait long for a person, and a read deadline left on the connection
// would end the request's context).
// A body that fails (late, too long, not JSON) closes the connection after
// the answer: what is left of it is not read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	if err := decode(r.Body, limit, v); err != nil {
		w.Header().Set("Connection", "close")
		return err
	}
	_ = rc.SetReadDeadline(time.Time{})
	return nil
}

// remoteAddr is the peer's address.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Message: msg})
}

// handleInfo answers who we are (spec §6.1; others' legacy scans ask it).
func (n *Node) handleInfo(w http.ResponseWriter, r *http.Request) {
	in := n.self
	in.Port, in.Protocol = 0, ""
	writeJSON(w, http.StatusOK, in)
}

// handleRegister records a device that answers our announcement (or
// scans for us) and answers who we are.
func (n *Node) handleRegister(w http.ResponseWriter, r *http.Request) {
	var in Info
	if err := readBody(w, r, maxSmallJSON, &in); err != nil {
		fail(w, http.StatusBadRequest, "bad register body: "+err.Error())
		return
	}
	if err := in.check(); err != nil {
		fail(w, http.StatusBadRequest, "bad register body: "+err.Error())
		return
	}
	if in.Port == 0 {
		in.Port = DefaultPort
	}
	ip := remoteAddr(r)
	if ip.IsValid() {
		n.saw(in, netip.AddrPortFrom(ip, uint16(in.Port)))
	}
	out := n.self
	out.Announce = nil
	writeJSON(w, http.StatusOK, out)
}

// pinOK checks the PIN a request carries. Wrong PINs are counted per
// address (an IPv6 address by its /64, which one host can fill) and in
// all: after pinAttempts from one source, or pinBudget from everyone,
// within pinWindow, every PIN (the right one too) waits for the window to
// pass. The count and the check are one step under n.mu, so concurrent
// guesses cannot slip past the count.
func (n *Node) pinOK(w http.ResponseWriter, r *http.Request) bool {
	if n.cfg.PIN == "" {
		return true
	}
	src := pinSource(remoteAddr(r))
	got := r.URL.Query().Get("pin")
	now := time.Now()
	n.mu.Lock()
	recent := func(ts []time.Time) []time.Time {
		out := ts[:0]
		for _, t := range ts {
			if now.Sub(t) < pinWindow {
				out = append(out, t)
			}
		}
		return out
	}
	n.pinAll = recent(n.pinAll)
	if fails := recent(n.pinFails[src]); len(fails) > 0 {
		n.pinFails[src] = fails
	} else {
		delete(n.pinFails, src)
	}
	if len(n.pinFails) >= maxPINAddrs {
		for a, ts := range n.pinFails {
			if len(recent(ts)) == 0 {
				delete(n.pinFails, a)
			}
		}
	}
	locked := len(n.pinFails[src]) >= pinAttempts || len(n.pinAll) >= pinBudget ||
		(n.pinFails[src] == nil && len(n.pinFails) >= maxPINAddrs)
	right := !locked && len(got) <= maxPINBytes && subtle.ConstantTimeCompare([]byte(got), []byte(n.cfg.PIN)) == 1
	if !locked && !right && got != "" {
		n.pinFails[src] = append(n.pinFails[src], now)
		n.pinAll = append(n.pinAll, now)
	}
	n.mu.Unlock()
	switch {
	case locked:
		fail(w, http.StatusTooManyRequests, "too many wrong PINs: wait a minute")
	case right:
		return true
	case got != "":
		slog.Info("localsend: wrong PIN", slog.String("from", src.String()))
		fail(w, http.StatusUnauthorized, "wrong PIN")
	default:
		fail(w, http.StatusUnauthorized, "PIN required")
	}
	return false
}

// pinSource is what wrong PINs are counted by: an IPv4 address, or an
// IPv6 address's /64.
func pinSource(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}
