package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// evilServer is a test double of a malicious rendezvous server: a WebSocket
// proxy in front of the real one that relays everything, except that it
// rewrites the handshake frames inside the pipe messages it delivers (the
// signal payloads are pipe chunks, whose data are the LAN handshake's
// frames): the certificate fingerprint in SDP, and optionally in the hello,
// becomes Mallory's. It knows the nameplate, not the code's secret group.
type evilServer struct {
	url       string
	rewritten atomic.Int32
	// which frames to rewrite
	frames map[signaling.FrameType]bool
	fp     string // Mallory's fingerprint
}

var fingerprintLine = regexp.MustCompile(`(?m)^a=fingerprint:[^\r\n]*\r?\n`)

func startEvilServer(t *testing.T, upstream, fp string, frames ...signaling.FrameType) *evilServer {
	t.Helper()
	e := &evilServer{fp: fp, frames: map[signaling.FrameType]bool{}}
	for _, f := range frames {
		e.frames[f] = true
	}
	var wg sync.WaitGroup
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{rendezvous.Subprotocol}})
		if err != nil {
			return
		}
		defer down.CloseNow()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		up, _, err := websocket.Dial(ctx, upstream, &websocket.DialOptions{Subprotocols: []string{rendezvous.Subprotocol}})
		if err != nil {
			return
		}
		defer up.CloseNow()
		down.SetReadLimit(1 << 20)
		up.SetReadLimit(1 << 20)
		pump := func(dst, src *websocket.Conn, rewrite func([]byte) []byte) {
			defer cancel()
			for {
				typ, msg, err := src.Read(ctx)
				if err != nil {
					return
				}
				if rewrite != nil {
					msg = rewrite(msg)
				}
				if err := dst.Write(ctx, typ, msg); err != nil {
					return
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pump(up, down, nil)
		}()
		pump(down, up, e.rewrite)
	}))
	t.Cleanup(func() {
		ts.Close()
		wg.Wait()
	})
	e.url = "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	return e
}

// rewrite edits one server-to-client message.
func (e *evilServer) rewrite(msg []byte) []byte {
	var env map[string]json.RawMessage
	if json.Unmarshal(msg, &env) != nil || string(env["type"]) != `"signal"` {
		return msg
	}
	var c chunk
	if json.Unmarshal(env["payload"], &c) != nil || len(c.Data) == 0 {
		return msg
	}
	// The reference sends each frame in one chunk.
	r := bytes.NewReader(c.Data)
	f, err := signaling.ReadFrame(r)
	if err != nil || r.Len() != 0 || !e.frames[f.Type] {
		return msg
	}
	switch f.Type {
	case signaling.TypeHello:
		var h signaling.Hello
		if json.Unmarshal(f.Payload, &h) != nil {
			return msg
		}
		// The id goes with the fingerprint it derives from: a careful
		// man in the middle swaps both, so that the hello stays well formed.
		h.Fingerprint, h.ID = e.fp, identity.DeviceIDFor(e.fp)
		f.Payload, _ = json.Marshal(h)
	case signaling.TypeOffer, signaling.TypeAnswer:
		var s signaling.SDP
		if json.Unmarshal(f.Payload, &s) != nil {
			return msg
		}
		s.SDP = fingerprintLine.ReplaceAllString(s.SDP, "a=fingerprint:"+e.fp+"\r\n")
		f.Payload, _ = json.Marshal(s)
	}
	var buf bytes.Buffer
	if signaling.WriteFrame(&buf, f) != nil {
		return msg
	}
	c.Data = buf.Bytes()
	env["payload"], _ = json.Marshal(c)
	out, err := json.Marshal(env)
	if err != nil {
		return msg
	}
	e.rewritten.Add(1)
	return out
}

// A server that swaps the certificate fingerprints it relays is caught on
// both sides, and the connection is refused with an error that says so:
// whether it rewrites the offer (the host sees it), the answer (the joiner
// sees it) or the hello and the offer alike, as a real man in the middle
// with its own certificate would.
func TestMaliciousServerSwapsFingerprint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames []signaling.FrameType
		// hostSees: the host detects it (else only the joiner does, and the
		// host waits in vain for ICE).
		hostSees bool
	}{
		{"offer", []signaling.FrameType{signaling.TypeOffer}, true},
		{"answer", []signaling.FrameType{signaling.TypeAnswer}, false},
		{"hello and offer", []signaling.FrameType{signaling.TypeHello, signaling.TypeOffer}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeaks(t)
			w := newWorld(t)
			mallory := peertest.Config(t, "Mallory")
			evil := startEvilServer(t, w.url, mallory.Identity.Fingerprint, tc.frames...)
			hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
			// The host answers in good faith when only the answer is
			// rewritten, then waits for ICE checks that never come.
			hostCfg.Tune = func(se *webrtc.SettingEngine) {
				se.SetICETimeouts(300*time.Millisecond, time.Second, 100*time.Millisecond)
			}
			hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, evil.url, hostCfg))
			start := time.Now()
			c, err := Join(testContext(t), dialRendezvous(t, evil.url, joinCfg), hs.code(t).Code, joinCfg, nil)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Positive(t, evil.rewritten.Load(), "the double must have rewritten something")
			t.Logf("joiner after %s: %v", time.Since(start), err)
			assert.ErrorIs(t, err, pairing.ErrFingerprintSwapped)
			assert.Contains(t, err.Error(), "swapped it, so the connection is refused")
			var pe interface{ Permanent() bool }
			require.ErrorAs(t, err, &pe, "a reconnecting sender must not try again")
			assert.True(t, pe.Permanent())

			herr := hs.err(t)
			t.Logf("host: %v", herr)
			if tc.hostSees {
				assert.ErrorIs(t, herr, pairing.ErrFingerprintSwapped)
			}
			select {
			case c := <-hs.conns:
				t.Errorf("the host handed out a connection with %s", c.Remote.Name)
			default:
			}
		})
	}
}

// The double is transparent when it rewrites nothing: the tests above fail
// because of the rewriting, not the proxy.
func TestEvilServerPassThrough(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	evil := startEvilServer(t, w.url, "")
	hostCfg, joinCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Sender")
	hs := serveHost(t, &Host{Config: hostCfg}, dialRendezvous(t, evil.url, hostCfg))
	jc, err := Join(testContext(t), dialRendezvous(t, evil.url, joinCfg), hs.code(t).Code, joinCfg, nil)
	require.NoError(t, err)
	defer jc.Close()
	exchange(t, jc, hs.conn(t))
	assert.Zero(t, evil.rewritten.Load())
}
