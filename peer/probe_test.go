package peer

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/signaling"
)

func TestProbeListener(t *testing.T) {
	verifyNoLeaks(t)
	cfg := newConfig(t, "Receiver")
	cfg.Type = "laptop"
	s := startServer(t, cfg, func(l *Listener) { l.AnswerProbes = true }, refuseHandler(t))

	h, err := Probe(dialCtx(t), s.addr)
	require.NoError(t, err)
	assert.Equal(t, cfg.Identity.DeviceID, h.ID)
	assert.Equal(t, "Receiver", h.Name)
	assert.Equal(t, "laptop", h.Type)
	assert.Equal(t, cfg.Identity.Fingerprint, h.Fingerprint)
	require.Eventually(t, func() bool { return s.ln.Probes() == 1 }, 2*time.Second, 10*time.Millisecond)
	assert.Zero(t, s.handled.Load(), "a probe hands no connection over")
	select {
	case err := <-s.errs:
		t.Fatalf("a probe is not a failed handshake, got %v", err)
	default:
	}
}

// A hidden listener (receive --hidden) does not say who it is.
func TestProbeHiddenListener(t *testing.T) {
	verifyNoLeaks(t)
	s := startServer(t, newConfig(t, "Receiver"), nil, refuseHandler(t))
	_, err := Probe(dialCtx(t), s.addr)
	require.ErrorIs(t, err, signaling.ErrHidden)
}

func TestProbeNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Probe(dialCtx(t), addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
}

// Probes count against the same admission limits as handshakes: one source
// holding its slots with silent connections is turned away on a probe too.
func TestProbeUnderAdmissionLimits(t *testing.T) {
	verifyNoLeaks(t)
	s := startServer(t, newConfig(t, "Receiver"), func(l *Listener) {
		l.AnswerProbes = true
		l.maxPerSource = 1
	}, refuseHandler(t))
	hold, err := net.Dial("tcp", s.addr) // says nothing: holds the one slot
	require.NoError(t, err)
	defer hold.Close()
	buf := make([]byte, 1)
	_ = hold.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = hold.Read(buf) // the listener's hello has begun: the slot is taken
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = Probe(ctx, s.addr)
	require.Error(t, err, "the probe is turned away while the slot is held")
	assert.NotErrorIs(t, err, signaling.ErrHidden)
}
