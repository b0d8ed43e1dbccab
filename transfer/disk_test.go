package transfer

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sparseFile makes a file of size bytes that takes no room on disk.
func sparseFile(t *testing.T, path string, size int64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
}

func TestOfferLargerThanFreeSpaceIsDeclined(t *testing.T) {
	src := t.TempDir()
	sparseFile(t, filepath.Join(src, "big.bin"), 40<<20)
	var asked atomic.Bool
	h := startReceiver(t, func(context.Context, OfferReceived) bool { asked.Store(true); return true })
	h.rcv.statfs = func(string) (int64, bool) { return 100 << 20, true } // 100 MiB, of which 64 kept free

	var reason atomic.Value
	_, err := send(t, h, []string{filepath.Join(src, "big.bin")}, "", func(e Event) {
		if d, ok := e.(Declined); ok {
			reason.Store(d.Reason)
		}
	})
	require.ErrorIs(t, err, ErrDeclined)
	t.Logf("sender was told: %v", reason.Load())
	assert.Equal(t, "not enough free space on the receiving device: needs 104.0 MiB, has 100.0 MiB", reason.Load())
	assert.False(t, asked.Load(), "the user is not asked about an offer that cannot fit")
	assert.Empty(t, snapshot(t, h.dir), "nothing is written")

	// The same offer fits once the margin is smaller.
	h.rcv.Margin = 32 << 20
	_, err = send(t, h, []string{filepath.Join(src, "big.bin")}, "", nil)
	require.NoError(t, err)
	assert.True(t, asked.Load())
}

func TestSpaceReservedByOffersInFlight(t *testing.T) {
	r := &Receiver{Dir: t.TempDir(), Margin: 10 << 20}
	r.statfs = func(string) (int64, bool) { return 100 << 20, true }
	a, err := r.register("a", nil, 60<<20)
	require.NoError(t, err)
	err = r.SpaceFor(40 << 20)
	var ns *NoSpaceError
	require.ErrorAs(t, err, &ns, "60 MiB still to come for a, 10 kept free: 40 MiB do not fit in 100")
	assert.Equal(t, int64(50<<20), ns.Need)
	assert.Equal(t, int64(40<<20), ns.Have)
	_, err = r.register("b", nil, 40<<20)
	require.ErrorAs(t, err, &ns)
	require.NoError(t, r.SpaceFor(30<<20))
	a.remaining.Add(-20 << 20) // a wrote 20 MiB (free space would drop too; here only the reservation)
	require.NoError(t, r.SpaceFor(40<<20))
	r.unregister("a", a)
	require.NoError(t, r.SpaceFor(90<<20))

	r.statfs = func(string) (int64, bool) { return 0, false }
	require.NoError(t, r.SpaceFor(1<<40), "unknown free space: no check")
}

func TestRunningOutOfSpaceWhileWritingStops(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.bin"), randomBytes(10<<20))
	h := startReceiver(t, acceptAll)
	var calls atomic.Int32
	h.rcv.statfs = func(string) (int64, bool) {
		// Enough when the offer is checked, accepted and its file opened;
		// then someone else fills the disk.
		if calls.Add(1) <= 3 {
			return 1 << 30, true
		}
		return 1 << 20, true
	}
	_, err := send(t, h, []string{filepath.Join(src, "a.bin")}, "", nil)
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	t.Logf("sender got: %v", err)
	assert.Equal(t, CodeNoSpace, pe.Code)
	assert.Contains(t, pe.Reason, "ran out of free space")
	h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok })
	assert.Empty(t, snapshot(t, h.dir), "the partial file is removed")
}
