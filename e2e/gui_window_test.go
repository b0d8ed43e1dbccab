package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// startXvfb runs an X server of its own for the test; it returns its
// DISPLAY.
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	x := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	x.ExtraFiles = []*os.File{w}
	require.NoError(t, x.Start())
	_ = w.Close()
	t.Cleanup(func() { _ = x.Process.Kill(); _ = x.Wait() })
	_ = r.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	require.NoError(t, err, "Xvfb tells its display number")
	return ":" + strings.TrimSpace(line)
}

// guiProc is the desktop app run on an X display (no xvfb-run: several
// processes share the display).
type guiProc struct {
	*guiApp
	code int // the exit status once done is closed
}

// runGUI runs the desktop app on display with this config dir; prefix
// wraps it (dbus-run-session --). It does not stop it at cleanup before
// the test has looked.
func runGUI(t *testing.T, display, configDir string, prefix ...string) *guiProc {
	t.Helper()
	bin := buildGUI(t)
	home := t.TempDir()
	p := &guiProc{guiApp: &guiApp{t: t, hook: filepath.Join(t.TempDir(), "hook.jsonl"), done: make(chan struct{})}}
	args := append(prefix, bin, "--config-dir", configDir, "--name", "Window", "--download-dir", t.TempDir(),
		"--port", "-1", "--web-listen", "127.0.0.1:0")
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(guiEnv(home, display), envTestHook+"="+p.hook)
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
// and no session bus unless a prefix brings one.
func guiEnv(home, display string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "DISPLAY" || k == "DBUS_SESSION_BUS_ADDRESS" || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DISPLAY="+display)
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
	needX(t, "dbus-run-session")
	buildGUI(t) // before the clock starts: the first cgo build is slow
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	display := startXvfb(t)

	p := runGUI(t, display, t.TempDir(), "dbus-run-session", "--")
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
	display := startXvfb(t)
	config := t.TempDir()

	first := runGUI(t, display, config)
	first.await(ctx, "ready", nil)

	second := exec.CommandContext(ctx, bin, "--config-dir", config, "--port", "-1", "--web-listen", "127.0.0.1:0")
	second.Env = guiEnv(t.TempDir(), display)
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
