//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thepeerdrop/peerdrop/internal/dbustest"
)

// The desktop app's environment hooks (see app/testhook.go).
const (
	envTestHook   = "PEERDROP_TEST_HOOK"
	envTestSend   = "PEERDROP_TEST_SEND"
	envTestAnswer = "PEERDROP_TEST_ANSWER"
)

var (
	guiOnce sync.Once
	guiBin  string
	guiErr  error
)

// buildGUI builds the desktop app (cgo, Fyne) once per test run.
func buildGUI(t *testing.T) string {
	t.Helper()
	guiOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			guiErr = err
			return
		}
		guiBin = filepath.Join(filepath.Dir(peerdropBin), "thepeerdrop")
		// The test hook is built only with this tag (app/testhook_on.go).
		build := exec.Command("go", "build", "-tags", "peerdrop_testhook", "-o", guiBin, ".")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := build.CombinedOutput(); err != nil {
			guiErr = &buildError{err: err, out: out}
		}
	})
	require.NoError(t, guiErr, "go build the desktop app (make deps installs its headers)")
	return guiBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + ": " + string(e.out) }

// guiApp is the desktop app running under Xvfb on a host of a simulated LAN.
type guiApp struct {
	t    *testing.T
	cmd  *exec.Cmd
	hook string // its test hook file
	out  bytes.Buffer
	done chan struct{}
}

// startGUI runs the desktop app on host h (nil: in this process's network
// namespace), under its own Xvfb (xvfb-run), with the test hook on. env adds PEERDROP_TEST_* settings
// and any other variable; with a DISPLAY among them, the app uses that X server instead.
// It has a private session bus that activates nothing, unless env brings
// one: with none, the app's D-Bus client would autolaunch a session bus
// that outlives the test and starts the machine's desktop portal, whose
// document portal mounts a FUSE file system in the test's HOME.
func startGUI(t *testing.T, ctx context.Context, h *host, name string, env ...string) *guiApp {
	t.Helper()
	bin := buildGUI(t)
	home := t.TempDir() // Fyne keeps its preferences under $HOME
	g := &guiApp{t: t, hook: filepath.Join(t.TempDir(), "hook.jsonl"), done: make(chan struct{})}
	args := []string{bin, "--config-dir", t.TempDir(), "--name", name, "--download-dir", t.TempDir()}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "DISPLAY=") }) {
		args = append([]string{"xvfb-run", "-a", "-s", "-screen 0 1280x800x24"}, args...)
	}
	where := "this host"
	if h != nil {
		args = append([]string{"ip", "netns", "exec", h.ns}, args...)
		where = h.name
	}
	g.cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "DBUS_SESSION_BUS_ADDRESS=") }) {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+dbustest.Start(t))
	}
	g.cmd.Env = append(os.Environ(), append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		envTestHook + "=" + g.hook}, env...)...)
	g.cmd.Stdout, g.cmd.Stderr = &g.out, &g.out
	// xvfb-run starts Xvfb beside the app: stop the whole group at the end.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g.cmd.Cancel = func() error { return syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL) }
	require.NoError(t, g.cmd.Start())
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
			<-g.done
		}
		if t.Failed() {
			hook, _ := os.ReadFile(g.hook)
			t.Logf("--- desktop app on %s: output:\n%s\n--- hook:\n%s", where, g.out.String(), hook)
		}
	})
	return g
}

// await polls the hook file for a line with event name accepted by match.
func (g *guiApp) await(ctx context.Context, name string, match func(map[string]any) bool) map[string]any {
	g.t.Helper()
	for {
		if f, err := os.Open(g.hook); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64*1024), 4*MiB)
			for sc.Scan() {
				var ev map[string]any
				if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == name && (match == nil || match(ev)) {
					_ = f.Close()
					return ev
				}
			}
			_ = f.Close()
		}
		select {
		case <-g.done:
			require.FailNowf(g.t, "the desktop app exited", "waiting for %q", name)
		case <-ctx.Done():
			require.FailNowf(g.t, "no event", "the desktop app wrote no matching %q line in time", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// The real desktop app, on a simulated LAN, shows a headless peer and sends
// it a folder through the same code a drop on the peer's avatar runs; the
// folder arrives intact. Then the peer sends to the app, which accepts.
func TestDesktopAppOnLAN(t *testing.T) {
	l := newLAN(t, "a", "b")
	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("skipped: needs xvfb-run (Debian package xvfb; make test installs it)")
	}
	buildGUI(t) // before the clock starts: the first cgo build is slow
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bravo := l.hosts["b"].device("Bravo")

	src := t.TempDir()
	writeFile(t, src, "album/one.txt", "first\n")
	writeFile(t, src, "album/deep/two.txt", "second\n")
	writeRandomFile(t, filepath.Join(src, "album", "photo.bin"), 2*MiB+3, 11)
	want := snapshot(t, src)

	dl := t.TempDir()
	bp, bravoID := bravo.receive(ctx, dl, "--yes", "--once")

	g := startGUI(t, ctx, l.hosts["a"], "Alpha",
		envTestSend+"=Bravo|"+filepath.Join(src, "album"), envTestAnswer+"=accept")
	g.await(ctx, "ready", nil)
	g.await(ctx, "devices", func(ev map[string]any) bool {
		ids, _ := ev["ids"].([]any)
		for _, id := range ids {
			if id == bravoID {
				return true
			}
		}
		return false
	})
	sent := g.await(ctx, "test-send", nil)
	assert.Nil(t, sent["error"], "the app's send: %v", sent)
	require.Equal(t, 0, bp.wait(), "receiver: %s", bp.stderr.String())
	assert.Equal(t, files(want), files(snapshot(t, dl)), "the folder arrived intact")
	g.await(ctx, "item", func(ev map[string]any) bool { return ev["direction"] == "send" && ev["state"] == "done" })

	// The other way: the headless peer sends to the app, which accepts
	// through its prompt's Accept button.
	note := writeFile(t, t.TempDir(), "note.txt", "for the desktop")
	s := bravo.run(ctx, "bravo-send", "send", "--to", "Alpha", note)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	g.await(ctx, "test-answer", nil)
	done := g.await(ctx, "item", func(ev map[string]any) bool { return ev["direction"] == "receive" && ev["state"] == "done" })
	paths, _ := done["paths"].([]any)
	require.Len(t, paths, 1, "item: %v", done)
	got, err := os.ReadFile(paths[0].(string))
	require.NoError(t, err)
	assert.Equal(t, "for the desktop", string(got))
}
