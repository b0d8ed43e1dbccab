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

	remote, answer, err := signaling.Offerer(ctx, tcp, cfg.hello(), func(remote signaling.Hello) (string, error) {
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
		return gather(ctx, pc, offer)
	})
	if err != nil {
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if err := checkFingerprint(answer, remote.Fingerprint); err != nil {
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, fmt.Errorf("handshake with %s: set remote description: %w", addr, err)
	}
	c.Remote = remote
	if err := c.waitOpen(ctx, opened); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	slog.Debug("connected", slog.String("peer", remote.Name), slog.String("addr", addr))
	ok = true
	return c, nil
}
