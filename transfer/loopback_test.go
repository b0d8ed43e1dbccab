package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/peer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// eventLog collects events from a callback and lets a test wait for one.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	added  chan struct{}
}

func newEventLog() *eventLog { return &eventLog{added: make(chan struct{}, 1)} }

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// wait returns the first event (from the start) that match accepts.
func (l *eventLog) wait(t *testing.T, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		for _, e := range l.all() {
			if match(e) {
				return e
			}
		}
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no %s event; got %v", what, l.all())
		}
	}
}

// receiverHost is a real listener handing each link to a Receiver.
type receiverHost struct {
	addr   string
	dir    string // download folder, alone inside its parent
	parent string
	rcv    *Receiver
	events *eventLog
	errs   chan error
	conns  chan *peer.Conn
}

func startReceiver(t *testing.T, decide func(context.Context, OfferReceived) bool) *receiverHost {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "downloads")
	require.NoError(t, os.Mkdir(dir, 0o755))
	h := &receiverHost{dir: dir, parent: parent, events: newEventLog(), errs: make(chan error, 16), conns: make(chan *peer.Conn, 16)}
	h.rcv = &Receiver{Dir: dir, Decide: decide, OnEvent: h.events.add}
	ln, err := peer.Listen("127.0.0.1:0", peertest.Config(t, "Receiver"))
	require.NoError(t, err)
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ln.Serve(ctx, func(ctx context.Context, c *peer.Conn) {
			defer c.Close()
			select {
			case h.conns <- c:
			default:
			}
			err := h.rcv.Handle(ctx, Peer{Device: device.Device{ID: c.Remote.ID, Name: c.Remote.Name, Fingerprint: c.Remote.Fingerprint}}, c)
			select {
			case h.errs <- err:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-served
	})
	return h
}

func acceptAll(context.Context, OfferReceived) bool { return true }

func dialer(t *testing.T, addr string) Dialer {
	cfg := peertest.Config(t, "Sender")
	return func(ctx context.Context) (Link, error) { return peer.Dial(ctx, addr, cfg, nil) }
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{1, 2, 3}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// snapshot maps every path below dir to its content ("/" for folders).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			out[filepath.ToSlash(rel)] = "/"
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[filepath.ToSlash(rel)] = sum(b)
		return nil
	}))
	return out
}

func send(t *testing.T, h *receiverHost, paths []string, text string, onEvent func(Event)) (Result, error) {
	t.Helper()
	o, err := NewOffer(paths, text)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return NewSender(SendOptions{Offer: o, Dial: dialer(t, h.addr), OnEvent: onEvent, ReconnectWindow: 20 * time.Second}).Run(ctx)
}

func TestTreeArrivesIntact(t *testing.T) {
	src := t.TempDir()
	big := randomBytes(3<<20 + 17)
	writeFile(t, filepath.Join(src, "tree", "a", "b", "deep.txt"), []byte("deep"))
	writeFile(t, filepath.Join(src, "tree", "empty.txt"), nil)
	writeFile(t, filepath.Join(src, "tree", "one"), []byte("x"))
	writeFile(t, filepath.Join(src, "tree", "big.bin"), big)
	require.NoError(t, os.Mkdir(filepath.Join(src, "tree", "empty dir"), 0o755))
	writeFile(t, filepath.Join(src, "single.txt"), []byte("single"))

	h := startReceiver(t, acceptAll)
	res, err := send(t, h, []string{filepath.Join(src, "tree"), filepath.Join(src, "single.txt")}, "here you go", nil)
	require.NoError(t, err)
	assert.Equal(t, 5, res.Sent)
	assert.Empty(t, res.Failed)

	h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok })
	want := snapshot(t, src)
	assert.Equal(t, want, snapshot(t, h.dir), "the download folder holds exactly what was sent, no partial files")
	offer := h.events.wait(t, "offer", func(e Event) bool { _, ok := e.(OfferReceived); return ok }).(OfferReceived)
	assert.Equal(t, "here you go", offer.Text)
	assert.Equal(t, 5, offer.Files)
	for _, e := range h.events.all() {
		if fd, ok := e.(FileDone); ok && fd.Name == "tree/big.bin" {
			assert.Equal(t, sum(big), fd.SHA256)
			assert.Equal(t, filepath.Join(h.dir, "tree", "big.bin"), fd.Path)
			assert.Zero(t, fd.ResumedFrom)
		}
	}
}

func TestExistingNamesAreNeverOverwritten(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("new a"))
	writeFile(t, filepath.Join(src, "tree", "x"), []byte("new x"))
	h := startReceiver(t, acceptAll)
	writeFile(t, filepath.Join(h.dir, "a.txt"), []byte("old a"))
	writeFile(t, filepath.Join(h.dir, "tree", "x"), []byte("old x"))

	_, err := send(t, h, []string{filepath.Join(src, "a.txt"), filepath.Join(src, "tree")}, "", nil)
	require.NoError(t, err)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(h.dir, p))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "old a", read("a.txt"))
	assert.Equal(t, "old x", read("tree/x"))
	assert.Equal(t, "new a", read("a (1).txt"))
	assert.Equal(t, "new x", read("tree (1)/x"))
}

func TestDeclineWritesNothing(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "tree", "f"), []byte("data"))
	h := startReceiver(t, func(context.Context, OfferReceived) bool { return false })
	_, err := send(t, h, []string{filepath.Join(src, "tree")}, "", nil)
	require.ErrorIs(t, err, ErrDeclined)
	assert.Empty(t, snapshot(t, h.dir))
}

func TestTextMessage(t *testing.T) {
	h := startReceiver(t, acceptAll)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, err := dialer(t, h.addr)(ctx)
	require.NoError(t, err)
	defer link.Close()
	_, err = SendText(ctx, link, "hello 👋")
	require.NoError(t, err)
	ev := h.events.wait(t, "text", func(e Event) bool { _, ok := e.(TextReceived); return ok }).(TextReceived)
	assert.Equal(t, "hello 👋", ev.Text)
	assert.Equal(t, "Sender", ev.From.Name)
}

func TestResumeAfterDroppedConnection(t *testing.T) {
	src := t.TempDir()
	data := randomBytes(24 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), data)
	h := startReceiver(t, acceptAll)
	var dropped atomic.Bool
	h.rcv.OnEvent = func(e Event) {
		h.events.add(e)
		if p, ok := e.(Progress); ok && p.Bytes >= 4<<20 && dropped.CompareAndSwap(false, true) {
			// Cut the link under the transfer, as a crash or a Wi-Fi drop would.
			c := <-h.conns
			go c.Close()
		}
	}
	var reconnects atomic.Int32
	res, err := send(t, h, []string{filepath.Join(src, "big.bin")}, "", func(e Event) {
		if _, ok := e.(Reconnecting); ok {
			reconnects.Add(1)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent)
	assert.True(t, dropped.Load())
	assert.Positive(t, reconnects.Load(), "the sender reconnected by itself")
	h.events.wait(t, "interrupted", func(e Event) bool { _, ok := e.(Interrupted); return ok })
	fd := h.events.wait(t, "file-done", func(e Event) bool { _, ok := e.(FileDone); return ok }).(FileDone)
	assert.Positive(t, fd.ResumedFrom, "the receiver kept what it had")
	got, err := os.ReadFile(filepath.Join(h.dir, "big.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "file intact after resume")
	assert.Equal(t, map[string]string{"big.bin": sum(data)}, snapshot(t, h.dir), "no partial files left")
}

func TestPauseResumeFromReceiverAndCancelFromSender(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "first.txt"), []byte("small and complete"))
	writeFile(t, filepath.Join(src, "second.bin"), randomBytes(40<<20))
	h := startReceiver(t, acceptAll)
	o, err := NewOffer([]string{filepath.Join(src, "first.txt"), filepath.Join(src, "second.bin")}, "")
	require.NoError(t, err)
	senderEvents := newEventLog()
	s := NewSender(SendOptions{Offer: o, Dial: dialer(t, h.addr), OnEvent: senderEvents.add})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := s.Run(ctx); done <- err }()

	h.events.wait(t, "progress", func(e Event) bool { p, ok := e.(Progress); return ok && p.Bytes > 1<<20 })
	require.True(t, h.rcv.Pause(o.ID))
	senderEvents.wait(t, "paused", func(e Event) bool { p, ok := e.(Paused); return ok && p.Remote })
	require.True(t, h.rcv.Resume(o.ID))
	senderEvents.wait(t, "resumed", func(e Event) bool { r, ok := e.(Resumed); return ok && r.Remote })

	s.Cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrCancelled)
	case <-ctx.Done():
		t.Fatal("sender did not stop")
	}
	td := h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok }).(TransferDone)
	assert.True(t, td.Cancelled)
	assert.Equal(t, map[string]string{"first.txt": sum([]byte("small and complete"))}, snapshot(t, h.dir),
		"the complete file stays, the partial one and the state folder go")
}

// hostile connects as a peer that speaks the protocol wrongly: it sends msgs
// (a string is sent as a control message, []byte as data) and returns the
// messages the receiver answers with until it closes the link.
func hostile(t *testing.T, h *receiverHost, msgs ...any) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, err := dialer(t, h.addr)(ctx)
	require.NoError(t, err)
	defer link.Close()
	return hostileOn(t, link, msgs...)
}

// hostileOn sends msgs on link and returns the receiver's answers, as hostile.
func hostileOn(t *testing.T, link Link, msgs ...any) []Message {
	t.Helper()
	for _, m := range msgs {
		switch m := m.(type) {
		case string:
			require.NoError(t, link.SendText([]byte(m)))
		case []byte:
			require.NoError(t, link.Send(m))
		}
	}
	var replies []Message
	for {
		select {
		case raw := <-link.Messages():
			m, err := DecodeMessage(raw.Data)
			require.NoError(t, err)
			replies = append(replies, m)
			if m.Type == TypeError {
				return replies
			}
		case <-link.Done():
			for {
				select {
				case raw := <-link.Messages():
					m, err := DecodeMessage(raw.Data)
					require.NoError(t, err)
					replies = append(replies, m)
				default:
					return replies
				}
			}
		case <-time.After(5 * time.Second):
			return replies
		}
	}
}

func offerJSON(id string, text string, entries ...Entry) []any {
	var size int64
	for _, e := range entries {
		size += e.Size
	}
	o, _ := Encode(Message{Type: TypeOffer, ID: id, Count: len(entries), Size: size, Text: text})
	out := []any{string(o)}
	for _, b := range entryBatches(entries) {
		p, _ := Encode(Message{Type: TypeEntries, ID: id, Entries: b})
		out = append(out, string(p))
	}
	return out
}

// assertViolation checks that the receiver answered replies with an error
// of code and ended the session (reported on errs) with a *ProtocolError.
func assertViolation(t *testing.T, replies []Message, code string, errs <-chan error) {
	t.Helper()
	e := lastError(replies)
	assert.Equal(t, TypeError, e.Type, "replies: %+v", replies)
	assert.Equal(t, code, e.Code, "replies: %+v", replies)
	var pe *ProtocolError
	select {
	case err := <-errs:
		assert.ErrorAs(t, err, &pe)
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver did not end the session")
	}
}

func lastError(replies []Message) Message {
	for i := len(replies) - 1; i >= 0; i-- {
		if replies[i].Type == TypeError || replies[i].Type == TypeFileError {
			return replies[i]
		}
	}
	return Message{}
}

func TestHostileSenders(t *testing.T) {
	h := startReceiver(t, acceptAll)
	id := func() string { return NewID() }
	file := func(i int, off int64) string {
		p, _ := Encode(Message{Type: TypeFile, Index: i, Offset: off})
		return string(p)
	}
	end := func(i int, sha string) string {
		p, _ := Encode(Message{Type: TypeFileEnd, Index: i, SHA256: sha})
		return string(p)
	}

	cases := []struct {
		name string
		msgs []any
		code string
	}{
		{"dot-dot path", offerJSON(id(), "", Entry{Path: "../../x", Size: 1}), CodeBadManifest},
		{"absolute path", offerJSON(id(), "", Entry{Path: "/etc/x", Size: 1}), CodeBadManifest},
		{"backslash path", offerJSON(id(), "", Entry{Path: `..\..\x`, Size: 1}), CodeBadManifest},
		{"device name", offerJSON(id(), "", Entry{Path: "NUL", Size: 1}), CodeBadManifest},
		{"huge manifest", []any{fmt.Sprintf(`{"type":"offer","id":"%s","count":200000}`, id())}, CodeTooLarge},
		{"more entries than announced", []any{
			fmt.Sprintf(`{"type":"offer","id":"%[1]s","count":1,"size":2}`, "aa11aa11"),
			`{"type":"entries","id":"aa11aa11","entries":[{"path":"a","size":1},{"path":"b","size":1}]}`,
		}, CodeBadManifest},
		{"sizes do not add up", []any{
			fmt.Sprintf(`{"type":"offer","id":"%s","count":1,"size":999}`, "bb22bb22"),
			`{"type":"entries","id":"bb22bb22","entries":[{"path":"a","size":1}]}`,
		}, CodeBadManifest},
		{"data before any file", append(offerJSON(id(), "", Entry{Path: "lie.txt", Size: 10}), []byte("0123456789")), CodeProtocol},
		{"lying size", append(offerJSON(id(), "", Entry{Path: "lie.txt", Size: 10}), file(0, 0), bytes.Repeat([]byte("z"), 20)), CodeSizeMismatch},
		{"garbage json", []any{"{not json"}, CodeProtocol},
		{"unknown type", []any{`{"type":"format-disk"}`}, CodeProtocol},
		{"file-end without file", append(offerJSON(id(), "", Entry{Path: "a", Size: 1}), end(0, strings.Repeat("0", 64))), CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertViolation(t, hostile(t, h, tc.msgs...), tc.code, h.errs)
		})
	}

	t.Run("wrong hash", func(t *testing.T) {
		oid := id()
		msgs := append(offerJSON(oid, "", Entry{Path: "evil.txt", Size: 5}), file(0, 0), []byte("hello"),
			end(0, sum([]byte("HELLO"))), `{"type":"end"}`)
		replies := hostile(t, h, msgs...)
		var fe, done Message
		for _, r := range replies {
			switch r.Type {
			case TypeFileError:
				fe = r
			case TypeDone:
				done = r
			}
		}
		assert.Equal(t, CodeHashMismatch, fe.Code, "replies: %+v", replies)
		assert.Equal(t, []int{0}, done.Failed)
		_, err := os.Stat(filepath.Join(h.dir, "evil.txt"))
		assert.True(t, errors.Is(err, os.ErrNotExist), "corrupt data never gets its final name")
	})

	// Nothing anywhere but the download folder, and nothing inside it.
	assert.Equal(t, map[string]string{"downloads": "/"}, snapshot(t, h.parent))

	// The receiver is still up: an honest sender gets through.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "honest.txt"), []byte("fine"))
	_, err := send(t, h, []string{filepath.Join(src, "honest.txt")}, "", nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"honest.txt": sum([]byte("fine"))}, snapshot(t, h.dir))
}

func TestCancelItemThenRetryFromReceiver(t *testing.T) {
	src := t.TempDir()
	big := randomBytes(30 << 20)
	writeFile(t, filepath.Join(src, "big.bin"), big)
	writeFile(t, filepath.Join(src, "small.txt"), []byte("small"))
	h := startReceiver(t, acceptAll)
	var once sync.Once
	h.rcv.OnEvent = func(e Event) {
		h.events.add(e)
		switch e := e.(type) {
		case Progress:
			if e.Bytes > 1<<20 {
				once.Do(func() { h.rcv.CancelItem(e.ID, 0) })
			}
		case FileFailed:
			if e.Index == 0 && e.Code == CodeCancelled {
				h.rcv.Retry(e.ID, 0) // from the event callback, as a UI would
			}
		}
	}
	senderEvents := newEventLog()
	res, err := send(t, h, []string{filepath.Join(src, "big.bin"), filepath.Join(src, "small.txt")}, "", senderEvents.add)
	require.NoError(t, err, "receiver: %v\nsender: %v", h.events.all(), senderEvents.all())
	assert.Equal(t, 2, res.Sent)
	h.events.wait(t, "cancelled item", func(e Event) bool { f, ok := e.(FileFailed); return ok && f.Code == CodeCancelled })
	h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok })
	assert.Equal(t, map[string]string{"big.bin": sum(big), "small.txt": sum([]byte("small"))}, snapshot(t, h.dir))
}

// The receiver cancels mid-file: the data the sender already had in flight
// is dropped quietly, not taken for a protocol violation, and both ends
// finish as cancelled.
func TestCancelFromReceiverDropsDataInFlight(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(48<<20))
	h := startReceiver(t, acceptAll)
	o, err := NewOffer([]string{filepath.Join(src, "big.bin")}, "")
	require.NoError(t, err)
	senderEvents := newEventLog()
	s := NewSender(SendOptions{Offer: o, Dial: dialer(t, h.addr), OnEvent: senderEvents.add})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := s.Run(ctx); done <- err }()

	h.events.wait(t, "progress", func(e Event) bool { p, ok := e.(Progress); return ok && p.Bytes > 1<<20 })
	require.True(t, h.rcv.Cancel(o.ID))
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrCancelled, "the sender hears the cancel, not a protocol error")
	case <-ctx.Done():
		t.Fatal("sender did not stop")
	}
	td := h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok }).(TransferDone)
	assert.True(t, td.Cancelled)
	select {
	case err := <-h.errs:
		var pe *ProtocolError
		assert.False(t, errors.As(err, &pe), "the receiver saw a violation: %v", err)
	case <-ctx.Done():
		t.Fatal("the receiver's session did not end")
	}
	assert.Empty(t, snapshot(t, h.dir))
}

// refusedLink is a connection that says it ended for a reason no new
// connection mends (as peer.Conn does after a certificate swap in an ICE
// restart).
type refusedLink struct {
	*peer.Conn
	refused atomic.Bool
}

type refusalErr struct{ error }

func (refusalErr) Permanent() bool { return true }

func (l *refusedLink) Err() error {
	if l.refused.Load() {
		return refusalErr{errors.New("an ICE restart named another certificate")}
	}
	return nil
}

// A link that ended with a refusal ends the transfer: no reconnect.
func TestRefusedLinkIsNotRedialled(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(24<<20))
	h := startReceiver(t, acceptAll)
	var link atomic.Pointer[refusedLink]
	var dropped atomic.Bool
	h.rcv.OnEvent = func(e Event) {
		h.events.add(e)
		if p, ok := e.(Progress); ok && p.Bytes >= 4<<20 && dropped.CompareAndSwap(false, true) {
			link.Load().refused.Store(true)
			c := <-h.conns
			go c.Close()
		}
	}
	cfg := peertest.Config(t, "Sender")
	dials := atomic.Int32{}
	dial := func(ctx context.Context) (Link, error) {
		dials.Add(1)
		c, err := peer.Dial(ctx, h.addr, cfg, nil)
		if err != nil {
			return nil, err
		}
		l := &refusedLink{Conn: c}
		link.Store(l)
		return l, nil
	}
	o, err := NewOffer([]string{filepath.Join(src, "big.bin")}, "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = NewSender(SendOptions{Offer: o, Dial: dial, ReconnectWindow: 20 * time.Second}).Run(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another certificate")
	assert.Equal(t, int32(1), dials.Load(), "no reconnect after a refusal")
}
