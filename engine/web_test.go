package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/web"
)

// These tests play the browser page in Go over the real WebSocket protocol
// of PROTOCOL.md §14: the frames are the page's, only the JavaScript is not.

// startWebEngine runs an engine that serves the web client on loopback and
// returns it with the web client's URL.
func startWebEngine(t *testing.T, name string) (*testEngine, *url.URL) {
	t.Helper()
	cfg := testConfig(t, name)
	cfg.WebListen = "127.0.0.1:0"
	cfg.Type = "laptop"
	te := runEngine(t, cfg)
	ev := te.rec.wait(t, 0, "web client served", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL != "" })
	raw := ev.(WebStatus).URL
	assert.Equal(t, raw, te.WebURL())
	u, err := url.Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", u.Hostname())
	assert.Equal(t, "/", u.Path)
	return te, u
}

func wsURL(u *url.URL, path string) string { return "ws://" + u.Host + path }

// A page sends a file: its handshake on /ws/connect is an offer like any
// other, and the file arrives once the user accepts.
func TestWebPageSends(t *testing.T) {
	b, u := startWebEngine(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// /api/info names the device the page sends to.
	resp, err := httpGet(ctx, "http://"+u.Host+"/api/info")
	require.NoError(t, err)
	var info web.Info
	require.NoError(t, json.Unmarshal(resp, &info))
	assert.Equal(t, web.Info{DeviceID: b.Self().ID, Name: "bob", Fingerprint: b.Fingerprint(), Type: "laptop", Mode: web.ModeLAN}, info)

	src := filepath.Join(t.TempDir(), "from-phone.jpg")
	data := randomBytes(t, 200<<10)
	writeFile(t, src, data)
	offer, err := transfer.NewOffer([]string{src}, "")
	require.NoError(t, err)

	pc := peertest.Config(t, "Phone (web)")
	ws, _, err := websocket.Dial(ctx, wsURL(u, "/ws/connect"), nil)
	require.NoError(t, err)
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	c, err := peer.DialConn(ctx, conn, pc, nil)
	_ = conn.Close() // the page closes its WebSocket once the data channel is open
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, b.Self().ID, c.Remote.ID)

	dialed := false
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, Dial: func(context.Context) (transfer.Link, error) {
		if dialed {
			return nil, errors.New("the test page does not reconnect")
		}
		dialed = true
		return c, nil
	}})
	sent := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx)
		sent <- err
	}()

	o := b.rec.waitOffer(t, 0)
	assert.Equal(t, Peer{ID: pc.Identity.DeviceID, Name: "Phone (web)"}, o.From)
	assert.Equal(t, []string{"from-phone.jpg"}, o.First)
	require.NoError(t, b.Answer(o.ID, true))
	got := b.rec.waitState(t, 0, o.ID, StateDone)
	require.NoError(t, <-sent)
	want := filepath.Join(b.cfg.DownloadDir, "from-phone.jpg")
	assert.Equal(t, []string{want}, got.Paths)
	onDisk, err := os.ReadFile(want)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, onDisk), "the file arrived whole")
}

// A page that declines is like any sender: nothing is saved.
func TestWebPageDeclined(t *testing.T) {
	b, u := startWebEngine(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	src := filepath.Join(t.TempDir(), "x.txt")
	writeFile(t, src, []byte("no thanks"))
	offer, err := transfer.NewOffer([]string{src}, "")
	require.NoError(t, err)
	ws, _, err := websocket.Dial(ctx, wsURL(u, "/ws/connect"), nil)
	require.NoError(t, err)
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	c, err := peer.DialConn(ctx, conn, peertest.Config(t, "Tablet (web)"), nil)
	_ = conn.Close()
	require.NoError(t, err)
	defer c.Close()
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, Dial: func(context.Context) (transfer.Link, error) { return c, nil }})
	sent := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx)
		sent <- err
	}()
	o := b.rec.waitOffer(t, 0)
	require.NoError(t, b.Answer(o.ID, false))
	require.ErrorIs(t, <-sent, transfer.ErrDeclined)
	b.rec.waitState(t, 0, o.ID, StateDeclined)
	entries, err := os.ReadDir(b.cfg.DownloadDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// wsFrames is the page's end of a bridged handshake on /ws/listen as a byte
// stream: frames in binary messages, control messages skipped.
type wsFrames struct {
	ctx context.Context
	ws  *websocket.Conn
	buf []byte
}

func (w *wsFrames) Read(p []byte) (int, error) {
	for len(w.buf) == 0 {
		typ, msg, err := w.ws.Read(w.ctx)
		if err != nil {
			return 0, err
		}
		if typ == websocket.MessageBinary {
			w.buf = msg
		}
	}
	n := copy(p, w.buf)
	w.buf = w.buf[n:]
	return n, nil
}

// Write sends p as one message: the handshake writes one frame per call.
func (w *wsFrames) Write(p []byte) (int, error) {
	if err := w.ws.Write(w.ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *wsFrames) Close() error                     { return nil }
func (w *wsFrames) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (w *wsFrames) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (w *wsFrames) SetDeadline(time.Time) error      { return nil }
func (w *wsFrames) SetReadDeadline(time.Time) error  { return nil }
func (w *wsFrames) SetWriteDeadline(time.Time) error { return nil }

func readControl(t *testing.T, ctx context.Context, ws *websocket.Conn) web.Control {
	t.Helper()
	typ, p, err := ws.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ, "want a control message, got %x", p)
	var c web.Control
	require.NoError(t, json.Unmarshal(p, &c))
	return c
}

func helloFrame(t *testing.T, h signaling.Hello) []byte {
	p, err := json.Marshal(h)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, signaling.WriteFrame(&b, signaling.Frame{Type: signaling.TypeHello, Payload: p}))
	return b.Bytes()
}

// A page registered on /ws/listen is a device in the engine's list while
// it stays, reached through the bridge: the engine sends it a file.
func TestWebPageListedAndReceives(t *testing.T) {
	a, u := startWebEngine(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	pc := peertest.Config(t, "Phone (web)")
	pageID := pc.Identity.DeviceID

	from := a.rec.mark()
	ws, _, err := websocket.Dial(ctx, wsURL(u, "/ws/listen?type=tablet"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	hello := signaling.Hello{Device: device.Device{ID: pageID, Name: "Phone (web)", Fingerprint: pc.Identity.Fingerprint}, Version: int(signaling.Version)}
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, helloFrame(t, hello)))
	listening := readControl(t, ctx, ws)
	require.Equal(t, web.CtlListening, listening.Type)

	ev := a.rec.wait(t, from, "the page in the device list", func(ev Event) bool {
		dc, ok := ev.(DevicesChanged)
		return ok && len(dc.Devices) == 1 && dc.Devices[0].ID == pageID
	})
	d := ev.(DevicesChanged).Devices[0]
	assert.Equal(t, "Phone (web)", d.Name)
	assert.Equal(t, "tablet", d.Type)
	assert.Equal(t, pc.Identity.Fingerprint, d.Fingerprint)
	assert.Equal(t, listening.Port, d.Port)
	assert.True(t, d.Web)
	assert.Equal(t, []string{net.JoinHostPort("127.0.0.1", itoa(listening.Port))}, d.Addresses())
	assert.Equal(t, a.Devices(), ev.(DevicesChanged).Devices)

	src := filepath.Join(t.TempDir(), "to-phone.pdf")
	data := randomBytes(t, 150<<10)
	writeFile(t, src, data)
	it, err := a.Send(TargetOf(d), []string{src})
	require.NoError(t, err)

	// The page answers the bridged handshake, then receives.
	open := readControl(t, ctx, ws)
	require.Equal(t, web.Control{Type: web.CtlOpen, N: 1}, open)
	c, err := peer.AnswerConn(ctx, &wsFrames{ctx: ctx, ws: ws}, pc, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"close","n":1}`)))
	dir := t.TempDir()
	rcv := &transfer.Receiver{Dir: dir, Decide: func(context.Context, transfer.OfferReceived) bool { return true }}
	received := make(chan error, 1)
	go func() {
		received <- rcv.Handle(ctx, transfer.Peer{Device: device.Device{ID: c.Remote.ID, Name: c.Remote.Name, Fingerprint: c.Remote.Fingerprint}}, c)
	}()
	a.rec.waitState(t, 0, it.ID, StateDone)
	onDisk, err := os.ReadFile(filepath.Join(dir, "to-phone.pdf"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, onDisk), "the file arrived whole")
	_ = c.Close()
	<-received

	// The page goes: so does the device.
	from = a.rec.mark()
	require.NoError(t, ws.Close(websocket.StatusNormalClosure, ""))
	a.rec.wait(t, from, "the page gone from the list", func(ev Event) bool {
		dc, ok := ev.(DevicesChanged)
		return ok && len(dc.Devices) == 0
	})
}

// Turning the web client off stops serving it; on again serves it anew.
func TestWebToggle(t *testing.T) {
	te, u := startWebEngine(t, "bob")
	from := te.rec.mark()
	require.NoError(t, te.SetWebListen(""))
	te.rec.wait(t, from, "web client off", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL == "" && s.Err == nil })
	assert.Empty(t, te.WebURL())
	_, err := net.DialTimeout("tcp", u.Host, time.Second)
	assert.Error(t, err, "nothing listens any more")

	from = te.rec.mark()
	require.NoError(t, te.SetWebListen("127.0.0.1:0"))
	ev := te.rec.wait(t, from, "web client on", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL != "" })
	_, err = httpGet(context.Background(), ev.(WebStatus).URL)
	require.NoError(t, err)

	assert.Error(t, te.SetWebListen("no port"))
	_, err = New(Config{ConfigDir: t.TempDir(), Name: "x", WebListen: ":99999"})
	assert.Error(t, err)
}

func itoa(n int) string { return strconv.Itoa(n) }

// httpGet fetches u and returns its body (status 200 only).
func httpGet(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// The page's port is taken (another peerdrop serves its page): the engine
// serves on a free port instead, and the URL says which.
func TestWebPortTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	cfg := testConfig(t, "bob")
	cfg.WebListen = held.Addr().String()
	te := runEngine(t, cfg)
	ev := te.rec.wait(t, 0, "web client served", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && (s.URL != "" || s.Err != nil) })
	st := ev.(WebStatus)
	require.NoError(t, st.Err)
	u, err := url.Parse(st.URL)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", u.Hostname())
	assert.NotEqual(t, itoa(held.Addr().(*net.TCPAddr).Port), u.Port(), "another port")
	body, err := httpGet(t.Context(), st.URL+"api/info")
	require.NoError(t, err)
	assert.Contains(t, string(body), `"name":"bob"`)
}

// A page sends to a device the engine sees nearby: /api/devices lists it
// and /ws/dial connects the page's handshake to it, by id only.
func TestWebPageDialsNearby(t *testing.T) {
	b, u := startWebEngine(t, "bob")
	a := startEngine(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var port int
	require.Eventually(t, func() bool {
		_, p, err := net.SplitHostPort(a.Addr())
		port, _ = strconv.Atoi(p)
		return err == nil && port > 0
	}, waitFor, 10*time.Millisecond)
	// As the browser would report it: alice on loopback.
	b.onDiscovery(discovery.Event{Kind: discovery.Appeared, Device: discovery.Device{
		Info: discovery.Info{Device: device.Device{ID: a.Self().ID, Name: "alice", Type: "desktop", Fingerprint: a.Fingerprint()}, Version: int(signaling.Version)},
		Port: port, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}})

	resp, err := httpGet(ctx, "http://"+u.Host+"/api/devices")
	require.NoError(t, err)
	var list []web.Nearby
	require.NoError(t, json.Unmarshal(resp, &list))
	assert.Equal(t, []web.Nearby{{DeviceID: a.Self().ID, Name: "alice", Type: "desktop", Fingerprint: a.Fingerprint()}}, list)

	pc := peertest.Config(t, "Phone (web)")
	ws, _, err := websocket.Dial(ctx, wsURL(u, "/ws/dial?id="+url.QueryEscape(a.Self().ID)), nil)
	require.NoError(t, err)
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	c, err := peer.DialConn(ctx, conn, pc, nil)
	_ = conn.Close()
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, a.Self().ID, c.Remote.ID, "through bob's bridge to alice")
	assert.Equal(t, a.Fingerprint(), c.Remote.Fingerprint)

	_, resp2, err := websocket.Dial(ctx, wsURL(u, "/ws/dial?id=someone-else"), nil)
	require.Error(t, err)
	require.NotNil(t, resp2)
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)
}

// With no network, the web client's URL names loopback (all a phone could
// be told); when the network comes up the engine reports the LAN address by
// itself, and follows it when it changes.
func TestWebURLFollowsNetwork(t *testing.T) {
	var host atomic.Value
	host.Store("127.0.0.1") // no network yet
	cfg := testConfig(t, "bob")
	cfg.WebListen = "127.0.0.1:0"
	te := runEngineWith(t, cfg, func(e *Engine) {
		e.web.urlEvery = 10 * time.Millisecond
		e.web.urlFor = func(a net.Addr) string {
			return "http://" + net.JoinHostPort(host.Load().(string), strconv.Itoa(a.(*net.TCPAddr).Port)) + "/"
		}
	})
	first := te.rec.wait(t, 0, "web client served", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL != "" }).(WebStatus)
	assert.Contains(t, first.URL, "http://127.0.0.1:")
	_, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(first.URL, "http://"), "/"))
	require.NoError(t, err)

	mark := te.rec.mark()
	host.Store("192.0.2.7") // Wi-Fi connected
	want := "http://192.0.2.7:" + port + "/"
	te.rec.wait(t, mark, "the LAN address", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL == want })
	assert.Equal(t, want, te.WebURL())

	mark = te.rec.mark()
	host.Store("192.0.2.8") // another network
	te.rec.wait(t, mark, "the new address", func(ev Event) bool {
		s, ok := ev.(WebStatus)
		return ok && s.URL == "http://192.0.2.8:"+port+"/"
	})
	assert.Equal(t, 1, te.rec.count(func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL == want }),
		"one event per change")
}
