package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/desknotify"
)

// fakeNotifier is a notification server with buttons, as desknotify.Client
// shows it; internal/desknotify tests the real one on a real bus.
type fakeNotifier struct {
	mu     sync.Mutex
	on     func(desknotify.Event)
	shown  map[uint32]desknotify.Notification
	closed []uint32
	next   uint32
	fail   error // Notify fails with it
}

func (f *fakeNotifier) Notify(_ context.Context, n desknotify.Notification) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	f.next++
	f.shown[f.next] = n
	return f.next, nil
}

func (f *fakeNotifier) CloseNotification(_ context.Context, id uint32) error {
	f.mu.Lock()
	_, ok := f.shown[id]
	delete(f.shown, id)
	f.closed = append(f.closed, id)
	f.mu.Unlock()
	if ok {
		f.on(desknotify.Closed{ID: id, Reason: desknotify.ReasonCalled})
	}
	return nil
}

func (f *fakeNotifier) Close() error { return nil }

func (f *fakeNotifier) showing() map[uint32]desknotify.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint32]desknotify.Notification{}
	for id, n := range f.shown {
		out[id] = n
	}
	return out
}

func (f *fakeNotifier) closedIDs() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.closed)
}

// raisedWindow counts how often the window is brought to the front.
type raisedWindow struct {
	fyne.Window
	mu     sync.Mutex
	raised int
}

func (w *raisedWindow) Show()         { w.count(); w.Window.Show() }
func (w *raisedWindow) RequestFocus() { w.count(); w.Window.RequestFocus() }
func (w *raisedWindow) count()        { w.mu.Lock(); w.raised++; w.mu.Unlock() }
func (w *raisedWindow) times() int    { w.mu.Lock(); defer w.mu.Unlock(); return w.raised }

// noticeUI is a UI whose offers go to a fakeNotifier (or, dialErr set, to no
// server). What the notifications' goroutine hands the Fyne thread runs on
// the test's goroutine, in settle.
type noticeUI struct {
	*UI
	eng  *fakeEngine
	srv  *fakeNotifier
	win  *raisedWindow
	todo chan func()
}

func newNoticeUI(t *testing.T, dialErr error) *noticeUI {
	t.Helper()
	u, f := newTestUI(t)
	w := &raisedWindow{Window: u.win}
	u.win = w
	nu := &noticeUI{UI: u, eng: f, srv: &fakeNotifier{shown: map[uint32]desknotify.Notification{}}, win: w,
		todo: make(chan func(), 64)}
	stop := u.startNotices(func(_ context.Context, on func(desknotify.Event)) (notifier, error) {
		if dialErr != nil {
			return nil, dialErr
		}
		nu.srv.mu.Lock()
		nu.srv.on = on
		nu.srv.mu.Unlock()
		return nu.srv, nil
	}, func(fn func()) { nu.todo <- fn })
	t.Cleanup(stop)
	return nu
}

// settle runs what the notifications hand the Fyne thread until done says
// so.
func (nu *noticeUI) settle(t *testing.T, what string, done func() bool) {
	t.Helper()
	for !done() {
		select {
		case fn := <-nu.todo:
			fn()
		case <-time.After(10 * time.Second):
			require.FailNow(t, "never "+what)
		}
	}
}

// event sends ev as the server's signal reader does: from its goroutine.
func (nu *noticeUI) event(ev desknotify.Event) {
	nu.srv.mu.Lock()
	on := nu.srv.on
	nu.srv.mu.Unlock()
	go on(ev)
}

func (nu *noticeUI) ready(t *testing.T) {
	t.Helper()
	nu.settle(t, "connected", func() bool { return nu.notices.ready })
}

// An offer raises a notification with Accept, Decline and the code, not the
// window; Accept on it answers the offer as the prompt's button does (the
// prompt goes), without raising the window; the notification is withdrawn.
func TestOfferNotificationAccept(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	o := sampleOffer("o1")
	o.From.Name = "Bob\u200B's Phone" // a name with an invisible character shows it escaped
	test.AssertNotificationSent(t, nil, func() { nu.HandleEvent(engine.OfferReceived{Offer: o}) })
	require.NotNil(t, nu.offers["o1"], "the prompt waits in the window too")
	nu.settle(t, "shown", func() bool { return len(nu.srv.showing()) == 1 })
	n := nu.srv.showing()[1]
	assert.Equal(t, "Incoming files", n.Summary)
	assert.Equal(t, "Bob\\u200B's Phone wants to send you 3 files · 12.4 MB\nIMG_0412.jpg, IMG_0413.jpg\n"+
		"Verification code 482 913: go ahead if Bob\\u200B's Phone shows the same code.", n.Body)
	assert.Equal(t, []desknotify.Action{{Key: "decline", Label: "Decline"}, {Key: "accept", Label: "Accept"}}, n.Actions)
	assert.True(t, n.Persistent, "it waits as long as the offer")

	nu.event(desknotify.ActionInvoked{ID: 1, Action: "accept"})
	nu.settle(t, "answered", func() bool { return len(nu.eng.Calls()) > 0 })
	assert.Equal(t, []string{"Answer o1 true"}, nu.eng.Calls())
	assert.Nil(t, nu.offers["o1"], "the prompt is gone")
	nu.settle(t, "withdrawn", func() bool { return len(nu.srv.closedIDs()) == 1 })
	assert.Equal(t, []uint32{1}, nu.srv.closedIDs())
	assert.Zero(t, nu.win.times(), "the window was not raised")
}

// The notification goes whenever the offer is answered or ends elsewhere:
// Decline in the prompt, the engine closing the offer. Decline on the
// notification declines; a notification dismissed unanswered raises the
// window, where the prompt still waits.
func TestOfferNotificationFollowsTheOffer(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	for _, id := range []string{"o1", "o2", "o3", "o4"} {
		nu.HandleEvent(engine.OfferReceived{Offer: sampleOffer(id)})
	}
	nu.settle(t, "shown", func() bool { return len(nu.srv.showing()) == 4 })

	test.Tap(nu.offers["o1"].decline)
	nu.settle(t, "withdrawn after the prompt's Decline", func() bool { return slices.Contains(nu.srv.closedIDs(), 1) })
	nu.HandleEvent(engine.OfferClosed{ID: "o2"})
	nu.settle(t, "withdrawn after the offer closed", func() bool { return slices.Contains(nu.srv.closedIDs(), 2) })
	nu.event(desknotify.ActionInvoked{ID: 3, Action: "decline"})
	nu.settle(t, "declined", func() bool { return len(nu.eng.Calls()) == 2 })
	assert.Equal(t, []string{"Answer o1 false", "Answer o3 false"}, nu.eng.Calls())
	assert.Zero(t, nu.win.times())

	nu.event(desknotify.Closed{ID: 4, Reason: desknotify.ReasonDismissed})
	nu.settle(t, "raised", func() bool { return nu.win.times() > 0 })
	require.NotNil(t, nu.offers["o4"], "dismissing is no answer")
	assert.Equal(t, []string{"Answer o1 false", "Answer o3 false"}, nu.eng.Calls())
}

// Where the desktop's notifications have no buttons, or showing one fails,
// offers notify through Fyne and raise the window with the prompt, as
// before.
func TestOfferNotificationFallback(t *testing.T) {
	t.Run("no buttons", func(t *testing.T) {
		nu := newNoticeUI(t, desknotify.ErrNoActions)
		test.AssertNotificationSent(t, fyne.NewNotification("ThePeerDrop", "Bob's Phone wants to send you 3 files"), func() {
			nu.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
		})
		assert.Positive(t, nu.win.times(), "the window is raised")
		test.Tap(nu.offers["o1"].accept)
		assert.Equal(t, []string{"Answer o1 true"}, nu.eng.Calls())
	})
	t.Run("notify fails", func(t *testing.T) {
		nu := newNoticeUI(t, nil)
		nu.ready(t)
		nu.srv.mu.Lock()
		nu.srv.fail = errors.New("the server went away")
		nu.srv.mu.Unlock()
		nu.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
		assert.Zero(t, nu.win.times())
		test.AssertNotificationSent(t, fyne.NewNotification("ThePeerDrop", "Bob's Phone wants to send you 3 files"), func() {
			nu.settle(t, "raised", func() bool { return nu.win.times() > 0 })
		})
		require.NotNil(t, nu.offers["o1"])
	})
}
