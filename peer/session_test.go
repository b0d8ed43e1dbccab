package peer

import (
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// tapConn keeps a copy of everything read from the stream.
type tapConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// frames parses the whole frames read so far.
func (c *tapConn) frames() []signaling.Frame {
	c.mu.Lock()
	r := bytes.NewReader(bytes.Clone(c.buf.Bytes()))
	c.mu.Unlock()
	var out []signaling.Frame
	for {
		f, err := signaling.ReadFrame(r)
		if err != nil {
			return out
		}
		out = append(out, f)
	}
}

// trickleHandshake runs DialConn and AnswerConn over a TCP connection on
// loopback that both sides keep (a trickle session owns its stream). The
// answerer's side is tapped: it holds what the dialer wrote.
func trickleHandshake(t *testing.T, dialCfg, answerCfg Config) (dialed, answered connResult, tap *tapConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b, err := ln.Accept()
	require.NoError(t, err)
	tap = &tapConn{Conn: b}
	t.Cleanup(func() {
		_ = a.Close()
		_ = b.Close()
	})
	ctx := dialCtx(t)
	done := make(chan connResult, 1)
	go func() {
		c, err := AnswerConn(ctx, tap, answerCfg, nil)
		done <- connResult{c, err}
	}()
	c, err := DialConn(ctx, a, dialCfg, nil)
	dialed = connResult{c, err}
	answered = <-done
	for _, r := range []connResult{dialed, answered} {
		if r.c != nil {
			t.Cleanup(func() { _ = r.c.Close() })
		}
	}
	return dialed, answered, tap
}

func roundTrip(t *testing.T, from, to *Conn, text string) {
	t.Helper()
	require.NoError(t, from.DataChannel().SendText(text))
	select {
	case m := <-to.Messages():
		assert.Equal(t, text, string(m.Data))
	case <-time.After(20 * time.Second):
		t.Fatalf("%q did not arrive", text)
	}
}

// Both hellos offer trickle: the offer goes out before gathering ends and
// the candidates follow in frames of their own; the stream stays open and
// the connection works. A peer that does not offer trickle gets the
// complete SDP, as on the LAN.
func TestTrickleCandidates(t *testing.T) {
	verifyNoLeaks(t)
	// A STUN server that never answers: the sender's gathering cannot end
	// until pion gives up on it, so a handshake that waited for gathering
	// would show it (and on loopback, host candidates are gathered so fast
	// that only an unfinished gathering tells trickle apart).
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
	sender.Trickle, receiver.Trickle = true, true
	sender.ICEServers = []webrtc.ICEServer{{URLs: []string{"stun:" + silent.LocalAddr().String()}}}
	d, a, tap := trickleHandshake(t, sender, receiver)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	assert.True(t, d.c.Remote.Trickle)
	roundTrip(t, d.c, a.c, "trickled")

	var types []signaling.FrameType
	var candidates, ends int
	offerComplete := true
	require.Eventually(t, func() bool {
		types, candidates, ends = nil, 0, 0
		for _, f := range tap.frames() {
			types = append(types, f.Type)
			switch f.Type {
			case signaling.TypeOffer:
				sdp, err := signaling.DecodeSDP(f.Payload)
				require.NoError(t, err)
				offerComplete = strings.Contains(sdp, "a=end-of-candidates")
			case signaling.TypeCandidate:
				c, err := signaling.DecodeCandidate(f.Payload)
				require.NoError(t, err)
				if c.Candidate == "" {
					ends++
				} else {
					candidates++
				}
			}
		}
		return ends > 0
	}, 30*time.Second, 50*time.Millisecond, "the dialer ends its candidates")
	require.GreaterOrEqual(t, len(types), 2)
	assert.Equal(t, []signaling.FrameType{signaling.TypeHello, signaling.TypeOffer}, types[:2])
	assert.Positive(t, candidates, "candidates trickled after the offer")
	assert.False(t, offerComplete, "the offer went out before gathering ended")
	require.NoError(t, d.c.Close())
	waitDone(t, a.c, 10*time.Second, "answerer after the dialer closed")

	// Only one side offers trickle: whole SDPs, and the stream is the caller's.
	sender.ICEServers = nil
	receiver.Trickle = false
	d, a = pipeHandshake(t, sender, receiver, nil, nil)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	assert.False(t, d.c.Remote.Trickle)
	assert.Nil(t, d.c.sess)
	roundTrip(t, d.c, a.c, "whole")
}

// The path breaks for longer than ICE's failure timeout (a virtual network
// drops every packet, as a router that lost its uplink would): the offerer
// restarts ICE over the still-open signaling stream, the path comes back,
// and the same data channel carries on. Nothing reconnects.
func TestTrickleICERestartAfterOutage(t *testing.T) {
	verifyNoLeaks(t)
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", LoggerFactory: lf})
	require.NoError(t, err)
	var blocked atomic.Bool
	wan.AddChunkFilter(func(vnet.Chunk) bool { return !blocked.Load() })
	nets := make([]*vnet.Net, 2)
	for i, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		nets[i], err = vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		require.NoError(t, err)
		require.NoError(t, wan.AddNet(nets[i]))
	}
	require.NoError(t, wan.Start())
	t.Cleanup(func() { _ = wan.Stop() })

	events := make(chan PathEvent, 16)
	sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
	for i, cfg := range []*Config{&sender, &receiver} {
		n := nets[i]
		cfg.Trickle = true
		cfg.Tune = func(se *webrtc.SettingEngine) {
			se.SetNet(n)
			se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
			se.SetIncludeLoopbackCandidate(false)
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		}
	}
	sender.OnPath = func(ev PathEvent) { events <- ev }
	d, a, _ := trickleHandshake(t, sender, receiver)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	roundTrip(t, d.c, a.c, "before")

	blocked.Store(true)
	var broke PathEvent
	select {
	case broke = <-events:
	case <-time.After(30 * time.Second):
		t.Fatal("the broken path was never noticed")
	}
	assert.False(t, broke.Restored)
	// Sent while the path is down: it waits in SCTP and arrives later.
	require.NoError(t, d.c.DataChannel().SendText("during"))
	blocked.Store(false)

	var back PathEvent
	select {
	case back = <-events:
	case <-d.c.Done():
		t.Fatalf("the connection was given up: %v", d.c.Err())
	case <-time.After(RestartWindow + 10*time.Second):
		t.Fatal("the path did not come back")
	}
	assert.True(t, back.Restored)
	assert.Positive(t, back.Restarts, "an ICE restart brought it back")
	assert.Equal(t, "host", back.Local)
	select {
	case m := <-a.c.Messages():
		assert.Equal(t, "during", string(m.Data), "what was sent during the outage arrives")
	case <-time.After(20 * time.Second):
		t.Fatal("the message sent during the outage never arrived")
	}
	roundTrip(t, a.c, d.c, "after")
	select {
	case <-d.c.Done():
		t.Fatal("the connection ended")
	case <-a.c.Done():
		t.Fatal("the other side's connection ended")
	default:
	}
}

// A restart offer whose fingerprint is not the peer's (a server swapping
// certificates after pairing) ends the connection with ErrFingerprint.
func TestTrickleRestartWithSwappedFingerprintRefused(t *testing.T) {
	verifyNoLeaks(t)
	sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
	sender.Trickle, receiver.Trickle = true, true
	d, a, _ := trickleHandshake(t, sender, receiver)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	mallory := newConfig(t, "Mallory")
	forged := strings.ReplaceAll(d.c.pc.LocalDescription().SDP, sender.Identity.Fingerprint[len("sha-256 "):], mallory.Identity.Fingerprint[len("sha-256 "):])
	require.NotEqual(t, d.c.pc.LocalDescription().SDP, forged)
	// Inject the forged offer into the answerer's stream, as a server would.
	payload, err := json.Marshal(signaling.SDP{SDP: forged})
	require.NoError(t, err)
	err = a.c.sess.handle(signaling.Frame{Type: signaling.TypeOffer, Payload: payload})
	require.ErrorIs(t, err, ErrFingerprint)
}

// The candidates of an ICE restart never reach the peer before the offer
// that carries their credentials (pion drops such candidates, and the
// restart would fail): every candidate's ufrag is that of an SDP already
// sent. Restarts on a working path leave it working.
func TestTrickleRestartCandidatesFollowTheirOffer(t *testing.T) {
	verifyNoLeaks(t)
	sender, receiver := newConfig(t, "Sender"), newConfig(t, "Receiver")
	sender.Trickle, receiver.Trickle = true, true
	d, a, tap := trickleHandshake(t, sender, receiver)
	require.NoError(t, d.err)
	require.NoError(t, a.err)
	for range 4 {
		d.c.sess.restart()
		require.Eventually(t, func() bool { return d.c.pc.SignalingState() == webrtc.SignalingStateStable },
			10*time.Second, 10*time.Millisecond, "the restart was answered")
		time.Sleep(200 * time.Millisecond) // let the new candidates come
	}
	roundTrip(t, d.c, a.c, "after restarts")

	ufragRe := regexp.MustCompile(`a=ice-ufrag:(\S+)`)
	sent := map[string]bool{}
	offers, candidates := 0, 0
	for _, f := range tap.frames() {
		switch f.Type {
		case signaling.TypeOffer:
			sdp, err := signaling.DecodeSDP(f.Payload)
			require.NoError(t, err)
			for _, m := range ufragRe.FindAllStringSubmatch(sdp, -1) {
				sent[m[1]] = true
			}
			offers++
		case signaling.TypeCandidate:
			c, err := signaling.DecodeCandidate(f.Payload)
			require.NoError(t, err)
			if c.Candidate == "" {
				continue
			}
			fields := strings.Fields(c.Candidate)
			idx := slices.Index(fields, "ufrag")
			require.Positive(t, idx, "pion names the ufrag: %s", c.Candidate)
			assert.True(t, sent[fields[idx+1]], "candidate %q came before its offer", c.Candidate)
			candidates++
		}
	}
	assert.Equal(t, 5, offers, "the handshake's offer and four restarts")
	assert.Positive(t, candidates)
	a.c.sess.mu.Lock()
	taken := a.c.sess.restarts
	a.c.sess.mu.Unlock()
	assert.Equal(t, 4, taken, "the receiver answered every restart")
}
