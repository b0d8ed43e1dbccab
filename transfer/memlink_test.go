package transfer

// The protocol over in-memory links (datachan.Pipe): the same behaviour as
// the loopback tests, without pion, in a fraction of the time.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

// memHost is a Receiver whose links are in-memory pipes: each dial makes a
// pipe and hands the far end to Receiver.Handle.
type memHost struct {
	dir    string // download folder, alone inside parent
	parent string
	rcv    *Receiver
	from   Peer // who every link comes from
	events *eventLog
	errs   chan error
	ctx    context.Context
	wg     sync.WaitGroup
}

func startMem(t *testing.T, decide func(context.Context, OfferReceived) bool) *memHost {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "downloads")
	require.NoError(t, os.Mkdir(dir, 0o755))
	ctx, cancel := context.WithCancel(context.Background())
	h := &memHost{dir: dir, parent: parent, events: newEventLog(), errs: make(chan error, 16), ctx: ctx,
		from: Peer{Device: device.Device{Name: "Sender"}}}
	h.rcv = &Receiver{Dir: dir, Decide: decide, OnEvent: h.events.add}
	t.Cleanup(func() {
		cancel()
		h.wg.Wait()
	})
	return h
}

// connect makes a pipe, serves its far end and returns the near one.
func (h *memHost) connect(opts datachan.Options) *datachan.End {
	near, far := datachan.Pipe(opts)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer far.Close()
		err := h.rcv.Handle(h.ctx, h.from, far)
		select {
		case h.errs <- err:
		default:
		}
	}()
	return near
}

// dialer returns a Dialer whose n-th link (from 0) is made with opts(n).
func (h *memHost) dialer(opts func(n int) datachan.Options) Dialer {
	var n atomic.Int32
	return func(context.Context) (Link, error) {
		o := datachan.Options{}
		if opts != nil {
			o = opts(int(n.Add(1) - 1))
		}
		return h.connect(o), nil
	}
}

func (h *memHost) sender(t *testing.T, paths []string, dial Dialer, events *eventLog) *Sender {
	t.Helper()
	o, err := NewOffer(paths, "")
	require.NoError(t, err)
	return NewSender(SendOptions{Offer: o, Dial: dial, OnEvent: events.add, ReconnectWindow: 20 * time.Second})
}

func runSender(t *testing.T, s *Sender) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done, ended := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(ended)
		defer cancel()
		_, err := s.Run(ctx)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-ended
	})
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the sender did not end")
		return nil
	}
}

// gate holds the sender inside its n-th binary message on the first link
// until released, so that a test acts mid-transfer whatever the speed.
type gate struct {
	n       int32
	seen    atomic.Int32
	reached chan struct{}
	release chan struct{}
}

func newGate(n int32) *gate {
	return &gate{n: n, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) opts(n int) datachan.Options {
	if n > 0 {
		return datachan.Options{}
	}
	return datachan.Options{Break: func(_ *datachan.End, m datachan.Message) bool {
		if !m.IsString && g.seen.Add(1) == g.n {
			close(g.reached)
			<-g.release
		}
		return false
	}}
}

func (g *gate) wait(t *testing.T) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the transfer did not reach the gate")
	}
}

func isEvent[E Event](e Event) bool { _, ok := e.(E); return ok }

func TestMemTreeArrivesVerified(t *testing.T) {
	src := t.TempDir()
	big := randomBytes(2<<20 + 3)
	writeFile(t, filepath.Join(src, "tree", "a", "b", "deep.txt"), []byte("deep"))
	writeFile(t, filepath.Join(src, "tree", "empty.txt"), nil)
	writeFile(t, filepath.Join(src, "tree", "big.bin"), big)
	require.NoError(t, os.Mkdir(filepath.Join(src, "tree", "empty dir"), 0o755))
	writeFile(t, filepath.Join(src, "single.txt"), []byte("single"))

	h := startMem(t, acceptAll)
	events := newEventLog()
	s := h.sender(t, []string{filepath.Join(src, "tree"), filepath.Join(src, "single.txt")}, h.dialer(nil), events)
	require.NoError(t, waitErr(t, runSender(t, s)))

	h.events.wait(t, "transfer-done", isEvent[TransferDone])
	events.wait(t, "accepted", isEvent[Accepted])
	assert.Equal(t, snapshot(t, src), snapshot(t, h.dir), "exactly what was sent, no partial files")
	var verified int
	for _, e := range h.events.all() {
		if fd, ok := e.(FileDone); ok {
			verified++
			if fd.Name == "tree/big.bin" {
				assert.Equal(t, sum(big), fd.SHA256)
			}
		}
	}
	assert.Equal(t, 4, verified)
}

func TestMemDeclineWritesNothing(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"))
	h := startMem(t, func(context.Context, OfferReceived) bool { return false })
	events := newEventLog()
	s := h.sender(t, []string{filepath.Join(src, "f")}, h.dialer(nil), events)
	require.ErrorIs(t, waitErr(t, runSender(t, s)), ErrDeclined)
	events.wait(t, "declined", isEvent[Declined])
	assert.Empty(t, snapshot(t, h.dir))
}

func TestMemCancelMidFile(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "first.txt"), []byte("complete"))
	writeFile(t, filepath.Join(src, "second.bin"), randomBytes(4<<20))
	h := startMem(t, acceptAll)
	g := newGate(8)
	s := h.sender(t, []string{filepath.Join(src, "first.txt"), filepath.Join(src, "second.bin")}, h.dialer(g.opts), newEventLog())
	done := runSender(t, s)
	g.wait(t)
	s.Cancel()
	close(g.release)
	require.ErrorIs(t, waitErr(t, done), ErrCancelled)
	td := h.events.wait(t, "transfer-done", isEvent[TransferDone]).(TransferDone)
	assert.True(t, td.Cancelled)
	assert.Equal(t, map[string]string{"first.txt": sum([]byte("complete"))}, snapshot(t, h.dir),
		"the complete file stays, the partial one and the state folder go")
}

func TestMemPauseResume(t *testing.T) {
	src := t.TempDir()
	data := randomBytes(4 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), data)
	h := startMem(t, acceptAll)
	g := newGate(4)
	events := newEventLog()
	s := h.sender(t, []string{filepath.Join(src, "big.bin")}, h.dialer(g.opts), events)
	done := runSender(t, s)
	g.wait(t)
	id := s.opts.Offer.ID
	require.True(t, h.rcv.Pause(id))
	close(g.release)
	events.wait(t, "paused", func(e Event) bool { p, ok := e.(Paused); return ok && p.Remote })
	require.True(t, h.rcv.Resume(id))
	events.wait(t, "resumed", func(e Event) bool { r, ok := e.(Resumed); return ok && r.Remote })
	require.NoError(t, waitErr(t, done))
	assert.Equal(t, map[string]string{"big.bin": sum(data)}, snapshot(t, h.dir))
}

func TestMemResumeAfterBrokenLink(t *testing.T) {
	src := t.TempDir()
	data := randomBytes(6 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), data)
	h := startMem(t, acceptAll)
	var sent atomic.Int32
	breakFirst := func(n int) datachan.Options {
		if n > 0 {
			return datachan.Options{}
		}
		// The first link dies in the middle of the file, once the chunks
		// before have reached the receiver (what is still on the way when
		// a path dies is lost, as with a real connection).
		return datachan.Options{Break: func(from *datachan.End, m datachan.Message) bool {
			if m.IsString || sent.Add(1) != 20 {
				return false
			}
			for from.BufferedAmount() > 0 {
				time.Sleep(time.Millisecond)
			}
			return true
		}}
	}
	events := newEventLog()
	s := h.sender(t, []string{filepath.Join(src, "big.bin")}, h.dialer(breakFirst), events)
	require.NoError(t, waitErr(t, runSender(t, s)))
	events.wait(t, "reconnecting", isEvent[Reconnecting])
	h.events.wait(t, "interrupted", isEvent[Interrupted])
	fd := h.events.wait(t, "file-done", isEvent[FileDone]).(FileDone)
	assert.Equal(t, int64(19*ChunkSize), fd.ResumedFrom, "the receiver kept the 19 chunks that arrived")
	got, err := os.ReadFile(filepath.Join(h.dir, "big.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "file intact after resume")
	assert.Equal(t, map[string]string{"big.bin": sum(data)}, snapshot(t, h.dir), "no partial files left")
}

// A web page's connection ends in the middle of a file (a closed tab): a
// page never resumes, so the partial file and the offer's state go at once,
// while a file that arrived whole stays (issue 16 item 3). From any other
// sender they are kept for a resume (TestMemResumeAfterBrokenLink).
func TestMemPageSenderLeavesNoPartials(t *testing.T) {
	src := t.TempDir()
	small, big := []byte("arrived whole"), randomBytes(6<<20)
	writeFile(t, filepath.Join(src, "a-small.txt"), small)
	writeFile(t, filepath.Join(src, "b-big.bin"), big)
	h := startMem(t, acceptAll)
	h.from.Ephemeral = true
	var chunks atomic.Int32
	dial := h.dialer(func(int) datachan.Options {
		return datachan.Options{Break: func(from *datachan.End, m datachan.Message) bool {
			if m.IsString || chunks.Add(1) != 20 {
				return false
			}
			for from.BufferedAmount() > 0 {
				time.Sleep(time.Millisecond)
			}
			return true
		}}
	})
	var dials atomic.Int32
	once := func(ctx context.Context) (Link, error) { // the tab is gone: no second connection
		if dials.Add(1) > 1 {
			return nil, errors.New("the page was closed")
		}
		return dial(ctx)
	}
	o, err := NewOffer([]string{filepath.Join(src, "a-small.txt"), filepath.Join(src, "b-big.bin")}, "")
	require.NoError(t, err)
	s := NewSender(SendOptions{Offer: o, Dial: once, ReconnectWindow: time.Second})
	assert.Error(t, waitErr(t, runSender(t, s)), "the sender could not finish")
	h.events.wait(t, "interrupted", isEvent[Interrupted])
	assert.Equal(t, map[string]string{"a-small.txt": sum(small)}, snapshot(t, h.dir),
		"the whole file stays; no partial file or state is kept")
}

func TestMemTextMessage(t *testing.T) {
	h := startMem(t, acceptAll)
	link := h.connect(datachan.Options{})
	defer link.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := SendText(ctx, link, "hello 👋")
	require.NoError(t, err)
	ev := h.events.wait(t, "text", isEvent[TextReceived]).(TextReceived)
	assert.Equal(t, "hello 👋", ev.Text)
}

// TestMemHostileSender: a peer that breaks the protocol is told why, its
// session ends with a *ProtocolError, and nothing lands outside the
// download folder's staging area.
func TestMemHostileSender(t *testing.T) {
	h := startMem(t, acceptAll)
	file, _ := Encode(Message{Type: TypeFile, Index: 0})
	cases := []struct {
		name string
		msgs []any
		code string
	}{
		{"dot-dot path", offerJSON(NewID(), "", Entry{Path: "../../escape", Size: 1}), CodeBadManifest},
		{"lying size", append(offerJSON(NewID(), "", Entry{Path: "lie.txt", Size: 10}), string(file), bytes.Repeat([]byte("z"), 20)), CodeSizeMismatch},
		{"data before any file", append(offerJSON(NewID(), "", Entry{Path: "lie.txt", Size: 10}), []byte("0123456789")), CodeProtocol},
		{"garbage json", []any{"{not json"}, CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			link := h.connect(datachan.Options{})
			defer link.Close()
			assertViolation(t, hostileOn(t, link, tc.msgs...), tc.code, h.errs)
			for p := range snapshot(t, h.parent) {
				if p != "downloads" && p != "downloads/"+StateDir && !strings.HasPrefix(p, "downloads/"+StateDir+"/") {
					t.Errorf("%s written outside the staging folder", p)
				}
			}
		})
	}
}

// flush waits for a slow peer that keeps reading, beyond max, and gives up
// on one that stops.
func TestFlushFollowsProgress(t *testing.T) {
	a, b := datachan.Pipe(datachan.Options{Inbox: 1})
	defer a.Close()
	for range 12 {
		require.NoError(t, a.Send(make([]byte, 1024)))
	}
	// The reader takes a message every 40 ms: about 0.5 s in all, longer
	// than max (150 ms) but never still for that long.
	go func() {
		for range 12 {
			time.Sleep(40 * time.Millisecond)
			if m, ok := <-b.Messages(); ok {
				m.Release()
			}
		}
	}()
	flush(a, 150*time.Millisecond)
	assert.Zero(t, a.BufferedAmount(), "everything reached the peer")

	// Nobody reads now: flush gives up about max after the last progress.
	for range 4 {
		require.NoError(t, a.Send(make([]byte, 1024)))
	}
	t0 := time.Now()
	flush(a, 100*time.Millisecond)
	assert.Positive(t, a.BufferedAmount())
	assert.Less(t, time.Since(t0), 100*time.Millisecond*flushLimit, "a stalled link is given up on")
}
