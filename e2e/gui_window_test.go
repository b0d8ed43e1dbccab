//go:build linux

package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thepeerdrop/peerdrop/internal/dbustest"
)

// needX skips a test without Xvfb and xdotool.
func needX(t *testing.T, more ...string) {
	t.Helper()
	for _, bin := range append([]string{"Xvfb", "xdotool"}, more...) {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipped: needs %s (make deps installs it)", bin)
		}
	}
}

// guiProc is the desktop app run on an X display (no xvfb-run: several
// processes share the display).
type guiProc struct {
	*guiApp
	code int // the exit status once done is closed
}

// runGUI runs the desktop app on display with this config dir; prefix
// wraps it, port is its LAN port (-1: any).
func runGUI(t *testing.T, display, configDir string, port int, prefix ...string) *guiProc {
	t.Helper()
	bin := buildGUI(t)
	home := t.TempDir()
	p := &guiProc{guiApp: &guiApp{t: t, hook: filepath.Join(t.TempDir(), "hook.jsonl"), done: make(chan struct{})}}
	args := append(prefix, bin, "--config-dir", configDir, "--name", "Window", "--download-dir", t.TempDir(),
		"--port", strconv.Itoa(port), "--web-listen", "127.0.0.1:0")
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(guiEnv(t, home, display), envTestHook+"="+p.hook)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		_ = err
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			hook, _ := os.ReadFile(p.hook)
			t.Logf("--- desktop app: output:\n%s\n--- hook:\n%s", p.out.String(), hook)
		}
	})
	return p
}

// guiEnv is the app's environment: its own HOME and config, this display,
// and a private session bus that activates nothing (see startGUI for why).
func guiEnv(t *testing.T, home, display string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "DISPLAY" || k == "DBUS_SESSION_BUS_ADDRESS" || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DISPLAY="+display,
		"DBUS_SESSION_BUS_ADDRESS="+dbustest.Start(t))
}

// exited waits for the process to end; false when it is still running at
// the deadline.
func (p *guiProc) exited(ctx context.Context) bool {
	select {
	case <-p.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// windowOf is the X window id of the app's main window.
func windowOf(t *testing.T, ctx context.Context, display string) string {
	t.Helper()
	for {
		search := exec.CommandContext(ctx, "xdotool", "search", "--onlyvisible", "--name", "^ThePeerDrop$")
		search.Env = append(os.Environ(), "DISPLAY="+display)
		out, _ := search.Output()
		if f := strings.Fields(string(out)); len(f) > 0 {
			return f[0]
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "the window never showed")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// closeWindow asks the window to close as a window manager's close button
// does (WM_DELETE_WINDOW).
func closeWindow(t *testing.T, display, win string) {
	t.Helper()
	root, err := moduleRoot()
	require.NoError(t, err)
	bin := filepath.Join(filepath.Dir(peerdropBin), "wmdelete")
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("go", "build", "-o", bin, "wmdelete.go")
		build.Dir = filepath.Join(root, "e2e", "testdata")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		out, err := build.CombinedOutput()
		require.NoError(t, err, "go build wmdelete: %s", out)
	}
	cmd := exec.Command(bin, win)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "wmdelete: %s", out)
}

// A desktop with a session bus but no tray (nothing owns
// org.kde.StatusNotifierWatcher, as with most window managers): closing
// the window quits the app. It used to hide the window for good: the tray
// icon it counted on never registered.
func TestDesktopCloseWithoutTrayQuits(t *testing.T) {
	needX(t)
	buildGUI(t) // before the clock starts: the first cgo build is slow
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	display := startXvfb(t, t.Context())

	p := runGUI(t, display, t.TempDir(), -1) // a private session bus: no tray on it
	p.await(ctx, "ready", nil)
	win := windowOf(t, ctx, display)
	closeWindow(t, display, win)

	wait, stop := context.WithTimeout(ctx, 15*time.Second)
	defer stop()
	require.True(t, p.exited(wait), "the app still runs after its window was closed, with no tray to come back from")
	assert.Equal(t, 0, p.code, "a clean quit")
}

// A second launch with the same config dir does not start a second engine
// with the same identity: it asks the running app to show its window and
// exits 0 at once.
func TestDesktopSecondLaunchRaisesTheFirst(t *testing.T) {
	needX(t)
	bin := buildGUI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	display := startXvfb(t, t.Context())
	config := t.TempDir()

	first := runGUI(t, display, config, -1)
	first.await(ctx, "ready", nil)

	second := exec.CommandContext(ctx, bin, "--config-dir", config, "--port", "-1", "--web-listen", "127.0.0.1:0")
	second.Env = guiEnv(t, t.TempDir(), display)
	var stderr bytes.Buffer
	second.Stderr = &stderr
	second.WaitDelay = time.Second
	require.NoError(t, second.Run(), "the second launch exits 0; stderr: %s", stderr.String())
	assert.Contains(t, stderr.String(), "already running")

	first.await(ctx, "raised", nil)
	select {
	case <-first.done:
		require.FailNow(t, "the first app exited")
	default:
	}
}

// xWindow is a window's size and the minimum size it asks the window
// manager for (WM_NORMAL_HINTS), from xdotool and xprop.
func xWindow(t *testing.T, ctx context.Context, display, win string) (width, minWidth int) {
	t.Helper()
	run := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := cmd.Output()
		require.NoError(t, err, "%s %v", name, args)
		return string(out)
	}
	geo := regexp.MustCompile(`Geometry: (\d+)x\d+`).FindStringSubmatch(run("xdotool", "getwindowgeometry", win))
	require.NotNil(t, geo, "xdotool getwindowgeometry")
	hints := regexp.MustCompile(`minimum size: (\d+) by \d+`).FindStringSubmatch(run("xprop", "-id", win, "WM_NORMAL_HINTS"))
	require.NotNil(t, hints, "xprop WM_NORMAL_HINTS")
	width, _ = strconv.Atoi(geo[1])
	minWidth, _ = strconv.Atoi(hints[1])
	return width, minWidth
}

// The real window stays phone-width: its minimum width is at most 360 px,
// and a dialog opening (an incoming offer's prompt) does not push it wider.
// It used to jump to the widest content's width (668 px).
func TestDesktopWindowStaysNarrow(t *testing.T) {
	needX(t, "xprop")
	buildGUI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	display := startXvfb(t, t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	g := runGUI(t, display, t.TempDir(), port)
	g.await(ctx, "ready", nil)
	win := windowOf(t, ctx, display)
	_, minWidth := xWindow(t, ctx, display, win)
	assert.LessOrEqual(t, minWidth, 360, "the window's minimum width")

	resize := exec.CommandContext(ctx, "xdotool", "windowsize", win, "360", "640")
	resize.Env = append(os.Environ(), "DISPLAY="+display)
	require.NoError(t, resize.Run())
	for {
		if w, _ := xWindow(t, ctx, display, win); w == 360 {
			break
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "the window did not take 360 px")
		case <-time.After(100 * time.Millisecond):
		}
	}

	// A headless peer offers a file: the prompt opens in the narrow window.
	note := writeFile(t, t.TempDir(), "note.txt", "narrow")
	send := exec.CommandContext(ctx, peerdropBin, "--config-dir", t.TempDir(), "--name", "Bravo",
		"send", "--to", "127.0.0.1:"+strconv.Itoa(port), note)
	require.NoError(t, send.Start())
	t.Cleanup(func() { _ = send.Process.Kill(); _ = send.Wait() })
	g.await(ctx, "offer", nil)
	// The window grew, if it did, on the frame after the prompt showed:
	// look for a second.
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		w, minWidth := xWindow(t, ctx, display, win)
		require.Equal(t, 360, w, "the window's width with the offer prompt open")
		require.LessOrEqual(t, minWidth, 360, "the window's minimum width with the offer prompt open")
	}
}
