package rendezvous

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freezeConn passes bytes until frozen, then swallows them both ways
// without closing: a path that died silently.
type freezeConn struct {
	net.Conn
	frozen *atomic.Bool
}

func (c freezeConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.frozen.Load() {
			return n, err
		}
	}
}

func (c freezeConn) Write(p []byte) (int, error) {
	if c.frozen.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// A server that falls silent (no close, no reset) is noticed by the
// client's keep-alive: the client ends.
func TestClientNoticesSilentServer(t *testing.T) {
	h := newHarness(t, nil)
	var frozen atomic.Bool
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return freezeConn{c, &frozen}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := h.tryDial("192.0.2.1", testHello("a"), WithHTTPClient(&http.Client{Transport: tr}), WithKeepAlive(500*time.Millisecond))
	require.NoError(t, err)
	_, err = c.Create(ctxT(t))
	require.NoError(t, err, "alive before")
	frozen.Store(true)
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		t.Fatal("the client did not notice the silent server")
	}
}
