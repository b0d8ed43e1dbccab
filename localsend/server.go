package localsend

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// The server: HTTPS on the port (and plain HTTP on the same port, told
// apart by the first byte, when AllowHTTP), with the spec's five calls.

// Bounds on what one peer can hold of the server.
const (
	maxConns       = 64               // open connections in all
	headerTimeout  = 10 * time.Second // request line and headers
	pinAttempts    = 5                // wrong PINs per address per pinWindow, then 429
	pinWindow      = time.Minute
	maxPINBytes    = 64
	decideTimeout  = 5 * time.Minute // a prepare-upload waits this long for the user
	sessionIdle    = 2 * time.Minute // a session with no upload for this long ends
	resultTimeout  = time.Minute     // a file's check by our receiver
	maxHeaderBytes = 16 << 10
)

func (n *Node) newServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"info", n.handleInfo)
	mux.HandleFunc("POST "+apiPrefix+"register", n.handleRegister)
	mux.HandleFunc("POST "+apiPrefix+"prepare-upload", n.handlePrepare)
	mux.HandleFunc("POST "+apiPrefix+"upload", n.handleUpload)
	mux.HandleFunc("POST "+apiPrefix+"cancel", n.handleCancel)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return n.ctx },
	}
}

// sniff wraps ln: each connection is TLS when its first byte is a TLS
// handshake record, else plain HTTP, served only when AllowHTTP. It also
// bounds the open connections.
func (n *Node) sniff(ln net.Listener) net.Listener {
	return &sniffer{Listener: ln, n: n, slots: make(chan struct{}, maxConns),
		tls: &tls.Config{Certificates: []tls.Certificate{n.cfg.Cert}, MinVersion: tls.VersionTLS12}}
}

type sniffer struct {
	net.Listener
	n     *Node
	slots chan struct{}
	tls   *tls.Config
}

func (s *sniffer) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case s.slots <- struct{}{}:
		default:
			_ = c.Close() // full: the peers already connected keep working
			continue
		}
		rc := &releaseConn{Conn: c, release: func() { <-s.slots }}
		_ = c.SetReadDeadline(time.Now().Add(headerTimeout))
		br := bufio.NewReaderSize(rc, 512)
		first, err := br.Peek(1)
		_ = c.SetReadDeadline(time.Time{})
		if err != nil {
			_ = rc.Close()
			continue
		}
		pc := &peekedConn{Conn: rc, r: br}
		if first[0] == 0x16 { // TLS handshake record
			return tls.Server(pc, s.tls), nil
		}
		if !s.n.cfg.AllowHTTP {
			writeRefusal(rc)
			_ = rc.Close()
			continue
		}
		return pc, nil
	}
}

// writeRefusal answers a plain HTTP request when HTTP is off.
func writeRefusal(c net.Conn) {
	body := `{"message":"unencrypted LocalSend is off on this device: use https"}`
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

type releaseConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *releaseConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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

// handleInfo answers who we are (spec §5.2, also used by the legacy scan
// of others).
func (n *Node) handleInfo(w http.ResponseWriter, r *http.Request) {
	in := n.self
	in.Port, in.Protocol = 0, ""
	writeJSON(w, http.StatusOK, in)
}

// handleRegister records a device that answers our announcement (or
// scans for us) and answers who we are.
func (n *Node) handleRegister(w http.ResponseWriter, r *http.Request) {
	var in Info
	if err := decode(r.Body, maxSmallJSON, &in); err != nil {
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

// pinOK checks the PIN a request carries, counting wrong ones per address.
func (n *Node) pinOK(w http.ResponseWriter, r *http.Request) bool {
	if n.cfg.PIN == "" {
		return true
	}
	ip := remoteAddr(r)
	now := time.Now()
	n.mu.Lock()
	fails := n.pinFails[ip][:0]
	for _, t := range n.pinFails[ip] {
		if now.Sub(t) < pinWindow {
			fails = append(fails, t)
		}
	}
	n.pinFails[ip] = fails
	if len(fails) == 0 {
		delete(n.pinFails, ip)
	}
	locked := len(fails) >= pinAttempts
	n.mu.Unlock()
	if locked {
		fail(w, http.StatusTooManyRequests, "too many wrong PINs: wait a minute")
		return false
	}
	got := r.URL.Query().Get("pin")
	if got == n.cfg.PIN {
		return true
	}
	if got != "" {
		n.mu.Lock()
		if len(n.pinFails) < 1024 || n.pinFails[ip] != nil {
			n.pinFails[ip] = append(n.pinFails[ip], now)
		}
		n.mu.Unlock()
		slog.Info("localsend: wrong PIN", slog.String("from", ip.String()))
		fail(w, http.StatusUnauthorized, "wrong PIN")
		return false
	}
	fail(w, http.StatusUnauthorized, "PIN required")
	return false
}

var errBusy = errors.New("busy")
