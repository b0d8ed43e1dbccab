package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/signaling"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testFP = "sha-256 0B:30:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:86"

// fpFor is a well-formed fingerprint made of seed (its SHA-256), idFor the
// device id it derives.
func fpFor(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return "sha-256 " + strings.Join(parts, ":")
}

func idFor(seed string) string { return identity.DeviceIDFor(fpFor(seed)) }

func pageHello() signaling.Hello {
	return signaling.Hello{Device: device.Device{ID: idFor("page1"), Name: "Phone (web)", Fingerprint: fpFor("page1")}, Version: int(signaling.Version)}
}

func frameBytes(t testing.TB, typ signaling.FrameType, v any) []byte {
	t.Helper()
	p, err := json.Marshal(v)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, signaling.WriteFrame(&b, signaling.Frame{Type: typ, Payload: p}))
	return b.Bytes()
}

func TestDecodeFrameMessage(t *testing.T) {
	hello := frameBytes(t, signaling.TypeHello, pageHello())
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"hello", hello, true},
		{"empty answer payload", []byte{2, 3, 0, 0, 0, 0}, true},
		{"trailing byte", append(append([]byte{}, hello...), 0), false},
		{"two frames", append(append([]byte{}, hello...), hello...), false},
		{"short payload", hello[:len(hello)-1], false},
		{"short header", []byte{2, 1, 0}, false},
		{"empty", nil, false},
		{"version 1", []byte{1, 1, 0, 0, 0, 0}, false},
		{"version 3", []byte{3, 1, 0, 0, 0, 0}, false},
		{"type 6 (probe: not from a page)", []byte{2, 6, 0, 0, 0, 0}, false},
		{"type 7", []byte{2, 7, 0, 0, 0, 0}, false},
		{"too large", []byte{2, 2, 0, 1, 0, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFrameMessage(tc.in)
			if !tc.ok {
				require.ErrorIs(t, err, ErrBadMessage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.in[6:], f.Payload)
		})
	}
}

func TestDecodeControl(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"type":"close","n":1}`, true},
		{`{"type":"close","n":0}`, false},
		{`{"type":"close"}`, false},
		{`{"type":"open","n":1}`, false},
		{`{"type":"listening","port":1}`, false},
		{`[]`, false},
		{`{`, false},
		{`{"type":"close","n":1,"pad":"` + strings.Repeat("x", 1100) + `"}`, false},
	} {
		c, err := DecodeControl([]byte(tc.in))
		if !tc.ok {
			assert.ErrorIs(t, err, ErrBadMessage, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, Control{Type: CtlClose, N: 1}, c)
	}
}

func FuzzDecodeFrameMessage(f *testing.F) {
	f.Add(frameBytes(f, signaling.TypeHello, pageHello()))
	f.Add(frameBytes(f, signaling.TypeOffer, signaling.SDP{SDP: "v=0\r\n"}))
	f.Add([]byte{1, 3, 0, 0, 0, 0})
	f.Add([]byte{1, 4, 0, 0, 0, 2, '{', '}', 0})
	f.Add([]byte{1, 2, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeFrameMessage(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error without ErrBadMessage: %v", err)
			}
			return
		}
		// A frame accepted is the whole message, and encodes back to it.
		var b bytes.Buffer
		if err := signaling.WriteFrame(&b, fr); err != nil {
			t.Fatalf("accepted frame does not encode: %v", err)
		}
		if !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("re-encoded frame differs: %x vs %x", b.Bytes(), data)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add([]byte(`{"type":"close","n":1}`))
	f.Add([]byte(`{"type":"open","n":3}`))
	f.Add([]byte(`{"type":"close","n":-1}`))
	f.Add([]byte(`{"TYPE":"close","N":2e0}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeControl(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error without ErrBadMessage: %v", err)
			}
			return
		}
		if c.Type != CtlClose || c.N < 1 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// testServer runs s on loopback until the test ends, and waits for it.
func testServer(t *testing.T, s *Server) string {
	t.Helper()
	addr, _ := testkit.Serve(t, "127.0.0.1:0", s.Serve)
	return addr
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStaticAndInfo(t *testing.T) {
	addr := testServer(t, &Server{Host: Info{DeviceID: idFor("host1"), Name: "bob", Fingerprint: fpFor("host1"), Type: "laptop"}, ListenHost: "127.0.0.1"})
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	resp, body := get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<script type="module" src="app.js">`)
	assert.Equal(t, "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self'", resp.Header.Get("Content-Security-Policy"))
	assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"), "the address may hold a pairing code")
	for _, js := range []string{"app.js", "handshake.js", "transfer.js", "sha256.js", "save.js"} {
		resp, _ := get("/" + js)
		assert.Equal(t, http.StatusOK, resp.StatusCode, js)
		assert.Contains(t, resp.Header.Get("Content-Type"), "javascript", js)
	}
	// An icon, so no browser logs a 404 for /favicon.ico; the same bytes
	// as the desktop app's.
	assert.Contains(t, body, `<link rel="icon" type="image/png" href="icon.png">`)
	want, err := os.ReadFile("../assets/icon.png")
	require.NoError(t, err)
	for _, p := range []string{"/icon.png", "/favicon.ico"} {
		resp, b := get(p)
		assert.Equal(t, http.StatusOK, resp.StatusCode, p)
		assert.Equal(t, "image/png", resp.Header.Get("Content-Type"), p)
		assert.Equal(t, string(want), b, "%s is assets/icon.png", p)
	}
	resp, body = get("/api/info")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var info Info
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, Info{DeviceID: idFor("host1"), Name: "bob", Fingerprint: fpFor("host1"), Type: "laptop", Mode: ModeLAN}, info)
}

// peerdrop serve's site: the same page, the off-LAN scripts, and an
// /api/info that sends the page off the LAN.
func TestServerSite(t *testing.T) {
	ts := httptest.NewServer(ServerSite())
	t.Cleanup(ts.Close)
	get := func(path string) (*http.Response, string) {
		resp, err := ts.Client().Get(ts.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	resp, body := get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<script type="module" src="app.js">`)
	assert.Contains(t, body, `id="join-form"`)
	for _, js := range []string{"app.js", "offlan.js", "rendezvous.js", "pake.js", "p256.js"} {
		resp, _ := get("/" + js)
		assert.Equal(t, http.StatusOK, resp.StatusCode, js)
		assert.Contains(t, resp.Header.Get("Content-Type"), "javascript", js)
	}
	resp, body = get("/api/info")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var info ServerInfo
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, ServerInfo{Mode: ModeServer, WS: "ws"}, info)
	resp, _ = get("/ws/connect")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no LAN bridge on a rendezvous server")
}

// TestConnect: a page's /ws/connect is a frame stream to Connect.
func TestConnect(t *testing.T) {
	got := make(chan signaling.Frame, 1)
	addr := testServer(t, &Server{ListenHost: "127.0.0.1", Connect: func(ctx context.Context, conn net.Conn) func() {
		defer conn.Close()
		f, err := signaling.ReadFrame(conn)
		if err != nil {
			return nil
		}
		got <- f
		p, _ := json.Marshal(signaling.Hello{Device: device.Device{ID: idFor("host1"), Name: "bob", Fingerprint: fpFor("host1")}, Version: int(signaling.Version)})
		_ = signaling.WriteFrame(conn, signaling.Frame{Type: signaling.TypeHello, Payload: p})
		return nil
	}})
	ctx := testCtx(t)
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/connect", nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
	f := <-got
	assert.Equal(t, signaling.TypeHello, f.Type)
	typ, p, err := ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageBinary, typ)
	back, err := DecodeFrameMessage(p)
	require.NoError(t, err, "one frame per message")
	assert.Equal(t, signaling.TypeHello, back.Type)
}

// TestConnectOrigin: another site cannot drive the bridge from a visitor's browser.
func TestConnectOrigin(t *testing.T) {
	addr := testServer(t, &Server{ListenHost: "127.0.0.1", Connect: func(context.Context, net.Conn) func() { return nil }})
	ctx := testCtx(t)
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws/connect", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": []string{"http://evil.example"}},
	})
	require.Error(t, err)
	if resp != nil {
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	}
}

// registerPage registers a page of type typ with pageHello on /ws/listen
// and returns its WebSocket (closed when the test ends) and the
// "listening" control.
func registerPage(t *testing.T, ctx context.Context, addr, typ string) (*websocket.Conn, Control) {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/listen?type="+typ, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.CloseNow() })
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
	c := readControl(t, ctx, ws)
	require.Equal(t, CtlListening, c.Type)
	return ws, c
}

func readControl(t *testing.T, ctx context.Context, ws *websocket.Conn) Control {
	t.Helper()
	typ, p, err := ws.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ, "want a control message, got %x", p)
	var c Control
	require.NoError(t, json.Unmarshal(p, &c))
	return c
}

// TestListen: a registered page gets a TCP port; a handshake to it is
// piped frame by frame both ways, and ends with "close" from either side.
func TestListen(t *testing.T) {
	pages := make(chan Page, 1)
	addr := testServer(t, &Server{ListenHost: "127.0.0.1", OnPage: func(ctx context.Context, p Page) {
		pages <- p
		<-ctx.Done()
	}})
	ctx := testCtx(t)
	ws, c := registerPage(t, ctx, addr, "tablet")
	require.Positive(t, c.Port)
	p := <-pages
	assert.Equal(t, Page{Hello: pageHello(), Type: "tablet", Port: c.Port}, p)

	for n := 1; n <= 2; n++ {
		tcp, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.Port))
		require.NoError(t, err)
		sender := signaling.Hello{Device: device.Device{ID: idFor("alice"), Name: "alice", Fingerprint: fpFor("alice")}, Version: int(signaling.Version)}
		_, err = tcp.Write(frameBytes(t, signaling.TypeHello, sender))
		require.NoError(t, err)
		assert.Equal(t, Control{Type: CtlOpen, N: n}, readControl(t, ctx, ws))
		typ, msg, err := ws.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, typ)
		assert.Equal(t, frameBytes(t, signaling.TypeHello, sender), msg, "the sender's frame, as one message")

		// The page answers with its hello; the sender reads it on TCP.
		require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
		require.NoError(t, tcp.SetReadDeadline(time.Now().Add(5*time.Second)))
		f, err := signaling.ReadFrame(tcp)
		require.NoError(t, err)
		h, err := signaling.DecodeHello(f.Payload)
		require.NoError(t, err)
		assert.Equal(t, pageHello(), h)

		if n == 1 {
			// The page ends the handshake: the sender sees the socket close.
			require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"close","n":1}`)))
			_, err = signaling.ReadFrame(tcp)
			require.ErrorIs(t, err, io.EOF)
			assert.Equal(t, Control{Type: CtlClose, N: 1}, readControl(t, ctx, ws))
			_ = tcp.Close()
		} else {
			// The sender ends it: the page hears "close".
			_ = tcp.Close()
			assert.Equal(t, Control{Type: CtlClose, N: 2}, readControl(t, ctx, ws))
			require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"close","n":2}`)))
		}
	}

	// A page answering as someone else is cut off.
	tcp, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.Port))
	require.NoError(t, err)
	defer tcp.Close()
	_, err = tcp.Write(frameBytes(t, signaling.TypeHello, pageHello()))
	require.NoError(t, err)
	assert.Equal(t, Control{Type: CtlOpen, N: 3}, readControl(t, ctx, ws))
	_, _, err = ws.Read(ctx)
	require.NoError(t, err)
	other := pageHello()
	other.ID, other.Fingerprint = idFor("someone-else"), fpFor("someone-else")
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, other)))
	for {
		_, _, err = ws.Read(ctx)
		if err != nil {
			break
		}
	}
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "closed for the wrong identity: %v", err)
}

// TestListenNeedsHello: the first message must be a valid hello frame.
func TestListenNeedsHello(t *testing.T) {
	addr := testServer(t, &Server{ListenHost: "127.0.0.1"})
	ctx := testCtx(t)
	for _, first := range [][]byte{
		frameBytes(t, signaling.TypeOffer, signaling.SDP{SDP: "v=0"}),
		frameBytes(t, signaling.TypeHello, signaling.Hello{Device: device.Device{ID: "bad id!", Name: "x", Fingerprint: testFP}, Version: int(signaling.Version)}),
		// A page claiming another certificate's id is not registered.
		frameBytes(t, signaling.TypeHello, signaling.Hello{Device: device.Device{ID: idFor("host1"), Name: "x", Fingerprint: fpFor("page")}, Version: int(signaling.Version)}),
		{1, 1, 0, 0},
	} {
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/listen", nil)
		require.NoError(t, err)
		require.NoError(t, ws.Write(ctx, websocket.MessageBinary, first))
		_, _, err = ws.Read(ctx)
		assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "%x: %v", first, err)
		ws.CloseNow()
	}
}

// TestDNSRebindingRefused: a request whose Host is some DNS name (a web site
// that re-pointed its name at this machine) is refused, the page's own
// addresses are not.
func TestDNSRebindingRefused(t *testing.T) {
	addr := testServer(t, &Server{Host: Info{DeviceID: idFor("host1"), Name: "bob", Fingerprint: fpFor("host1"), Type: "laptop"}, ListenHost: "127.0.0.1"})
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	for host, want := range map[string]int{
		"evil.example:" + port:                     http.StatusForbidden,
		"evil.example":                             http.StatusForbidden,
		"127.0.0.1:" + port:                        http.StatusOK,
		"[::1]:" + port:                            http.StatusOK,
		"localhost:" + port:                        http.StatusOK,
		"pd-" + idFor("host1") + ".local:" + port:  http.StatusOK,
		"PD-" + idFor("host1") + ".local.:" + port: http.StatusOK,
		// Any other mDNS name: a LAN host can answer for it and point it here.
		"evil.local:" + port:                      http.StatusForbidden,
		"pd-" + idFor("host2") + ".local:" + port: http.StatusForbidden,
	} {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/info", nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, host)
	}
	ctx := testCtx(t)
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws/listen", &websocket.DialOptions{Host: "evil.example:" + port,
		HTTPHeader: http.Header{"Origin": []string{"http://evil.example:" + port}}})
	require.Error(t, err, "the origin matches the host, but the host is a stranger's name")
	if resp != nil {
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	}
}

// TestListenRefusesTakenIDs: a page may not register with the serving
// device's id, nor with the id of a page already registered.
func TestListenRefusesTakenIDs(t *testing.T) {
	addr := testServer(t, &Server{Host: Info{DeviceID: idFor("host1"), Name: "bob", Fingerprint: fpFor("host1")}, ListenHost: "127.0.0.1"})
	ctx := testCtx(t)
	register := func(h signaling.Hello) *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/listen", nil)
		require.NoError(t, err)
		t.Cleanup(func() { ws.CloseNow() })
		require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, h)))
		return ws
	}
	first := register(pageHello())
	assert.Equal(t, CtlListening, readControl(t, ctx, first).Type)

	for name, h := range map[string]signaling.Hello{
		"the host's id":   {Device: device.Device{ID: idFor("host1"), Name: "fake bob", Fingerprint: fpFor("host1")}, Version: int(signaling.Version)},
		"a page's id too": pageHello(),
	} {
		ws := register(h)
		_, _, err := ws.Read(ctx)
		assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "%s: %v", name, err)
	}
}

// TestConnectFreesSlotForTransfer: what follows a page's handshake (the
// transfer, an offer waiting for the user) does not hold a handshake slot,
// so more pages than MaxConnects can have transfers open at once.
func TestConnectFreesSlotForTransfer(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{}, MaxConnects+2)
	addr := testServer(t, &Server{ListenHost: "127.0.0.1", Connect: func(ctx context.Context, conn net.Conn) func() {
		if _, err := signaling.ReadFrame(conn); err != nil {
			return nil
		}
		return func() {
			running <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}})
	ctx := testCtx(t)
	defer close(release)
	for i := range MaxConnects + 2 {
		ws, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws/connect", nil)
		require.NoError(t, err, "page %d: %v", i, resp)
		require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
		select {
		case <-running:
		case <-ctx.Done():
			t.Fatalf("page %d: the transfer never started", i)
		}
		ws.CloseNow()
	}
}

// TestAllowedHost: IP literals, localhost and the device's own mDNS host
// name pass; every other name, .local ones included, does not.
func TestAllowedHost(t *testing.T) {
	own := ownHostName("3F2A9C0D3F2A9C0D3F2A9C0D3F2A9C0D")
	assert.Equal(t, "pd-3f2a9c0d3f2a9c0d3f2a9c0d3f2a9c0d.local", own)
	for host, want := range map[string]bool{
		"192.168.1.7:8080": true,
		"[fe80::1]:8080":   true,
		"localhost":        true,
		own + ":8080":      true,
		own + ".":          true,
		"evil.local":       false,
		"evil.local:8080":  false,
		"pd-00.local":      false,
		"local":            false,
		"evil.example":     false,
		"":                 false,
	} {
		assert.Equal(t, want, allowedHost(host, own), host)
	}
	assert.False(t, allowedHost("pd-.local", ownHostName("")), "no id, no name of its own")
}

// A probe ("who are you", PROTOCOL.md §2.5) to a registered page's port is
// answered by the bridge with the page's hello; the page, which knows no
// probes, sees the handshake open and close and never a probe frame (it
// used to, and showed "A connection failed: unknown frame type 6"). With
// HideFromProbes the bridge closes instead, as a hidden listener does.
func TestProbeOfAPage(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		addr := testServer(t, &Server{ListenHost: "127.0.0.1", HideFromProbes: hidden})
		ctx := testCtx(t)
		ws, c := registerPage(t, ctx, addr, "phone")

		tcp, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.Port))
		require.NoError(t, err)
		defer tcp.Close()
		type probed struct {
			h   signaling.Hello
			err error
		}
		got := make(chan probed, 1)
		go func() {
			h, err := signaling.Probe(ctx, tcp)
			got <- probed{h, err}
		}()
		assert.Equal(t, Control{Type: CtlOpen, N: 1}, readControl(t, ctx, ws))
		withCommit := pageHello()
		withCommit.Commit = strings.Repeat("ab", 32)
		require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, withCommit)))
		assert.Equal(t, Control{Type: CtlClose, N: 1}, readControl(t, ctx, ws), "the page hears close, not the probe frame")
		require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"close","n":1}`)))
		r := <-got
		if hidden {
			assert.ErrorIs(t, r.err, signaling.ErrHidden)
			continue
		}
		require.NoError(t, r.err)
		assert.Equal(t, pageHello().ID, r.h.ID)
		assert.Equal(t, pageHello().Name, r.h.Name)
	}
}

// The vendored libraries are the packages' files, unchanged: their
// SHA-256 is the one static/vendor/README.md records.
func TestVendoredFiles(t *testing.T) {
	readme, err := fs.ReadFile(static, "static/vendor/README.md")
	require.NoError(t, err)
	for name, sum := range map[string]string{
		"client-zip.js": "28c957c53d8e5290951d4b45ccff8ab8c9c37219da08b9d537bbdd595a75706d",
	} {
		b, err := fs.ReadFile(static, "static/vendor/"+name)
		require.NoError(t, err)
		got := sha256.Sum256(b)
		assert.Equal(t, sum, hex.EncodeToString(got[:]), "%s is the package's file, unchanged", name)
		assert.Contains(t, string(readme), sum, "the README records %s", name)
	}
}
