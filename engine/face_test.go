package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --to takes HOST:PORT or an IP address as an address; anything else is a
// name or id to look up nearby.
func TestParseTo(t *testing.T) {
	for _, tc := range []struct {
		in, addr, err string
	}{
		{"127.0.0.1:53318", "127.0.0.1:53318", ""},
		{"[::1]:9", "[::1]:9", ""},
		{"laptop.local:53318", "laptop.local:53318", ""},
		{"192.168.1.5", "192.168.1.5:53318", ""},
		{"fe80::1", "[fe80::1]:53318", ""},
		{"[::1]", "[::1]:53318", ""},
		{"Laptop", "", ""},
		{"0123456789abcdef", "", ""},
		{"Bob: laptop", "", ""},
		{"host:http", "", ""},
		{"127.0.0.1:0", "", "out of range"},
		{"127.0.0.1:70000", "", "out of range"},
		{":53318", "", "missing host"},
	} {
		addr, isAddr, err := parseTo(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.addr, addr, tc.in)
		assert.Equal(t, tc.addr != "", isAddr, tc.in)
	}
}

// headless opens a Headless on a config dir of its own; its events go to
// events, in order.
func headless(t *testing.T, name string) (*Headless, chan any) {
	t.Helper()
	h, err := OpenHeadless(t.TempDir(), name, "laptop")
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	events := make(chan any, 1024)
	h.OnEvent = func(ev any) {
		select {
		case events <- ev:
		default:
		}
	}
	return h, events
}

// nextEvent waits for the first event of type T.
func nextEvent[T any](t *testing.T, events <-chan any) T {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev := <-events:
			if v, ok := ev.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T within %s", zero, waitFor)
			return zero
		}
	}
}

// The face without a window: one run receives (hidden, any port, taking
// every offer, once) and another sends a file to its address; the file
// arrives whole, the receive returns with the offer's outcome, and both
// runs leave nothing behind (TestMain's leak check).
func TestHeadlessSendReceive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rcv, rcvEvents := headless(t, "Receiver")
	snd, sndEvents := headless(t, "Sender")
	dir := t.TempDir()
	received := make(chan error, 1)
	go func() {
		received <- rcv.Receive(ctx, ReceiveOptions{Dir: dir, Accept: AcceptAll, Once: true, Hidden: true, Port: 0})
	}()
	l := nextEvent[Listening](t, rcvEvents)
	assert.False(t, l.Discoverable)

	src := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(src, []byte("hello, headless"), 0o644))
	require.NoError(t, snd.Send(ctx, SendOptions{To: fmt.Sprintf("127.0.0.1:%d", l.Port), Wait: time.Second, Paths: []string{src}}))
	assert.Equal(t, 1, nextEvent[Offering](t, sndEvents).Files)
	c := nextEvent[Connected](t, sndEvents)
	assert.Equal(t, "lan", c.Via)
	assert.Equal(t, rcv.Self().ID, c.ID)

	o := nextEvent[IncomingOffer](t, rcvEvents)
	assert.Equal(t, snd.Self().ID, o.From.ID)
	assert.Equal(t, c.Code, o.From.Code, "one connection, one verification code on both sides")
	require.NoError(t, <-received)
	got, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello, headless", string(got))
	pinned := rcv.Pinned()
	require.Len(t, pinned, 1, "the sender is pinned once DTLS proved it")
	assert.Equal(t, snd.Self().ID, pinned[0].ID)
}

// A decline ends a receive with Once in an error that says so; the sender
// hears the decline.
func TestHeadlessDeclineOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rcv, rcvEvents := headless(t, "Receiver")
	snd, sndEvents := headless(t, "Sender")
	asked := make(chan IncomingOffer, 1)
	received := make(chan error, 1)
	go func() {
		received <- rcv.Receive(ctx, ReceiveOptions{Dir: t.TempDir(), Once: true, Hidden: true,
			Ask: func(_ context.Context, o IncomingOffer) bool { asked <- o; return false }})
	}()
	l := nextEvent[Listening](t, rcvEvents)
	src := filepath.Join(t.TempDir(), "no.txt")
	require.NoError(t, os.WriteFile(src, []byte("no"), 0o644))
	err := snd.Send(ctx, SendOptions{To: fmt.Sprintf("127.0.0.1:%d", l.Port), Wait: time.Second, Paths: []string{src}})
	require.Error(t, err)
	assert.Equal(t, 1, (<-asked).Files)
	nextEvent[Declined](t, sndEvents)
	assert.ErrorContains(t, <-received, "you declined the offer")
}

// A --to that is not an address and names nobody nearby, and a malformed
// code, are the command line's mistakes (BadInputError: exit status 2).
func TestHeadlessBadInput(t *testing.T) {
	h, _ := headless(t, "Sender")
	ctx := context.Background()
	var bad *BadInputError
	err := h.Send(ctx, SendOptions{To: "127.0.0.1:70000", Wait: time.Millisecond, Text: "hi"})
	require.ErrorAs(t, err, &bad)
	err = h.Send(ctx, SendOptions{Server: "ws://127.0.0.1:1/ws", Code: "not a code", Text: "hi"})
	require.ErrorAs(t, err, &bad)
	_, err = OpenHeadless(t.TempDir(), "", "laptop")
	require.ErrorAs(t, err, &bad, "an empty name")
	_, err = OpenHeadless(t.TempDir(), "Me", "toaster")
	require.ErrorAs(t, err, &bad, "an unknown type")
}
