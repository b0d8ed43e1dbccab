package app

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"github.com/godbus/dbus/v5"
)

// setupTray keeps the app running in the system tray when the window is
// closed, where a tray is there to come back from; elsewhere closing the
// window quits (after asking, when transfers are running).
func (u *UI) setupTray() {
	u.win.SetCloseIntercept(u.closeRequested)
	desk, ok := u.app.(desktop.App)
	if !ok {
		return
	}
	hasTray := u.opts.Tray
	if hasTray == nil {
		hasTray = func() bool { return trayAvailable(runtime.GOOS, os.Getenv) }
	}
	if !hasTray() {
		return
	}
	u.tray = true
	show := fyne.NewMenuItem("Show ThePeerDrop", u.Raise)
	quit := fyne.NewMenuItem("Quit", u.confirmQuit)
	quit.IsQuit = true
	desk.SetSystemTrayMenu(fyne.NewMenu("ThePeerDrop", show, fyne.NewMenuItemSeparator(), quit))
	if ic := u.app.Icon(); ic != nil {
		desk.SetSystemTrayIcon(ic)
	}
	desk.SetSystemTrayWindow(u.win)
}

// closeRequested is closing the window: hide it when the tray icon brings
// it back, else quit.
func (u *UI) closeRequested() {
	if !u.tray {
		u.confirmQuit()
		return
	}
	u.win.Hide()
	if !u.toldInTray {
		u.toldInTray = true
		u.notifyPlain(trayNoticeKey,
			"ThePeerDrop keeps receiving in the background. Open it from the tray icon; quit from there or with Ctrl+Q.")
	}
}

// confirmQuit quits, after asking when transfers are running (quitting
// stops them).
func (u *UI) confirmQuit() {
	n := u.queue.active()
	if n == 0 {
		u.quit()
		return
	}
	if u.quitAsk != nil {
		return // already asking
	}
	u.Raise() // the question must be seen (the window may be hidden in the tray)
	what := "1 transfer"
	if n > 1 {
		what = fmt.Sprintf("%d transfers", n)
	}
	u.quitAsk = dialog.NewConfirm("Quit ThePeerDrop?", fmt.Sprintf("Quit and stop %s?", what), func(ok bool) {
		u.quitAsk = nil
		if ok {
			u.quit()
		}
	}, u.win)
	u.quitAsk.Show()
}

// Raise shows the window and brings it to the front: the tray's Show, and
// a second launch of the app (which then exits). Fyne thread.
func (u *UI) Raise() {
	u.win.Show()
	u.win.RequestFocus()
	if h := u.hook.Load(); h != nil {
		h.write(map[string]any{"event": "raised"})
	}
}

// startHidden reports whether the window stays hidden at start: asked to
// start minimised and a tray icon is there to open it from. Without a tray
// the window shows, or the app could not be reached.
func (u *UI) startHidden() bool {
	return u.tray && (u.opts.StartMinimised || loadStartup(u.app.Preferences()).minimised)
}

// trayAvailable reports whether a system tray is there. On Linux and the
// BSDs the tray is the StatusNotifierItem host on the D-Bus session bus:
// the bus must be reachable and org.kde.StatusNotifierWatcher owned, or
// fyne's tray icon never registers (and it crashes on quit when it could
// not connect). Bounded by a short timeout: it runs before the window
// shows.
func trayAvailable(goos string, getenv func(string) string) bool {
	switch goos {
	case "linux", "freebsd", "openbsd", "netbsd":
		addr := getenv("DBUS_SESSION_BUS_ADDRESS")
		if addr == "" {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ok, err := hasNameOwner(ctx, addr, "org.kde.StatusNotifierWatcher")
		if err != nil {
			fyne.LogError("looking for a system tray", err)
		}
		return ok
	}
	return true
}

// hasNameOwner reports whether name has an owner on the bus at addr.
func hasNameOwner(ctx context.Context, addr, name string) (bool, error) {
	// A private connection, closed by the context as well: a bus that
	// accepts and never answers cannot hold the start up.
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("connect to the session bus: %w", err)
	}
	defer conn.Close()
	var has bool
	err = conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
	if err != nil {
		return false, fmt.Errorf("ask the session bus about %s: %w", name, err)
	}
	return has, nil
}
