package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

func TestItemActions(t *testing.T) {
	out, in := engine.Outgoing, engine.Incoming
	for _, tc := range []struct {
		dir   engine.Direction
		state engine.State
		paths int
		want  actions
	}{
		{out, engine.StateConnecting, 1, actions{Cancel: true}},
		{in, engine.StateWaiting, 0, actions{Cancel: true}},
		{out, engine.StateRunning, 1, actions{Pause: true, Cancel: true}},
		{in, engine.StateRunning, 0, actions{Pause: true, Cancel: true}},
		{out, engine.StatePaused, 1, actions{Resume: true, Cancel: true}},
		{out, engine.StateFailed, 1, actions{Retry: true}},
		{out, engine.StateCancelled, 1, actions{Retry: true}},
		{out, engine.StateDeclined, 1, actions{Retry: true}},
		{in, engine.StateFailed, 0, actions{}},
		{in, engine.StateCancelled, 0, actions{}},
		{out, engine.StateDone, 1, actions{}},
		{in, engine.StateDone, 1, actions{Open: true, ShowInFolder: true}},
		{in, engine.StateDone, 3, actions{ShowInFolder: true}},
		{in, engine.StateDone, 0, actions{}},
	} {
		it := engine.Item{Direction: tc.dir, State: tc.state, Paths: make([]string, tc.paths)}
		assert.Equal(t, tc.want, itemActions(it), "%s %s with %d paths", tc.dir, tc.state, tc.paths)
	}
}

func TestCoalescer(t *testing.T) {
	var c coalescer
	it := engine.Item{ID: "a", State: engine.StateRunning}
	now, sched := c.add(it)
	assert.True(t, now, "a new item shows at once")
	assert.False(t, sched)
	assert.Len(t, c.take(), 1)

	for i := range 100 {
		it.Bytes = int64(i)
		now, sched = c.add(it)
		assert.False(t, now)
		assert.Equal(t, i == 0, sched, "one flush scheduled for a burst of progress")
	}
	got := c.take()
	require.Len(t, got, 1)
	assert.Equal(t, int64(99), got[0].Bytes, "the latest wins")

	it.Code = "123 456"
	now, _ = c.add(it)
	assert.True(t, now, "a new verification code shows at once")
	c.take()

	it.State = engine.StateDone
	now, _ = c.add(it)
	assert.True(t, now, "a new state shows at once")
	assert.Empty(t, c.take()[1:])
	assert.Empty(t, c.take())
}

// running is an outgoing item in progress.
func running(id string) engine.Item {
	return engine.Item{ID: id, Direction: engine.Outgoing, Peer: engine.Peer{ID: "b", Name: "Bob"}, Title: "trip.mov",
		Files: 1, Bytes: 12_300_000, Total: 40_000_000, Speed: 12.3e6, ETA: 3 * time.Second, State: engine.StateRunning,
		Paths: []string{"/home/alice/trip.mov"}}
}

func showQueue(t *testing.T, u *UI, id string) *queueRow {
	t.Helper()
	u.tabs.Select(u.queueTab)
	u.queue.list.Refresh()
	r := u.queue.rowFor(id)
	require.NotNil(t, r, "a row shows %s", id)
	return r
}

func TestQueueShowsProgressAndSpeed(t *testing.T) {
	u, _ := newTestUI(t)
	assert.True(t, u.queue.empty.Visible())
	u.HandleEvent(engine.ItemChanged{Item: running("i1")})
	r := showQueue(t, u, "i1")
	assert.Equal(t, "trip.mov", r.title.Text)
	assert.Equal(t, "Sending", r.state.Text)
	assert.Equal(t, "to Bob · 12.3 MB of 40.0 MB · 12.3 MB/s · 3 s left", r.detail.Text)
	assert.InDelta(t, 0.3075, r.bar.value, 1e-6)
	assert.Equal(t, "Transfers (1)", u.queueTab.Text)
	assert.False(t, u.queue.empty.Visible())

	// Progress is coalesced: it reaches the row with the next flush.
	for i := range 20 {
		it := running("i1")
		it.Bytes = int64(20_000_000 + i*1_000_000)
		u.HandleEvent(engine.ItemChanged{Item: it})
	}
	assert.InDelta(t, 0.3075, r.bar.value, 1e-6, "not yet")
	u.flushItems()
	assert.InDelta(t, 0.975, r.bar.value, 1e-6)
	assert.Contains(t, r.detail.Text, "39.0 MB of 40.0 MB")

	failed := running("i1")
	failed.State, failed.Error, failed.Speed = engine.StateFailed, "Bob went away", 0
	u.HandleEvent(engine.ItemChanged{Item: failed})
	assert.Equal(t, "Failed", r.state.Text)
	assert.Equal(t, "to Bob · Bob went away", r.detail.Text, "the error in plain words")
	assert.False(t, r.bar.Visible())
	assert.Equal(t, "Transfers", u.queueTab.Text)
}

func TestQueueButtonsFollowState(t *testing.T) {
	u, f := newTestUI(t)
	it := running("i1")
	u.HandleEvent(engine.ItemChanged{Item: it})
	r := showQueue(t, u, "i1")

	visible := func() actions {
		return actions{Pause: r.pause.Visible(), Resume: r.resume.Visible(), Cancel: r.cancel.Visible(),
			Retry: r.retry.Visible(), Open: r.open.Visible(), ShowInFolder: r.show.Visible()}
	}
	assert.Equal(t, actions{Pause: true, Cancel: true}, visible())
	test.Tap(r.pause)
	assert.Equal(t, []string{"Pause i1"}, f.Calls())

	it.State = engine.StatePaused
	u.HandleEvent(engine.ItemChanged{Item: it})
	assert.Equal(t, actions{Resume: true, Cancel: true}, visible())
	test.Tap(r.resume)
	test.Tap(r.cancel)
	assert.Equal(t, []string{"Pause i1", "Resume i1", "Cancel i1"}, f.Calls())

	it.State = engine.StateCancelled
	u.HandleEvent(engine.ItemChanged{Item: it})
	assert.Equal(t, actions{Retry: true}, visible())
	test.Tap(r.retry)
	assert.Equal(t, "Retry i1", f.Calls()[3])

	in := engine.Item{ID: "i2", Direction: engine.Incoming, Peer: engine.Peer{ID: "b", Name: "Bob"}, Title: "notes.txt",
		Files: 1, Total: 10, Bytes: 10, State: engine.StateDone, Paths: []string{"/home/alice/Downloads/notes.txt"}}
	u.HandleEvent(engine.ItemChanged{Item: in})
	r2 := showQueue(t, u, "i2")
	assert.True(t, r2.open.Visible())
	assert.True(t, r2.show.Visible())
	assert.False(t, r2.cancel.Visible())
	assert.Equal(t, "Received", r2.state.Text)
}

func TestQueueHistoryAndClear(t *testing.T) {
	a := test.NewTempApp(t)
	f := newFake()
	done := running("old")
	done.State = engine.StateDone
	f.items = []engine.Item{running("now"), done}
	u := New(a, f, Options{ProgressInterval: time.Hour})
	u.win.Resize(u.win.Canvas().Size().AddWidthHeight(780, 560))
	assert.Len(t, u.queue.items, 2, "history from Items()")
	assert.Equal(t, "Transfers (1)", u.queueTab.Text)
	assert.False(t, u.queue.clear.Disabled())

	test.Tap(u.queue.clear)
	assert.Equal(t, []string{"ClearFinished"}, f.Calls())
	u.HandleEvent(engine.ItemsCleared{})
	require.Len(t, u.queue.items, 1)
	assert.Equal(t, "now", u.queue.items[0].ID, "the running one stays")
	assert.True(t, u.queue.clear.Disabled())
}

// TestQueueEscapesInvisible: a title and an error from the network show
// their invisible characters escaped; so does the name of a device nearby.
func TestQueueEscapesInvisible(t *testing.T) {
	u, _ := newTestUI(t)
	it := running("i1")
	it.Peer.Name, it.Title = "Bob\u2028", "trip\u200b.mov"
	it.State, it.Error, it.Speed = engine.StateFailed, "gone\u202e", 0
	u.HandleEvent(engine.ItemChanged{Item: it})
	r := showQueue(t, u, "i1")
	assert.Equal(t, `trip\u200B.mov`, r.title.Text)
	assert.Equal(t, `to Bob\u2028 · gone\u202E`, r.detail.Text)

	u.tabs.Select(u.nearbyTab)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("c", "Carol\ufeff", "phone")}})
	assert.True(t, shows(u.win, `Carol\uFEFF`), "the tile's caption: %q", texts(u.win))
	assert.False(t, shows(u.win, "Carol\ufeff"), "no raw BOM")
}

// Moving transfers stay on top: running and paused first, then those
// waiting for an answer, then the history, newest first, with its date.
func TestQueueOrder(t *testing.T) {
	u, _ := newTestUI(t)
	now := time.Now()
	item := func(id string, s engine.State, finished time.Time) engine.Item {
		it := running(id)
		it.State, it.Finished = s, finished
		return it
	}
	u.HandleEvent(engine.ItemChanged{Item: item("run1", engine.StateRunning, time.Time{})})
	u.HandleEvent(engine.ItemChanged{Item: item("doneOld", engine.StateDone, now.Add(-26*time.Hour))})
	u.HandleEvent(engine.ItemChanged{Item: item("wait", engine.StateConnecting, time.Time{})})
	u.HandleEvent(engine.ItemChanged{Item: item("pause", engine.StatePaused, time.Time{})})
	u.HandleEvent(engine.ItemChanged{Item: item("doneNew", engine.StateDone, now.Add(-time.Minute))})
	u.HandleEvent(engine.ItemChanged{Item: item("failed", engine.StateFailed, now.Add(-time.Hour))})
	ids := func() []string {
		var out []string
		for _, it := range u.queue.items {
			out = append(out, it.ID)
		}
		return out
	}
	assert.Equal(t, []string{"pause", "run1", "wait", "doneNew", "failed", "doneOld"}, ids(),
		"new items went on top before; a running one sank under what came later")

	// The waiting one is accepted: it joins the moving ones (newest first:
	// it came before the paused one).
	u.HandleEvent(engine.ItemChanged{Item: item("wait", engine.StateRunning, time.Time{})})
	// The first one finishes: it tops the history.
	u.HandleEvent(engine.ItemChanged{Item: item("run1", engine.StateDone, now)})
	assert.Equal(t, []string{"pause", "wait", "run1", "doneNew", "failed", "doneOld"}, ids())
	for id, i := range u.queue.index {
		assert.Equal(t, id, u.queue.items[i].ID)
	}

	r := showQueue(t, u, "run1")
	assert.Regexp(t, `^to Bob · 1 file · 40.0 MB · Today \d\d:\d\d$`, r.detail.Text, "the history says when")
	assert.Contains(t, showQueue(t, u, "wait").detail.Text, "12.3 MB of 40.0 MB", "no date while it moves")
}

func TestWhenText(t *testing.T) {
	loc := time.FixedZone("here", 3600)
	now := time.Date(2026, 12, 4, 14, 30, 0, 0, loc)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 12, 4, 14, 5, 0, 0, loc), "Today 14:05"},
		{time.Date(2026, 12, 4, 0, 0, 0, 0, loc), "Today 00:00"},
		{time.Date(2026, 12, 3, 23, 59, 0, 0, loc), "Yesterday 23:59"},
		{time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC), "Today 00:00"}, // in now's zone
		{time.Date(2026, 12, 2, 9, 0, 0, 0, loc), "2 Dec"},
		{time.Date(2026, 1, 1, 9, 0, 0, 0, loc), "1 Jan"},
		{time.Date(2025, 12, 3, 9, 0, 0, 0, loc), "3 Dec 2025"},
	} {
		assert.Equal(t, tc.want, whenText(tc.t, now), "%v", tc.t)
	}
}
