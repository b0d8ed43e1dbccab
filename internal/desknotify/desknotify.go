// Package desknotify shows desktop notifications, with buttons (actions)
// where the server has them, through the freedesktop notification server, org.freedesktop.Notifications
// on the D-Bus session bus (GNOME, KDE, dunst, mako all serve it). It owns
// one session bus connection and the goroutine that reads the server's
// ActionInvoked and NotificationClosed signals, and reports those of its own
// notifications only. It knows nothing of Fyne.
package desknotify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// The server's well-known name, object and interface.
const (
	busName   = "org.freedesktop.Notifications"
	objPath   = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface     = "org.freedesktop.Notifications"
	sigAction = iface + ".ActionInvoked"
	sigClosed = iface + ".NotificationClosed"
)

var (
	// ErrNoServer is returned by Dial when there is no session bus or no
	// notification server on it.
	ErrNoServer = errors.New("no desktop notification server")
	// ErrClosed is returned by the calls of a closed Client.
	ErrClosed = errors.New("desktop notifications closed")
)

// maxEarly is how many signals about ids not (yet) known are kept: a
// server may signal about a notification before Notify's caller has seen
// its reply. Signals about other programs' notifications also land here
// (some servers broadcast them) and are dropped oldest first.
const maxEarly = 64

// setupTimeout bounds Dial's questions to the bus and the server.
const setupTimeout = 5 * time.Second

// Action is one button of a notification.
type Action struct {
	Key   string // what ActionInvoked reports
	Label string // what the button says
}

// Notification is what Notify shows.
type Notification struct {
	Summary string // one line, plain text
	// Body is plain text; it is escaped where the server reads markup, so
	// names from the network show as written and load nothing.
	Body string
	// Actions are the buttons; a server without buttons shows none (see
	// HasActions). The key "default" is the notification's own click on
	// most servers.
	Actions []Action
	// Replaces is the id of a notification of ours that this one takes the
	// place of (0 = a new one): the server shows it in the same spot,
	// usually under the same id.
	Replaces uint32
	// Persistent notifications stay until closed (expire timeout 0);
	// others expire when the server decides.
	Persistent bool
	// Icon is an icon name or a file:// URI ("" = none); DesktopEntry
	// is the app's .desktop file without ".desktop" (servers take the
	// app's icon and name from it).
	Icon, DesktopEntry string
}

// Event is ActionInvoked or Closed.
type Event interface{ notificationID() uint32 }

// ActionInvoked says the user pressed a button of notification ID.
type ActionInvoked struct {
	ID     uint32
	Action string // the Action's Key
}

// CloseReason is why a notification closed (the specification's codes).
type CloseReason uint32

// The reasons a notification closes.
const (
	ReasonExpired   CloseReason = 1 // its timeout passed
	ReasonDismissed CloseReason = 2 // the user dismissed it (servers also use it after an action)
	ReasonCalled    CloseReason = 3 // CloseNotification closed it
	ReasonUndefined CloseReason = 4
)

// Closed says notification ID is gone.
type Closed struct {
	ID     uint32
	Reason CloseReason
}

func (e ActionInvoked) notificationID() uint32 { return e.ID }
func (e Closed) notificationID() uint32        { return e.ID }

// Client talks to the notification server. Its methods are safe for
// concurrent use; Notify and CloseNotification block on the bus (call them
// off any UI thread).
type Client struct {
	conn    *dbus.Conn
	obj     dbus.BusObject
	appName string
	markup  bool // the server reads markup in bodies
	actions bool // the server shows buttons
	onEvent func(Event)
	signals chan *dbus.Signal
	reg     chan shown    // what Notify got, to the reader
	done    chan struct{} // closed when the reader ends
	closing sync.Once

	// The reader's own.
	mine  map[uint32]string // open notifications of ours: the server's unique name
	early []early
}

// shown is a notification Notify showed, and who shows it.
type shown struct {
	id     uint32
	server string // the server's unique bus name
}

// early is a signal about an id not known when it came.
type early struct {
	ev     Event
	sender string
}

// Dial connects to the session bus at address ("" = the desktop's, from
// DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus), checks that a
// notification server is there, and starts reading its signals: onEvent
// gets those about this Client's notifications, in order, on the Client's
// own goroutine (keep it short: it holds up the next one). The goroutine
// ends with Close, or when ctx is cancelled. ErrNoServer says why there is
// nothing to show notifications with; HasActions whether they can have
// buttons.
func Dial(ctx context.Context, address, appName string, onEvent func(Event)) (*Client, error) {
	if address == "" {
		address = sessionAddress(os.Getenv)
	}
	if address == "" {
		return nil, fmt.Errorf("%w: no session bus", ErrNoServer)
	}
	conn, err := dbus.Connect(address, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: session bus %s: %w", ErrNoServer, address, err)
	}
	c := &Client{
		conn: conn, obj: conn.Object(busName, objPath), appName: appName, onEvent: onEvent,
		signals: make(chan *dbus.Signal, 64), reg: make(chan shown), done: make(chan struct{}),
		mine: map[uint32]string{},
	}
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := c.setup(sctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

// sessionAddress is the session bus's address without starting one (godbus
// would run dbus-launch where there is none).
func sessionAddress(getenv func(string) string) string {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a
	}
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		p := filepath.Join(dir, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return "unix:path=" + p
		}
	}
	return ""
}

func (c *Client) setup(ctx context.Context) error {
	var has bool
	if err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has); err != nil {
		return fmt.Errorf("%w: ask the session bus: %w", ErrNoServer, err)
	}
	if !has {
		// Activatable servers start on the first call: try it anyway.
		var names []string
		_ = c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names)
		if !slices.Contains(names, busName) {
			return ErrNoServer
		}
	}
	// Match first: a signal sent between GetCapabilities and the match
	// would be lost.
	c.conn.Signal(c.signals)
	for _, member := range []string{"ActionInvoked", "NotificationClosed"} {
		if err := c.conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(busName), dbus.WithMatchObjectPath(objPath),
			dbus.WithMatchInterface(iface), dbus.WithMatchMember(member)); err != nil {
			return fmt.Errorf("%w: listen for %s: %w", ErrNoServer, member, err)
		}
	}
	var caps []string
	if err := c.obj.CallWithContext(ctx, iface+".GetCapabilities", 0).Store(&caps); err != nil {
		return fmt.Errorf("%w: capabilities: %w", ErrNoServer, err)
	}
	c.actions = slices.Contains(caps, "actions")
	c.markup = slices.Contains(caps, "body-markup")
	return nil
}

// HasActions reports whether the server shows buttons on notifications.
func (c *Client) HasActions() bool { return c.actions }

// Notify shows n and returns its id (n.Replaces's, or a new one where the
// server no longer shows that one).
func (c *Client) Notify(ctx context.Context, n Notification) (uint32, error) {
	actions := make([]string, 0, 2*len(n.Actions))
	if c.actions {
		for _, a := range n.Actions {
			actions = append(actions, a.Key, a.Label)
		}
	}
	body := n.Body
	if c.markup {
		body = escapeMarkup(body)
	}
	timeout := int32(-1)
	if n.Persistent {
		timeout = 0
	}
	hints := map[string]dbus.Variant{}
	if n.DesktopEntry != "" {
		hints["desktop-entry"] = dbus.MakeVariant(n.DesktopEntry)
	}
	var id uint32
	err := c.obj.CallWithContext(ctx, iface+".Notify", 0, c.appName, n.Replaces, n.Icon, n.Summary, body, actions,
		hints, timeout).Store(&id)
	if err != nil {
		return 0, c.wrap("show a notification", err)
	}
	// Signals are believed from the process that showed it only: anyone on
	// the bus can send us one.
	var server string
	if err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, busName).Store(&server); err != nil {
		return 0, c.wrap("ask who shows notifications", err)
	}
	select {
	case c.reg <- shown{id: id, server: server}:
	case <-c.done:
		return 0, ErrClosed
	}
	return id, nil
}

// CloseNotification closes notification id (one this Client showed). A
// notification already gone is no error.
func (c *Client) CloseNotification(ctx context.Context, id uint32) error {
	err := c.obj.CallWithContext(ctx, iface+".CloseNotification", 0, id).Err
	var de dbus.Error
	if errors.As(err, &de) && de.Name != "org.freedesktop.DBus.Error.ServiceUnknown" {
		return nil // the server's own error: the id is no longer open
	}
	if err != nil {
		return c.wrap(fmt.Sprintf("close notification %d", id), err)
	}
	return nil
}

func (c *Client) wrap(what string, err error) error {
	select {
	case <-c.done:
		return fmt.Errorf("%s: %w", what, ErrClosed)
	default:
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Close closes the bus connection and waits for the signal reader to end.
// Idempotent.
func (c *Client) Close() error {
	var err error
	c.closing.Do(func() { err = c.conn.Close() })
	<-c.done
	return err
}

// read delivers the server's signals about this Client's notifications. It
// ends when the connection closes (Close, ctx, or the bus going away).
func (c *Client) read() {
	defer close(c.done)
	defer c.conn.Close() // the bus went away: fail later calls at once
	for {
		select {
		case n := <-c.reg:
			c.mine[n.id] = n.server
			// Deliver what came before the id was known, in order.
			kept := c.early[:0]
			for _, e := range c.early {
				if e.ev.notificationID() == n.id {
					c.deliver(e.ev, e.sender)
				} else {
					kept = append(kept, e)
				}
			}
			c.early = kept
		case sig, ok := <-c.signals:
			if !ok {
				return
			}
			ev := parse(sig)
			if ev == nil {
				continue
			}
			if _, ok := c.mine[ev.notificationID()]; !ok {
				if len(c.early) == maxEarly {
					c.early = c.early[1:]
				}
				c.early = append(c.early, early{ev: ev, sender: sig.Sender})
				continue
			}
			c.deliver(ev, sig.Sender)
		}
	}
}

// deliver hands ev to onEvent; reader only.
func (c *Client) deliver(ev Event, sender string) {
	if server, ok := c.mine[ev.notificationID()]; !ok || server != sender {
		return // closed already, or not from the server that showed it
	}
	if _, ok := ev.(Closed); ok {
		delete(c.mine, ev.notificationID())
	}
	if c.onEvent != nil {
		c.onEvent(ev)
	}
}

// parse reads a signal of the server; nil for anything else or a body of
// the wrong shape.
func parse(sig *dbus.Signal) Event {
	if sig.Path != objPath || len(sig.Body) != 2 {
		return nil
	}
	id, ok := sig.Body[0].(uint32)
	if !ok {
		return nil
	}
	switch sig.Name {
	case sigAction:
		key, ok := sig.Body[1].(string)
		if !ok {
			return nil
		}
		return ActionInvoked{ID: id, Action: key}
	case sigClosed:
		reason, ok := sig.Body[1].(uint32)
		if !ok {
			return nil
		}
		return Closed{ID: id, Reason: CloseReason(reason)}
	}
	return nil
}

// escapeMarkup escapes the characters the specification's body markup
// (a subset of XML) reads.
func escapeMarkup(s string) string {
	return markupEscaper.Replace(s)
}

var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
