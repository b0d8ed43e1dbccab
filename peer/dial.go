package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// DialTimeout bounds the TCP connect to a peer's handshake port.
const DialTimeout = 5 * time.Second

// Dial connects to the receiver listening at addr (HOST:PORT) and returns an
// open connection. check, when set, may refuse the peer after its hello.
func Dial(ctx context.Context, addr string, cfg Config, check func(signaling.Hello) error) (*Conn, error) {
	d := net.Dialer{Timeout: DialTimeout}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer tcp.Close() // the socket's job ends once the data channel is open
	cfg.Trickle = false
	return dialConn(ctx, tcp, addr, cfg, check)
}

// DialConn runs the sending side of the handshake (docs/PROTOCOL.md section
// 2: hello, offer, answer) over conn, which may be any reliable byte stream
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
	c.setChannel(dc)
	opened := make(chan struct{})
	var openOnce sync.Once
	dc.OnOpen(func() { openOnce.Do(func() { close(opened) }) })

	remote, answer, err := signaling.Offerer(ctx, conn, cfg.hello(), func(remote signaling.Hello) (string, error) {
		if remote.DeviceID == cfg.Identity.DeviceID && remote.Fingerprint == cfg.Identity.Fingerprint {
			return "", errors.New("that address is this device itself")
		}
		if check != nil {
			if err := check(remote); err != nil {
				return "", err
			}
		}
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
	if c.sess != nil {
		c.sess.wantFP = remote.Fingerprint
		c.sess.start()
	}
	if err := c.waitOpen(ctx, opened); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", desc, err)
	}
	if err := cfg.proven(remote); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", desc, err)
	}
	slog.Debug("connected", slog.String("peer", remote.Name), slog.String("addr", desc))
	ok = true
	return c, nil
}
