package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// nsDialer opens TCP connections from inside a network namespace: its
// workers are goroutines locked to OS threads that joined the namespace, and
// a socket belongs to the namespace of the thread that created it.
type nsDialer struct {
	reqs chan nsDial
	wg   sync.WaitGroup
}

type nsDial struct {
	addr  string
	reply chan nsDialed
}

type nsDialed struct {
	c   net.Conn
	err error
}

// setns moves the calling thread into the network namespace open as f.
func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// startNSDialer starts workers dialing from inside ns until ctx ends; the
// test waits for them when it ends.
func startNSDialer(t *testing.T, ctx context.Context, ns string, workers int) *nsDialer {
	t.Helper()
	d := &nsDialer{reqs: make(chan nsDial)}
	ready := make(chan error, workers)
	for range workers {
		d.wg.Go(func() {
			runtime.LockOSThread()
			own, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ready <- err
				return
			}
			defer own.Close()
			target, err := os.Open(filepath.Join("/var/run/netns", ns))
			if err != nil {
				runtime.UnlockOSThread()
				ready <- err
				return
			}
			defer target.Close()
			if err := setns(target); err != nil {
				runtime.UnlockOSThread()
				ready <- fmt.Errorf("setns %s: %w", ns, err)
				return
			}
			// Back home, or the thread ends with the goroutine (a locked
			// goroutine that exits takes its thread with it).
			defer func() {
				if setns(own) == nil {
					runtime.UnlockOSThread()
				}
			}()
			ready <- nil
			dialer := net.Dialer{Timeout: time.Second}
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-d.reqs:
					c, err := dialer.DialContext(ctx, "tcp", r.addr)
					r.reply <- nsDialed{c, err}
				}
			}
		})
	}
	t.Cleanup(d.wg.Wait)
	for range workers {
		require.NoError(t, <-ready)
	}
	return d
}

// dial opens a connection to addr from the namespace.
func (d *nsDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	r := nsDial{addr: addr, reply: make(chan nsDialed, 1)}
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := <-r.reply
	return res.c, res.err
}

// idleFlood keeps n connections to addr open from the dialer's namespace,
// saying nothing, each opened again as soon as the other end drops it,
// until ctx ends. It returns how many connections it opened in all.
func idleFlood(ctx context.Context, d *nsDialer, addr string, n int) (opened func() int64, wait func()) {
	var (
		count atomic.Int64
		wg    sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			buf := make([]byte, 512)
			for ctx.Err() == nil {
				c, err := d.dial(ctx, addr)
				if err != nil {
					// Refused or reset at connect: again, after a breath.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				count.Add(1)
				stop := context.AfterFunc(ctx, func() { _ = c.Close() })
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				stop()
				_ = c.Close()
			}
		})
	}
	return count.Load, wg.Wait
}

// A host that keeps 200 idle connections open to a receiver (each reopened
// when dropped) neither blocks an honest send from another host nor fills
// the receiver's log.
func TestLANIdleFloodDoesNotBlockSends(t *testing.T) {
	const (
		conns     = 200
		attackFor = 15 * time.Second
		maxPerMin = 300 // "a few hundred lines a minute"
	)
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	attacker, receiver := l.hosts["a"], l.hosts["b"]
	bravo := receiver.device("Bravo")
	charlie := l.hosts["c"].device("Charlie")

	src := t.TempDir()
	file := filepath.Join(src, "under-attack.bin")
	sum := writeRandomFile(t, file, 2*MiB+3, 11)
	dl := t.TempDir()
	rp, _ := bravo.receive(ctx, dl)
	target := net.JoinHostPort(receiver.ip, "53318")
	before := len(rp.stderrLines()) + len(rp.all("error"))

	attackCtx, stopAttack := context.WithTimeout(ctx, attackFor)
	defer stopAttack()
	started := time.Now()
	dialer := startNSDialer(t, attackCtx, attacker.ns, 8)
	opened, waitFlood := idleFlood(attackCtx, dialer, target, conns)
	t.Cleanup(waitFlood)

	// Let the flood take what it can, then send.
	time.Sleep(2 * time.Second)
	sendStart := time.Now()
	s := charlie.run(ctx, "charlie-send", "send", "--to", target, file)
	code := s.wait()
	sendTime := time.Since(sendStart)
	stillAttacking := attackCtx.Err() == nil

	<-attackCtx.Done()
	window := time.Since(started)
	waitFlood()
	lines := len(rp.stderrLines()) + len(rp.all("error")) - before
	perMin := float64(lines) * float64(time.Minute) / float64(window)
	t.Logf("attack: %d connections held open from %s for %s, %d opened in all (%.0f/s)",
		conns, attacker.ip, window.Round(time.Millisecond), opened(), float64(opened())/window.Seconds())
	t.Logf("honest send: exit status %d after %s", code, sendTime.Round(time.Millisecond))
	t.Logf("receiver's log: %d lines in %s, %.0f lines a minute", lines, window.Round(time.Millisecond), perMin)

	require.Equal(t, 0, code, "the send went through the flood; stderr: %s", s.stderr.String())
	assert.True(t, stillAttacking, "the send completed while the attack went on")
	assert.Equal(t, sum, sha256File(t, filepath.Join(dl, "under-attack.bin")), "the file arrived intact")
	assert.Less(t, perMin, float64(maxPerMin), "the receiver's log stays small under attack")
	assert.Positive(t, opened(), "the attacker did connect")
}
