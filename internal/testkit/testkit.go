// Package testkit holds what the packages' tests share: a leak check, a
// bounded context, a fresh device identity, a clock the test moves, a
// server on loopback for the length of a test. It imports none of the
// project's networking packages, so any package's tests can use it.
package testkit

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/identity"
)

// VerifyNoLeaks checks, after every other cleanup of t has run, that the
// test left no goroutine behind (pion's ICE, DTLS and SCTP workers, pipes,
// servers). goleak retries for a while, which covers goroutines that are
// finishing on their own. Call it first in the test: cleanups run last
// registered first, so this one runs last.
func VerifyNoLeaks(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// IgnoreZeroconfProbe is the option for VerifyNoLeaks in tests that
// announce on mDNS: zeroconf's announcement goroutine cannot be stopped
// (see discovery's Advertiser.Run).
var IgnoreZeroconfProbe = goleak.IgnoreAnyFunction("github.com/grandcat/zeroconf.(*Server).probe")

// Context is a context that ends after d, or when t ends.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Serve listens on addr ("127.0.0.1:0" for any free port) and runs serve
// there in the background until stop is called or the test ends; stop
// waits for serve to return and checks that it returned nil. It returns
// the address listened on. stop may be called more than once.
func Serve(t testing.TB, addr string, serve func(context.Context, net.Listener) error) (listening string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			assert.NoError(t, <-done, "serve on %s", ln.Addr())
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// Identity is a new device identity in a folder of t's own.
func Identity(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Load(t.TempDir())
	require.NoError(t, err)
	return id
}

// Clock is a clock that moves only when the test advances it; its Now fits
// the Now fields of configs. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock is a Clock at a fixed instant (1 June 2025, 12:00 UTC), so that
// runs are repeatable.
func NewClock() *Clock { return &Clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
