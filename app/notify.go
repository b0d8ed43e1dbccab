package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/desknotify"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// The keys of an offer notification's buttons, and the key of a
// notification's own click (the specification's "default").
const (
	actionAccept  = "accept"
	actionDecline = "decline"
	actionDefault = "default"
)

// noticeTimeout bounds one call to the notification server.
const noticeTimeout = 5 * time.Second

// maxMessageNotices is how many message notifications of ours are on
// screen at most: one a conversation (a new message replaces the last
// one's), and a conversation beyond these replaces the oldest's.
const maxMessageNotices = 3

// maxNoticeText is how much of a message a notification shows.
const maxNoticeText = 200

// notifier is what the UI uses of a desknotify.Client (tests fake it).
type notifier interface {
	Notify(ctx context.Context, n desknotify.Notification) (uint32, error)
	CloseNotification(ctx context.Context, id uint32) error
	HasActions() bool
	Close() error
}

// dialNotifier connects to the desktop's notification server; onEvent is
// called on the notifier's own goroutine.
type dialNotifier func(ctx context.Context, onEvent func(desknotify.Event)) (notifier, error)

// What a notification is about: its key.
const (
	offerNoticePrefix   = "offer:"   // + the offer's id
	messageNoticePrefix = "message:" // + the peer's id: one a conversation
	trayNoticeKey       = "tray"
)

// desktopNotices shows every notification of the app through the
// desktop's notification server, where there is one: offers with Accept and
// Decline (where it has buttons), messages, the tray notice. The calls to
// the server block: one goroutine (run) makes them, in the order the Fyne
// thread asked, and brings results back with fyne.Do. Each notification
// has a key (what it is about); a new one with the key of one on screen
// replaces it.
type desktopNotices struct {
	ready   bool         // Fyne thread: there is a server, notifications go there
	buttons bool         // Fyne thread: and it shows buttons
	toUI    func(func()) // runs a function on the Fyne thread: fyne.Do

	mu       sync.Mutex
	jobs     []noticeJob
	wake     chan struct{}     // cap 1: jobs to do
	keyOf    map[uint32]string // notification id → key
	idOf     map[string]uint32 // key → notification id
	showing  string            // the key whose notification is being shown (its id not known yet)
	messages []string          // the message keys shown, oldest first
}

// noticeJob shows a notification, or (show nil) withdraws it.
type noticeJob struct {
	key  string
	show *desknotify.Notification
}

// StartNotifications sends the app's notifications to the desktop's
// notification server (GNOME, KDE, dunst, mako...), from a goroutine of
// their own: offers get Accept and Decline buttons (and the code to
// compare) where the server has buttons, and a press answers the offer
// without opening the window; a message opens its conversation when
// clicked, and goes when the conversation is opened. Where there is no
// server, Fyne's notification and the window's prompt remain. Call it on
// the Fyne thread; the returned stop ends the goroutine it starts.
func (u *UI) StartNotifications() (stop func()) {
	return u.startNotices(func(ctx context.Context, on func(desknotify.Event)) (notifier, error) {
		return desknotify.Dial(ctx, "", "ThePeerDrop", on)
	}, fyne.Do)
}

func (u *UI) startNotices(dial dialNotifier, toUI func(func())) (stop func()) {
	n := &desktopNotices{toUI: toUI, wake: make(chan struct{}, 1), keyOf: map[uint32]string{}, idOf: map[string]uint32{}}
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
func (n *desktopNotices) run(ctx context.Context, u *UI, dial dialNotifier) {
	c, err := dial(ctx, func(ev desknotify.Event) { n.event(u, ev) })
	if err != nil {
		slog.Info("notifications go through Fyne: no desktop notification server", slog.Any("err", err))
		return
	}
	defer c.Close()
	buttons := c.HasActions()
	n.toUI(func() { n.ready, n.buttons = true, buttons })
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
func (n *desktopNotices) take() []noticeJob {
	n.mu.Lock()
	defer n.mu.Unlock()
	jobs := n.jobs
	n.jobs = nil
	return jobs
}

// add queues a job; any goroutine. A notification waiting to be shown is
// replaced by a newer one with its key (a flood of messages from a peer
// is one call to the server).
func (n *desktopNotices) add(job noticeJob) {
	n.mu.Lock()
	i := -1
	if job.show != nil {
		i = slices.IndexFunc(n.jobs, func(j noticeJob) bool { return j.key == job.key && j.show != nil })
	}
	if i >= 0 {
		n.jobs[i] = job
	} else {
		n.jobs = append(n.jobs, job)
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// withdraw queues the withdrawal of key's notification, if one is shown or
// on its way. Any goroutine.
func (n *desktopNotices) withdraw(key string) {
	n.mu.Lock()
	_, shown := n.idOf[key]
	// Pending: queued, or being shown right now (taken from the queue, its
	// id not known yet): the withdrawal runs after it, and finds the id.
	pending := n.showing == key || slices.ContainsFunc(n.jobs, func(j noticeJob) bool { return j.key == key })
	n.mu.Unlock()
	if shown || pending {
		n.add(noticeJob{key: key})
	}
}

// doJob runs one job on run's goroutine.
func (n *desktopNotices) doJob(ctx context.Context, u *UI, c notifier, job noticeJob) {
	ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
	defer cancel()
	if job.show == nil {
		// Jobs run in order: a withdrawal finds its notification shown
		// (or failed) already.
		n.mu.Lock()
		id, ok := n.idOf[job.key]
		n.mu.Unlock()
		if !ok {
			return
		}
		if err := c.CloseNotification(ctx, id); err != nil {
			slog.Warn("close a notification", slog.String("about", job.key), slog.Any("err", err))
		}
		return
	}

	note := *job.show
	n.mu.Lock()
	note.Replaces = n.idOf[job.key]
	evicted := ""
	if note.Replaces == 0 && strings.HasPrefix(job.key, messageNoticePrefix) && len(n.messages) >= maxMessageNotices {
		// Too many conversations on screen: this one takes the oldest's place.
		evicted = n.messages[0]
		note.Replaces = n.idOf[evicted]
	}
	n.showing = job.key
	n.mu.Unlock()
	id, err := c.Notify(ctx, note)
	if err != nil {
		n.mu.Lock()
		n.showing = ""
		n.mu.Unlock()
		slog.Warn("show a notification", slog.String("about", job.key), slog.Any("err", err))
		if offer, ok := strings.CutPrefix(job.key, offerNoticePrefix); ok && !errors.Is(err, context.Canceled) {
			n.toUI(func() { u.offerNoticeFailed(offer) })
		}
		return
	}
	n.mu.Lock()
	n.showing = ""
	if evicted != "" {
		delete(n.idOf, evicted)
		n.messages = slices.DeleteFunc(n.messages, func(k string) bool { return k == evicted })
	}
	if note.Replaces != 0 {
		delete(n.keyOf, note.Replaces)
	}
	n.keyOf[id], n.idOf[job.key] = job.key, id
	if strings.HasPrefix(job.key, messageNoticePrefix) {
		n.messages = slices.DeleteFunc(n.messages, func(k string) bool { return k == job.key })
		n.messages = append(n.messages, job.key)
	}
	n.mu.Unlock()
	if h := u.hook.Load(); h != nil {
		line := map[string]any{"event": "notification", "about": job.key, "notification": id}
		if offer, ok := strings.CutPrefix(job.key, offerNoticePrefix); ok {
			line["offer"] = offer
		}
		h.write(line)
	}
}

// event is a press or a closing, on the notifier's goroutine.
func (n *desktopNotices) event(u *UI, ev desknotify.Event) {
	n.mu.Lock()
	var key string
	switch ev := ev.(type) {
	case desknotify.ActionInvoked:
		key = n.keyOf[ev.ID]
	case desknotify.Closed:
		key = n.keyOf[ev.ID]
		delete(n.keyOf, ev.ID)
		if key != "" && n.idOf[key] == ev.ID {
			delete(n.idOf, key)
			n.messages = slices.DeleteFunc(n.messages, func(k string) bool { return k == key })
		}
	}
	n.mu.Unlock()
	if key == "" {
		return
	}
	if h := u.hook.Load(); h != nil {
		line := map[string]any{"event": "notification-event", "about": key}
		if offer, ok := strings.CutPrefix(key, offerNoticePrefix); ok {
			line["offer"] = offer
		}
		switch ev := ev.(type) {
		case desknotify.ActionInvoked:
			line["action"] = ev.Action
		case desknotify.Closed:
			line["closed"] = uint32(ev.Reason)
		}
		h.write(line)
	}
	if peer, ok := strings.CutPrefix(key, messageNoticePrefix); ok {
		if _, pressed := ev.(desknotify.ActionInvoked); pressed {
			n.toUI(func() { u.openMessageNotice(peer) })
		}
		return
	}
	offer, ok := strings.CutPrefix(key, offerNoticePrefix)
	if !ok {
		return
	}
	n.toUI(func() {
		if _, waiting := u.offers[offer]; !waiting {
			return // answered already: the server closing it after a press
		}
		switch ev := ev.(type) {
		case desknotify.ActionInvoked:
			switch ev.Action {
			case actionAccept:
				// What the prompt has ticked, as its own Accept does;
				// nothing ticked, or too much for the disk: the prompt
				// says so.
				p := u.offers[offer]
				u.answerChosen(p)
				if _, open := u.offers[offer]; open {
					u.raiseWindow()
				}
			case actionDecline:
				u.answer(offer, false)
			}
		case desknotify.Closed:
			// Dismissed or expired unanswered: the prompt is what is left.
			u.raiseWindow()
		}
	})
}

// desktopNotify shows note under key on the desktop's notification server
// and reports whether there is one (else the caller uses Fyne's). Fyne
// thread.
func (u *UI) desktopNotify(key string, note desknotify.Notification) bool {
	n := u.notices
	if n == nil || !n.ready {
		return false
	}
	n.add(noticeJob{key: key, show: &note})
	return true
}

// notifyButtons reports whether notifications have buttons. Fyne thread.
func (u *UI) notifyButtons() bool {
	return u.notices != nil && u.notices.ready && u.notices.buttons
}

// notifyOffer tells the desktop of o: with Accept and Decline on the
// notification where it has buttons, which it reports (else the window's
// prompt is the way to answer). Fyne thread.
func (u *UI) notifyOffer(o engine.Offer) (buttons bool) {
	buttons = u.notifyButtons()
	if !u.desktopNotify(offerNoticePrefix+o.ID, offerNotification(o, buttons)) {
		u.app.SendNotification(fyne.NewNotification("ThePeerDrop", offerNotice(o)))
	}
	return buttons
}

// withdrawNotice closes an offer's notification, if it has one. Fyne thread.
func (u *UI) withdrawNotice(offerID string) {
	if n := u.notices; n != nil && n.ready {
		n.withdraw(offerNoticePrefix + offerID)
	}
}

// notifyMessage tells the desktop of a message received: one notification
// a conversation, which a click opens in the window. Fyne thread.
func (u *UI) notifyMessage(msg engine.Message) {
	text := visible.Text(msg.Text)
	if r := []rune(text); len(r) > maxNoticeText {
		text = string(r[:maxNoticeText]) + "…"
	}
	note := desknotify.Notification{
		Summary:      "New message",
		Body:         peerName(msg.Peer) + ": " + text,
		DesktopEntry: "thepeerdrop",
	}
	if u.notifyButtons() {
		note.Actions = []desknotify.Action{{Key: actionDefault, Label: "Open"}}
	}
	if !u.desktopNotify(messageNoticePrefix+msg.Peer.ID, note) {
		u.app.SendNotification(fyne.NewNotification("ThePeerDrop", peerName(msg.Peer)+": "+visible.Text(msg.Text)))
	}
}

// withdrawMessageNotice closes the notification of the conversation with
// peerID, if it has one: it is read. Fyne thread.
func (u *UI) withdrawMessageNotice(peerID string) {
	if n := u.notices; n != nil && n.ready {
		n.withdraw(messageNoticePrefix + peerID)
	}
}

// openMessageNotice is a click on a message's notification: the window
// comes to the front at that conversation. Fyne thread.
func (u *UI) openMessageNotice(peerID string) {
	p, ok := u.messages.known[peerID]
	if !ok {
		return
	}
	u.raiseWindow()
	u.openConversation(p)
}

// notifyPlain shows a notification of the app's own, with no buttons, under
// key. Fyne thread.
func (u *UI) notifyPlain(key, text string) {
	if !u.desktopNotify(key, desknotify.Notification{Summary: "ThePeerDrop", Body: text, DesktopEntry: "thepeerdrop"}) {
		u.app.SendNotification(fyne.NewNotification("ThePeerDrop", text))
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
func offerNotification(o engine.Offer, buttons bool) desknotify.Notification {
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
	n := desknotify.Notification{
		Summary:      title,
		Body:         b.String(),
		DesktopEntry: "thepeerdrop", // assets/thepeerdrop.desktop: its icon, where installed
	}
	if buttons {
		n.Actions = []desknotify.Action{
			{Key: actionDecline, Label: "Decline"},
			{Key: actionAccept, Label: "Accept"},
		}
		n.Persistent = true // the offer waits for an answer; it closes with the offer
	}
	return n
}
