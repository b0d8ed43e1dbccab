package testkit_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

func TestClock(t *testing.T) {
	c := testkit.NewClock()
	start := c.Now()
	assert.Equal(t, start, c.Now(), "the clock stands still")
	c.Advance(90 * time.Second)
	assert.Equal(t, start.Add(90*time.Second), c.Now())
}

func TestIdentityAndContext(t *testing.T) {
	a, b := testkit.Identity(t), testkit.Identity(t)
	assert.NotEqual(t, a.DeviceID, b.DeviceID, "each identity is new")
	ctx := testkit.Context(t, time.Hour)
	_, ok := ctx.Deadline()
	assert.True(t, ok)
}

// Serve runs the server until stop; stop waits for it, and a second stop
// does nothing.
func TestServe(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	served := make(chan struct{})
	addr, stop := testkit.Serve(t, "127.0.0.1:0", func(ctx context.Context, ln net.Listener) error {
		defer close(served)
		<-ctx.Done()
		return ln.Close()
	})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err, "listening before serve runs")
	require.NoError(t, c.Close())
	stop()
	select {
	case <-served:
	default:
		t.Fatal("stop returned before serve")
	}
	stop()
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "closed")
}
