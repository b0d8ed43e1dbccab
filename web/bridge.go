package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// Control is a text message on /ws/listen.
//
//	process -> page  {"type":"listening","port":P}  registered, TCP port P
//	process -> page  {"type":"open","n":N}          handshake N starts
//	process -> page  {"type":"close","n":N}         the TCP side of N ended
//	page -> process  {"type":"close","n":N}         the page is done with N
type Control struct {
	Type string `json:"type"`
	N    int    `json:"n,omitempty"`
	Port int    `json:"port,omitempty"`
}

// Control types.
const (
	CtlListening = "listening"
	CtlOpen      = "open"
	CtlClose     = "close"
)

// ErrBadMessage is a WebSocket message the bridge does not accept.
var ErrBadMessage = errors.New("bad message from the page")

// DecodeControl parses a control message from the page: only "close" with
// a handshake number is valid there.
func DecodeControl(p []byte) (Control, error) {
	if len(p) > 1024 {
		return Control{}, fmt.Errorf("%w: control message of %d bytes", ErrBadMessage, len(p))
	}
	var c Control
	if err := json.Unmarshal(p, &c); err != nil {
		return Control{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if c.Type != CtlClose || c.N < 1 {
		return Control{}, fmt.Errorf("%w: unexpected control %q", ErrBadMessage, c.Type)
	}
	return c, nil
}

// DecodeFrameMessage parses one WebSocket binary message, which must hold
// exactly one handshake frame (PROTOCOL.md §2.1), nothing before or after.
// frameMessage is f as one WebSocket message, DecodeFrameMessage's inverse.
// f came from signaling.ReadFrame, so it is within the size limit.
func frameMessage(f signaling.Frame) []byte {
	buf := bytes.NewBuffer(make([]byte, 0, 6+len(f.Payload)))
	_ = signaling.WriteFrame(buf, f)
	return buf.Bytes()
}

func DecodeFrameMessage(p []byte) (signaling.Frame, error) {
	r := bytes.NewReader(p)
	f, err := signaling.ReadFrame(r)
	if err != nil {
		return signaling.Frame{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if r.Len() != 0 {
		return signaling.Frame{}, fmt.Errorf("%w: %d bytes after the frame", ErrBadMessage, r.Len())
	}
	if f.Type == signaling.TypeProbe {
		// Probes are for finding devices on the LAN, not for pages.
		return signaling.Frame{}, fmt.Errorf("%w: a probe frame", ErrBadMessage)
	}
	return f, nil
}

// pageLink is one registered page and the handshake it is in, if any.
type pageLink struct {
	ws    *websocket.Conn
	hello signaling.Hello
	// answerProbes: tell a prober who the page is (Server.HideFromProbes).
	answerProbes bool
	// closing: we are closing ws for a bad message; what fails after is
	// not worth reporting.
	closing atomic.Bool

	mu  sync.Mutex
	cur *bridged
}

// bridged is one TCP handshake piped to the page.
type bridged struct {
	n          int
	tcp        net.Conn
	pageClosed chan struct{}
	closeOnce  sync.Once
}

func (b *bridged) pageDone() { b.closeOnce.Do(func() { close(b.pageClosed) }) }

func (l *pageLink) send(ctx context.Context, typ websocket.MessageType, p []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return l.ws.Write(ctx, typ, p)
}

func (l *pageLink) control(ctx context.Context, c Control) error {
	p, _ := json.Marshal(c)
	return l.send(ctx, websocket.MessageText, p)
}

// listen runs a registered page until ctx ends or the page goes: the first
// message is the page's hello; then a TCP listener is opened for it.
func (s *Server) listen(ctx context.Context, ws *websocket.Conn, devType string) error {
	rctx, cancel := context.WithTimeout(ctx, signaling.ReadTimeout)
	typ, p, err := ws.Read(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("read the page's hello: %w", err)
	}
	if typ != websocket.MessageBinary {
		return fmt.Errorf("%w: want a hello frame first", ErrBadMessage)
	}
	f, err := DecodeFrameMessage(p)
	if err != nil {
		return err
	}
	if f.Type != signaling.TypeHello {
		return fmt.Errorf("%w: want a hello frame first, got %s", ErrBadMessage, f.Type)
	}
	hello, err := signaling.DecodeHello(f.Payload)
	if err != nil {
		return fmt.Errorf("the page's hello: %w", err)
	}
	// One device id, one advertisement: a page may not pose as the device
	// that serves it, nor as another page (other devices key their lists
	// by id, and sends to the real one would go astray).
	if hello.ID == s.Host.DeviceID {
		return fmt.Errorf("%w: the page uses this device's own id", ErrBadMessage)
	}
	release, ok := s.claimID(hello.ID)
	if !ok {
		return fmt.Errorf("%w: another page is registered with device id %s", ErrBadMessage, hello.ID)
	}
	defer release()
	ln, err := net.Listen("tcp", net.JoinHostPort(s.ListenHost, "0"))
	if err != nil {
		return fmt.Errorf("listen for the page: %w", err)
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	l := &pageLink{ws: ws, hello: hello, answerProbes: !s.HideFromProbes}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := l.control(ctx, Control{Type: CtlListening, Port: port}); err != nil {
		return fmt.Errorf("tell the page its port: %w", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	if s.OnPage != nil {
		wg.Go(func() { s.OnPage(ctx, Page{Hello: hello, Type: devType, Port: port}) })
	}
	wg.Go(func() {
		defer cancelAll()
		s.acceptLoop(ctx, ln, l)
	})
	wg.Go(func() {
		// A phone that went to sleep, or off the Wi-Fi, answers no ping:
		// its listener and advertisement go instead of lingering until
		// TCP gives up.
		defer cancelAll()
		keepAlive(ctx, ws)
	})
	err = l.readPage(ctx)
	if err != nil && ctx.Err() == nil {
		// Say why before the handshake in progress is torn down: a
		// write cancelled by ctx would drop the WebSocket without a reason.
		l.closing.Store(true)
		closeWith(ws, err)
	}
	cancelAll()
	_ = ln.Close()
	return nil
}

// closeWith closes ws with a policy violation that gives err as reason.
func closeWith(ws *websocket.Conn, err error) {
	slog.Info("web page stopped receiving", slog.Any("err", err))
	_ = ws.Close(websocket.StatusPolicyViolation, truncate(err.Error(), 120))
}

// readPage routes the page's messages to the handshake in progress until
// the page goes or ctx ends.
func (l *pageLink) readPage(ctx context.Context) error {
	for {
		typ, p, err := l.ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil || websocket.CloseStatus(err) != -1 {
				return nil // we stop, or the page left
			}
			return fmt.Errorf("read from the page: %w", err)
		}
		l.mu.Lock()
		cur := l.cur
		l.mu.Unlock()
		if typ == websocket.MessageText {
			c, err := DecodeControl(p)
			if err != nil {
				return err
			}
			if cur != nil && cur.n == c.N {
				cur.pageDone()
				_ = cur.tcp.Close()
			}
			continue
		}
		f, err := DecodeFrameMessage(p)
		if err != nil {
			return err
		}
		if f.Type == signaling.TypeHello {
			// The page must answer as the device it registered (and
			// advertises), not as another one.
			h, err := signaling.DecodeHello(f.Payload)
			if err != nil {
				return fmt.Errorf("the page's hello: %w", err)
			}
			if h.ID != l.hello.ID || h.Fingerprint != l.hello.Fingerprint {
				return fmt.Errorf("%w: the page answered with another identity than it registered", ErrBadMessage)
			}
		}
		if cur == nil {
			continue // late: the handshake it belonged to has ended
		}
		_ = cur.tcp.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := signaling.WriteFrame(cur.tcp, f); err != nil {
			_ = cur.tcp.Close() // the TCP side's reader ends the handshake
		}
	}
}

// acceptLoop takes the TCP handshakes for the page, one at a time (a
// handshake takes well under a second; the next waits in the backlog).
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, l *pageLink) {
	for n := 1; ; n++ {
		tcp, err := ln.Accept()
		if err != nil {
			return // closed: ctx ended or the page left
		}
		err = l.bridge(ctx, n, tcp)
		if err != nil && ctx.Err() == nil && !l.closing.Load() {
			s.report(fmt.Errorf("handshake from %s for %s: %w", tcp.RemoteAddr(), l.hello.Name, err))
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// bridge pipes one TCP handshake to the page: "open", each frame from the
// TCP peer as one binary message, "close" when the TCP side ends; the page's
// frames go the other way (readPage). It waits briefly for the page's own
// "close" so that a late frame cannot reach the next handshake.
func (l *pageLink) bridge(ctx context.Context, n int, tcp net.Conn) error {
	b := &bridged{n: n, tcp: tcp, pageClosed: make(chan struct{})}
	defer tcp.Close()
	_ = tcp.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { _ = tcp.Close() })
	defer stop()
	l.mu.Lock()
	l.cur = b
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.cur = nil
		l.mu.Unlock()
	}()
	if err := l.control(ctx, Control{Type: CtlOpen, N: n}); err != nil {
		return fmt.Errorf("tell the page: %w", err)
	}
	var result error
	for first := true; ; first = false {
		f, err := signaling.ReadFrame(tcp)
		if err == nil && f.Type == signaling.TypeProbe {
			// "Who are you" in place of the dialer's hello (PROTOCOL.md
			// §2.5): the bridge answers for the page, which knows no probes.
			if first && l.answerProbes {
				if err := signaling.AnswerProbe(ctx, tcp, l.hello); err != nil {
					result = fmt.Errorf("answer a probe: %w", err)
				}
			}
			break
		}
		if err != nil {
			select {
			case <-b.pageClosed: // the page ended it: not an error
			default:
				var ne net.Error
				if !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, io.EOF) {
					result = fmt.Errorf("read from the sender: %w", err)
				}
			}
			break
		}
		if err := l.send(ctx, websocket.MessageBinary, frameMessage(f)); err != nil {
			return fmt.Errorf("pass a %s frame to the page: %w", f.Type, err)
		}
	}
	if err := l.control(ctx, Control{Type: CtlClose, N: n}); err != nil {
		return fmt.Errorf("tell the page: %w", err)
	}
	select {
	case <-b.pageClosed:
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	return result
}

// claimID registers a page's device id; release frees it.
func (s *Server) claimID(id string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	if s.ids[id] {
		return nil, false
	}
	s.ids[id] = true
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.ids, id)
	}, true
}

// Ping timing for registered pages.
const (
	pingEvery   = 15 * time.Second
	pingTimeout = 10 * time.Second
)

// keepAlive pings the page until ctx ends or a ping goes unanswered.
func keepAlive(ctx context.Context, ws *websocket.Conn) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err := ws.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				slog.Info("web page stopped answering pings", slog.Any("err", err))
			}
			return
		}
	}
}
