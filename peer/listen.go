package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// Listener accepts LAN handshakes and turns each into a Conn. It admits a
// few handshakes at once per source address and more in all (admission.go),
// and reports failures at a bounded rate (failurelog.go).
type Listener struct {
	cfgMu sync.Mutex // guards cfg.Name (SetName)
	cfg   Config
	ln    net.Listener
	// Check, when set, may refuse a peer after its hello (pinning, blocking).
	Check func(signaling.Hello) error
	// OnError, when set, hears about handshakes that failed after the peer
	// said something, a few per interval; the rest are summed up in the log.
	OnError func(remote net.Addr, err error)
	// AnswerProbes says whether the listener tells a prober who it is
	// (docs/PROTOCOL.md section 2.5): set for a device that may be found,
	// unset for a hidden one, which closes on a probe.
	AnswerProbes bool

	// Limits, the package's constants unless a test says otherwise.
	maxTotal, maxPerSource int
	firstFrame             time.Duration
	log                    *slog.Logger // nil: slog.Default()
	failures               *failureLog
	probes                 atomic.Int64
}

// Probes is how many probes the listener has been asked (answered or not).
func (l *Listener) Probes() int64 { return l.probes.Load() }

// Listen opens the handshake port at addr (":53318", "127.0.0.1:0").
func Listen(addr string, cfg Config) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	cfg.Trickle = false // a TCP socket's job ends with the handshake
	return &Listener{
		cfg: cfg, ln: ln,
		maxTotal: MaxHandshakes, maxPerSource: MaxHandshakesPerSource,
		firstFrame: FirstFrameTimeout, failures: newFailureLog(reportInterval),
	}, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts handshakes until ctx is cancelled and calls handle, in a
// goroutine of its own, for each connection that opens. It returns after
// every handler has returned. handle owns the Conn and must close it.
//
// A connection over the admission limits is closed at once, before any
// byte: its dialer tries again a little later (Dial).
func (l *Listener) Serve(ctx context.Context, handle func(context.Context, *Conn)) error {
	adm := newAdmission(l.maxTotal, l.maxPerSource)
	failures := l.failures
	failures.log, failures.onError = cmp.Or(l.log, slog.Default()), l.OnError
	logCtx, stopLog := context.WithCancel(context.Background())
	var logDone sync.WaitGroup
	logDone.Go(func() { failures.run(logCtx) })
	defer logDone.Wait() // the last summary is out when Serve returns
	defer stopLog()
	var wg sync.WaitGroup
	defer wg.Wait()
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
		src := sourceOf(tcp.RemoteAddr())
		if !adm.admit(src) {
			failures.turnedAway(src)
			turnAway(tcp)
			continue
		}
		wg.Go(func() {
			c, introduced, err := l.accept(ctx, tcp)
			adm.release(src)
			if errors.Is(err, signaling.ErrProbed) {
				l.probes.Add(1)
				return // asked who we are, and answered (or not, hidden)
			}
			if err != nil {
				failures.failed(tcp.RemoteAddr(), err, introduced)
				return
			}
			handle(ctx, c)
		})
	}
}

// turnAway closes a connection over the limits as cheaply as it can: a
// reset, so that no state lingers on our side.
func turnAway(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// SetSelf changes the name and type this listener's hello gives, for the
// handshakes that start from now on (the device was renamed, or its type
// changed).
func (l *Listener) SetSelf(name, typ string) {
	l.cfgMu.Lock()
	defer l.cfgMu.Unlock()
	l.cfg.Name, l.cfg.Type = name, typ
}

// SetUDP makes the handshakes that start from now on use the shared UDP
// port u (nil: random ports per connection).
func (l *Listener) SetUDP(u *UDPPort) {
	l.cfgMu.Lock()
	defer l.cfgMu.Unlock()
	l.cfg.UDP = u
}

func (l *Listener) config() Config {
	l.cfgMu.Lock()
	defer l.cfgMu.Unlock()
	return l.cfg
}

// Close stops accepting. Serve returns once its handlers are done.
func (l *Listener) Close() error { return l.ln.Close() }

// errFirstFrame means a dialer sent no hello within the first frame's time.
var errFirstFrame = errors.New("no hello in time")

// accept runs the handshake on tcp; introduced says whether the peer's
// hello arrived.
func (l *Listener) accept(ctx context.Context, tcp net.Conn) (c *Conn, introduced bool, err error) {
	defer tcp.Close() // the socket's job ends once the data channel is open
	ff := &firstFrameConn{Conn: tcp, by: time.Now().Add(l.firstFrame)}
	c, err = AnswerConn(ctx, ff, l.config(), func(h signaling.Hello) error {
		ff.arrived.Store(true)
		if l.Check != nil {
			return l.Check(h)
		}
		return nil
	})
	introduced = ff.arrived.Load()
	if errors.Is(err, signaling.ErrProbed) && l.AnswerProbes {
		if werr := signaling.AnswerProbe(ctx, tcp, l.config().hello()); werr != nil {
			slog.Debug("answer a probe", slog.String("from", tcp.RemoteAddr().String()), slog.Any("err", werr))
		}
	}
	if err != nil && !introduced && ctx.Err() == nil && !time.Now().Before(ff.by) {
		err = fmt.Errorf("%w (%s)", errFirstFrame, l.firstFrame)
	}
	return c, introduced, err
}

// firstFrameConn holds every read deadline to by until the peer's first
// frame has arrived, whoever sets it: the handshake sets its usual one per
// frame, and a dialer that says nothing must not hold an admission slot
// for that long.
type firstFrameConn struct {
	net.Conn
	by      time.Time
	arrived atomic.Bool
}

func (c *firstFrameConn) SetReadDeadline(t time.Time) error {
	if !c.arrived.Load() && (t.IsZero() || t.After(c.by)) {
		t = c.by
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *firstFrameConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
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
	remote, nonces, err := signaling.Answerer(ctx, conn, cfg.hello(), func(remote signaling.Hello) error {
		if remote.ID == cfg.Identity.DeviceID && remote.Fingerprint == cfg.Identity.Fingerprint {
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
			c.setChannel(dc, false, func() { once.Do(func() { close(opened) }) })
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
	c.Code = trust.Code(remote.Fingerprint, cfg.Identity.Fingerprint, nonces.Dialer, nonces.Listener)
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
