package datachan

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func recv(t *testing.T, e *End) Message {
	t.Helper()
	select {
	case m := <-e.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return Message{}
	}
}

func TestOrderBoundariesAndCopies(t *testing.T) {
	a, b := Pipe(Options{})
	defer a.Close()
	buf := []byte("first")
	require.NoError(t, a.SendText(buf))
	copy(buf, "XXXXX") // the sender may reuse its buffer at once
	require.NoError(t, a.Send([]byte{1, 2, 3}))
	require.NoError(t, a.Send(nil))
	require.NoError(t, b.SendText([]byte("back")))

	assert.Equal(t, Message{IsString: true, Data: []byte("first")}, recv(t, b))
	assert.Equal(t, Message{Data: []byte{1, 2, 3}}, recv(t, b))
	assert.Equal(t, Message{Data: []byte{}}, recv(t, b), "an empty message is still a message")
	assert.Equal(t, Message{IsString: true, Data: []byte("back")}, recv(t, a))
}

// TestBackpressure: while nobody reads, what is sent waits in the sender's
// buffered amount; reading lets it drain and LowWater says so.
func TestBackpressure(t *testing.T) {
	a, b := Pipe(Options{Inbox: 2})
	defer a.Close()
	chunk := bytes.Repeat([]byte("x"), 100)
	for range 10 {
		require.NoError(t, a.Send(chunk))
	}
	// Two fit in b's inbox; the other eight wait at a.
	require.Eventually(t, func() bool { return a.BufferedAmount() == 800 }, 10*time.Second, time.Millisecond)
	low := a.LowWater(100)
	time.Sleep(10 * time.Millisecond) // room for a wrong signal to show
	select {
	case <-low:
		t.Fatal("low water reported while above it")
	default:
	}
	for range 7 {
		recv(t, b)
	}
	select {
	case <-low:
	case <-time.After(10 * time.Second):
		t.Fatal("no low-water signal")
	}
	assert.LessOrEqual(t, a.BufferedAmount(), uint64(100))
	for range 3 {
		assert.Equal(t, chunk, recv(t, b).Data)
	}
	require.Eventually(t, func() bool { return a.BufferedAmount() == 0 }, 10*time.Second, time.Millisecond)
}

// TestCloseSeenByTheOtherEnd: a close ends both ends; what already reached
// the other end's inbox can still be read, and sends fail.
func TestCloseSeenByTheOtherEnd(t *testing.T) {
	a, b := Pipe(Options{})
	require.NoError(t, a.SendText([]byte("last words")))
	require.Eventually(t, func() bool { return a.BufferedAmount() == 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, a.Close())
	require.NoError(t, a.Close(), "closing twice is fine")
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the other end did not see the close")
	}
	assert.Equal(t, "last words", string(recv(t, b).Data))
	require.ErrorIs(t, b.Send([]byte("x")), ErrClosed)
	assert.NoError(t, b.Err(), "a close is not a break")
}

// TestBreak: the hook breaks the link at a message: it and the rest are
// lost, both ends see Done and Err says the link broke.
func TestBreak(t *testing.T) {
	a, b := Pipe(Options{Break: func(from *End, m Message) bool { return string(m.Data) == "cut" }})
	defer b.Close()
	require.NoError(t, a.SendText([]byte("before")))
	assert.Equal(t, "before", string(recv(t, b).Data))
	require.NoError(t, a.SendText([]byte("cut")), "the sender learns of a dead path from Done")
	<-a.Done()
	<-b.Done()
	assert.ErrorIs(t, a.Err(), ErrBroken)
	assert.ErrorIs(t, b.Err(), ErrBroken)
	select {
	case m := <-b.Messages():
		t.Fatalf("a message crossed a broken link: %q", m.Data)
	default:
	}
}
