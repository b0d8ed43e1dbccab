package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// MaxPendingHandshakes bounds handshakes in progress at once; each may hold
// a peer connection for up to ConnectTimeout, so a flood must not pile up.
const MaxPendingHandshakes = 16

// Listener accepts LAN handshakes and turns each into a Conn.
type Listener struct {
	cfg Config
	ln  net.Listener
	// Check, when set, may refuse a peer after its hello (pinning, blocking).
	Check func(signaling.Hello) error
	// OnError, when set, hears about handshakes that failed.
	OnError func(remote net.Addr, err error)
}

// Listen opens the handshake port at addr (":53318", "127.0.0.1:0").
func Listen(addr string, cfg Config) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	cfg.Trickle = false // a TCP socket's job ends with the handshake
	return &Listener{cfg: cfg, ln: ln}, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts handshakes until ctx is cancelled and calls handle, in a
// goroutine of its own, for each connection that opens. It returns after
// every handler has returned. handle owns the Conn and must close it.
func (l *Listener) Serve(ctx context.Context, handle func(context.Context, *Conn)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	pending := make(chan struct{}, MaxPendingHandshakes)
	stop := context.AfterFunc(ctx, func() { _ = l.ln.Close() })
	defer stop()
	for {
		tcp, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		select {
		case pending <- struct{}{}:
		default:
			slog.Warn("too many handshakes at once, dropping one", slog.String("from", tcp.RemoteAddr().String()))
			_ = tcp.Close()
			continue
		}
		wg.Go(func() {
			c, err := l.accept(ctx, tcp)
			<-pending
			if err != nil {
				slog.Info("handshake failed", slog.String("from", tcp.RemoteAddr().String()), slog.Any("err", err))
				if l.OnError != nil {
					l.OnError(tcp.RemoteAddr(), err)
				}
				return
			}
			handle(ctx, c)
		})
	}
}

// Close stops accepting. Serve returns once its handlers are done.
func (l *Listener) Close() error { return l.ln.Close() }

func (l *Listener) accept(ctx context.Context, tcp net.Conn) (*Conn, error) {
	defer tcp.Close() // the socket's job ends once the data channel is open
	return AnswerConn(ctx, tcp, l.cfg, l.Check)
}

// AnswerConn runs the receiving side of the handshake (docs/PROTOCOL.md
// section 2) over conn, which may be any reliable byte stream (an accepted
// TCP socket, a pipe through a rendezvous server), and returns the open
// connection. check, when set, may refuse the peer after its hello (the
// peer gets a "refused" error frame). conn stays the caller's, to close
// once AnswerConn returns, unless cfg.Trickle made a trickle session of it:
// then the Conn closes it.
func AnswerConn(ctx context.Context, conn net.Conn, cfg Config, check func(signaling.Hello) error) (*Conn, error) {
	var (
		c      *Conn
		opened = make(chan struct{})
		once   sync.Once
	)
	remote, err := signaling.Answerer(ctx, conn, cfg.hello(), func(remote signaling.Hello) error {
		if remote.DeviceID == cfg.Identity.DeviceID && remote.Fingerprint == cfg.Identity.Fingerprint {
			return errors.New("refusing a connection from this device itself")
		}
		if check != nil {
			return check(remote)
		}
		return nil
	}, func(remote signaling.Hello, offer string) (string, error) {
		if err := checkFingerprint(offer, remote.Fingerprint); err != nil {
			return "", err
		}
		pc, err := cfg.newPeerConnection()
		if err != nil {
			return "", err
		}
		c = newConn(pc)
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			if dc.Label() != ChannelLabel {
				slog.Warn("ignoring unknown data channel", slog.String("label", dc.Label()))
				return
			}
			c.setChannel(dc)
			dc.OnOpen(func() { once.Do(func() { close(opened) }) })
		})
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
			return "", fmt.Errorf("set remote description: %w", err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			return "", fmt.Errorf("create answer: %w", err)
		}
		if cfg.trickles(remote) {
			c.sess = newSession(conn, pc, c, cfg, false)
			c.sess.wantFP = remote.Fingerprint
			if err := pc.SetLocalDescription(answer); err != nil {
				return "", fmt.Errorf("set local description: %w", err)
			}
			return pc.LocalDescription().SDP, nil
		}
		return cfg.gather(ctx, pc, answer)
	})
	if err != nil {
		if c != nil {
			_ = c.Close()
		}
		return nil, err
	}
	c.Remote = remote
	if c.sess != nil {
		c.sess.start()
	}
	if err := c.waitOpen(ctx, opened); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := cfg.proven(remote); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}
