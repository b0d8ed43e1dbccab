//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/dbustest"
	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// notifyTimeout bounds one of the notification tests (the app's start
// under load included).
const notifyTimeout = 60 * time.Second

// The real desktop app, on a desktop whose notification server has buttons
// (dunst on a private session bus, on the app's X server): an offer from the
// command line raises a notification with Accept, Decline and the code;
// Accept, invoked through dunst's own context menu (its dmenu program is a
// script that picks the Accept line), receives the files without a press
// in the window, and the notification closes.
func TestDesktopAppAcceptFromNotification(t *testing.T) {
	if !notifyDesktopOutside(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	d := startNotifyDesktop(t, ctx)
	g := startGUI(t, ctx, nil, "Alpha", d.env()...)
	g.await(ctx, "ready", nil)

	src := t.TempDir()
	writeFile(t, src, "trip/one.txt", "accepted from the notification\n")
	writeFile(t, src, "trip/two.txt", "and this one\n")
	want := snapshot(t, src)
	s := startSender(t, ctx, "--to", "127.0.0.1:53318", filepath.Join(src, "trip"))
	offer := g.await(ctx, "offer", nil)

	n := d.mon.awaitNotify(ctx, t)
	assert.Equal(t, []string{"decline", "Decline", "accept", "Accept"}, n.actions, "both buttons")
	assert.Contains(t, n.body, "alice wants to send you 2 files in 1 folder")
	code, _ := offer["code"].(string)
	require.NotEmpty(t, code, "offer %v", offer)
	assert.Contains(t, n.body, "Verification code "+code)
	d.awaitDisplayed(ctx, t, 1)

	// Accept, as a person picks it from dunst's menu.
	d.dunstctl(ctx, t, "context")
	d.mon.awaitSignal(ctx, t, "ActionInvoked", n.id, "accept")
	require.Equal(t, 0, s.wait(), "sender: %s", s.stderr.String())
	done := g.await(ctx, "item", func(ev map[string]any) bool { return ev["direction"] == "receive" && ev["state"] == "done" })
	paths, _ := done["paths"].([]any)
	require.Len(t, paths, 1, "item: %v", done)
	assert.Equal(t, files(want), files(snapshot(t, filepath.Dir(paths[0].(string)))), "the folder arrived intact")
	d.mon.awaitSignal(ctx, t, "NotificationClosed", n.id, nil)
	d.awaitDisplayed(ctx, t, 0)
	menu, _ := os.ReadFile(d.menuLog)
	assert.Contains(t, string(menu), "Accept", "dunst's menu listed the buttons: %s", menu)
}

// Answering in the window (the test hook presses the prompt's Accept)
// closes the offer's notification: the app calls CloseNotification, the
// server says it closed it for that reason, and dunst shows nothing.
func TestDesktopAppAnswerClosesNotification(t *testing.T) {
	if !notifyDesktopOutside(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	d := startNotifyDesktop(t, ctx)
	g := startGUI(t, ctx, nil, "Alpha", append(d.env(), envTestAnswer+"=accept")...)
	g.await(ctx, "ready", nil)

	note := writeFile(t, t.TempDir(), "note.txt", "answered in the window\n")
	s := startSender(t, ctx, "--to", "127.0.0.1:53318", note)
	g.await(ctx, "test-answer", nil)
	n := d.mon.awaitNotify(ctx, t)
	assert.Equal(t, []string{"decline", "Decline", "accept", "Accept"}, n.actions)
	d.mon.awaitSignal(ctx, t, "NotificationClosed", n.id, uint32(3)) // 3: closed by a call to CloseNotification
	require.Equal(t, 0, s.wait(), "sender: %s", s.stderr.String())
	d.awaitDisplayed(ctx, t, 0)
	assert.Empty(t, d.mon.signals("ActionInvoked"), "no button was pressed")
}

// A message from a peer whose name is markup reaches the desktop's
// notification server (not through Fyne) escaped, so dunst, which reads
// markup, shows the name as written; the peer's next message replaces the
// first one's notification (replaces_id): one on screen, whatever the peer
// sends.
func TestDesktopAppMessageNotification(t *testing.T) {
	if !notifyDesktopOutside(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	d := startNotifyDesktop(t, ctx)
	g := startGUI(t, ctx, nil, "Alpha", d.env()...)
	g.await(ctx, "ready", nil)

	eve := t.TempDir() // one identity for both messages
	send := func(text string) {
		s := start(t, ctx, "eve", false, "--config-dir", eve, "--name", "<b>Eve</b>", "--json",
			"send", "--to", "127.0.0.1:53318", "--text", text)
		require.Equal(t, 0, s.wait(), "sender: %s", s.stderr.String())
	}
	send("<i>first</i>")
	first := d.mon.awaitNotifyWith(ctx, t, func(n shownNotification) bool { return strings.Contains(n.body, "first") })
	assert.Equal(t, "New message", first.summary)
	assert.Equal(t, "&lt;b&gt;Eve&lt;/b&gt;: &lt;i&gt;first&lt;/i&gt;", first.body, "escaped: dunst reads markup")
	assert.Equal(t, []string{"default", "Open"}, first.actions)
	assert.Zero(t, first.replaces)
	d.awaitDisplayed(ctx, t, 1)

	send("second")
	second := d.mon.awaitNotifyWith(ctx, t, func(n shownNotification) bool { return strings.Contains(n.body, "second") })
	assert.Equal(t, first.id, second.replaces, "the first one's notification is replaced")
	assert.Equal(t, first.id, second.id, "in its place")
	d.awaitDisplayed(ctx, t, 1)
}

// notifyDesktopOutside runs the test again in a network namespace of its
// own (the app's default ports are its own there) and reports whether the
// caller is that inner run.
func notifyDesktopOutside(t *testing.T) bool {
	if netnstest.Inside() {
		buildGUI(t) // found in the build cache
		return true
	}
	for _, bin := range []string{"Xvfb", "dunst", "dunstctl", "dbus-daemon", "dbus-send"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipped: needs %s (Debian packages xvfb, dunst, dbus; make deps installs them)", bin)
		}
	}
	ns := netnstest.New(t, "pdnt")
	buildGUI(t) // before the inner run's clock starts: the first cgo build is slow
	netnstest.Reexec(t, ns)
	return false
}

// notifyDesktop is an X server (Xvfb), a private session bus and dunst on
// both: a desktop whose notifications have buttons.
type notifyDesktop struct {
	display, bus string
	menuLog      string // what dunst's menu was given
	mon          *busMonitor
}

func (d *notifyDesktop) env() []string {
	return []string{"DISPLAY=" + d.display, "DBUS_SESSION_BUS_ADDRESS=" + d.bus}
}

func startNotifyDesktop(t *testing.T, ctx context.Context) *notifyDesktop {
	t.Helper()
	d := &notifyDesktop{display: startXvfb(t, ctx), bus: dbustest.Start(t)}
	d.mon = watchNotifications(t, d.bus)

	// dunst's context menu runs its dmenu program with one line per
	// button; this one picks Accept, as a person would.
	dir := t.TempDir()
	d.menuLog = filepath.Join(dir, "menu.log")
	menu := filepath.Join(dir, "pick-accept")
	require.NoError(t, os.WriteFile(menu, fmt.Appendf(nil, `#!/bin/sh
in=$(cat)
printf '%%s\n' "$in" >> %q
printf '%%s\n' "$in" | grep -m1 -F ',accept]' || printf '%%s\n' "$in" | grep -m1 '^#Accept'
`, d.menuLog), 0o755))
	rc := filepath.Join(dir, "dunstrc")
	require.NoError(t, os.WriteFile(rc, fmt.Appendf(nil, `[global]
    dmenu = %s
    follow = none
    markup = full
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
`, menu), 0o644))
	dunst := exec.CommandContext(ctx, "dunst", "-config", rc)
	dunst.Env = append(os.Environ(), d.env()...)
	var out lockedBuffer
	dunst.Stdout, dunst.Stderr = &out, &out
	require.NoError(t, dunst.Start())
	t.Cleanup(func() {
		_ = dunst.Process.Kill()
		_ = dunst.Wait()
		if t.Failed() {
			menu, _ := os.ReadFile(d.menuLog)
			t.Logf("--- dunst:\n%s\n--- its menu was given:\n%s", out.String(), menu)
		}
	})
	conn, err := dbus.Connect(d.bus)
	require.NoError(t, err)
	defer conn.Close()
	for {
		var has bool
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.Notifications").Store(&has)
		require.NoError(t, err)
		if has {
			return d
		}
		require.NoError(t, sleepCtx(ctx, 50*time.Millisecond), "dunst did not take the bus name: %s", out.String())
	}
}

// dunstctl runs dunstctl on the desktop's bus.
func (d *notifyDesktop) dunstctl(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "dunstctl", args...)
	cmd.Env = append(os.Environ(), d.env()...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "dunstctl %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

// awaitDisplayed waits until dunst shows n notifications.
func (d *notifyDesktop) awaitDisplayed(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	want := fmt.Sprint(n)
	for {
		got := d.dunstctl(ctx, t, "count", "displayed")
		if got == want {
			return
		}
		require.NoError(t, sleepCtx(ctx, 100*time.Millisecond), "dunst shows %s notifications, not %s", got, want)
	}
}

// startXvfb runs an X server of the test's own and returns its display.
func startXvfb(t *testing.T, ctx context.Context) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.CommandContext(ctx, "Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	_ = w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		require.NotEmpty(t, n, "Xvfb gave no display: %s", out.String())
		return ":" + n
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		require.FailNow(t, "Xvfb gave no display in time", out.String())
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// busMonitor watches the notification interface on a bus (BecomeMonitor):
// what the app asks of the server and what the server says.
type busMonitor struct {
	mu   sync.Mutex
	msgs []*dbus.Message
}

func watchNotifications(t *testing.T, addr string) *busMonitor {
	t.Helper()
	conn, err := dbus.Connect(addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	rules := []string{"interface='org.freedesktop.Notifications'", "type='method_return'"}
	require.NoError(t, conn.BusObject().Call("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, rules, uint32(0)).Err)
	ch := make(chan *dbus.Message, 1024)
	conn.Eavesdrop(ch)
	m := &busMonitor{}
	go func() { // ends when the connection closes (its channel with it)
		for msg := range ch {
			m.mu.Lock()
			m.msgs = append(m.msgs, msg)
			m.mu.Unlock()
		}
	}()
	return m
}

// shownNotification is a Notify call of the app's, with its id.
type shownNotification struct {
	id                uint32
	app, summary      string
	body              string
	actions           []string
	expireTimeoutMsec int32
	replaces          uint32
}

func header[T any](m *dbus.Message, f dbus.HeaderField) T {
	v, _ := m.Headers[f].Value().(T)
	return v
}

// awaitNotify waits for the app's notification with buttons, and the
// server's reply that gives its id.
func (m *busMonitor) awaitNotify(ctx context.Context, t *testing.T) shownNotification {
	t.Helper()
	return m.awaitNotifyWith(ctx, t, func(n shownNotification) bool { return len(n.actions) > 0 })
}

// awaitNotifyWith waits for a Notify call that ok accepts, and the
// server's reply that gives its id.
func (m *busMonitor) awaitNotifyWith(ctx context.Context, t *testing.T, ok func(shownNotification) bool) shownNotification {
	t.Helper()
	for {
		m.mu.Lock()
		msgs := slices.Clone(m.msgs)
		m.mu.Unlock()
		for _, call := range msgs {
			if call.Type != dbus.TypeMethodCall || header[string](call, dbus.FieldMember) != "Notify" || len(call.Body) != 8 {
				continue
			}
			n := shownNotification{}
			n.app, _ = call.Body[0].(string)
			n.replaces, _ = call.Body[1].(uint32)
			n.summary, _ = call.Body[3].(string)
			n.body, _ = call.Body[4].(string)
			n.actions, _ = call.Body[5].([]string)
			n.expireTimeoutMsec, _ = call.Body[7].(int32)
			if !ok(n) {
				continue
			}
			for _, r := range msgs {
				if r.Type == dbus.TypeMethodReply && header[uint32](r, dbus.FieldReplySerial) == call.Serial() &&
					header[string](r, dbus.FieldDestination) == header[string](call, dbus.FieldSender) && len(r.Body) == 1 {
					n.id, _ = r.Body[0].(uint32)
					return n
				}
			}
		}
		require.NoError(t, sleepCtx(ctx, 50*time.Millisecond), "no such notification on the bus")
	}
}

// signals returns the server's signals named member, their bodies.
func (m *busMonitor) signals(member string) [][]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]any
	for _, msg := range m.msgs {
		if msg.Type == dbus.TypeSignal && header[string](msg, dbus.FieldMember) == member {
			out = append(out, msg.Body)
		}
	}
	return out
}

// awaitSignal waits for the server's signal member about notification id
// (with second argument arg, unless nil).
func (m *busMonitor) awaitSignal(ctx context.Context, t *testing.T, member string, id uint32, arg any) {
	t.Helper()
	for {
		for _, body := range m.signals(member) {
			if len(body) == 2 && body[0] == id && (arg == nil || body[1] == arg) {
				return
			}
		}
		require.NoError(t, sleepCtx(ctx, 50*time.Millisecond), "no %s(%d, %v) on the bus; saw %v", member, id, arg, m.signals(member))
	}
}
