package peer

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// runInNetns re-runs the calling test inside a fresh network namespace whose
// loopback carries multicast, so mDNS never leaves the namespace. It reports
// true when the caller is that inner run and should do the work.
func runInNetns(t *testing.T) bool {
	t.Helper()
	if netnstest.Inside() {
		return true
	}
	ns := netnstest.New(t, "pdmdns")
	netnstest.IP(t, "-n", ns, "link", "set", "lo", "multicast", "on")
	netnstest.IP(t, "-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo")
	netnstest.Reexec(t, ns)
	return false
}

// hideBehindMDNS makes a peer gather its host candidates as random .local
// names, as browsers do, and answer mDNS queries for them.
func hideBehindMDNS(se *webrtc.SettingEngine) {
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryAndGather)
}

// A browser-like peer that hides its addresses behind mDNS .local names is
// reached all the same: pion's mDNS (github.com/pion/mdns/v2) resolves them.
// Both directions: the .local names in the offer, then in the answer.
func TestMDNSCandidatesResolved(t *testing.T) {
	if !runInNetns(t) {
		return
	}
	for _, tc := range []struct {
		name        string
		hideDialer  bool
		watchFrames signaling.FrameType
	}{
		{"offer with .local names", true, signaling.TypeOffer},
		{"answer with .local names", false, signaling.TypeAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeaks(t)
			srvCfg, cliCfg := newConfig(t, "Receiver"), newConfig(t, "Browser")
			if tc.hideDialer {
				cliCfg.Tune = hideBehindMDNS
			} else {
				srvCfg.Tune = hideBehindMDNS
			}
			served := make(chan *Conn, 1)
			srv := startServer(t, srvCfg, nil, func(ctx context.Context, c *Conn) {
				served <- c
				closeAndWait(ctx, c)
			})

			var sawLocal atomic.Bool
			watch := func(f signaling.Frame) signaling.Frame {
				if f.Type == tc.watchFrames {
					sdp, err := signaling.DecodeSDP(f.Payload)
					require.NoError(t, err)
					for _, line := range strings.Split(sdp, "\n") {
						if strings.HasPrefix(line, "a=candidate:") && strings.Contains(line, ".local ") {
							sawLocal.Store(true)
						}
						if strings.HasPrefix(line, "a=candidate:") && strings.Contains(line, " 127.0.0.1 ") {
							t.Errorf("an address leaked next to the .local names: %s", line)
						}
					}
				}
				return f
			}
			proxy := startRewritingProxy(t, srv.addr, watch, watch)
			conn := mustDial(t, proxy.addr, cliCfg)
			assert.True(t, sawLocal.Load(), "the %s carried .local candidates", tc.watchFrames)
			require.NoError(t, conn.DataChannel().SendText("over a resolved .local candidate"))

			// The side that sees .local names must have resolved them: pion
			// adds such a remote host candidate only once its mDNS query is
			// answered (the stats still show the name). Without mDNS it drops
			// the candidate and only learns the other side's address from its
			// checks (a prflx candidate).
			plain := conn
			if tc.hideDialer {
				plain = <-served
			}
			assert.Eventually(t, func() bool {
				for _, st := range plain.pc.GetStats() {
					if c, ok := st.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate &&
						c.CandidateType == webrtc.ICECandidateTypeHost && strings.HasSuffix(c.IP, ".local") {
						return true
					}
				}
				return false
			}, 5*time.Second, 20*time.Millisecond, "the .local name was resolved and the candidate added")
		})
	}
}
