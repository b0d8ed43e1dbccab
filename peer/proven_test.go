package peer

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// provenLog records the hellos OnProven ran for.
type provenLog struct {
	mu     sync.Mutex
	hellos []signaling.Hello
}

func (l *provenLog) record(h signaling.Hello) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hellos = append(l.hellos, h)
	return nil
}

func (l *provenLog) all() []signaling.Hello {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]signaling.Hello(nil), l.hellos...)
}

// OnProven runs only for a connection DTLS proved: not for a hello alone,
// nor for an offer that names another certificate than the hello; once on
// each side for a real connection, with the other's hello.
func TestOnProvenOnlyAfterDTLS(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	mallory := newConfig(t, "Mallory")
	var srvLog, cliLog provenLog
	srvCfg.OnProven, cliCfg.OnProven = srvLog.record, cliLog.record
	srv := startServer(t, srvCfg, nil, closeAndWait)

	// A hello, well formed (a certificate's own id), and nothing more.
	tcp, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	p, err := json.Marshal(signaling.Hello{
		Device:  device.Device{ID: mallory.Identity.DeviceID, Name: "Mallory", Fingerprint: mallory.Identity.Fingerprint},
		Version: int(signaling.Version),
	})
	require.NoError(t, err)
	require.NoError(t, signaling.WriteFrame(tcp, signaling.Frame{Type: signaling.TypeHello, Payload: p}))
	f, err := signaling.ReadFrame(tcp)
	require.NoError(t, err)
	assert.Equal(t, signaling.TypeHello, f.Type)
	require.NoError(t, tcp.Close())
	assert.Error(t, srv.nextError(t))

	// An offer for another certificate than the hello's.
	// The rewrites count on mitm, declared before the proxy's goroutines.
	var mitm rewritingProxy
	proxy := startRewritingProxy(t, srv.addr, func(f signaling.Frame) signaling.Frame {
		return mitm.swapFingerprint(t, signaling.TypeOffer, mallory.Identity.Fingerprint)(f)
	}, nil)
	_, err = Dial(dialCtx(t), proxy.addr, cliCfg, nil)
	require.ErrorContains(t, err, ErrFingerprint.Error())
	assert.ErrorIs(t, srv.nextError(t), ErrFingerprint)
	assert.Empty(t, srvLog.all(), "nothing proven on the listener")
	assert.Empty(t, cliLog.all(), "nothing proven on the dialer")

	// A real connection: proven on both sides.
	c := mustDial(t, srv.addr, cliCfg)
	require.Eventually(t, func() bool { return srv.handled.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Len(t, srvLog.all(), 1)
	assert.Equal(t, cliCfg.Identity.DeviceID, srvLog.all()[0].ID)
	assert.Equal(t, cliCfg.Identity.Fingerprint, srvLog.all()[0].Fingerprint)
	require.Len(t, cliLog.all(), 1)
	assert.Equal(t, srvCfg.Identity.DeviceID, cliLog.all()[0].ID)
	require.NoError(t, c.Close())
}

// An error from OnProven ends the connection before anyone gets it.
func TestOnProvenErrorCloses(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	cliCfg.OnProven = func(signaling.Hello) error { return errors.New("not today") }
	srv := startServer(t, srvCfg, nil, closeAndWait)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.addr, cliCfg, nil)
	assert.Nil(t, c)
	assert.ErrorContains(t, err, "not today")
}
