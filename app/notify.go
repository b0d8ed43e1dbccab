package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/desknotify"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// The keys of an offer notification's buttons.
const (
	actionAccept  = "accept"
	actionDecline = "decline"
)

// noticeTimeout bounds one call to the notification server.
const noticeTimeout = 5 * time.Second

// notifier is what the UI uses of a desknotify.Client (tests fake it).
type notifier interface {
	Notify(ctx context.Context, n desknotify.Notification) (uint32, error)
	CloseNotification(ctx context.Context, id uint32) error
	Close() error
}

// dialNotifier connects to the desktop's notification server; onEvent is
// called on the notifier's own goroutine.
type dialNotifier func(ctx context.Context, onEvent func(desknotify.Event)) (notifier, error)

// offerNotices shows each offer as a desktop notification with Accept and
// Decline, where the notification server can show buttons. The calls to
// the server block: one goroutine (run) makes them, in the order the Fyne
// thread asked, and brings results back with fyne.Do.
type offerNotices struct {
	ready bool         // Fyne thread: the server has buttons, offers go there
	toUI  func(func()) // runs a function on the Fyne thread: fyne.Do

	mu      sync.Mutex
	jobs    []noticeJob
	wake    chan struct{}     // cap 1: jobs to do
	offerOf map[uint32]string // notification id → offer id
	idOf    map[string]uint32 // offer id → notification id
}

// noticeJob shows an offer's notification, or (show nil) withdraws it.
type noticeJob struct {
	offer string
	show  *desknotify.Notification
}

// StartNotifications lets offers raise the desktop's own notification with
// Accept and Decline buttons (and the code to compare), where its
// notification server has buttons (GNOME, KDE, dunst, mako); a press
// answers the offer without opening the window. Elsewhere offers keep
// Fyne's notification and the window's prompt. Call it on the Fyne thread;
// the returned stop ends the goroutine it starts.
func (u *UI) StartNotifications() (stop func()) {
	return u.startNotices(func(ctx context.Context, on func(desknotify.Event)) (notifier, error) {
		return desknotify.Dial(ctx, "", "ThePeerDrop", on)
	}, fyne.Do)
}

func (u *UI) startNotices(dial dialNotifier, toUI func(func())) (stop func()) {
	n := &offerNotices{toUI: toUI, wake: make(chan struct{}, 1), offerOf: map[uint32]string{}, idOf: map[string]uint32{}}
	u.notices = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx, u, dial)
	}()
	return func() {
		cancel()
		<-done
	}
}

// run connects, then does the jobs until ctx ends.
func (n *offerNotices) run(ctx context.Context, u *UI, dial dialNotifier) {
	c, err := dial(ctx, func(ev desknotify.Event) { n.event(u, ev) })
	if err != nil {
		slog.Info("offers use the window's prompt: no buttons on desktop notifications", slog.Any("err", err))
		return
	}
	defer c.Close()
	n.toUI(func() { n.ready = true })
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		for _, job := range n.take() {
			n.doJob(ctx, u, c, job)
		}
	}
}

// take returns the jobs to do, oldest first.
func (n *offerNotices) take() []noticeJob {
	n.mu.Lock()
	defer n.mu.Unlock()
	jobs := n.jobs
	n.jobs = nil
	return jobs
}

// add queues a job; any goroutine.
func (n *offerNotices) add(job noticeJob) {
	n.mu.Lock()
	n.jobs = append(n.jobs, job)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// doJob runs one job on run's goroutine.
func (n *offerNotices) doJob(ctx context.Context, u *UI, c notifier, job noticeJob) {
	ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
	defer cancel()
	if job.show != nil {
		id, err := c.Notify(ctx, *job.show)
		if err != nil {
			slog.Warn("offer notification", slog.String("offer", job.offer), slog.Any("err", err))
			if !errors.Is(err, context.Canceled) {
				n.toUI(func() { u.offerNoticeFailed(job.offer) })
			}
			return
		}
		n.mu.Lock()
		n.offerOf[id], n.idOf[job.offer] = job.offer, id
		n.mu.Unlock()
		if h := u.hook.Load(); h != nil {
			h.write(map[string]any{"event": "notification", "offer": job.offer, "notification": id})
		}
		return
	}
	// Jobs run in order: a withdrawal finds its notification shown (or
	// failed) already.
	n.mu.Lock()
	id, ok := n.idOf[job.offer]
	n.mu.Unlock()
	if !ok {
		return
	}
	if err := c.CloseNotification(ctx, id); err != nil {
		slog.Warn("close offer notification", slog.String("offer", job.offer), slog.Any("err", err))
	}
}

// event is a press or a closing, on the notifier's goroutine.
func (n *offerNotices) event(u *UI, ev desknotify.Event) {
	n.mu.Lock()
	var offer string
	switch ev := ev.(type) {
	case desknotify.ActionInvoked:
		offer = n.offerOf[ev.ID]
	case desknotify.Closed:
		offer = n.offerOf[ev.ID]
		delete(n.offerOf, ev.ID)
		if n.idOf[offer] == ev.ID {
			delete(n.idOf, offer)
		}
	}
	n.mu.Unlock()
	if offer == "" {
		return
	}
	if h := u.hook.Load(); h != nil {
		line := map[string]any{"event": "notification-event", "offer": offer}
		switch ev := ev.(type) {
		case desknotify.ActionInvoked:
			line["action"] = ev.Action
		case desknotify.Closed:
			line["closed"] = uint32(ev.Reason)
		}
		h.write(line)
	}
	n.toUI(func() {
		if _, waiting := u.offers[offer]; !waiting {
			return // answered already: the server closing it after a press
		}
		switch ev := ev.(type) {
		case desknotify.ActionInvoked:
			switch ev.Action {
			case actionAccept:
				u.answer(offer, true)
			case actionDecline:
				u.answer(offer, false)
			}
		case desknotify.Closed:
			// Dismissed or expired unanswered: the prompt is what is left.
			u.raiseWindow()
		}
	})
}

// notifyOffer shows o on the desktop's notification with buttons, if it has
// them, and reports whether it does. Fyne thread.
func (u *UI) notifyOffer(o engine.Offer) bool {
	n := u.notices
	if n == nil || !n.ready {
		return false
	}
	note := offerNotification(o)
	n.add(noticeJob{offer: o.ID, show: &note})
	return true
}

// withdrawNotice closes an offer's notification, if it has one. Fyne thread.
func (u *UI) withdrawNotice(offerID string) {
	if n := u.notices; n != nil && n.ready {
		n.add(noticeJob{offer: offerID})
	}
}

// offerNoticeFailed falls back to Fyne's notification and the window's
// prompt when the notification could not be shown. Fyne thread.
func (u *UI) offerNoticeFailed(offerID string) {
	p := u.offers[offerID]
	if p == nil {
		return
	}
	u.app.SendNotification(fyne.NewNotification("ThePeerDrop", offerNotice(p.offer)))
	u.raiseWindow()
}

// raiseWindow brings the window (with its prompts) to the front; it may be
// hidden in the tray.
func (u *UI) raiseWindow() {
	u.win.Show()
	u.win.RequestFocus()
}

// offerNotification is an offer's notification: who offers what, the
// first names (the top-level ones), the code to compare, in plain text (names escaped as the
// prompt shows them) and the two buttons.
func offerNotification(o engine.Offer) desknotify.Notification {
	title := "Incoming files"
	if o.Files == 0 && o.Folders == 0 {
		title = "Incoming message"
	}
	var b strings.Builder
	b.WriteString(offerNotice(o))
	if o.Size > 0 {
		b.WriteString(" · " + humanBytes(o.Size))
	}
	if w := visible.Warning(o.From.Name); w != "" {
		b.WriteString("\nThe name " + w)
	}
	if len(o.First) > 0 {
		names := make([]string, 0, len(o.First))
		for _, name := range o.First {
			names = append(names, visible.Escape(name))
		}
		b.WriteString("\n" + strings.Join(names, ", "))
	}
	if o.Code != "" {
		fmt.Fprintf(&b, "\nVerification code %s: go ahead if %s shows the same code.", o.Code, peerName(o.From))
	}
	return desknotify.Notification{
		Summary: title,
		Body:    b.String(),
		Actions: []desknotify.Action{
			{Key: actionDecline, Label: "Decline"},
			{Key: actionAccept, Label: "Accept"},
		},
		Persistent:   true,          // the offer waits for an answer; it closes with the offer
		DesktopEntry: "thepeerdrop", // assets/thepeerdrop.desktop: its icon, where installed
	}
}
