package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/relay"
)

// newRelayOnlyPC builds a peer connection the way peer/ does (its
// SettingEngine), with servers as ICE servers and relay candidates only.
func newRelayOnlyPC(t *testing.T, servers []webrtc.ICEServer) *webrtc.PeerConnection {
	t.Helper()
	se := peer.NewSettingEngine()
	// pion/ice waits 2 s before it nominates a relay pair, in case a better
	// one turns up. Its relay-only default of 0 is only applied to the
	// deprecated AgentConfig, not to the options pion/webrtc uses, so a
	// relay-only connection takes 2 s longer unless told (10 ms here).
	se.SetRelayAcceptanceMinWait(0)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers:         servers,
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pc.GracefulClose()) })
	return pc
}

// gather sets desc and waits for all candidates, as peer/ does.
func gather(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return webrtc.SessionDescription{}, err
	}
	select {
	case <-done:
		return *pc.LocalDescription(), nil
	case <-ctx.Done():
		return webrtc.SessionDescription{}, ctx.Err()
	}
}

var errNoRelayCandidate = errors.New("no relay candidate")

// hasRelayCandidate says whether an SDP offers a relayed candidate.
func hasRelayCandidate(sdp string) bool { return strings.Contains(sdp, " typ relay") }

// connectRelayOnly runs a non-trickle offer/answer between a and b and
// waits for a's data channel to open. Under a relay-only policy a side
// that gathered no relay candidate can never connect, yet pion would sit in
// "checking" until its failed timeout (about 8 s with peer/'s settings) and
// then fail without a reason: that is turned into an error at once, with
// the cause that relay.Check finds.
func connectRelayOnly(ctx context.Context, a, b *webrtc.PeerConnection, servers []webrtc.ICEServer) (*webrtc.DataChannel, error) {
	dc, err := a.CreateDataChannel(peer.ChannelLabel, nil)
	if err != nil {
		return nil, err
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })

	offer, err := a.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	if offer, err = gather(ctx, a, offer); err != nil {
		return nil, err
	}
	if !hasRelayCandidate(offer.SDP) {
		return nil, fmt.Errorf("%w: %w", errNoRelayCandidate, relay.Check(ctx, servers))
	}
	if err = b.SetRemoteDescription(offer); err != nil {
		return nil, err
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		return nil, err
	}
	if answer, err = gather(ctx, b, answer); err != nil {
		return nil, err
	}
	if err = a.SetRemoteDescription(answer); err != nil {
		return nil, err
	}
	select {
	case <-opened:
		return dc, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("data channel did not open: %w", ctx.Err())
	}
}

// (4) Two real PeerConnections, relay only, connect through our TURN
// server with its ICE servers and exchange messages; the selected pair is
// relay on both ends. The default peer policy is in force: each side's
// peer is the other's allocation at the relay IP.
func TestWebRTCThroughTURN(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := newServer(t, nil)
	a := newRelayOnlyPC(t, srv.ICEServers("alice"))
	b := newRelayOnlyPC(t, srv.ICEServers("bob"))

	fromA := make(chan string, 1)
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			fromA <- string(m.Data)
			_ = dc.SendText("hello alice")
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	dc, err := connectRelayOnly(ctx, a, b, srv.ICEServers("alice"))
	require.NoError(t, err)
	t.Logf("relay-only connect took %s", time.Since(start))

	fromB := make(chan string, 1)
	dc.OnMessage(func(m webrtc.DataChannelMessage) { fromB <- string(m.Data) })
	require.NoError(t, dc.SendText("hello bob"))
	for want, ch := range map[string]chan string{"hello bob": fromA, "hello alice": fromB} {
		select {
		case got := <-ch:
			assert.Equal(t, want, got)
		case <-ctx.Done():
			t.Fatalf("no %q", want)
		}
	}

	for name, pc := range map[string]*webrtc.PeerConnection{"alice": a, "bob": b} {
		pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		require.NoError(t, err)
		require.NotNil(t, pair, name)
		assert.Equal(t, webrtc.ICECandidateTypeRelay, pair.Local.Typ, "%s local %s", name, pair.Local)
		assert.Equal(t, webrtc.ICECandidateTypeRelay, pair.Remote.Typ, "%s remote %s", name, pair.Remote)
		assert.Equal(t, srv.RelayIP().String(), pair.Local.Address)
	}
	st := srv.Stats()
	assert.GreaterOrEqual(t, st.Allocations, uint64(2))
	assert.Positive(t, st.BytesToPeers)
	assert.Positive(t, st.BytesFromPeers)
	assert.Zero(t, st.AuthFailures)
}

// (5) With credentials the server refuses, relay-only peers gather no
// candidate; the attempt ends at once with an error that says why.
func TestWebRTCWrongCredentialsFailClearly(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := newServer(t, nil)
	servers := relay.ICEServers(srv.Addr().String(), []byte("not the server's secret"), "alice", time.Hour)
	a := newRelayOnlyPC(t, servers)
	b := newRelayOnlyPC(t, servers)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := connectRelayOnly(ctx, a, b, servers)
	elapsed := time.Since(start)
	require.Error(t, err)
	t.Logf("failed after %s: %v", elapsed, err)
	assert.ErrorIs(t, err, errNoRelayCandidate)
	assert.ErrorIs(t, err, relay.ErrCredentialsRefused)
	assert.Contains(t, err.Error(), "refused the credentials")
	assert.Less(t, elapsed, 3*time.Second)
	assert.NotEqual(t, webrtc.PeerConnectionStateConnected, a.ConnectionState())
	assert.Positive(t, srv.Stats().AuthFailures)
	assert.Zero(t, srv.Stats().Allocations)
}
