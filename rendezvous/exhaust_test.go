package rendezvous

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fromAddr returns an HTTP client whose connections come from ip, a
// loopback address (all of 127/8 is this host's on Linux), so that one
// machine plays hosts of several networks with real TCP peer addresses.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitFor}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	return &http.Client{Transport: tr}
}

// Connection exhaustion from one network: a host with many addresses of
// one /24 opens idle connections until the server refuses; the server must
// refuse at the network's limit, not when it is full, so that a device of
// another network still connects (no 503). Real TCP connections from
// 127.1.2.x (the attacker's /24) and 127.1.3.1; the server counts the peer
// addresses it sees, no header.
func TestConnectionLimitPerPrefix(t *testing.T) {
	const perPrefix = 8
	h := newHarness(t, func(c *Config) {
		c.ClientIPHeader = ""
		c.MaxConns = 16
		c.MaxConnsPerIP = 2
		c.MaxConnsPerPrefix = perPrefix
	})
	// 12 addresses × 2 connections: more than the whole server holds.
	var open, refused int
	var conns []*websocket.Conn
	for a := 1; a <= 12; a++ {
		hc := fromAddr(fmt.Sprintf("127.1.2.%d", a))
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			ws, resp, err := websocket.Dial(ctx, h.url, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{Subprotocol}})
			cancel()
			if err != nil {
				require.NotNil(t, resp, "dial: %v", err)
				assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the network's limit, not a full server")
				refused++
				continue
			}
			t.Cleanup(func() { _ = ws.CloseNow() })
			conns = append(conns, ws)
			open++
		}
	}
	t.Logf("attacker from 127.1.2.0/24: %d connections open, %d refused; server holds %d", open, refused, h.srv.Stats().Conns)
	assert.Equal(t, perPrefix, open, "one network holds at most MaxConnsPerPrefix connections")

	// An honest device of another network connects and works.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	honest, err := Dial(ctx, h.url, testHello("honest"), WithHTTPClient(fromAddr("127.1.3.1")))
	require.NoError(t, err, "a device of another network is not refused")
	defer honest.Close()
	_, err = honest.Create(ctx)
	assert.NoError(t, err)

	assert.Contains(t, metricsText(t, h), fmt.Sprintf(`peerdrop_rendezvous_rate_limited_total{kind="connect"} %d`, refused))

	// A connection of the network closes: its place is free again.
	require.NoError(t, conns[0].Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool { return h.srv.Stats().Conns == perPrefix }, waitFor, 10*time.Millisecond)
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitFor)
	defer cancel2()
	ws, _, err := websocket.Dial(ctx2, h.url, &websocket.DialOptions{HTTPClient: fromAddr("127.1.2.12"), Subprotocols: []string{Subprotocol}})
	require.NoError(t, err)
	_ = ws.CloseNow()
}
