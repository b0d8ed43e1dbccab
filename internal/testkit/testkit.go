// Package testkit holds what the packages' tests share: a leak check, a
// bounded context, a fresh device identity. It imports none of the
// project's networking packages, so any package's tests can use it.
package testkit

import (
	"context"
	"testing"
	"time"

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

// Context is a context that ends after d, or when t ends.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Identity is a new device identity in a folder of t's own.
func Identity(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Load(t.TempDir())
	require.NoError(t, err)
	return id
}
