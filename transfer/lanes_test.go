package transfer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// striped sets small ranges and lanes that open at once, for one test.
func striped(t *testing.T) {
	oldAfter, oldRate, oldSize := laneAfter, laneRate, rangeSize
	laneAfter, laneRate, rangeSize = 0, 0, MinRange
	t.Cleanup(func() { laneAfter, laneRate, rangeSize = oldAfter, oldRate, oldSize })
}

// stripedSender sends paths to h over two lanes.
func stripedSender(t *testing.T, h *receiverHost, paths []string, onEvent func(Event)) (*Sender, *Offer) {
	t.Helper()
	o, err := NewOffer(paths, "")
	require.NoError(t, err)
	d := dialer(t, h.addr)
	return NewSender(SendOptions{Offer: o, Dial: d, DialLane: d, Lanes: 2, OnEvent: onEvent, ReconnectWindow: 20 * time.Second}), o
}

// conns counts the connections h received so far.
func conns(h *receiverHost) int { return len(h.conns) }

// A large file goes in ranges over two associations, small ones whole;
// everything arrives intact, with the whole file's SHA-256 in its event.
func TestStripedTransferArrivesIntact(t *testing.T) {
	striped(t)
	src := t.TempDir()
	big, odd := randomBytes(12<<20+5), randomBytes(3<<20/2)
	writeFile(t, filepath.Join(src, "big.bin"), big)
	writeFile(t, filepath.Join(src, "odd.bin"), odd)
	writeFile(t, filepath.Join(src, "small.txt"), []byte("small"))
	h := startReceiver(t, acceptAll)
	h.rcv.Lanes = 2
	s, _ := stripedSender(t, h, []string{filepath.Join(src, "big.bin"), filepath.Join(src, "odd.bin"), filepath.Join(src, "small.txt")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := s.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, res.Sent)
	assert.Equal(t, 2, conns(h), "the transfer used a second association")
	assert.Equal(t, map[string]string{"big.bin": sum(big), "odd.bin": sum(odd), "small.txt": sum([]byte("small"))}, snapshot(t, h.dir),
		"every file intact, no partial file or state left")
	fd := h.events.wait(t, "file-done", func(e Event) bool { f, ok := e.(FileDone); return ok && f.Name == "big.bin" }).(FileDone)
	assert.Equal(t, sum(big), fd.SHA256)
}

// A receiver that does not announce lanes (an older one, or the web page)
// gets one association and whole files, as before.
func TestNoLanesWithoutTheReceiversWord(t *testing.T) {
	striped(t)
	src := t.TempDir()
	big := randomBytes(6 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), big)
	h := startReceiver(t, acceptAll)
	s, _ := stripedSender(t, h, []string{filepath.Join(src, "big.bin")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, err := s.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, conns(h))
	assert.Equal(t, map[string]string{"big.bin": sum(big)}, snapshot(t, h.dir))
}

// When a lane drops mid-transfer, the sender reconnects and resumes per
// range: what arrived verified is not sent again.
func TestStripedResumeAfterALaneDrops(t *testing.T) {
	striped(t)
	src := t.TempDir()
	data := randomBytes(24 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), data)
	h := startReceiver(t, acceptAll)
	h.rcv.Lanes = 2
	var dropped atomic.Bool
	h.rcv.OnEvent = func(e Event) {
		h.events.add(e)
		if p, ok := e.(Progress); ok && p.Bytes >= 8<<20 && conns(h) == 2 && dropped.CompareAndSwap(false, true) {
			<-h.conns      // the first association
			c := <-h.conns // the lane
			go c.Close()
		}
	}
	var reconnected atomic.Bool
	var resumedAt atomic.Int64
	resumedAt.Store(-1)
	s, _ := stripedSender(t, h, []string{filepath.Join(src, "big.bin")}, func(e Event) {
		switch e := e.(type) {
		case Reconnecting:
			reconnected.Store(true)
		case Progress:
			if reconnected.Load() && resumedAt.Load() < 0 {
				resumedAt.Store(e.Bytes)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := s.Run(ctx)
	require.NoError(t, err)
	require.True(t, dropped.Load(), "a lane was cut")
	assert.True(t, reconnected.Load(), "the sender reconnected by itself")
	assert.Equal(t, 1, res.Sent)
	h.events.wait(t, "interrupted", func(e Event) bool { _, ok := e.(Interrupted); return ok })
	assert.Greater(t, resumedAt.Load(), int64(2<<20), "the ranges verified before the drop were kept, not sent again")
	fd := h.events.wait(t, "file-done", func(e Event) bool { _, ok := e.(FileDone); return ok }).(FileDone)
	assert.Positive(t, fd.ResumedFrom, "the receiver counts the ranges it kept")
	assert.Equal(t, sum(data), fd.SHA256)
	got, err := os.ReadFile(filepath.Join(h.dir, "big.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "file intact after a resume by ranges")
	assert.Equal(t, map[string]string{"big.bin": sum(data)}, snapshot(t, h.dir), "no partial files left")
}

// Pause holds every lane, resume lets them go on, and cancelling the
// striped file stops all its ranges as one item: nothing of it is kept,
// and the rest of the offer arrives.
func TestStripedPauseResumeAndCancelAsOneItem(t *testing.T) {
	striped(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(48<<20))
	writeFile(t, filepath.Join(src, "after.txt"), []byte("after"))
	h := startReceiver(t, acceptAll)
	h.rcv.Lanes = 2
	senderEvents := newEventLog()
	s, o := stripedSender(t, h, []string{filepath.Join(src, "big.bin"), filepath.Join(src, "after.txt")}, senderEvents.add)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	done := make(chan struct {
		res Result
		err error
	}, 1)
	go func() {
		res, err := s.Run(ctx)
		done <- struct {
			res Result
			err error
		}{res, err}
	}()
	h.events.wait(t, "progress", func(e Event) bool { p, ok := e.(Progress); return ok && p.Bytes > 4<<20 })
	require.Eventually(t, func() bool { return conns(h) == 2 }, 10*time.Second, 10*time.Millisecond, "a second lane")
	require.True(t, h.rcv.Pause(o.ID))
	senderEvents.wait(t, "paused", func(e Event) bool { p, ok := e.(Paused); return ok && p.Remote })
	time.Sleep(500 * time.Millisecond)
	assert.Zero(t, progressSincePause(senderEvents), "no lane sends while paused")
	before := lastProgress(h.events)
	require.True(t, h.rcv.Resume(o.ID))
	h.events.wait(t, "progress after resume", func(e Event) bool { p, ok := e.(Progress); return ok && p.Bytes > before })

	s.CancelItem(0)
	r := <-done
	require.ErrorIs(t, r.err, ErrIncomplete)
	require.Len(t, r.res.Failed, 1)
	assert.Equal(t, "big.bin", r.res.Failed[0].Name)
	assert.Equal(t, CodeCancelled, r.res.Failed[0].Code)
	assert.Equal(t, map[string]string{"after.txt": sum([]byte("after"))}, snapshot(t, h.dir),
		"the cancelled striped file leaves nothing behind; the rest arrived")
}

// lastProgress is the bytes of the latest Progress event.
func lastProgress(l *eventLog) int64 {
	var n int64
	for _, e := range l.all() {
		if p, ok := e.(Progress); ok {
			n = p.Bytes
		}
	}
	return n
}

// progressSincePause counts the Progress events after the last Paused.
func progressSincePause(l *eventLog) int {
	n := 0
	for _, e := range l.all() {
		switch e.(type) {
		case Paused:
			n = 0
		case Progress:
			n++
		}
	}
	return n
}

// A lane is admitted only for a transfer running here from the same
// certificate, within the lanes agreed: another device that names a
// running offer's id, or the sender beyond the lanes agreed, is refused
// with a protocol error, and the transfer goes on untouched.
func TestLaneFromAnotherDeviceIsRefused(t *testing.T) {
	striped(t)
	laneRate = 1e18 // lanes agreed, but the sender opens none itself
	lane := func(id string) string { p, _ := Encode(Message{Type: TypeLane, ID: id}); return string(p) }

	// Lanes agreed (two): another device claims one.
	h, o, _, finish := pausedTransfer(t, 2)
	assertViolation(t, hostile(t, h, lane(o.ID)), CodeProtocol, h.errs)
	finish()

	// No lanes agreed: the sender's own certificate cannot add one either.
	h, o, dial, finish := pausedTransfer(t, 0)
	link, err := dial(context.Background())
	require.NoError(t, err)
	replies := hostileOn(t, link, lane(o.ID))
	link.Close()
	assertViolation(t, replies, CodeProtocol, h.errs)
	finish()
}

// pausedTransfer starts a send of 16 MiB to a receiver allowing lanes,
// paused at the receiver after the first MiB; finish resumes it and checks
// that it arrived intact.
func pausedTransfer(t *testing.T, lanes int) (*receiverHost, *Offer, Dialer, func()) {
	t.Helper()
	src := t.TempDir()
	data := randomBytes(16 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), data)
	h := startReceiver(t, acceptAll)
	h.rcv.Lanes = lanes
	o, err := NewOffer([]string{filepath.Join(src, "big.bin")}, "")
	require.NoError(t, err)
	dial := dialer(t, h.addr)
	opts := SendOptions{Offer: o, Dial: dial}
	if lanes > 0 {
		opts.DialLane, opts.Lanes = dial, lanes
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	done := make(chan error, 1)
	go func() { _, err := NewSender(opts).Run(ctx); done <- err }()
	h.events.wait(t, "progress", func(e Event) bool { p, ok := e.(Progress); return ok && p.Bytes > 1<<20 })
	require.True(t, h.rcv.Pause(o.ID))
	return h, o, dial, func() {
		defer cancel()
		require.True(t, h.rcv.Resume(o.ID))
		require.NoError(t, <-done)
		assert.Equal(t, map[string]string{"big.bin": sum(data)}, snapshot(t, h.dir), "the transfer went on untouched")
	}
}

// A connection that cannot have lanes (through a server) offers none: one
// association, whole files, whatever the receiver would allow.
func TestNoLanesWhenTheConnectionCannotHaveThem(t *testing.T) {
	striped(t)
	src := t.TempDir()
	big := randomBytes(6 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), big)
	h := startReceiver(t, acceptAll)
	h.rcv.Lanes = 2
	o, err := NewOffer([]string{filepath.Join(src, "big.bin")}, "")
	require.NoError(t, err)
	d := dialer(t, h.addr)
	s := NewSender(SendOptions{Offer: o, Dial: d, DialLane: d, Lanes: 2, LanesOK: func() bool { return false }})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, err = s.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, conns(h))
	assert.Equal(t, map[string]string{"big.bin": sum(big)}, snapshot(t, h.dir))
}
