package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// fakeNotifier is a notification server with buttons (plain: without), as
// desknotify.Client shows it; internal/desknotify tests the real one on a
// real bus.
type fakeNotifier struct {
	mu     sync.Mutex
	on     func(desknotify.Event)
	shown  map[uint32]desknotify.Notification
	closed []uint32
	next   uint32
	fail   error // Notify fails with it
	plain  bool  // no buttons
	// hold, when set, keeps Notify waiting until it is closed (a slow
	// notification server); entered is told when Notify starts.
	hold    chan struct{}
	entered chan struct{}
}

func (f *fakeNotifier) Notify(_ context.Context, n desknotify.Notification) (uint32, error) {
	f.mu.Lock()
	hold, entered := f.hold, f.entered
	f.mu.Unlock()
	if hold != nil {
		entered <- struct{}{}
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	id := n.Replaces
	if _, ok := f.shown[id]; !ok { // as the specification says: a new one when it is gone
		f.next++
		id = f.next
	}
	f.shown[id] = n
	return id, nil
}

func (f *fakeNotifier) HasActions() bool { f.mu.Lock(); defer f.mu.Unlock(); return !f.plain }

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
	return newNoticeUIWith(t, dialErr, false)
}

// newNoticeUIWith is newNoticeUI; plain: the server has no buttons.
func newNoticeUIWith(t *testing.T, dialErr error, plain bool) *noticeUI {
	t.Helper()
	u, f := newTestUI(t)
	w := &raisedWindow{Window: u.win}
	u.win = w
	nu := &noticeUI{UI: u, eng: f, srv: &fakeNotifier{shown: map[uint32]desknotify.Notification{}, plain: plain}, win: w,
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
// so (checked again every few milliseconds: the notifier's goroutine hands
// nothing back after most jobs).
func (nu *noticeUI) settle(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !done() {
		select {
		case fn := <-nu.todo:
			fn()
		case <-time.After(5 * time.Millisecond): // what the notifier's goroutine does alone
		case <-deadline:
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

// Accept on the notification takes what the prompt has ticked, as the
// prompt's own Accept does (it took everything); with nothing ticked it
// answers nothing and raises the window, where the prompt says why.
func TestOfferNotificationAcceptTakesTheTickedEntries(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	nu.HandleEvent(engine.OfferReceived{Offer: trip("o1")})
	nu.HandleEvent(engine.OfferReceived{Offer: trip("o2")})
	nu.settle(t, "shown", func() bool { return len(nu.srv.showing()) == 2 })

	test.Tap(nu.offers["o1"].rows[1].check) // untick a.jpg
	nu.event(desknotify.ActionInvoked{ID: 1, Action: "accept"})
	nu.settle(t, "answered", func() bool { return len(nu.eng.Calls()) > 0 })
	assert.Equal(t, []string{"AnswerSome o1 [0 2]"}, nu.eng.Calls())
	assert.Zero(t, nu.win.times(), "the window was not raised")

	for _, r := range nu.offers["o2"].rows {
		test.Tap(r.check) // untick everything
	}
	nu.event(desknotify.ActionInvoked{ID: 2, Action: "accept"})
	nu.settle(t, "raised", func() bool { return nu.win.times() > 0 })
	assert.Equal(t, []string{"AnswerSome o1 [0 2]"}, nu.eng.Calls(), "nothing ticked: no answer")
	assert.NotNil(t, nu.offers["o2"], "the prompt still waits")
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

// An offer answered while its notification is on its way to the server
// (the call not returned, its id not known): the notification is
// withdrawn once shown, not left on screen.
func TestOfferNotificationAnsweredWhileShowing(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	nu.srv.mu.Lock()
	nu.srv.hold, nu.srv.entered = hold, entered
	nu.srv.mu.Unlock()
	nu.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the notification was never sent")
	}
	nu.HandleEvent(engine.OfferClosed{ID: "o1"}) // answered in the window meanwhile
	close(hold)
	nu.settle(t, "withdrawn once shown", func() bool { return slices.Contains(nu.srv.closedIDs(), 1) })
	assert.Empty(t, nu.srv.showing())
}

// Where the desktop has no notification server, or showing a notification
// fails, offers notify through Fyne and raise the window with the prompt,
// as before. Where its notifications have no buttons, the offer's goes to
// the server all the same, without buttons, and the window is raised; it
// is withdrawn when the prompt is answered.
func TestOfferNotificationFallback(t *testing.T) {
	t.Run("no server", func(t *testing.T) {
		nu := newNoticeUI(t, desknotify.ErrNoServer)
		test.AssertNotificationSent(t, fyne.NewNotification("ThePeerDrop", "Bob's Phone wants to send you 3 files"), func() {
			nu.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
		})
		assert.Positive(t, nu.win.times(), "the window is raised")
		test.Tap(nu.offers["o1"].accept)
		assert.Equal(t, []string{"Answer o1 true"}, nu.eng.Calls())
	})
	t.Run("no buttons", func(t *testing.T) {
		nu := newNoticeUIWith(t, nil, true)
		nu.ready(t)
		test.AssertNotificationSent(t, nil, func() { nu.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")}) })
		assert.Positive(t, nu.win.times(), "the window is raised")
		nu.settle(t, "shown", func() bool { return len(nu.srv.showing()) == 1 })
		n := nu.srv.showing()[1]
		assert.Empty(t, n.Actions)
		assert.False(t, n.Persistent)
		assert.Contains(t, n.Body, "Bob's Phone wants to send you 3 files")
		test.Tap(nu.offers["o1"].accept)
		assert.Equal(t, []string{"Answer o1 true"}, nu.eng.Calls())
		nu.settle(t, "withdrawn", func() bool { return len(nu.srv.closedIDs()) == 1 })
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

// msg is a message received from peer.
func msg(id string, peer engine.Peer, text string) engine.MessageReceived {
	return engine.MessageReceived{Message: engine.Message{ID: id, Peer: peer, Text: text, Time: time.Now()}}
}

// A message goes to the desktop's notification server, not Fyne's: the
// peer's name shown as the app shows it (invisible characters escaped),
// with Open; a click raises the window at the conversation, and opening it
// withdraws the notification.
func TestMessageNotification(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	eve := engine.Peer{ID: "e", Name: "<b>Eve</b>\u202E"}
	test.AssertNotificationSent(t, nil, func() { nu.HandleEvent(msg("m1", eve, "are you there?")) })
	nu.settle(t, "shown", func() bool { return len(nu.srv.showing()) == 1 })
	n := nu.srv.showing()[1]
	assert.Equal(t, "New message", n.Summary)
	assert.Equal(t, "<b>Eve</b>\\u202E: are you there?", n.Body, "desknotify escapes markup where the server reads it")
	assert.Equal(t, []desknotify.Action{{Key: "default", Label: "Open"}}, n.Actions)
	assert.Zero(t, nu.win.times())

	nu.event(desknotify.ActionInvoked{ID: 1, Action: "default"})
	nu.settle(t, "raised", func() bool { return nu.win.times() > 0 })
	assert.Equal(t, nu.messagesTab, nu.tabs.Selected(), "at the conversation")
	assert.Equal(t, "e", nu.messages.current)
	nu.settle(t, "withdrawn", func() bool { return len(nu.srv.closedIDs()) == 1 })
	assert.Empty(t, nu.srv.showing())

	// Opened in the app rather than from the notification: withdrawn too.
	nu.tabs.Select(nu.tabs.Items[0])
	nu.HandleEvent(msg("m2", eve, "hello?"))
	nu.settle(t, "shown again", func() bool { return len(nu.srv.showing()) == 1 })
	nu.openConversation(eve)
	nu.settle(t, "withdrawn again", func() bool { return len(nu.srv.showing()) == 0 })
}

// A peer's new message replaces its last one's notification (replaces_id):
// a peer sending a flood of messages shows one notification, and a few
// conversations at most are on screen; a long message is cut short.
func TestMessageNotificationsBounded(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	eve := engine.Peer{ID: "e", Name: "Eve"}
	for i := range 200 {
		nu.HandleEvent(msg(fmt.Sprint("m", i), eve, fmt.Sprint("spam ", i)))
	}
	nu.settle(t, "the last shown", func() bool {
		s := nu.srv.showing()
		return len(s) == 1 && s[1].Body == "Eve: spam 199"
	})
	assert.Equal(t, uint32(1), nu.srv.showing()[1].Replaces, "the same notification, replaced")

	for i := range 5 {
		p := engine.Peer{ID: fmt.Sprint("p", i), Name: fmt.Sprint("Peer ", i)}
		nu.HandleEvent(msg(fmt.Sprint("q", i), p, strings.Repeat("long ", 100)))
	}
	nu.settle(t, "the last peer's shown", func() bool {
		for _, n := range nu.srv.showing() {
			if strings.HasPrefix(n.Body, "Peer 4: ") {
				return true
			}
		}
		return false
	})
	shown := nu.srv.showing()
	assert.Len(t, shown, maxMessageNotices, "a few on screen at most")
	for _, n := range shown {
		assert.LessOrEqual(t, len([]rune(n.Body)), len("Peer 4: ")+maxNoticeText+1, "cut short")
	}
}

// The tray notice goes to the server too, without buttons.
func TestTrayNotification(t *testing.T) {
	nu := newNoticeUI(t, nil)
	nu.ready(t)
	nu.tray = true
	test.AssertNotificationSent(t, nil, nu.closeRequested)
	nu.settle(t, "shown", func() bool { return len(nu.srv.showing()) == 1 })
	assert.Contains(t, nu.srv.showing()[1].Body, "keeps receiving in the background")
	assert.Empty(t, nu.srv.showing()[1].Actions)
}
