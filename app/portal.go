package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"fyne.io/fyne/v2/driver"
	"github.com/godbus/dbus/v5"
)

// pickRequest is what a file chooser is asked for.
type pickRequest struct {
	title  string
	accept string // the button's label
	start  string // the folder to open at ("" = the last one, else home)
	// dirs: pick folders only (the portal's directory option; our own
	// picker then lists folders only). Otherwise files, and in our own
	// picker files and folders in one pick.
	dirs     bool
	multiple bool
}

// portalFunc asks the desktop's file chooser and waits for the answer: the
// local paths chosen in order, none when the user cancelled, an error when
// there is no chooser to ask. It blocks, never call it on the Fyne thread.
type portalFunc func(ctx context.Context, parent string, req pickRequest) ([]string, error)

// errNoPortal says that no desktop file chooser answers on the session bus.
var errNoPortal = errors.New("no desktop file chooser")

// portalProbeTimeout bounds the question whether the desktop portal is
// there (the bus may start it on demand).
const portalProbeTimeout = 5 * time.Second

const (
	portalName      = "org.freedesktop.portal.Desktop"
	portalPath      = "/org/freedesktop/portal/desktop"
	portalInterface = "org.freedesktop.portal.FileChooser"
	requestResponse = "org.freedesktop.portal.Request.Response"
)

// sessionPortal asks the desktop portal on the session bus; there is none
// where there is no session bus (godbus would start one with dbus-launch:
// not here).
func sessionPortal(ctx context.Context, parent string, req pickRequest) ([]string, error) {
	conn, err := dbus.SessionBusPrivateNoAutoStartup()
	if err != nil {
		return nil, fmt.Errorf("%w: no session bus: %w", errNoPortal, err)
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return nil, fmt.Errorf("%w: session bus: %w", errNoPortal, err)
	}
	if err := conn.Hello(); err != nil {
		return nil, fmt.Errorf("%w: session bus: %w", errNoPortal, err)
	}
	return portalOpenFile(ctx, conn, parent, req)
}

// portalOpenFile asks the XDG desktop portal's FileChooser
// (org.freedesktop.portal.FileChooser.OpenFile) on conn, a connection of
// its own, and waits for the answer.
//
// It speaks D-Bus itself rather than through rymdport/portal's
// filechooser (v0.4.2): that one unescapes the URIs as a query ("C++"
// comes back as "C  "), listens for the answer only after asking (an early
// answer is lost) and on the shared session bus.
func portalOpenFile(ctx context.Context, conn *dbus.Conn, parent string, req pickRequest) ([]string, error) {
	obj := conn.Object(portalName, portalPath)
	probe, cancel := context.WithTimeout(ctx, portalProbeTimeout)
	defer cancel()
	var version dbus.Variant
	if err := obj.CallWithContext(probe, "org.freedesktop.DBus.Properties.Get", 0, portalInterface, "version").Store(&version); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoPortal, err)
	}

	// Listen on the request's path before asking (the portal's own advice):
	// the answer may come before the call returns.
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := "peerdrop_" + hex.EncodeToString(b[:])
	names := conn.Names()
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no name on the session bus", errNoPortal)
	}
	sender := strings.ReplaceAll(strings.TrimPrefix(names[0], ":"), ".", "_")
	handle := dbus.ObjectPath(portalPath + "/request/" + sender + "/" + token)
	answers := make(chan *dbus.Signal, 8)
	conn.Signal(answers)
	defer conn.RemoveSignal(answers)
	match := func(p dbus.ObjectPath) error {
		return conn.AddMatchSignal(dbus.WithMatchObjectPath(p),
			dbus.WithMatchInterface("org.freedesktop.portal.Request"), dbus.WithMatchMember("Response"))
	}
	if err := match(handle); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoPortal, err)
	}

	opts := map[string]dbus.Variant{
		"handle_token": dbus.MakeVariant(token),
		"modal":        dbus.MakeVariant(true),
		"multiple":     dbus.MakeVariant(req.multiple),
		"directory":    dbus.MakeVariant(req.dirs),
	}
	if req.accept != "" {
		opts["accept_label"] = dbus.MakeVariant(req.accept)
	}
	if req.start != "" {
		opts["current_folder"] = dbus.MakeVariant(append([]byte(req.start), 0)) // a NUL-terminated byte string
	}
	// The answer must come from the portal itself, not from another
	// program on the bus that guessed the request's path.
	var owner string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, portalName).Store(&owner); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoPortal, err)
	}
	var got dbus.ObjectPath
	if err := obj.CallWithContext(ctx, portalInterface+".OpenFile", 0, parent, req.title, opts).Store(&got); err != nil {
		return nil, fmt.Errorf("desktop file chooser: %w", err)
	}
	if got != handle { // portals before version 0.9 choose the path themselves
		handle = got
		if err := match(handle); err != nil {
			return nil, fmt.Errorf("desktop file chooser: %w", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			_ = conn.Object(portalName, handle).Call("org.freedesktop.portal.Request.Close", 0).Err
			return nil, ctx.Err()
		case sig, ok := <-answers:
			if !ok {
				return nil, errors.New("desktop file chooser: the session bus closed")
			}
			if sig.Path != handle || sig.Name != requestResponse || sig.Sender != owner {
				continue
			}
			return portalAnswer(sig.Body)
		}
	}
}

// portalAnswer reads a Request.Response: (u response, a{sv} results), the
// URIs under "uris". Response 1 is a cancel, 2 another end.
func portalAnswer(body []any) ([]string, error) {
	if len(body) != 2 {
		return nil, errors.New("desktop file chooser: a malformed answer")
	}
	code, ok := body[0].(uint32)
	results, ok2 := body[1].(map[string]dbus.Variant)
	if !ok || !ok2 {
		return nil, errors.New("desktop file chooser: a malformed answer")
	}
	if code != 0 {
		return nil, nil
	}
	var uris []string
	if v, ok := results["uris"]; ok {
		if err := v.Store(&uris); err != nil {
			return nil, fmt.Errorf("desktop file chooser: uris: %w", err)
		}
	}
	var out []string
	for _, u := range uris {
		if p := fileURIPath(u); p != "" {
			out = append(out, p)
		} else {
			slog.Info("app: the file chooser returned a URI that is not a local file", slog.String("uri", u))
		}
	}
	return out, nil
}

// fileURIPath is the path of a file:// URI as a file manager writes it
// (escaped), or "" when s is not one.
func fileURIPath(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return ""
	}
	return u.Path
}

// parentWindow identifies our window to the portal ("x11:<id>"), so that
// its chooser opens above it; "" elsewhere.
func (u *UI) parentWindow() string {
	var id string
	if nw, ok := u.win.(driver.NativeWindow); ok {
		nw.RunNative(func(ctx any) {
			if x, ok := ctx.(driver.X11WindowContext); ok && x.WindowHandle != 0 {
				id = fmt.Sprintf("x11:%x", x.WindowHandle)
			}
		})
	}
	return id
}

// choose asks for files or folders: the desktop's chooser where there is
// one (asked off the Fyne thread), else our own picker. done gets the
// paths on the Fyne thread, and nothing when the user cancelled.
func (u *UI) choose(req pickRequest, done func([]string)) {
	// Asked again while the desktop's chooser is open (hidden, or its
	// portal gone quiet): ours, rather than a button that does nothing.
	if u.portal == nil || u.asking {
		u.showPicker(req, done)
		return
	}
	u.asking = true
	parent, ask := u.parentWindow(), u.portal
	u.background(func() func() {
		// The app has no lifetime context here; the chooser's answer (or
		// the bus closing) ends this goroutine.
		paths, err := ask(context.Background(), parent, req)
		return func() {
			u.asking = false
			if err != nil {
				slog.Info("app: using our own file picker", slog.Any("err", err))
				u.showPicker(req, done)
			} else if len(paths) > 0 {
				done(paths)
			}
			if u.afterPick != nil {
				u.afterPick()
			}
		}
	})
}
