// Package web serves the browser client (web/static, embedded) and bridges
// its handshakes: a page cannot open TCP, so it carries the LAN handshake
// frames of docs/PROTOCOL.md §2 over a WebSocket to the process that served
// it, one frame per binary WebSocket message. The bridge is a dumb, checked
// frame pipe: it answers the page itself (/ws/connect), listens on TCP on a
// page's behalf (/ws/listen), and dials only devices it discovered itself,
// by id (/ws/dial): it is no proxy to addresses a page names. The
// transfer protocol then runs on the page's own RTCDataChannel. See "Web
// client" in docs/PROTOCOL.md.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/signaling"
)

//go:embed static
var static embed.FS

// Static serves the web client's files (index.html, scripts, style).
func Static() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page and the binary must match: never run a cached old script.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Only this origin's scripts, styles and sockets (the rendezvous
		// WebSocket); the QR code is inline SVG, files save as blob: URLs.
		// The address may carry a pairing code: never send it as a referrer.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/favicon.ico" {
			// The page names icon.png; a browser that asks anyway gets it
			// rather than a 404 in its console.
			http.ServeFileFS(w, r, sub, "icon.png")
			return
		}
		files.ServeHTTP(w, r)
	})
}

// Modes of the page, the "mode" of /api/info.
const (
	// ModeLAN marks a page served by receive --web, which the page sends to
	// and which bridges its handshakes (the zero value: /api/info describes
	// the host).
	ModeLAN = "lan"
	// ModeServer marks a page served by peerdrop serve; the page pairs with a
	// code over the rendezvous WebSocket (docs/PROTOCOL.md §14, off the LAN).
	ModeServer = "server"
)

// ServerInfo is /api/info on a rendezvous server: the page is off the LAN
// and reaches other devices through the signaling WebSocket at WS (a path
// relative to the page).
type ServerInfo struct {
	Mode string `json:"mode"`
	WS   string `json:"ws"`
}

// ServerSite serves the page for peerdrop serve: the same files as Static
// and /api/info saying that the page runs off the LAN. The WebSocket of
// signaling is the rendezvous server's own /ws.
func ServerSite() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", Static())
	mux.HandleFunc("GET /api/info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(ServerInfo{Mode: ModeServer, WS: "ws"})
	})
	return mux
}

// Limits of the bridge.
const (
	// MaxPages bounds the pages registered to receive at once.
	MaxPages = 16
	// MaxConnects bounds the page handshakes in progress at once, as
	// peer.MaxPendingHandshakes does for TCP.
	MaxConnects = 16
	// handshakeTimeout bounds one bridged handshake, from the TCP accept
	// to both ends letting go: the frames (10 s per read) plus the data
	// channel opening (15 s).
	handshakeTimeout = 30 * time.Second
	// writeTimeout bounds one write to the page or to a TCP peer.
	writeTimeout = 10 * time.Second
	// maxMessage is the largest WebSocket message: one frame.
	maxMessage = 6 + signaling.MaxPayload
)

// Info is the device that serves the page, as /api/info shows it.
type Info struct {
	DeviceID    string `json:"device_id"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	Type        string `json:"type"`
	// Mode is ModeLAN (Handler sets it when empty).
	Mode string `json:"mode,omitempty"`
}

// Page is a browser registered to receive: its hello and the TCP port the
// bridge listens on for it.
type Page struct {
	Hello signaling.Hello
	// Type is what the page says it is (phone, tablet, desktop, laptop);
	// unchecked, default "phone".
	Type string
	Port int
}

// Server is the web client's HTTP side for one device.
type Server struct {
	// Host is the device serving the page; the page sends to it.
	Host Info
	// Connect runs the answering side of a handshake from a page that
	// sends to Host (peer.AnswerConn). conn carries the frames and ends by
	// itself after the handshake's time limit. It returns what is to run
	// once the handshake is over (the transfer), or nil: the server runs it
	// in a goroutine of its own, under ctx (the server's), after freeing
	// the handshake's slot, so waiting offers never lock pages out.
	Connect func(ctx context.Context, conn net.Conn) (then func())
	// ListenHost is the address page listeners bind to ("" all interfaces,
	// "127.0.0.1" loopback only); each gets a free port.
	ListenHost string
	// OnPage, when set, runs while a page is registered to receive (in a
	// goroutine of its own); ctx ends when the page goes. The CLI reports
	// the page and advertises it over mDNS there.
	OnPage func(ctx context.Context, p Page)
	// Devices, when set, lists the devices the serving process discovered
	// on the LAN: /api/devices shows them and /ws/dial connects a page to
	// one of them by id (at its advertised addresses, never at one the
	// page names).
	Devices func() []discovery.Device
	// OnError, when set, hears about bridged handshakes that failed.
	OnError func(error)
	// HideFromProbes: a registered page's port does not say who the page
	// is to a probe (PROTOCOL.md §2.5); it closes, as a hidden listener
	// does. By default the bridge answers with the page's hello.
	HideFromProbes bool

	wg       sync.WaitGroup
	mu       sync.Mutex
	pages    int
	ids      map[string]bool // device ids of registered pages
	connects chan struct{}
	once     sync.Once
}

func (s *Server) init() {
	s.once.Do(func() { s.connects = make(chan struct{}, MaxConnects) })
}

func (s *Server) report(err error) {
	slog.Info("web bridge", slog.Any("err", err))
	if s.OnError != nil {
		s.OnError(err)
	}
}

// Handler routes the page (/), the host's details (/api/info), the nearby
// devices (/api/devices) and the WebSocket endpoints. Handlers end when ctx does.
func (s *Server) Handler(ctx context.Context) http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.Handle("GET /", Static())
	info := s.Host
	if info.Mode == "" {
		info.Mode = ModeLAN
	}
	mux.HandleFunc("GET /api/info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("GET /ws/connect", func(w http.ResponseWriter, r *http.Request) { s.serveConnect(ctx, w, r) })
	mux.HandleFunc("GET /api/devices", s.serveDevices)
	mux.HandleFunc("GET /ws/dial", func(w http.ResponseWriter, r *http.Request) { s.serveDial(ctx, w, r) })
	mux.HandleFunc("GET /ws/listen", func(w http.ResponseWriter, r *http.Request) { s.serveListen(ctx, w, r) })
	return guardHost(ownHostName(s.Host.DeviceID), mux)
}

// guardHost refuses requests whose Host is a DNS name other than localhost
// or this device's own mDNS host name (ownName, "pd-<device id>.local",
// the name discovery advertises it under). The page is reached by the
// address in the QR code; a name that resolves to this machine is what DNS
// rebinding looks like: a web site that re-points its own name here, so
// that the browser's origin check (Origin = Host) passes and the site could
// drive the bridge. Any other .local name is refused too: anyone on the LAN
// can answer for one over mDNS and point it here.
func guardHost(ownName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, ownName) {
			http.Error(w, "open this page by the address the device shows (http://ADDRESS:PORT/)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ownHostName is the mDNS host name discovery advertises the device with
// id under (discovery's hostName, without the trailing dot), or "" for none.
func ownHostName(id string) string {
	if id == "" {
		return ""
	}
	return "pd-" + strings.ToLower(id) + ".local"
}

// allowedHost reports whether a request's Host may reach the bridge: an IP
// literal, localhost, or ownName (when not "").
func allowedHost(hostport, ownName string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host == "localhost" || (ownName != "" && host == ownName)
}

// Serve serves Handler on ln until ctx ends, and returns once every
// handler (WebSocket ones included) has returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(ctx),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	shutDown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutDown)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	err := srv.Serve(ln)
	if !stop() {
		<-shutDown // Serve returns as Shutdown starts; let it finish
	}
	s.wg.Wait() // hijacked WebSocket connections are not Shutdown's
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("web server: %w", err)
}

func accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	// The default origin check stays: only a page from this server (same
	// host) may drive the bridge, not any site the person visits.
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxMessage)
	return ws, nil
}

// serveConnect answers a page that sends to Host: the WebSocket is the
// handshake connection, as an accepted TCP socket would be.
func (s *Server) serveConnect(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	select {
	case s.connects <- struct{}{}:
	default:
		http.Error(w, "too many handshakes at once", http.StatusServiceUnavailable)
		return
	}
	freed := false
	free := func() {
		if !freed {
			freed = true
			<-s.connects
		}
	}
	defer free()
	// Counted before the upgrade: Shutdown waits for the handler until it
	// hijacks the connection, Serve's Wait after that.
	s.wg.Add(1)
	defer s.wg.Done()
	ws, err := accept(w, r)
	if err != nil {
		return // Accept has answered
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn := websocket.NetConn(hctx, ws, websocket.MessageBinary)
	defer conn.Close()
	if s.Connect == nil {
		return
	}
	then := s.Connect(ctx, conn)
	free()
	if then != nil {
		s.wg.Go(then) // this handler still counts: Serve's Wait sees it
	}
	// The deferred Close says goodbye to the page (a close handshake, a
	// few seconds at most for a page that does not answer it).
}

// serveListen registers a page to receive: TCP handshakes to its port are
// piped to it frame by frame, one at a time.
func (s *Server) serveListen(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	full := s.pages >= MaxPages
	if !full {
		s.pages++
	}
	s.mu.Unlock()
	if full {
		http.Error(w, "too many pages", http.StatusServiceUnavailable)
		return
	}
	defer func() {
		s.mu.Lock()
		s.pages--
		s.mu.Unlock()
	}()
	s.wg.Add(1)
	defer s.wg.Done()
	ws, err := accept(w, r)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	devType := r.URL.Query().Get("type")
	switch devType {
	case "phone", "tablet", "desktop", "laptop":
	default:
		devType = "phone"
	}
	if err := s.listen(ctx, ws, devType); err != nil && ctx.Err() == nil {
		closeWith(ws, err)
	}
}

// truncate cuts s to n bytes (a close reason must stay under 125).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
