package single

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("SINGLE_TEST_HOLD"); dir != "" {
		holdAndWait(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// holdAndWait is the child of TestStaleLockAfterCrash: it takes the config
// dir, says so, and waits to be killed.
func holdAndWait(dir string) {
	if _, err := Acquire(dir, Options{}); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("held\n")
	select {}
}

// serve runs in.Serve until the test ends; shows gets one value per show.
func serve(t *testing.T, in *Instance) <-chan struct{} {
	t.Helper()
	shows := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Serve(ctx, func() { shows <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		assert.NoError(t, in.Close())
	})
	return shows
}

// A second copy with the same config dir finds the first, which is asked to
// show its window; a third does too. Another config dir is independent.
func TestSecondCopyAsksTheFirstToShow(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir, Options{})
	require.NoError(t, err)
	shows := serve(t, first)

	for range 2 {
		_, err = Acquire(dir, Options{Wait: time.Second})
		require.ErrorIs(t, err, ErrRunning)
		assert.Equal(t, ErrRunning, err, "the first answered: no other error in the chain")
		select {
		case <-shows:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "the first copy was not asked to show")
		}
	}

	other, err := Acquire(t.TempDir(), Options{})
	require.NoError(t, err, "another config dir is another instance")
	require.NoError(t, other.Close())

	fi, err := os.Stat(filepath.Join(dir, "instance"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the instance folder is the user's only")
	fi, err = os.Stat(filepath.Join(dir, "instance", "sock"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the socket is the user's only")
}

// After Close the config dir is free again and the socket is gone.
func TestCloseFreesTheConfigDir(t *testing.T) {
	dir := t.TempDir()
	in, err := Acquire(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, in.Close())
	require.NoError(t, in.Close(), "Close is idempotent")
	_, err = os.Stat(filepath.Join(dir, "instance", "sock"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	again, err := Acquire(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

// A copy killed with SIGKILL leaves its socket file and lock file behind:
// the next start takes the config dir all the same, and a copy after it
// reaches the new one.
func TestStaleLockAfterCrash(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "SINGLE_TEST_HOLD="+dir)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "held\n", line)

	_, err = Acquire(dir, Options{Wait: 200 * time.Millisecond})
	require.ErrorIs(t, err, ErrRunning, "the child holds the config dir")

	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	_, err = os.Stat(filepath.Join(dir, "instance", "sock"))
	require.NoError(t, err, "the crashed copy left its socket")

	in, err := Acquire(dir, Options{Wait: 200 * time.Millisecond})
	require.NoError(t, err, "a stale lock and socket do not block the next start")
	shows := serve(t, in)
	_, err = Acquire(dir, Options{Wait: time.Second})
	require.Equal(t, ErrRunning, err)
	select {
	case <-shows:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the new copy was not asked to show")
	}
}

// Anything but the show request is ignored, and a client that says nothing
// does not block the next one for more than the deadline.
func TestServeIgnoresOtherRequests(t *testing.T) {
	dir := t.TempDir()
	in, err := Acquire(dir, Options{})
	require.NoError(t, err)
	shows := serve(t, in)
	sock := filepath.Join(dir, "instance", "sock")

	for _, req := range []string{"hide\n", strings.Repeat("x", 200), "show"} {
		c, err := net.Dial("unix", sock)
		require.NoError(t, err)
		_, _ = c.Write([]byte(req))
		if req == "show" {
			_ = c.(*net.UnixConn).CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(make([]byte, 8))
		assert.Zero(t, n, "no answer to %q", req)
		_ = c.Close()
	}
	select {
	case <-shows:
		require.FailNow(t, "a request other than show showed the window")
	default:
	}

	silent, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer silent.Close()
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(4 * ioTimeout))
	_, err = c.Write([]byte(requestShow))
	require.NoError(t, err)
	answer, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err, "answered once the silent client's deadline passed")
	assert.Equal(t, answerOK, answer)
	<-shows
}

// A config dir too long for a socket path puts the socket in the runtime
// dir; with none, the lock alone still keeps a second copy out.
func TestLongConfigDir(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	run := t.TempDir()
	in, err := Acquire(long, Options{RuntimeDir: run})
	require.NoError(t, err)
	shows := serve(t, in)
	_, err = Acquire(long, Options{RuntimeDir: run, Wait: time.Second})
	require.Equal(t, ErrRunning, err)
	<-shows
	socks, _ := filepath.Glob(filepath.Join(run, "thepeerdrop-*.sock"))
	assert.Len(t, socks, 1)

	t.Setenv("XDG_RUNTIME_DIR", "")
	long2 := filepath.Join(t.TempDir(), strings.Repeat("f", 120))
	in2, err := Acquire(long2, Options{})
	require.NoError(t, err)
	_, err = Acquire(long2, Options{})
	require.ErrorIs(t, err, ErrRunning)
	assert.False(t, errors.Is(err, os.ErrNotExist))
	require.NoError(t, in2.Close())
}
