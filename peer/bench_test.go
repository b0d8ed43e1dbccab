package peer

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
)

// BenchmarkConnect measures the LAN handshake as built: non-trickle, so ICE
// gathering finishes on both sides before the offer and the answer go out.
// The baseline printed beside it, from the same run, is the time gathering
// alone takes on a fresh peer connection: the most that trickling candidates
// over the socket could save per side. With host candidates only, gathering
// is a few interface look-ups, so non-trickle keeps the handshake at exactly
// three frames and one round trip for little cost.
func BenchmarkConnect(b *testing.B) {
	cfg := func(name string) Config {
		id, err := identity.Load(b.TempDir())
		require.NoError(b, err)
		return Config{Identity: id, Name: name}
	}
	srvCfg, cliCfg := cfg("Receiver"), cfg("Sender")
	ln, err := Listen("127.0.0.1:0", srvCfg)
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- ln.Serve(ctx, func(ctx context.Context, c *Conn) { closeAndWait(ctx, c) })
	}()
	defer func() {
		cancel()
		require.NoError(b, <-served)
	}()

	var gathered time.Duration
	for range 10 {
		pc, err := cliCfg.newPeerConnection()
		require.NoError(b, err)
		_, err = pc.CreateDataChannel(ChannelLabel, nil)
		require.NoError(b, err)
		offer, err := pc.CreateOffer(nil)
		require.NoError(b, err)
		start := time.Now()
		_, err = gather(ctx, pc, offer)
		require.NoError(b, err)
		gathered += time.Since(start)
		require.NoError(b, pc.Close())
	}
	gatherMs := float64(gathered.Microseconds()) / 10 / 1000

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
		c, err := Dial(dctx, ln.Addr().String(), cliCfg, nil)
		dcancel()
		require.NoError(b, err)
		require.Equal(b, webrtc.DataChannelStateOpen, c.DataChannel().ReadyState())
		require.NoError(b, c.Close())
	}
	connectMs := float64(time.Since(start).Microseconds()) / float64(b.N) / 1000
	b.StopTimer()
	b.ReportMetric(connectMs, "ms/connect")
	b.ReportMetric(gatherMs, "ms/gather")
	b.Logf("connect (handshake to open data channel, non-trickle): %.1f ms; ICE gathering alone (baseline, per side): %.1f ms",
		connectMs, gatherMs)
}
