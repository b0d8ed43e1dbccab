package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// pipePair is two clients in one room, each with a mux; a pipe from the
// joiner to the creator, and the creator's end of it.
type pipePair struct {
	a, b         *Pipe // a: opened by the joiner; b: accepted by the creator
	ma, mb       *mux
	ca, cb       *rendezvous.Client
	creatorCode  string
	creatorMuxed bool
	url          string // the rendezvous server's
}

func newPipePair(t *testing.T) *pipePair {
	t.Helper()
	w := newWorld(t)
	ctx := testContext(t)
	creator := dialRendezvous(t, w.url, peertest.Config(t, "Creator"))
	joiner := dialRendezvous(t, w.url, peertest.Config(t, "Joiner"))
	mb := newMux(creator, true, muxHooks{})
	t.Cleanup(mb.close)
	ma := newMux(joiner, false, muxHooks{})
	t.Cleanup(ma.close)
	room, err := creator.Create(ctx)
	require.NoError(t, err)
	_, err = joiner.Join(ctx, room.Code)
	require.NoError(t, err)
	host, err := ma.first(ctx, room.Code)
	require.NoError(t, err)
	require.Equal(t, creator.ClientID(), host.ClientID)
	a, err := ma.open(host.ClientID)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	// The creator learns of the pipe with its first message.
	_, err = a.Write([]byte("x"))
	require.NoError(t, err)
	var b *Pipe
	select {
	case b = <-mb.accept:
	case <-time.After(5 * time.Second):
		t.Fatal("the creator was not offered the pipe")
	}
	t.Cleanup(func() { _ = b.Close() })
	one := make([]byte, 1)
	_, err = io.ReadFull(b, one)
	require.NoError(t, err)
	require.Equal(t, "x", string(one))
	return &pipePair{a: a, b: b, ma: ma, mb: mb, ca: joiner, cb: creator, creatorCode: room.Code, url: w.url}
}

// Bytes arrive whole and in order both ways, long writes split into chunks.
func TestPipeStream(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	big := make([]byte, 3*MaxChunk+123)
	for i := range big {
		big[i] = byte(rand.IntN(256))
	}
	for _, dir := range []struct{ from, to *Pipe }{{pp.a, pp.b}, {pp.b, pp.a}} {
		n, err := dir.from.Write(big)
		require.NoError(t, err)
		require.Equal(t, len(big), n)
		got := make([]byte, len(big))
		require.NoError(t, dir.to.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = io.ReadFull(dir.to, got)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(big, got))
	}
	// Messages keep their boundaries.
	ctx := testContext(t)
	require.NoError(t, pp.a.Send(ctx, []byte(`{"m":1}`)))
	require.NoError(t, pp.a.Send(ctx, []byte(`{"m":2}`)))
	for _, want := range []string{`{"m":1}`, `{"m":2}`} {
		m, err := pp.b.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(m))
	}
	assert.Equal(t, pp.ca.ClientID(), pp.b.RemoteAddr().String())
	assert.Equal(t, pp.cb.ClientID(), pp.a.RemoteAddr().String())
}

// Close: the other side reads what was sent, then io.EOF; our own reads
// and writes fail with net.ErrClosed.
func TestPipeClose(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	_, err := pp.a.Write([]byte("last words"))
	require.NoError(t, err)
	require.NoError(t, pp.a.Close())
	require.NoError(t, pp.a.Close(), "idempotent")
	require.NoError(t, pp.b.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, err := io.ReadAll(pp.b)
	require.NoError(t, err)
	assert.Equal(t, "last words", string(got))
	_, err = pp.a.Write([]byte("more"))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = pp.a.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed)
}

// Deadlines: a read with nothing to read times out as a net.Error, one set
// from another goroutine unblocks it, and a reset deadline reads again.
func TestPipeDeadlines(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	require.NoError(t, pp.b.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	start := time.Now()
	_, err := pp.b.Read(make([]byte, 8))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)

	require.NoError(t, pp.b.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() {
		_, err := pp.b.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, pp.b.SetReadDeadline(time.Now()))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline set while reading did not unblock the read")
	}

	require.NoError(t, pp.b.SetReadDeadline(time.Time{}))
	_, err = pp.a.Write([]byte("ok"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(pp.b, buf)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(buf))

	require.NoError(t, pp.a.SetWriteDeadline(time.Now().Add(-time.Second)))
	_, err = pp.a.Write([]byte("late"))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = pp.b.Recv(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// A message that went missing (or came out of order) breaks the pipe: a
// byte stream with a hole is no use.
func TestPipeLostMessage(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	// The joiner's next message would be number 1; forge number 5.
	require.NoError(t, pp.ca.Signal(pp.cb.ClientID(), chunk{Pipe: pp.a.ID(), Seq: 5, Data: []byte("?")}))
	require.NoError(t, pp.b.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := pp.b.Read(make([]byte, 8))
	assert.ErrorIs(t, err, ErrLost)
}

// A peer that leaves ends its pipes: what it sent is still read, then
// ErrPeerLeft; writes fail.
func TestPipePeerLeft(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	_, err := pp.a.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, pp.ca.Leave(testContext(t), pp.creatorCode))
	require.NoError(t, pp.b.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 3)
	_, err = io.ReadFull(pp.b, buf)
	require.NoError(t, err)
	assert.Equal(t, "bye", string(buf))
	_, err = pp.b.Read(buf)
	assert.ErrorIs(t, err, ErrPeerLeft)
	_, err = pp.b.Write([]byte("anyone?"))
	assert.ErrorIs(t, err, ErrPeerLeft)
	_, err = pp.mb.open(pp.ca.ClientID())
	assert.ErrorIs(t, err, ErrPeerLeft, "no new pipe to a client that shares no room with us")
}

// Signals that are no pipe messages, or that continue pipes we do not know,
// are ignored; a joiner (not accepting) refuses pipes opened to it.
func TestPipeStrayMessages(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	require.NoError(t, pp.ca.Signal(pp.cb.ClientID(), map[string]any{"hello": "world"}))
	require.NoError(t, pp.ca.Signal(pp.cb.ClientID(), chunk{Pipe: "0123456789abcdef", Seq: 3, Data: []byte("stale")}))
	require.NoError(t, pp.ca.Signal(pp.cb.ClientID(), chunk{Pipe: "not-an-id", Seq: 0, Data: []byte("bad id")}))
	// The creator opens a pipe to the joiner, which does not accept pipes:
	// it is closed at once.
	back, err := pp.mb.open(pp.ca.ClientID())
	require.NoError(t, err)
	defer back.Close()
	_, err = back.Write([]byte("hi"))
	require.NoError(t, err)
	require.NoError(t, back.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = back.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
	select {
	case p := <-pp.mb.accept:
		t.Fatalf("a stray message opened pipe %s", p.ID())
	default:
	}
	// The real pipe is unharmed.
	_, err = pp.a.Write([]byte("still here"))
	require.NoError(t, err)
	buf := make([]byte, 10)
	require.NoError(t, pp.b.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(pp.b, buf)
	require.NoError(t, err)
	assert.Equal(t, "still here", string(buf))
}

// When the rendezvous connection ends, pipes end with it.
func TestPipeClientClosed(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	require.NoError(t, pp.cb.Close())
	require.NoError(t, pp.b.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := pp.b.Read(make([]byte, 1))
	assert.ErrorIs(t, err, rendezvous.ErrClosed)
	require.NoError(t, pp.a.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = pp.a.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, ErrPeerLeft) || errors.Is(err, io.EOF), "joiner: %v", err)
}

// A signal the server did not deliver breaks the pipes to its recipient,
// and only those: the server's error names it. An error that names nobody
// (from a server older than that field) breaks every pipe.
func TestPipeRefusedSignal(t *testing.T) {
	verifyNoLeaks(t)
	pp := newPipePair(t)
	ctx := testContext(t)
	other := dialRendezvous(t, pp.url, peertest.Config(t, "Other"))
	mo := newMux(other, false, muxHooks{})
	t.Cleanup(mo.close)
	_, err := other.Join(ctx, pp.creatorCode)
	require.NoError(t, err)
	host, err := mo.first(ctx, pp.creatorCode)
	require.NoError(t, err)
	o, err := mo.open(host.ClientID)
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close() })
	_, err = o.Write([]byte("y"))
	require.NoError(t, err)
	var ob *Pipe
	select {
	case ob = <-pp.mb.accept:
	case <-time.After(5 * time.Second):
		t.Fatal("the creator was not offered the second pipe")
	}
	t.Cleanup(func() { _ = ob.Close() })
	read := func(p *Pipe, n int) (string, error) {
		t.Helper()
		require.NoError(t, p.SetReadDeadline(time.Now().Add(5*time.Second)))
		buf := make([]byte, n)
		_, err := io.ReadFull(p, buf)
		return string(buf), err
	}
	got, err := read(ob, 1)
	require.NoError(t, err)
	require.Equal(t, "y", got)

	pp.mb.refused(&rendezvous.Error{Code: rendezvous.CodePeerBusy, To: pp.ca.ClientID()})
	_, err = read(pp.b, 1)
	assert.ErrorIs(t, err, ErrLost, "the pipe to the recipient has a hole")
	_, err = o.Write([]byte("unharmed"))
	require.NoError(t, err)
	got, err = read(ob, 8)
	require.NoError(t, err)
	assert.Equal(t, "unharmed", got, "the pipe to another client carries on")

	pp.mb.refused(&rendezvous.Error{Code: rendezvous.CodeRateLimited})
	_, err = read(ob, 1)
	assert.ErrorIs(t, err, ErrLost, "an error naming nobody breaks every pipe")
}
