package peer

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/internal/rendezvoustest"
	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/signaling"
)

type connResult struct {
	c   *Conn
	err error
}

// pipeHandshake runs DialConn and AnswerConn on the two ends of a net.Pipe,
// which has deadlines but no TCP: any reliable byte stream carries the
// handshake. Both conns are closed when the test ends.
func pipeHandshake(t *testing.T, dialCfg, answerCfg Config, dialCheck, answerCheck func(signaling.Hello) error) (dialed, answered connResult) {
	t.Helper()
	a, b := net.Pipe()
	return handshakeOver(t, a, b, dialCfg, answerCfg, dialCheck, answerCheck)
}

// tcpHandshake is pipeHandshake over a loopback TCP connection, whose
// buffers let both ends write at once: a refusing answerer writes its error
// frame while the dialer writes its offer (on a net.Pipe, each write waits
// for the other end to read).
func tcpHandshake(t *testing.T, dialCfg, answerCfg Config, dialCheck, answerCheck func(signaling.Hello) error) (dialed, answered connResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b, err := ln.Accept()
	require.NoError(t, err)
	return handshakeOver(t, a, b, dialCfg, answerCfg, dialCheck, answerCheck)
}

func handshakeOver(t *testing.T, a, b net.Conn, dialCfg, answerCfg Config, dialCheck, answerCheck func(signaling.Hello) error) (dialed, answered connResult) {
	t.Helper()
	t.Cleanup(func() {
		_ = a.Close()
		_ = b.Close()
	})
	ctx := dialCtx(t)
	done := make(chan connResult, 1)
	go func() {
		defer b.Close() // as a caller does once AnswerConn returns
		c, err := AnswerConn(ctx, b, answerCfg, answerCheck)
		done <- connResult{c, err}
	}()
	c, err := DialConn(ctx, a, dialCfg, dialCheck)
	_ = a.Close()
	dialed = connResult{c, err}
	answered = <-done
	for _, r := range []connResult{dialed, answered} {
		if r.c != nil {
			t.Cleanup(func() { _ = r.c.Close() })
		}
	}
	return dialed, answered
}

func TestConnOverPipe(t *testing.T) {
	verifyNoLeaks(t)
	sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
	d, a := pipeHandshake(t, sender, receiver, nil, nil)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	assert.Equal(t, "Receiver", d.c.Remote.Name)
	assert.Equal(t, receiver.Identity.Fingerprint, d.c.Remote.Fingerprint)
	assert.Equal(t, "Sender", a.c.Remote.Name)

	require.NoError(t, d.c.DataChannel().SendText("over a pipe"))
	select {
	case m := <-a.c.Messages():
		assert.Equal(t, "over a pipe", string(m.Data))
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	// Host candidates only (no ICE servers): a host pair on both ends.
	for _, c := range []*Conn{d.c, a.c} {
		local, remote := c.Route()
		assert.Equal(t, "host", local)
		assert.Contains(t, []string{"host", "prflx"}, remote)
	}
	require.NoError(t, d.c.Close())
	waitDone(t, a.c, 10*time.Second, "answerer after the dialer closed")
	local, remote := d.c.Route()
	assert.Empty(t, local+remote, "no route once closed")
}

func TestConnOverPipeChecks(t *testing.T) {
	verifyNoLeaks(t)
	sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
	t.Run("answerer refuses", func(t *testing.T) {
		no := errors.New("not you")
		d, a := tcpHandshake(t, sender, receiver, nil, func(signaling.Hello) error { return no })
		var re *signaling.RemoteError
		require.ErrorAs(t, d.err, &re)
		assert.True(t, re.RemoteRefused())
		assert.Contains(t, re.Message, "not you")
		assert.ErrorIs(t, a.err, no)
	})
	t.Run("dialer refuses", func(t *testing.T) {
		no := errors.New("not them")
		d, a := pipeHandshake(t, sender, receiver, func(signaling.Hello) error { return no }, nil)
		assert.ErrorIs(t, d.err, no)
		var re *signaling.RemoteError
		require.ErrorAs(t, a.err, &re)
		assert.True(t, re.RemoteRefused())
	})
	t.Run("self", func(t *testing.T) {
		d, a := pipeHandshake(t, sender, sender, nil, nil)
		assert.Error(t, d.err)
		assert.ErrorContains(t, a.err, "this device itself")
	})
}

// The handshake honours the caller's context even when the other end of
// the stream says nothing.
func TestDialConnSilentPeer(t *testing.T) {
	verifyNoLeaks(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	// b says nothing: the listener speaks first, so the dialer waits.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := DialConn(ctx, a, newConfig(t, "Sender"), nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// Relay only without a TURN server that grants an allocation: a clear error
// at once (relay.Check's reason), not a connection that fails after the ICE
// timeouts.
func TestRelayOnlyWithoutRelay(t *testing.T) {
	verifyNoLeaks(t)
	srv := rendezvoustest.NewRelay(t)
	for _, tc := range []struct {
		name    string
		servers []webrtc.ICEServer
		want    error
	}{
		{"no servers", nil, relay.ErrNoTURN},
		{"wrong credentials", relay.ICEServers(srv.Addr().String(), []byte("not the server's secret"), "x", time.Hour), relay.ErrCredentialsRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
			sender.RelayOnly, sender.ICEServers = true, tc.servers
			start := time.Now()
			d, a := pipeHandshake(t, sender, receiver, nil, nil)
			require.Error(t, d.err)
			t.Logf("%v", d.err)
			assert.ErrorIs(t, d.err, ErrNoRelay)
			assert.ErrorIs(t, d.err, tc.want)
			assert.Less(t, time.Since(start), 5*time.Second)
			assert.Error(t, a.err, "the answerer hears of it")

			// The answering side reports it the same way.
			d, a = pipeHandshake(t, receiver, sender, nil, nil)
			assert.ErrorIs(t, a.err, ErrNoRelay)
			assert.ErrorIs(t, a.err, tc.want)
			assert.Error(t, d.err)
		})
	}
}

// What a peer sent before it closed reaches us, all of it, before Done: a
// sender that cancels sends "cancel", waits until it is acknowledged and
// closes; the cancel must not be lost to the close.
func TestConnDeliversAllBeforeDone(t *testing.T) {
	verifyNoLeaks(t)
	d, a := pipeHandshake(t, newConfig(t, "Sender"), newConfig(t, "Receiver"), nil, nil)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	const n = 300
	for i := range n {
		require.NoError(t, d.c.Send(make([]byte, 16<<10)))
		if i == n-1 {
			require.NoError(t, d.c.SendText([]byte("the last one")))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.c.BufferedAmount() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Zero(t, d.c.BufferedAmount(), "acknowledged")
	require.NoError(t, d.c.Close())
	// The receiver reads slowly, as a busy one does.
	got, last := 0, ""
	take := func(m datachan.Message) {
		got++
		if m.IsString {
			last = string(m.Data)
		}
		m.Release()
	}
	for done := false; !done; {
		time.Sleep(time.Millisecond)
		select {
		case m := <-a.c.Messages():
			take(m)
		case <-a.c.Done():
			done = true // what is still in the inbox counts: read it below
		}
	}
	for len(a.c.Messages()) > 0 {
		take(<-a.c.Messages())
	}
	assert.Equal(t, n+1, got, "every message")
	assert.Equal(t, "the last one", last)
}
