package signaling

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeListener runs the listener's side of a probe on conn as peer.Listener
// does: Answerer, and on ErrProbed AnswerProbe unless hidden.
func probeListener(ctx context.Context, conn net.Conn, local Hello, hidden bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer conn.Close()
		_, _, err := Answerer(ctx, conn, local, nil, echoAnswer)
		if errors.Is(err, ErrProbed) && !hidden {
			if werr := AnswerProbe(ctx, conn, local); werr != nil {
				err = werr
			}
		}
		done <- err
	}()
	return done
}

func TestProbeAnswered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, server := tcpPair(t)
	local := helloFor("listener", "Bob's laptop")
	local.Type = "laptop"
	done := probeListener(ctx, server, local, false)

	got, err := Probe(ctx, client)
	require.NoError(t, err)
	assert.Equal(t, local.ID, got.ID)
	assert.Equal(t, "Bob's laptop", got.Name)
	assert.Equal(t, "laptop", got.Type)
	assert.Empty(t, got.Commit, "a probe's answer commits to nothing")
	assert.ErrorIs(t, <-done, ErrProbed, "the listener learns it was a probe, not a handshake")
}

func TestProbeHiddenListener(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, server := tcpPair(t)
	done := probeListener(ctx, server, helloFor("listener", "Hidden"), true)

	_, err := Probe(ctx, client)
	require.ErrorIs(t, err, ErrHidden)
	assert.ErrorIs(t, <-done, ErrProbed)
}

// A listener whose answer names another device than its hello is not listed.
func TestProbeAnswerMustMatchHello(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, server := tcpPair(t)
	go func() {
		first := helloFor("listener", "Bob")
		first.Commit = commitTo(make([]byte, NonceSize))
		writeJSONFrame(t, server, TypeHello, first)
		if f, err := ReadFrame(server); err != nil || f.Type != TypeProbe {
			return
		}
		writeJSONFrame(t, server, TypeHello, helloFor("someone else", "Bob"))
	}()
	_, err := Probe(ctx, client)
	require.ErrorIs(t, err, ErrMalformed)
}

// A probe is no hello: the prober may not go on with the handshake, and a
// listener that gets a probe after its hello runs no handshake either.
func TestProbeFrameWhereAHelloIsDue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, server := tcpPair(t)
	// The offerer (dialer) side never takes a probe frame: the listener
	// speaks first, so a probe from it is an unexpected frame.
	go func() {
		writeJSONFrame(t, server, TypeProbe, struct{}{})
	}()
	_, _, _, err := Offerer(ctx, client, helloFor("dialer", "Alice"), nil, func(Hello) (string, error) { return "offer", nil })
	require.ErrorIs(t, err, ErrUnexpected)
}
