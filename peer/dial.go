package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// DialTimeout bounds the TCP connect to a peer's handshake port.
const DialTimeout = 5 * time.Second

// Retries of a handshake that the listener turned away: a listener at its
// admission limits closes a new connection before any byte (docs/PROTOCOL.md
// section 2.2). The waits start at dialRetryFirst and double; dialRetries of
// them add up to 3.1 s.
const (
	dialRetryFirst = 100 * time.Millisecond
	dialRetries    = 5
)

// ErrTurnedAway means the peer closed (or reset) the connection before it
// sent anything: a busy listener does that, and Dial tries again.
var ErrTurnedAway = errors.New("the peer closed the connection before it said anything (busy?)")

// Dial connects to the receiver listening at addr (HOST:PORT) and returns an
// open connection. check, when set, may refuse the peer after its hello,
// before we send anything. A handshake the peer turned away (ErrTurnedAway)
// is tried again after a short wait, a few times; a refusal ("refused"
// error frame, or check) is not.
func Dial(ctx context.Context, addr string, cfg Config, check func(signaling.Hello) error) (*Conn, error) {
	wait := dialRetryFirst
	for attempt := 1; ; attempt++ {
		c, err := dialOnce(ctx, addr, cfg, check)
		if err == nil || !errors.Is(err, ErrTurnedAway) {
			return c, err
		}
		if attempt > dialRetries {
			return nil, fmt.Errorf("%w (%d attempts)", err, attempt)
		}
		slog.Debug("handshake turned away, trying again", slog.String("addr", addr), slog.Duration("in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (stopped trying again: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// dialOnce is one attempt of Dial.
func dialOnce(ctx context.Context, addr string, cfg Config, check func(signaling.Hello) error) (*Conn, error) {
	d := net.Dialer{Timeout: DialTimeout}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			// Accepted, then reset before the connect returned.
			return nil, fmt.Errorf("dial %s: %w: %w", addr, err, ErrTurnedAway)
		}
		return nil, &UnreachableError{Addr: addr, Err: err}
	}
	defer tcp.Close() // the socket's job ends once the data channel is open
	cfg.Trickle = false
	rc := &readCounter{Conn: tcp}
	c, err := dialConn(ctx, rc, addr, cfg, check)
	if err != nil && rc.n.Load() == 0 && ctx.Err() == nil && closedEarly(err) {
		// Not one byte came back: whatever order the frames go in, the
		// listener did not start the handshake (admission, a restart).
		return nil, fmt.Errorf("%w: %w", err, ErrTurnedAway)
	}
	return c, err
}

// closedEarly says whether err is the connection closing or resetting (not
// a timeout, not a refusal, which needs a frame).
func closedEarly(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// readCounter counts the bytes read from a connection.
type readCounter struct {
	net.Conn
	n atomic.Int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// DialConn runs the sending side of the handshake (docs/PROTOCOL.md section
// 2: the peer's hello, then ours, our offer, its answer) over conn, which may be any reliable byte stream
// (a TCP socket, a pipe through a rendezvous server), and returns the open
// connection. check, when set, may refuse the peer after its hello. conn
// stays the caller's, to close once DialConn returns, unless cfg.Trickle
// made a trickle session of it: then the Conn closes it.
func DialConn(ctx context.Context, conn net.Conn, cfg Config, check func(signaling.Hello) error) (*Conn, error) {
	return dialConn(ctx, conn, "the peer", cfg, check)
}

// dialConn is DialConn; desc names the peer in errors.
func dialConn(ctx context.Context, conn net.Conn, desc string, cfg Config, check func(signaling.Hello) error) (*Conn, error) {
	pc, err := cfg.newPeerConnection()
	if err != nil {
		return nil, err
	}
	c := newConn(pc)
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	ordered := true
	dc, err := pc.CreateDataChannel(ChannelLabel, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return nil, fmt.Errorf("create data channel: %w", err)
	}
	opened := make(chan struct{})
	var openOnce sync.Once
	c.setChannel(dc, true, func() { openOnce.Do(func() { close(opened) }) })

	remote, answer, nonces, err := signaling.Offerer(ctx, conn, cfg.hello(), func(remote signaling.Hello) error {
		if remote.ID == cfg.Identity.DeviceID && remote.Fingerprint == cfg.Identity.Fingerprint {
			return errors.New("that address is this device itself")
		}
		if check != nil {
			return check(remote)
		}
		return nil
	}, func(remote signaling.Hello) (string, error) {
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return "", fmt.Errorf("create offer: %w", err)
		}
		if cfg.trickles(remote) {
			c.sess = newSession(conn, pc, c, cfg, true)
			if err := pc.SetLocalDescription(offer); err != nil {
				return "", fmt.Errorf("set local description: %w", err)
			}
			return pc.LocalDescription().SDP, nil
		}
		return cfg.gather(ctx, pc, offer)
	})
	if errors.Is(err, signaling.ErrCommit) {
		// Not a hiccup: the answer came from someone else than the hello.
		err = &refusal{err}
	}
	if err != nil {
		return nil, fmt.Errorf("handshake with %s: %w", desc, err)
	}
	if err := checkFingerprint(answer, remote.Fingerprint); err != nil {
		return nil, fmt.Errorf("handshake with %s: %w", desc, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, fmt.Errorf("handshake with %s: set remote description: %w", desc, err)
	}
	c.Remote = remote
	c.Code = trust.Code(cfg.Identity.Fingerprint, remote.Fingerprint, nonces.Dialer, nonces.Listener)
	if c.sess != nil {
		c.sess.wantFP = remote.Fingerprint
		c.sess.start()
	}
	if err := c.waitOpen(ctx, opened); err != nil {
		var np *NoPathError
		if errors.As(err, &np) {
			np.UDPPorts = hostPorts(answer)
		}
		return nil, fmt.Errorf("connect to %s: %w", desc, err)
	}
	if err := cfg.proven(remote); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", desc, err)
	}
	slog.Debug("connected", slog.String("peer", remote.Name), slog.String("addr", desc))
	ok = true
	return c, nil
}
