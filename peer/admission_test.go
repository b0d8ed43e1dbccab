package peer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

func TestAdmission(t *testing.T) {
	a := newAdmission(5, 2)
	one, two, three := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	assert.True(t, a.admit(one))
	assert.True(t, a.admit(one))
	assert.False(t, a.admit(one), "a third handshake from one source")
	assert.True(t, a.admit(two), "another source is not starved")
	assert.True(t, a.admit(two))
	assert.True(t, a.admit(three))
	assert.False(t, a.admit(three), "five in all")
	a.release(one)
	assert.True(t, a.admit(three), "a released slot is free again")
	assert.False(t, a.admit(one), "in all, still full")
	for _, src := range []netip.Addr{one, two, two, three, three} {
		a.release(src)
	}
	assert.Zero(t, a.total)
	assert.Empty(t, a.bySource, "sources with nothing in progress are forgotten")
}

func TestSourceOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"ipv4", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5}, "192.0.2.7"},
		{"ipv4 seen through ipv6", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5}, "192.0.2.7"},
		{"ipv6", &net.TCPAddr{IP: net.ParseIP("fd77::2"), Port: 5}, "fd77::2"},
		{"ipv6 neighbours differ", &net.TCPAddr{IP: net.ParseIP("fd77::3"), Port: 5}, "fd77::3"},
		{"link-local with zone", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 5}, "fe80::1%eth0"},
		{"other kind of address", &net.UDPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5}, "192.0.2.7"},
		{"unknown", &net.UnixAddr{Name: "/tmp/x", Net: "unix"}, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, sourceOf(tc.addr).String())
		})
	}
}

// idleConn opens a TCP connection from local (an address of 127.0.0.0/8)
// to addr that says nothing; it is closed when the test ends.
func idleConn(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// turnedAway opens a connection from local to addr and checks that the
// listener closes it at once (it may be reset before the connect returns).
func turnedAway(t *testing.T, local, addr string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET)
		return
	}
	defer c.Close()
	closedByPeer(t, c, 5*time.Second)
}

// closedByPeer waits until the listener ends c (EOF or a reset) and fails
// the test if it is still open after within.
func closedByPeer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	buf := make([]byte, 512)
	var err error
	for err == nil {
		_, err = c.Read(buf) // what it said first, if anything
	}
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the listener kept the connection open for %s", within)
}

// stillOpen checks that the listener has not closed c (yet).
func stillOpen(t *testing.T, c net.Conn) {
	t.Helper()
	// The listener speaks first (its hello): read what it sent until the
	// wait runs out, which is what an open connection does.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	buf := make([]byte, 4096)
	var err error
	for err == nil {
		_, err = c.Read(buf)
	}
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "the listener closed an admitted connection: %v", err)
}

// countingListener counts the connections a Listener accepts.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// One host that keeps connections open holds its own few slots: its next
// connection is closed at once, while another host still gets through.
func TestListenerAdmitsPerSource(t *testing.T) {
	verifyNoLeaks(t)
	srv := startServer(t, newConfig(t, "Receiver"), func(l *Listener) {
		l.maxPerSource = 2
		l.firstFrame = time.Minute // idle connections hold their slots
	}, closeAndWait)
	for range 2 {
		idleConn(t, "127.0.0.1", srv.addr)
	}
	turnedAway(t, "127.0.0.1", srv.addr)

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	tcp, err := d.Dial("tcp", srv.addr)
	require.NoError(t, err)
	defer tcp.Close()
	c, err := DialConn(dialCtx(t), tcp, newConfig(t, "Sender"), nil)
	require.NoError(t, err, "another source is admitted")
	require.NoError(t, c.Close())
	busy, _, _ := srv.ln.failures.counts()
	assert.Equal(t, 1, busy)
}

// The total bounds all sources together.
func TestListenerAdmitsInAll(t *testing.T) {
	verifyNoLeaks(t)
	srv := startServer(t, newConfig(t, "Receiver"), func(l *Listener) {
		l.maxTotal, l.maxPerSource = 3, 2
		l.firstFrame = time.Minute
	}, closeAndWait)
	a1, a2 := idleConn(t, "127.0.0.1", srv.addr), idleConn(t, "127.0.0.1", srv.addr)
	b1 := idleConn(t, "127.0.0.2", srv.addr)
	turnedAway(t, "127.0.0.3", srv.addr)
	for _, c := range []net.Conn{a1, a2, b1} {
		stillOpen(t, c)
	}
}

// A connection that sends nothing is closed after the first frame's time,
// not after the usual read timeout; once the hello is in, the usual
// timeout applies to the frames after it.
func TestListenerFirstFrameDeadline(t *testing.T) {
	verifyNoLeaks(t)
	srv := startServer(t, newConfig(t, "Receiver"), func(l *Listener) {
		l.firstFrame = 300 * time.Millisecond
	}, closeAndWait)
	idle := idleConn(t, "127.0.0.1", srv.addr)
	closedByPeer(t, idle, signaling.ReadTimeout/2)

	// A sender that takes longer than the first frame's time after its
	// hello (gathering its offer, say) keeps the connection: the usual
	// timeout applies from the hello on.
	tcp, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	defer tcp.Close()
	require.NoError(t, tcp.SetDeadline(time.Now().Add(5*time.Second)))
	f, err := signaling.ReadFrame(tcp)
	require.NoError(t, err)
	require.Equal(t, signaling.TypeHello, f.Type, "the listener speaks first")
	sender := newConfig(t, "Sender")
	p, err := json.Marshal(signaling.Hello{
		Device:  device.Device{ID: sender.Identity.DeviceID, Name: "Sender", Fingerprint: sender.Identity.Fingerprint},
		Version: int(signaling.Version),
		Nonce:   strings.Repeat("ab", 32),
	})
	require.NoError(t, err)
	require.NoError(t, signaling.WriteFrame(tcp, signaling.Frame{Type: signaling.TypeHello, Payload: p}))
	time.Sleep(time.Second)
	stillOpen(t, tcp)
	require.Eventually(t, func() bool {
		_, silent, _ := srv.ln.failures.counts()
		return silent == 1
	}, 5*time.Second, 10*time.Millisecond, "the idle connection is counted")
	select {
	case err := <-srv.errs:
		t.Fatalf("a silent connection was reported one by one: %v", err)
	default:
	}
}

// A dialer turned away by a busy listener tries again and gets through once
// a slot is free.
func TestDialRetriesWhenTurnedAway(t *testing.T) {
	verifyNoLeaks(t)
	var counted *countingListener
	srv := startServer(t, newConfig(t, "Receiver"), func(l *Listener) {
		l.maxPerSource = 1
		l.firstFrame = time.Minute
		counted = &countingListener{Listener: l.ln}
		l.ln = counted
	}, closeAndWait)
	idle := idleConn(t, "127.0.0.1", srv.addr)
	done := make(chan error, 1)
	go func() {
		c, err := Dial(dialCtx(t), srv.addr, newConfig(t, "Sender"), nil)
		if err == nil {
			_ = c.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool {
		busy, _, _ := srv.ln.failures.counts()
		return busy >= 2
	}, 5*time.Second, 10*time.Millisecond, "the dialer was turned away and tried again")
	require.NoError(t, idle.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Dial did not return")
	}
	assert.GreaterOrEqual(t, counted.n.Load(), int32(3), "the idle connection, at least two turned away, the one that got through")
}

// A dialer that is always turned away gives up after a few tries and says
// why.
func TestDialGivesUpWhenAlwaysTurnedAway(t *testing.T) {
	verifyNoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var accepted atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			turnAway(c)
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	_, err = Dial(dialCtx(t), ln.Addr().String(), newConfig(t, "Sender"), nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTurnedAway)
	assert.Equal(t, int32(dialRetries+1), accepted.Load())
}

// A refusal on purpose is final: the dialer does not try again.
func TestDialRefusalNotRetried(t *testing.T) {
	verifyNoLeaks(t)
	var checks atomic.Int32
	srv := startServer(t, newConfig(t, "Receiver"), func(l *Listener) {
		l.Check = func(signaling.Hello) error {
			checks.Add(1)
			return errors.New("blocked")
		}
	}, refuseHandler(t))
	_, err := Dial(dialCtx(t), srv.addr, newConfig(t, "Sender"), nil)
	var re *signaling.RemoteError
	require.ErrorAs(t, err, &re)
	assert.True(t, re.RemoteRefused())
	assert.NotErrorIs(t, err, ErrTurnedAway)
	assert.Equal(t, int32(1), checks.Load())
}

// recordHandler keeps the records a logger writes.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *recordHandler) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.records...)
}

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

// Turned-away connections, silent ones and failed handshakes come out as a
// few lines: the first failures of an interval one by one, then one line
// that sums up the rest.
func TestListenerFailuresLoggedAtABoundedRate(t *testing.T) {
	verifyNoLeaks(t)
	logged := &recordHandler{}
	var reported atomic.Int32
	ln, err := Listen("127.0.0.1:0", newConfig(t, "Receiver"))
	require.NoError(t, err)
	ln.log = slog.New(logged)
	ln.failures = newFailureLog(time.Hour) // one interval, summed up when Serve returns
	ln.maxPerSource = 4
	ln.firstFrame = time.Minute
	ln.OnError = func(net.Addr, error) { reported.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ln.Serve(ctx, refuseHandler(t)) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-served)
		}
	}
	t.Cleanup(stop)
	addr := ln.Addr().String()

	// Twenty bad handshakes, one after the other.
	const garbage = 20
	for range garbage {
		c := idleConn(t, "127.0.0.1", addr)
		_, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		require.NoError(t, err)
		closedByPeer(t, c, 5*time.Second) // after an error frame
	}
	require.Eventually(t, func() bool {
		_, _, hidden := ln.failures.counts()
		return hidden == garbage-reportBurst // and so their slots are free
	}, 10*time.Second, 10*time.Millisecond)
	// A hundred idle connections: the first four are admitted.
	var idle []net.Conn
	for range 4 {
		idle = append(idle, idleConn(t, "127.0.0.1", addr))
	}
	for range 96 {
		turnedAway(t, "127.0.0.1", addr)
	}
	for _, c := range idle {
		stillOpen(t, c)
		require.NoError(t, c.Close())
	}
	require.Eventually(t, func() bool {
		busy, silent, hidden := ln.failures.counts()
		return busy == 96 && silent == 4 && hidden == garbage-reportBurst
	}, 10*time.Second, 10*time.Millisecond, "every connection is counted")
	stop()

	assert.Equal(t, int32(reportBurst), reported.Load(), "OnError hears the first few")
	records := logged.all()
	require.Len(t, records, reportBurst+1, "the first few, then one line for the rest")
	sum := records[len(records)-1]
	assert.Equal(t, slog.LevelWarn, sum.Level)
	assert.Equal(t, map[string]string{
		"in": "1h0m0s", "busy": "96", "silent": "4", "failed_not_shown": "15",
		"sources": "1", "most_from": "127.0.0.1", "most": "120",
	}, attrs(sum))
}
