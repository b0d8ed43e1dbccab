// Package single keeps one running desktop app per config dir: two copies
// with the same config dir would run two engines with the same identity.
//
// The first copy holds an advisory lock (flock) on a file in the config dir
// and listens on a unix socket beside it. A later copy finds the lock taken,
// connects, asks the first to show its window and exits. The kernel drops
// the lock when its holder dies, so a crash never blocks the next start;
// the socket file it leaves is replaced.
//
// Both files live in <config dir>/instance, a folder only the user can open
// (0700), and the socket itself is 0600: this is local IPC between copies of
// the app run by one user, nothing else can connect.
package single

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrRunning is returned by Acquire when another copy of the app holds the
// config dir (and was asked to show its window, if it could be reached).
var ErrRunning = errors.New("ThePeerDrop is already running with this config folder")

// The request a later copy sends, and the answer.
const (
	requestShow = "show\n"
	answerOK    = "ok\n"
)

// maxSocketPath is the longest unix socket path every platform takes (104
// on macOS and the BSDs, 108 on Linux, including the final NUL).
const maxSocketPath = 100

// ioTimeout bounds each exchange on the socket.
const ioTimeout = 2 * time.Second

// Instance is the lock on a config dir and the socket later copies reach it
// on. Close it on the way out.
type Instance struct {
	lock *os.File
	ln   *net.UnixListener // nil when no socket path fits (the lock still holds)
	sock string

	closeOnce sync.Once
}

// Options tune Acquire; the zero value is right for the app.
type Options struct {
	// RuntimeDir holds the socket when the config dir's path is too long
	// for one ("" = $XDG_RUNTIME_DIR).
	RuntimeDir string
	// Wait is how long a later copy keeps trying to reach the first one,
	// which may be starting (0 = 3 s).
	Wait time.Duration
}

// Acquire takes the config dir for this process. When another process holds
// it, Acquire asks that one to show its window and returns an error that
// wraps ErrRunning (also when the other could not be reached: it holds the
// lock all the same).
func Acquire(configDir string, opts Options) (*Instance, error) {
	dir := filepath.Join(configDir, "instance")
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	sock := socketPath(dir, opts.RuntimeDir)

	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the instance lock: %w", err)
	}
	held, err := tryLock(lock)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if !held {
		_ = lock.Close()
		if sock == "" {
			return nil, fmt.Errorf("%w (its window cannot be raised from here: no socket path)", ErrRunning)
		}
		if err := askShow(sock, cmp.Or(opts.Wait, 3*time.Second)); err != nil {
			return nil, fmt.Errorf("%w, but it did not answer: %w", ErrRunning, err)
		}
		return nil, ErrRunning
	}

	in := &Instance{lock: lock}
	if sock == "" {
		return in, nil
	}
	// We hold the lock: a socket file there is what a crashed copy left.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = in.Close()
		return nil, fmt.Errorf("remove the old socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		_ = in.Close()
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		_ = ln.Close()
		_ = in.Close()
		return nil, fmt.Errorf("chmod %s: %w", sock, err)
	}
	in.ln, in.sock = ln, sock
	return in, nil
}

// Serve answers later copies until ctx ends: onShow runs (on this
// goroutine) for each one that asks to show the window. Connections are
// handled one at a time, each within a short deadline.
func (in *Instance) Serve(ctx context.Context, onShow func()) error {
	if in.ln == nil {
		<-ctx.Done()
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = in.ln.SetDeadline(time.Now()) })
	defer stop()
	for {
		c, err := in.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", in.sock, err)
		}
		if handle(c) {
			onShow()
		}
	}
}

// handle reads one request; it reports whether it asked to show.
func handle(c *net.UnixConn) bool {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil || line != requestShow {
		return false
	}
	_, _ = io.WriteString(c, answerOK)
	return true
}

// askShow asks the copy holding the lock to show its window. It may have
// the lock but not its socket yet (starting): try again until wait ends.
func askShow(sock string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := tryShow(sock)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tryShow(sock string) error {
	c, err := net.DialTimeout("unix", sock, ioTimeout)
	if err != nil {
		return fmt.Errorf("dial %s: %w", sock, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, requestShow); err != nil {
		return fmt.Errorf("ask to show: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if line != answerOK {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

// Close stops listening, removes the socket and releases the lock.
// Idempotent.
func (in *Instance) Close() error {
	var err error
	in.closeOnce.Do(func() {
		if in.ln != nil {
			in.ln.SetUnlinkOnClose(true)
			err = in.ln.Close()
		}
		// Closing the file drops the flock.
		err = errors.Join(err, in.lock.Close())
	})
	return err
}

// privateDir makes dir, only the user's: an existing one is tightened.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// socketPath is where the socket goes: in dir when the path fits, else in
// the user's runtime dir under a name made from dir; "" when neither.
func socketPath(dir, runtimeDir string) string {
	if p := filepath.Join(dir, "sock"); len(p) <= maxSocketPath {
		return p
	}
	if runtimeDir == "" {
		runtimeDir = os.Getenv("XDG_RUNTIME_DIR")
	}
	if runtimeDir == "" {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs))
	if p := filepath.Join(runtimeDir, "thepeerdrop-"+hex.EncodeToString(sum[:8])+".sock"); len(p) <= maxSocketPath {
		return p
	}
	return ""
}
