package desknotify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/internal/dbustest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

// fakeServer is a notification server on the test's private bus, written
// to the specification: it records what it is asked and signals when told.
type fakeServer struct {
	conn *dbus.Conn
	caps []string

	mu     sync.Mutex
	next   uint32
	shown  map[uint32]shownNote
	closed []uint32
	// actNow: Notify signals this action before it replies, as a fast
	// server (or a fast user) may.
	actNow string
}

type shownNote struct {
	client             string // the caller's unique name
	app, summary, body string
	actions            []string
	timeout            int32
	hints              map[string]dbus.Variant
	replaces           uint32
	icon               string
}

func startServer(t *testing.T, addr string, caps ...string) *fakeServer {
	t.Helper()
	conn, err := dbus.Connect(addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	s := &fakeServer{conn: conn, caps: caps, shown: map[uint32]shownNote{}}
	require.NoError(t, conn.ExportMethodTable(map[string]any{
		"GetCapabilities": func() ([]string, *dbus.Error) { return s.caps, nil },
		"GetServerInformation": func() (string, string, string, string, *dbus.Error) {
			return "fake", "peerdrop", "1", "1.2", nil
		},
		"Notify":            s.notify,
		"CloseNotification": s.close,
	}, objPath, iface))
	reply, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	require.NoError(t, err)
	require.Equal(t, dbus.RequestNameReplyPrimaryOwner, reply)
	return s
}

func (s *fakeServer) notify(sender dbus.Sender, app string, replaces uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	id := replaces
	if _, ok := s.shown[id]; !ok { // the specification: a new one when it is gone
		s.next++
		id = s.next
	}
	s.shown[id] = shownNote{client: string(sender), app: app, summary: summary, body: body, actions: actions,
		timeout: timeout, hints: hints, replaces: replaces, icon: icon}
	act := s.actNow
	s.mu.Unlock()
	if act != "" {
		s.signal(string(sender), sigAction, id, act)
	}
	return id, nil
}

func (s *fakeServer) close(id uint32) *dbus.Error {
	s.mu.Lock()
	_, ok := s.shown[id]
	delete(s.shown, id)
	if ok {
		s.closed = append(s.closed, id)
	}
	s.mu.Unlock()
	if !ok {
		return dbus.NewError("org.freedesktop.DBus.Error.Failed", nil) // the specification: an empty error
	}
	s.signal("", sigClosed, id, uint32(ReasonCalled))
	return nil
}

func (s *fakeServer) note(t *testing.T, id uint32) shownNote {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.shown[id]
	require.True(t, ok, "notification %d is shown", id)
	return n
}

// signal sends a signal of the server from conn, to dest ("" = to every
// listener), as dunst (unicast) and GNOME (broadcast) do.
func (s *fakeServer) signal(dest, name string, body ...any) { sendSignal(s.conn, dest, name, body...) }

func sendSignal(conn *dbus.Conn, dest, name string, body ...any) {
	member := name[len(iface)+1:]
	msg := &dbus.Message{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldPath:      dbus.MakeVariant(objPath),
		dbus.FieldInterface: dbus.MakeVariant(iface),
		dbus.FieldMember:    dbus.MakeVariant(member),
		dbus.FieldSignature: dbus.MakeVariant(dbus.SignatureOf(body...)),
	}, Body: body}
	if dest != "" {
		msg.Headers[dbus.FieldDestination] = dbus.MakeVariant(dest)
	}
	conn.Send(msg, nil)
}

// leakCheck checks at cleanup, after what the test opens is closed, that
// no goroutine started since is left (the bus's own are running now).
func leakCheck(t *testing.T) { testkit.VerifyNoLeaks(t, goleak.IgnoreCurrent()) }

// events collects a Client's events.
type events chan Event

func (e events) on(ev Event) { e <- ev }

func (e events) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-e:
		return ev
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no event")
	}
	return nil
}

func (e events) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-e:
		require.FailNow(t, "unexpected event", "%#v", ev)
	default:
	}
}

// dial connects a client to the bus, closed at the end of the test.
func dial(t *testing.T, addr string) (*Client, events) {
	t.Helper()
	evs := make(events, 16)
	c, err := Dial(t.Context(), addr, "ThePeerDrop", evs.on)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, evs
}

// A notification with two buttons reaches the server as the specification
// says; a press of one comes back as ActionInvoked, CloseNotification
// closes it and the server's NotificationClosed comes back as Closed.
func TestNotifyActionsAndClose(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	srv := startServer(t, addr, "actions", "body")
	ctx := t.Context()
	c, evs := dial(t, addr)

	id, err := c.Notify(ctx, Notification{Summary: "Incoming files", Body: "Bob <bob@example> wants to send you 3 files",
		Actions: []Action{{"accept", "Accept"}, {"decline", "Decline"}}, Persistent: true,
		Icon: "thepeerdrop", DesktopEntry: "thepeerdrop"})
	require.NoError(t, err)
	n := srv.note(t, id)
	assert.Equal(t, "ThePeerDrop", n.app)
	assert.Equal(t, "Incoming files", n.summary)
	assert.Equal(t, "Bob <bob@example> wants to send you 3 files", n.body, "no markup on this server: the body as written")
	assert.Equal(t, []string{"accept", "Accept", "decline", "Decline"}, n.actions)
	assert.Equal(t, int32(0), n.timeout, "stays until answered")
	assert.Equal(t, "thepeerdrop", n.icon)
	assert.Equal(t, map[string]dbus.Variant{"desktop-entry": dbus.MakeVariant("thepeerdrop")}, n.hints)

	srv.signal(n.client, sigAction, id, "accept")
	assert.Equal(t, ActionInvoked{ID: id, Action: "accept"}, evs.next(t))

	require.NoError(t, c.CloseNotification(ctx, id))
	assert.Equal(t, Closed{ID: id, Reason: ReasonCalled}, evs.next(t))
	require.NoError(t, c.CloseNotification(ctx, id), "closing one already gone is no error")
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close twice")
	_, err = c.Notify(ctx, Notification{Summary: "late"})
	require.Error(t, err, "Notify after Close")
	evs.none(t)
}

// Where the server reads markup in bodies, a name from the network that is
// markup ("<img src=...>") shows as text and loads nothing.
func TestBodyEscapedWhereMarkupIsRead(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	srv := startServer(t, addr, "actions", "body", "body-markup", "body-images")
	c, _ := dial(t, addr)
	id, err := c.Notify(t.Context(), Notification{Summary: "s", Body: `<img src="file:///x"/> & <b>Bob</b>'s`})
	require.NoError(t, err)
	assert.Equal(t, "&lt;img src=&quot;file:///x&quot;/&gt; &amp; &lt;b&gt;Bob&lt;/b&gt;&apos;s", srv.note(t, id).body)
}

// A client hears of its own notifications only: not of another client's,
// and not of a signal that another program on the bus forges in the
// server's words.
func TestOnlyOwnNotifications(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	srv := startServer(t, addr, "actions")
	ctx := t.Context()
	a, aEvs := dial(t, addr)
	b, bEvs := dial(t, addr)

	idA, err := a.Notify(ctx, Notification{Summary: "for a", Actions: []Action{{"accept", "Accept"}}})
	require.NoError(t, err)
	idB, err := b.Notify(ctx, Notification{Summary: "for b", Actions: []Action{{"accept", "Accept"}}})
	require.NoError(t, err)
	clientA := srv.note(t, idA).client

	forger, err := dbus.Connect(addr)
	require.NoError(t, err)
	defer forger.Close()
	sendSignal(forger, clientA, sigAction, idA, "accept") // straight to a, as if from the server
	sendSignal(forger, "", sigAction, idA, "accept")

	srv.signal("", sigAction, idA, "decline") // broadcast, as GNOME does
	assert.Equal(t, ActionInvoked{ID: idA, Action: "decline"}, aEvs.next(t), "a hears the server, not the forger")
	srv.signal("", sigClosed, idB, uint32(ReasonDismissed))
	assert.Equal(t, Closed{ID: idB, Reason: ReasonDismissed}, bEvs.next(t))
	srv.signal("", sigClosed, idA, uint32(ReasonExpired))
	assert.Equal(t, Closed{ID: idA, Reason: ReasonExpired}, aEvs.next(t), "and nothing of b's before")
	srv.signal("", sigAction, idA, "accept") // after Closed: the id is no longer a's
	srv.signal("", sigClosed, idA, uint32(ReasonExpired))

	// A marker: once it comes, whatever came before has been delivered.
	idA2, err := a.Notify(ctx, Notification{Summary: "marker"})
	require.NoError(t, err)
	srv.signal("", sigClosed, idA2, uint32(ReasonExpired))
	assert.Equal(t, Closed{ID: idA2, Reason: ReasonExpired}, aEvs.next(t))
	aEvs.none(t)
	bEvs.none(t)
	require.NoError(t, b.Close())
}

// A server may signal about a notification before Notify's caller has its
// reply (the signal is sent first): the event is delivered all the same.
func TestSignalBeforeReply(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	srv := startServer(t, addr, "actions")
	srv.mu.Lock()
	srv.actNow = "accept"
	srv.mu.Unlock()
	c, evs := dial(t, addr)
	id, err := c.Notify(t.Context(), Notification{Summary: "quick", Actions: []Action{{"accept", "Accept"}}})
	require.NoError(t, err)
	assert.Equal(t, ActionInvoked{ID: id, Action: "accept"}, evs.next(t))
}

// Dial says why there is nothing to show notifications with; a server
// without buttons shows notifications without them.
func TestDialWithoutServerOrActions(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	ctx := t.Context()

	_, err := Dial(ctx, "unix:path="+t.TempDir()+"/no-bus", "x", nil)
	require.ErrorIs(t, err, ErrNoServer, "no bus")
	_, err = Dial(ctx, addr, "x", nil)
	require.ErrorIs(t, err, ErrNoServer, "a bus with no server")

	srv := startServer(t, addr, "body", "body-markup", "persistence")
	c, err := Dial(ctx, addr, "x", nil)
	require.NoError(t, err)
	assert.False(t, c.HasActions())
	id, err := c.Notify(ctx, Notification{Summary: "s", Body: "<b>Eve</b>: hi", Actions: []Action{{"default", "Open"}}})
	require.NoError(t, err)
	n := srv.note(t, id)
	assert.Empty(t, n.actions, "no buttons asked of a server without them")
	assert.Equal(t, "&lt;b&gt;Eve&lt;/b&gt;: hi", n.body)
	require.NoError(t, c.Close())
	require.NoError(t, srv.conn.Close())
}

// A notification that replaces another goes to the server with its id, and
// the server's id (the same one) comes back; once that one is gone, the
// next is a new one.
func TestNotifyReplaces(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	srv := startServer(t, addr, "actions")
	ctx := t.Context()
	c, evs := dial(t, addr)
	assert.True(t, c.HasActions())
	first, err := c.Notify(ctx, Notification{Summary: "Eve", Body: "one"})
	require.NoError(t, err)
	second, err := c.Notify(ctx, Notification{Summary: "Eve", Body: "two", Replaces: first})
	require.NoError(t, err)
	assert.Equal(t, first, second)
	n := srv.note(t, second)
	assert.Equal(t, first, n.replaces)
	assert.Equal(t, "two", n.body)

	srv.signal(n.client, sigAction, second, "default")
	assert.Equal(t, ActionInvoked{ID: second, Action: "default"}, evs.next(t), "the replacement's events are ours")
	require.NoError(t, c.CloseNotification(ctx, second))
	assert.Equal(t, Closed{ID: second, Reason: ReasonCalled}, evs.next(t))
	third, err := c.Notify(ctx, Notification{Summary: "Eve", Body: "three", Replaces: second})
	require.NoError(t, err)
	assert.NotEqual(t, second, third)
}

// The client's goroutine ends with its context.
func TestEndsWithContext(t *testing.T) {
	addr := dbustest.Start(t)
	leakCheck(t)
	startServer(t, addr, "actions")
	ctx, cancel := context.WithCancel(t.Context())
	c, err := Dial(ctx, addr, "x", nil)
	require.NoError(t, err)
	cancel()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the reader still runs")
	}
	_, err = c.Notify(t.Context(), Notification{Summary: "late"})
	require.Error(t, err)
}

func TestSessionAddress(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	assert.Equal(t, "unix:path=/x", sessionAddress(env(map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"})))
	assert.Empty(t, sessionAddress(env(map[string]string{"XDG_RUNTIME_DIR": t.TempDir()})), "no socket there: no bus (and none started)")
	assert.Empty(t, sessionAddress(env(nil)))
}
