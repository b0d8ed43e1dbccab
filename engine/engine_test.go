package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// Every engine a test starts is stopped by its cleanup, and Run returns only
// after its goroutines (and so pion's) have ended: nothing may be left.
func TestMain(m *testing.M) {
	// zeroconf's announcement goroutine cannot be stopped (see
	// discovery.Advertiser.Run); only the tests that advertise start it.
	// No test scans the machine's own network (discovery's subnet scan).
	_ = os.Setenv(discovery.ScanEnv, "off")
	goleak.VerifyTestMain(m, testkit.IgnoreZeroconfProbe)
}

// waitFor bounds every wait for an event.
const waitFor = 60 * time.Second

// recorder keeps an engine's events and lets a test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []Event
	hook   func(Event)
	added  chan struct{}
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 1)} }

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	hook := r.hook
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
	if hook != nil {
		hook(ev)
	}
}

// setHook makes f hear every later event, from the engine's goroutine.
func (r *recorder) setHook(f func(Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = f
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// mark is where a later wait starts looking.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// wait returns the first event from index from on that match accepts.
func (r *recorder) wait(t *testing.T, from int, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		evs := r.all()
		for _, ev := range evs[min(from, len(evs)):] {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("no %s; events: %s", what, describe(evs))
		}
	}
}

func describe(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		if ic, ok := ev.(ItemChanged); ok {
			fmt.Fprintf(&b, "\n  item %s %s %s %d/%d %q", ic.Item.ID[:6], ic.Item.Direction, ic.Item.State, ic.Item.Bytes, ic.Item.Total, ic.Item.Error)
			continue
		}
		fmt.Fprintf(&b, "\n  %T %+v", ev, ev)
	}
	return b.String()
}

// waitItem waits for item id to reach a state that ok accepts.
func (r *recorder) waitItem(t *testing.T, from int, id string, what string, ok func(Item) bool) Item {
	t.Helper()
	ev := r.wait(t, from, "item "+what, func(ev Event) bool {
		ic, isItem := ev.(ItemChanged)
		return isItem && ic.Item.ID == id && ok(ic.Item)
	})
	return ev.(ItemChanged).Item
}

func (r *recorder) waitState(t *testing.T, from int, id string, s State) Item {
	t.Helper()
	return r.waitItem(t, from, id, string(s), func(it Item) bool { return it.State == s })
}

func (r *recorder) waitOffer(t *testing.T, from int) Offer {
	t.Helper()
	ev := r.wait(t, from, "offer", func(ev Event) bool { _, ok := ev.(OfferReceived); return ok })
	return ev.(OfferReceived).Offer
}

func (r *recorder) count(match func(Event) bool) int {
	n := 0
	for _, ev := range r.all() {
		if match(ev) {
			n++
		}
	}
	return n
}

// testEngine is a real engine running on loopback until the test ends.
type testEngine struct {
	*Engine
	cfg  Config
	rec  *recorder
	stop func()
}

func testConfig(t *testing.T, name string) Config {
	return Config{Name: name, Port: -1, Hidden: true, NoBrowse: true, ConfigDir: t.TempDir(), DownloadDir: t.TempDir()}
}

func startEngine(t *testing.T, name string) *testEngine {
	t.Helper()
	return runEngine(t, testConfig(t, name))
}

// runEngine runs an engine with cfg (its OnEvent replaced by a recorder).
func runEngine(t *testing.T, cfg Config) *testEngine {
	t.Helper()
	return runEngineWith(t, cfg, nil)
}

// runEngineWith is runEngine; prep, when set, adjusts the engine before it
// runs.
func runEngineWith(t *testing.T, cfg Config, prep func(*Engine)) *testEngine {
	t.Helper()
	rec := newRecorder()
	cfg.OnEvent = rec.add
	e, err := New(cfg)
	require.NoError(t, err)
	if prep != nil {
		prep(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	te := &testEngine{Engine: e, cfg: cfg, rec: rec}
	te.stop = func() {
		once.Do(func() {
			cancel()
			assert.NoError(t, <-done)
		})
	}
	t.Cleanup(te.stop)
	require.Eventually(t, func() bool { return e.Addr() != "" }, 10*time.Second, 5*time.Millisecond, "engine never listened")
	return te
}

// target is how another engine reaches this one on loopback.
func (te *testEngine) target() Target {
	_, port, err := net.SplitHostPort(te.Addr())
	if err != nil {
		panic(err)
	}
	return Target{ID: te.Self().ID, Name: te.Self().Name, Addrs: []string{net.JoinHostPort("127.0.0.1", port)}}
}

// accept answers the next offer b gets with yes and returns it.
func accept(t *testing.T, b *testEngine, from int) Offer {
	t.Helper()
	o := b.rec.waitOffer(t, from)
	require.NoError(t, b.Answer(o.ID, true))
	return o
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// sameTree asserts that every file and folder under want is under got, with
// the same content.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(want, p)
		info, err := os.Stat(filepath.Join(got, rel))
		require.NoError(t, err, rel)
		assert.Equal(t, d.IsDir(), info.IsDir(), rel)
		if !d.IsDir() {
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(filepath.Join(got, rel))
			assert.True(t, bytes.Equal(a, b), "%s differs", rel)
			n++
		}
		return nil
	}))
	require.NotZero(t, n)
}

// 1) A folder arrives whole: the receiver is asked with the right code and
// counts, and both items end done with the files on disk.
func TestSendFolder(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	src := filepath.Join(t.TempDir(), "Trip")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("hello"))
	writeFile(t, filepath.Join(src, "sub", "b.bin"), randomBytes(t, 300<<10))
	writeFile(t, filepath.Join(src, "empty.txt"), nil)
	require.NoError(t, os.Mkdir(filepath.Join(src, "nothing"), 0o755))

	it, err := a.Send(b.target(), []string{src})
	require.NoError(t, err)
	assert.Equal(t, Outgoing, it.Direction)
	assert.Equal(t, StateConnecting, it.State)
	assert.Equal(t, "Trip (3 files)", it.Title)
	assert.Equal(t, 3, it.Files)
	assert.EqualValues(t, 5+300<<10, it.Total)
	assert.Equal(t, []string{src}, it.Paths)
	assert.Equal(t, Peer{ID: b.Self().ID, Name: "bob"}, it.Peer)
	assert.Equal(t, it.ID, a.Items()[0].ID)

	o := b.rec.waitOffer(t, 0)
	// The code of this connection, the same on both sides.
	assert.Regexp(t, `^\d{3} \d{3}$`, o.Code)
	connected := a.rec.waitItem(t, 0, it.ID, "connected", func(i Item) bool { return i.Code != "" })
	assert.Equal(t, connected.Code, o.Code, "both screens show the same code")
	assert.Equal(t, StateConnecting, connected.State, "the sender has the code while the answer is awaited")
	assert.Equal(t, Peer{ID: a.Self().ID, Name: "alice"}, o.From)
	assert.Equal(t, 3, o.Files)
	assert.Equal(t, 3, o.Folders) // Trip, Trip/sub, Trip/nothing
	assert.EqualValues(t, it.Total, o.Size)
	assert.Equal(t, []string{"Trip"}, o.First)
	assert.False(t, o.Trusted)
	waiting := b.Items()
	require.Len(t, waiting, 1)
	assert.Equal(t, o.ID, waiting[0].ID)
	assert.Equal(t, StateWaiting, waiting[0].State)
	assert.Equal(t, Incoming, waiting[0].Direction)

	require.NoError(t, b.Answer(o.ID, true))
	b.rec.wait(t, 0, "offer closed", func(ev Event) bool { c, ok := ev.(OfferClosed); return ok && c.ID == o.ID })
	assert.ErrorIs(t, b.Answer(o.ID, true), ErrUnknownOffer)

	sent := a.rec.waitState(t, 0, it.ID, StateDone)
	got := b.rec.waitState(t, 0, o.ID, StateDone)
	assert.Equal(t, sent.Total, sent.Bytes)
	assert.Equal(t, got.Total, got.Bytes)
	assert.Zero(t, sent.Speed)
	assert.Zero(t, got.ETA)
	assert.False(t, got.Finished.IsZero())
	assert.Empty(t, sent.Error)
	want := filepath.Join(b.cfg.DownloadDir, "Trip")
	assert.Equal(t, []string{want}, got.Paths)
	sameTree(t, src, want)
	_, err = os.Stat(filepath.Join(b.cfg.DownloadDir, transfer.StateDir))
	assert.ErrorIs(t, err, fs.ErrNotExist, "resume state left behind")

	// A finished item takes no more commands; a receive cannot be retried.
	assert.ErrorIs(t, a.Pause(it.ID), ErrNotActive)
	assert.ErrorIs(t, a.Retry(it.ID), ErrNotActive)
	assert.ErrorIs(t, b.Retry(o.ID), ErrNotActive)
	assert.ErrorIs(t, a.Cancel("nope"), ErrUnknownItem)
}

// Paths that cannot be sent are refused at once, and nothing is queued.
func TestSendBadPaths(t *testing.T) {
	a := startEngine(t, "alice")
	_, err := a.Send(Target{Name: "bob", Addrs: []string{"127.0.0.1:9"}}, []string{filepath.Join(t.TempDir(), "missing")})
	require.Error(t, err)
	_, err = a.Send(Target{Name: "bob", Addrs: []string{"127.0.0.1:9"}}, nil)
	require.Error(t, err)
	_, err = a.Send(Target{Name: "bob"}, []string{t.TempDir()})
	require.Error(t, err)
	assert.Empty(t, a.Items())
}

// 2) A declined offer: the sender says so, nothing lands on disk.
func TestDecline(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.Type = discovery.TypeDesktop
	a, b := runEngine(t, cfg), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "photo.jpg")
	writeFile(t, f, []byte("not really a photo"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	assert.Equal(t, "photo.jpg", it.Title)

	o := b.rec.waitOffer(t, 0)
	assert.Equal(t, discovery.TypeDesktop, o.Type, "the sender's hello says what it is: it may not advertise")
	require.NoError(t, b.Answer(o.ID, false))
	sent := a.rec.waitState(t, 0, it.ID, StateDeclined)
	assert.Equal(t, "bob declined", sent.Error)
	b.rec.waitState(t, 0, o.ID, StateDeclined)
	entries, err := os.ReadDir(b.cfg.DownloadDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// Cancelling a send that waits for an answer withdraws the offer: the
// receiver's question closes.
func TestCancelWhileWaiting(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "note.txt")
	writeFile(t, f, []byte("note"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	o := b.rec.waitOffer(t, 0)
	require.NoError(t, a.Cancel(it.ID))
	sent := a.rec.waitState(t, 0, it.ID, StateCancelled)
	assert.Empty(t, sent.Error)
	b.rec.wait(t, 0, "offer closed", func(ev Event) bool { c, ok := ev.(OfferClosed); return ok && c.ID == o.ID })
	got := b.rec.waitState(t, 0, o.ID, StateCancelled)
	assert.Equal(t, "alice withdrew the offer", got.Error)
	assert.ErrorIs(t, b.Answer(o.ID, true), ErrUnknownOffer)
}

// 3) Once trusted (after a first contact), a device's offers are accepted
// without a question when auto-accept is on.
func TestAutoAcceptTrusted(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "one.txt")
	writeFile(t, f, []byte("one"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	accept(t, b, 0)
	a.rec.waitState(t, 0, it.ID, StateDone)

	require.Error(t, b.SetTrusted("0000000000000000", true), "an unknown device cannot be trusted")
	require.NoError(t, b.SetTrusted(a.Self().ID, true))
	assert.Equal(t, []Peer{a.Self()}, b.Trusted())
	b.SetAutoAcceptTrusted(true)

	from := b.rec.mark()
	it2, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	a.rec.waitState(t, 0, it2.ID, StateDone)
	b.rec.wait(t, from, "second item done", func(ev Event) bool {
		ic, ok := ev.(ItemChanged)
		return ok && ic.Item.Direction == Incoming && ic.Item.State == StateDone
	})
	isOffer := func(ev Event) bool { _, ok := ev.(OfferReceived); return ok }
	assert.Equal(t, 1, b.rec.count(isOffer), "the trusted device's second offer was asked about")
	for _, ev := range b.rec.all()[from:] {
		if ic, ok := ev.(ItemChanged); ok {
			assert.NotEqual(t, StateWaiting, ic.Item.State, "an auto-accepted item was reported waiting")
		}
	}
}

// 4) A send to an address where nobody listens fails in plain words; Retry
// runs it again in the same item once the device is there. A declined send
// can be retried too.
func TestRetry(t *testing.T) {
	a := startEngine(t, "alice")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	f := filepath.Join(t.TempDir(), "doc.txt")
	writeFile(t, f, []byte("document"))
	to := Target{Name: "carol", Addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)}}
	it, err := a.Send(to, []string{f})
	require.NoError(t, err)
	failed := a.rec.waitState(t, 0, it.ID, StateFailed)
	assert.Equal(t, fmt.Sprintf("could not reach carol: nothing answers on its handshake port (TCP %d); is ThePeerDrop running there, and receiving?", port), failed.Error,
		"which step failed, in plain words")

	cfg := testConfig(t, "carol")
	cfg.Port = port
	c := runEngine(t, cfg)
	from := a.rec.mark()
	require.NoError(t, a.Retry(it.ID))
	assert.ErrorIs(t, a.Retry(it.ID), ErrNotActive, "a running send cannot be retried")
	back := a.rec.waitState(t, from, it.ID, StateConnecting)
	assert.Empty(t, back.Error)
	accept(t, c, 0)
	done := a.rec.waitState(t, from, it.ID, StateDone)
	assert.Equal(t, c.Self().ID, done.Peer.ID, "the peer's id is learnt from its hello")
	assert.Len(t, a.Items(), 1, "a retry is the same item")

	// Declined, then retried and accepted.
	it2, err := a.Send(c.target(), []string{f})
	require.NoError(t, err)
	o := c.rec.waitOffer(t, c.rec.mark())
	require.NoError(t, c.Answer(o.ID, false))
	a.rec.waitState(t, 0, it2.ID, StateDeclined)
	from = c.rec.mark()
	require.NoError(t, a.Retry(it2.ID))
	accept(t, c, from)
	a.rec.waitState(t, 0, it2.ID, StateDone)
	data, err := os.ReadFile(filepath.Join(c.cfg.DownloadDir, "doc (1).txt"))
	require.NoError(t, err)
	assert.Equal(t, "document", string(data))
}

// bigFile is a file large enough that a transfer is still running when the
// first progress is reported.
func bigFile(t *testing.T) string {
	t.Helper()
	big := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, big, randomBytes(t, 16<<20))
	return big
}

// pauseOnFirstProgress pauses te's first running item of direction d that
// has moved bytes, from inside the event callback: the transfer cannot
// finish before the pause lands, whatever the machine's speed.
func pauseOnFirstProgress(t *testing.T, te *testEngine, d Direction, action func(string) error) {
	var once sync.Once
	te.rec.setHook(func(ev Event) {
		if ic, ok := ev.(ItemChanged); ok && ic.Item.Direction == d && ic.Item.State == StateRunning && ic.Item.Bytes > 0 {
			once.Do(func() { assert.NoError(t, action(ic.Item.ID)) })
		}
	})
}

// 5) Pause a large send on its first progress: both sides show it paused;
// resumed (here by the receiver, see TestPauseResumeBySender), it completes.
func TestPauseResume(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	big := bigFile(t)
	pauseOnFirstProgress(t, a, Outgoing, a.Pause)
	it, err := a.Send(b.target(), []string{big})
	require.NoError(t, err)
	o := accept(t, b, 0)
	paused := a.rec.waitState(t, 0, it.ID, StatePaused)
	assert.Less(t, paused.Bytes, paused.Total)
	assert.Zero(t, paused.Speed)
	b.rec.waitState(t, 0, o.ID, StatePaused) // the receiver is told
	assert.ErrorIs(t, b.Resume("nope"), ErrUnknownItem)
	require.NoError(t, b.Resume(o.ID))
	a.rec.waitState(t, 0, it.ID, StateDone)
	got := b.rec.waitState(t, 0, o.ID, StateDone)
	sameTree(t, filepath.Dir(big), b.cfg.DownloadDir)
	assert.Equal(t, []string{filepath.Join(b.cfg.DownloadDir, "big.bin")}, got.Paths)
}

// The sender pauses and resumes its own send.
func TestPauseResumeBySender(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	big := bigFile(t)
	pauseOnFirstProgress(t, a, Outgoing, a.Pause)
	it, err := a.Send(b.target(), []string{big})
	require.NoError(t, err)
	o := accept(t, b, 0)
	a.rec.waitState(t, 0, it.ID, StatePaused)
	b.rec.waitState(t, 0, o.ID, StatePaused)
	require.NoError(t, a.Resume(it.ID))
	a.rec.waitState(t, 0, it.ID, StateDone)
	b.rec.waitState(t, 0, o.ID, StateDone)
	sameTree(t, filepath.Dir(big), b.cfg.DownloadDir)
}

// The receiver cancels a large send on its first progress: both items end
// cancelled and nothing is left in the (new) download folder.
func TestCancelByReceiver(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	big := bigFile(t)
	dir := filepath.Join(t.TempDir(), "elsewhere")
	require.NoError(t, b.SetDownloadDir(dir))
	pauseOnFirstProgress(t, b, Incoming, b.Cancel)
	it, err := a.Send(b.target(), []string{big})
	require.NoError(t, err)
	o := accept(t, b, 0)
	sent := a.rec.waitState(t, 0, it.ID, StateCancelled)
	assert.Equal(t, "bob cancelled", sent.Error)
	got := b.rec.waitState(t, 0, o.ID, StateCancelled)
	assert.Empty(t, got.Error)
	assert.Less(t, got.Bytes, got.Total)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "a cancelled receive leaves nothing behind")
	assert.ErrorIs(t, b.Cancel(o.ID), ErrNotActive)
}

// The sender cancels a running send.
func TestCancelBySender(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	big := bigFile(t)
	pauseOnFirstProgress(t, a, Outgoing, a.Cancel)
	it, err := a.Send(b.target(), []string{big})
	require.NoError(t, err)
	o := accept(t, b, 0)
	sent := a.rec.waitState(t, 0, it.ID, StateCancelled)
	assert.Empty(t, sent.Error)
	// The receiver hears of the cancel, unless the link closes before its
	// transfer session reads the "cancel" message (a race in transfer's
	// receiver, reported): then it sees an interrupted transfer.
	got := b.rec.waitItem(t, 0, o.ID, "cancelled or interrupted", func(x Item) bool {
		return x.State == StateCancelled || x.State == StateFailed
	})
	if got.State == StateCancelled {
		assert.Equal(t, "alice cancelled", got.Error)
	} else {
		assert.Equal(t, "lost the connection to alice", got.Error)
		t.Log("the receiver saw the link close before the cancel (transfer race)")
	}
	// A cancelled send can be retried.
	pauseOnFirstProgress(t, a, Outgoing, func(string) error { return nil })
	from := b.rec.mark()
	require.NoError(t, a.Retry(it.ID))
	accept(t, b, from)
	a.rec.waitState(t, 0, it.ID, StateDone)
}

// 6) Text messages both ways: each side hears of the other's and of the
// delivery of its own, and keeps the conversation.
func TestText(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	m, err := a.SendText(b.target(), "hello bob")
	require.NoError(t, err)
	assert.True(t, m.Outgoing)
	ev := b.rec.wait(t, 0, "message at bob", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && !mr.Message.Outgoing })
	in := ev.(MessageReceived).Message
	assert.Equal(t, "hello bob", in.Text)
	assert.Equal(t, Peer{ID: a.Self().ID, Name: "alice"}, in.Peer)
	ev = a.rec.wait(t, 0, "delivery at alice", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && mr.Message.ID == m.ID })
	assert.Empty(t, ev.(MessageReceived).Message.Err)

	r, err := b.SendText(a.target(), "hi alice")
	require.NoError(t, err)
	a.rec.wait(t, 0, "message at alice", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && !mr.Message.Outgoing })
	b.rec.wait(t, 0, "delivery at bob", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && mr.Message.ID == r.ID })

	conv := a.Messages(b.Self().ID)
	require.Len(t, conv, 2)
	assert.Equal(t, "hello bob", conv[0].Text)
	assert.True(t, conv[0].Outgoing)
	assert.Equal(t, "hi alice", conv[1].Text)
	assert.False(t, conv[1].Outgoing)
	assert.Len(t, b.Messages(a.Self().ID), 2)

	_, err = a.SendText(b.target(), "")
	assert.Error(t, err)
	// Nobody there: the message is kept, with why it did not go.
	dead, err := a.SendText(Target{ID: "deadbeefdeadbeef", Name: "dave", Addrs: []string{"127.0.0.1:1"}}, "anyone?")
	require.NoError(t, err)
	ev = a.rec.wait(t, 0, "failure", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && mr.Message.ID == dead.ID })
	const nobody = "could not reach dave: nothing answers on its handshake port (TCP 1); is ThePeerDrop running there, and receiving?"
	assert.Equal(t, nobody, ev.(MessageReceived).Message.Err)
	require.Len(t, a.Messages("deadbeefdeadbeef"), 1)
	assert.Equal(t, nobody, a.Messages("deadbeefdeadbeef")[0].Err)
}

// Two devices that met show each other the same trust code, made of their
// two certificates, in either order.
func TestTrustCodesMatch(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	_, err := a.TrustCode(b.Self().ID)
	require.ErrorIs(t, err, ErrUnknownDevice, "never met, not nearby")
	// Advertised but never connected: its certificate is only a claim.
	a.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: discovery.Device{
		Info: discovery.Info{
			Device:  device.Device{ID: b.Self().ID, Name: "bob", Type: discovery.TypeLaptop, Fingerprint: b.Fingerprint()},
			Version: int(signaling.Version),
		},
		Port: 53318, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.7")},
	}})
	_, err = a.TrustCode(b.Self().ID)
	require.ErrorIs(t, err, ErrUnknownDevice, "nearby, not proven")

	m, err := a.SendText(b.target(), "hello bob")
	require.NoError(t, err)
	a.rec.wait(t, 0, "delivery at alice", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && mr.Message.ID == m.ID })
	ab, err := a.TrustCode(b.Self().ID)
	require.NoError(t, err)
	ba, err := b.TrustCode(a.Self().ID)
	require.NoError(t, err)
	assert.Equal(t, ab, ba, "both screens show the same code")
	assert.Equal(t, trust.TrustCode(a.Fingerprint(), b.Fingerprint()), ab)
	assert.Regexp(t, `^\d{4} \d{4} \d{4} · \d{4} \d{4} \d{4}$`, ab)
}

// 7) Finished items outlive a restart; ClearFinished empties the queue and
// the file; a malformed file is ignored.
func TestHistory(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "keep.txt")
	writeFile(t, f, []byte("keep"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	accept(t, b, 0)
	done := a.rec.waitState(t, 0, it.ID, StateDone)
	a.stop()

	path := filepath.Join(a.cfg.ConfigDir, historyFileName)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	cfg := a.cfg
	rec := newRecorder()
	cfg.OnEvent = rec.add
	again, err := New(cfg)
	require.NoError(t, err)
	items := again.Items()
	require.Len(t, items, 1)
	assert.Equal(t, done.ID, items[0].ID)
	assert.Equal(t, StateDone, items[0].State)
	assert.Equal(t, done.Title, items[0].Title)
	assert.Equal(t, done.Paths, items[0].Paths)
	assert.Equal(t, done.Peer, items[0].Peer)
	assert.True(t, done.Finished.Equal(items[0].Finished))

	again.ClearFinished()
	assert.Empty(t, again.Items())
	rec.wait(t, 0, "cleared", func(ev Event) bool { _, ok := ev.(ItemsCleared); return ok })
	third, err := New(cfg)
	require.NoError(t, err)
	assert.Empty(t, third.Items())

	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	fourth, err := New(cfg)
	require.NoError(t, err, "a malformed history is not fatal")
	assert.Empty(t, fourth.Items())
}

// 8) A device whose certificate changed (reinstalled, or an impostor) is
// another device, with another id (ids derive from certificates): a send
// meant for the paired one is refused by id and nothing is offered; the new
// device is a first contact of its own, pinned only once its connection
// proved its key.
func TestIdentityChanged(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "x.txt")
	writeFile(t, f, []byte("x"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	accept(t, b, 0)
	a.rec.waitState(t, 0, it.ID, StateDone)
	b.stop()

	require.NoError(t, os.Remove(filepath.Join(b.cfg.ConfigDir, "identity.pem")))
	b2 := runEngine(t, b.cfg)
	require.NotEqual(t, b.Self().ID, b2.Self().ID)
	require.NotEqual(t, b.Fingerprint(), b2.Fingerprint())

	old := b2.target()
	old.ID = b.Self().ID // the paired bob, at the new device's address
	it2, err := a.Send(old, []string{f})
	require.NoError(t, err)
	failed := a.rec.waitState(t, 0, it2.ID, StateFailed)
	assert.NotEmpty(t, failed.Error)
	isOffer := func(ev Event) bool { _, ok := ev.(OfferReceived); return ok }
	assert.Zero(t, b2.rec.count(isOffer))
	_, pinned := a.trust.Pinned(b2.Self().ID)
	assert.False(t, pinned, "a hello pins nothing")

	it3, err := a.Send(b2.target(), []string{f})
	require.NoError(t, err)
	accept(t, b2, 0)
	a.rec.waitState(t, 0, it3.ID, StateDone)
	assert.True(t, a.trust.IsPinned(b2.Self().ID, b2.Fingerprint()), "pinned once proven")
	assert.True(t, a.trust.IsPinned(b.Self().ID, b.Fingerprint()), "the paired bob stays pinned")
}

// The nearby list: each device with its code and what the trust store says.
func TestDevices(t *testing.T) {
	rec := newRecorder()
	cfg := testConfig(t, "alice")
	cfg.OnEvent = rec.add
	e, err := New(cfg)
	require.NoError(t, err)
	fp := func(b byte) string {
		parts := make([]string, 32)
		for i := range parts {
			parts[i] = fmt.Sprintf("%02X", b)
		}
		return "sha-256 " + strings.Join(parts, ":")
	}
	dev := func(id, name string, f string) discovery.Device {
		return discovery.Device{
			Info: discovery.Info{Device: device.Device{ID: id, Name: name, Type: discovery.TypeLaptop, Fingerprint: f}, Version: int(signaling.Version)},
			Port: 53318, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.7")},
		}
	}
	require.NoError(t, e.trust.Pin("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "Bob", fp(0xBB)))
	require.NoError(t, e.trust.Pin("cccccccccccccccccccccccccccccccc", "carol", fp(0xCC)))
	require.NoError(t, e.SetTrusted("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", true))

	e.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: dev("cccccccccccccccccccccccccccccccc", "carol", fp(0xC0))})
	e.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: dev("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "Bob", fp(0xBB))})
	e.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: dev("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "anna", fp(0xAA))})
	list := e.Devices()
	require.Len(t, list, 3)
	assert.Equal(t, []string{"anna", "Bob", "carol"}, []string{list[0].Name, list[1].Name, list[2].Name})
	assert.False(t, list[0].Known)
	assert.True(t, list[1].Known && list[1].Trusted && !list[1].Changed)
	assert.True(t, list[2].Known && !list[2].Trusted && list[2].Changed)
	assert.Equal(t, Target{ID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Name: "Bob", Addrs: []string{"192.168.1.7:53318"}}, TargetOf(list[1]))

	e.onDiscovery(discovery.Event{Kind: discovery.Gone, Device: dev("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "anna", fp(0xAA))})
	assert.Len(t, e.Devices(), 2)
	last := rec.all()[len(rec.all())-1].(DevicesChanged)
	assert.Len(t, last.Devices, 2)
}

func TestNewConfig(t *testing.T) {
	_, err := New(Config{})
	assert.Error(t, err, "no config dir")
	cfg := testConfig(t, "")
	cfg.Type = "toaster"
	_, err = New(cfg)
	assert.Error(t, err)
	cfg = testConfig(t, "")
	cfg.DownloadDir = filepath.Join(t.TempDir(), "new", "dir")
	e, err := New(cfg)
	require.NoError(t, err)
	h, _ := os.Hostname()
	assert.Equal(t, DefaultName(h), e.Self().Name)
	assert.DirExists(t, cfg.DownloadDir)
	assert.NoError(t, e.SetDownloadDir("relative-dir-"+e.Self().ID))
	assert.True(t, filepath.IsAbs(e.dir))
	_ = os.Remove("relative-dir-" + e.Self().ID)

	// Run once; after it the engine takes no new work.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.Port = -1
	cfg.Hidden, cfg.NoBrowse = true, true
	e, err = New(cfg)
	require.NoError(t, err)
	require.NoError(t, e.Run(ctx))
	assert.ErrorIs(t, e.Run(ctx), ErrAlreadyRunning)
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, []byte("f"))
	_, err = e.Send(Target{Name: "x", Addrs: []string{"127.0.0.1:9"}}, []string{f})
	assert.ErrorIs(t, err, ErrStopped)
}

func TestDefaultName(t *testing.T) {
	assert.Equal(t, "laptop", DefaultName("laptop.example.org"))
	assert.Equal(t, "peerdrop", DefaultName(""))
	assert.Equal(t, "peerdrop", DefaultName(strings.Repeat("x", 100)))
}

func TestTitle(t *testing.T) {
	for _, tc := range []struct {
		tops    []string
		oneFile bool
		more    bool
		files   int
		text    string
		want    string
	}{
		{[]string{"photo.jpg"}, true, false, 1, "", "photo.jpg"},
		{[]string{"Trip"}, false, false, 3, "", "Trip (3 files)"},
		{[]string{"Trip"}, false, false, 1, "", "Trip (1 file)"},
		{[]string{"a", "b"}, false, false, 2, "", "a and b (2 files)"},
		{[]string{"a", "b"}, false, true, 9, "", "a, b and more (9 files)"},
		{nil, false, false, 0, "hello\nthere", "hello there"},
	} {
		assert.Equal(t, tc.want, title(tc.tops, tc.oneFile, tc.more, tc.files, tc.text))
	}
}

func TestSpeedAndETA(t *testing.T) {
	it := &item{Item: Item{Total: 100 << 20}}
	t0 := time.Now()
	it.progress(t0, 0, 0)
	for i := 1; i <= 50; i++ {
		it.progress(t0.Add(time.Duration(i)*100*time.Millisecond), int64(i)<<20, 0) // 10 MiB/s
	}
	assert.InDelta(t, 10<<20, it.Speed, 1<<20)
	assert.InDelta(t, 5*time.Second, it.ETA, float64(time.Second))
	it.stopClock()
	assert.Zero(t, it.Speed)
	assert.Zero(t, it.ETA)
}

func TestDescribeSendError(t *testing.T) {
	assert.Equal(t, "could not reach Bob", describeSendError("Bob", errors.New("dial tcp: refused"), false))
	assert.Equal(t, "lost the connection to Bob", describeSendError("Bob", transfer.ErrClosed, true))
	assert.Equal(t, "Bob's identity changed: compare the verification code and re-pair",
		describeSendError("Bob", fmt.Errorf("handshake: %w", &trust.IdentityChangedError{Name: "Bob"}), false))
}

// A send may start before Run. Run's end stops the sends still going, and
// Run returns only after they have ended; then the engine takes no new work.
func TestSendBeforeRunAndStop(t *testing.T) {
	b := startEngine(t, "bob")
	rec := newRecorder()
	cfg := testConfig(t, "alice")
	cfg.OnEvent = rec.add
	a, err := New(cfg)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "early.txt")
	writeFile(t, f, []byte("early"))

	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	accept(t, b, 0)
	rec.waitState(t, 0, it.ID, StateDone)

	// This one still waits for bob's answer when Run ends.
	from := b.rec.mark()
	it2, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	o := b.rec.waitOffer(t, from)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	require.Eventually(t, func() bool { return a.Addr() != "" }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Empty(t, a.Addr())
	var stopped Item
	for _, x := range a.Items() {
		if x.ID == it2.ID {
			stopped = x
		}
	}
	assert.Equal(t, StateFailed, stopped.State, "Run returned before the send ended")
	assert.Equal(t, "interrupted: ThePeerDrop stopped", stopped.Error)
	got := b.rec.waitState(t, from, o.ID, StateCancelled)
	assert.Equal(t, "alice withdrew the offer", got.Error)

	_, err = a.Send(b.target(), []string{f})
	assert.ErrorIs(t, err, ErrStopped)
	_, err = a.SendText(b.target(), "too late")
	assert.ErrorIs(t, err, ErrStopped)
}

// A receiver that stops while its user is being asked closes the question.
func TestStopWhileAsked(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "q.txt")
	writeFile(t, f, []byte("q"))
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	o := b.rec.waitOffer(t, 0)
	b.stop()
	b.rec.wait(t, 0, "offer closed", func(ev Event) bool { c, ok := ev.(OfferClosed); return ok && c.ID == o.ID })
	require.Len(t, b.Items(), 1)
	assert.Equal(t, StateFailed, b.Items()[0].State)
	assert.Equal(t, "not answered: ThePeerDrop stopped", b.Items()[0].Error)
	assert.ErrorIs(t, b.Answer(o.ID, true), ErrUnknownOffer)
	// The sender hears "declined" (the receiver's transfer says so as it
	// stops) or loses the link and tries again until its own Run ends.
	a.stop()
	require.Len(t, a.Items(), 1)
	assert.Equal(t, it.ID, a.Items()[0].ID)
	assert.Contains(t, []State{StateDeclined, StateFailed}, a.Items()[0].State)
}

// The app's Settings show this folder: the one --download-dir chose, not
// the one the app's preferences remember.
func TestDownloadDirReportsTheFolderInUse(t *testing.T) {
	e := startEngine(t, "Alice")
	assert.Equal(t, e.cfg.DownloadDir, e.DownloadDir())
	other := filepath.Join(t.TempDir(), "Inbox")
	require.NoError(t, e.SetDownloadDir(other))
	assert.Equal(t, other, e.DownloadDir())
}

// A port typed in Settings that another program holds does not stop the
// app from starting: the engine listens on a free port and says so.
func TestTakenPortFallsBack(t *testing.T) {
	held, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port

	cfg := testConfig(t, "Alice")
	cfg.Port = port
	e, err := New(cfg)
	require.NoError(t, err)
	require.Error(t, e.Run(context.Background()), "without the fallback the taken port is an error")

	cfg = testConfig(t, "Alice")
	cfg.Port, cfg.PortFallback = port, true
	te := runEngine(t, cfg)
	_, got, err := net.SplitHostPort(te.Addr())
	require.NoError(t, err)
	assert.NotEqual(t, strconv.Itoa(port), got, "listens elsewhere")
	ev := te.rec.wait(t, 0, "the problem", func(ev Event) bool { _, ok := ev.(Problem); return ok })
	assert.Contains(t, ev.(Problem).Err.Error(), fmt.Sprintf("Port %d is in use", port))
}

// A type changed in Settings reaches the hello of the next connection, not
// only the mDNS record: a receiver that does not see the sender advertise
// (a command line, a send to an address) shows the new type.
func TestSetTypeReachesTheHello(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.Type = discovery.TypeLaptop
	a, b := runEngine(t, cfg), startEngine(t, "bob")
	require.NoError(t, a.SetType(discovery.TypeDesktop))
	f := filepath.Join(t.TempDir(), "photo.jpg")
	writeFile(t, f, []byte("x"))
	_, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	o := b.rec.waitOffer(t, 0)
	assert.Equal(t, discovery.TypeDesktop, o.Type)
	require.NoError(t, b.Answer(o.ID, false))
}
