package web

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// fakeDevice is a LAN receiver on loopback: it sends its hello first, reads the page's,
// answers with helloAs, then echoes one frame back. got receives the
// frames it read.
func fakeDevice(t *testing.T, helloAs string) (discovery.Device, chan signaling.Frame) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan signaling.Frame, 4)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		p, _ := json.Marshal(signaling.Hello{Device: device.Device{ID: idFor(helloAs), Name: "Bob", Fingerprint: fpFor(helloAs)}, Version: int(signaling.Version)})
		if signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeHello, Payload: p}) != nil {
			return
		}
		f, err := signaling.ReadFrame(c)
		if err != nil {
			return
		}
		got <- f
		f, err = signaling.ReadFrame(c)
		if err != nil {
			return
		}
		got <- f
		_ = signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeAnswer, Payload: []byte(`{"sdp":"v=0"}`)})
		_, _ = signaling.ReadFrame(c) // until the bridge closes
	})
	port := ln.Addr().(*net.TCPAddr).Port
	dev := discovery.Device{
		Info: discovery.Info{Device: device.Device{ID: idFor("bob1"), Name: "Bob", Type: "laptop", Fingerprint: fpFor("bob1")}, Version: int(signaling.Version)},
		Port: port, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}
	return dev, got
}

func dialServer(t *testing.T, devs ...discovery.Device) string {
	return testServer(t, &Server{
		Host:       Info{DeviceID: idFor("host1"), Name: "alice", Fingerprint: fpFor("host1"), Type: "laptop"},
		ListenHost: "127.0.0.1",
		Devices: func() []discovery.Device {
			// The serving device itself may be in its own list: never shown.
			return append([]discovery.Device{{Info: discovery.Info{Device: device.Device{ID: idFor("host1"), Name: "alice"}}, Port: 1, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}}, devs...)
		},
	})
}

// TestDevices: /api/devices lists what the process discovered, not itself.
func TestDevices(t *testing.T) {
	dev, _ := fakeDevice(t, "bob1")
	addr := dialServer(t, dev)
	resp, err := http.Get("http://" + addr + "/api/devices")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var list []Nearby
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	assert.Equal(t, []Nearby{{DeviceID: idFor("bob1"), Name: "Bob", Type: "laptop", Fingerprint: fpFor("bob1")}}, list)
}

// TestDialUnknown: the bridge dials only devices it discovered, by id.
func TestDialUnknown(t *testing.T) {
	dev, _ := fakeDevice(t, "bob1")
	addr := dialServer(t, dev)
	ctx := testCtx(t)
	for _, q := range []string{"?id=nobody", "?id=" + idFor("host1"), "?id=" + dev.Addresses()[0], "?id=", ""} {
		_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial"+q, nil)
		require.Error(t, err, q)
		require.NotNil(t, resp, q)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, q)
	}
	// Another site cannot use it either.
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial?id="+idFor("bob1"), &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": []string{"http://evil.example"}},
	})
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// TestDial: a known id is dialled and frames go both ways, one per message.
func TestDial(t *testing.T) {
	dev, got := fakeDevice(t, "bob1")
	addr := dialServer(t, dev)
	ctx := testCtx(t)
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial?id="+idFor("bob1"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
	assert.Equal(t, signaling.TypeHello, (<-got).Type)
	read := func() signaling.Frame {
		typ, p, err := ws.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, websocket.MessageBinary, typ)
		f, err := DecodeFrameMessage(p)
		require.NoError(t, err, "one frame per message")
		return f
	}
	hello := read()
	require.Equal(t, signaling.TypeHello, hello.Type)
	h, err := signaling.DecodeHello(hello.Payload)
	require.NoError(t, err)
	assert.Equal(t, idFor("bob1"), h.ID)
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeOffer, map[string]string{"sdp": "v=0"})))
	assert.Equal(t, signaling.TypeOffer, (<-got).Type)
	assert.Equal(t, signaling.TypeAnswer, read().Type)
	require.NoError(t, ws.Close(websocket.StatusNormalClosure, ""))
}

// TestDialWrongDevice: a device that answers as another one is cut off.
func TestDialWrongDevice(t *testing.T) {
	dev, got := fakeDevice(t, "mallory")
	addr := dialServer(t, dev)
	ctx := testCtx(t)
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial?id="+idFor("bob1"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
	_, _, err = ws.Read(ctx)
	require.Error(t, err, "the other hello never reaches the page")
	assert.Equal(t, websocket.StatusTryAgainLater, websocket.CloseStatus(err))
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, dialFailure, ce.Reason, "as for an unreachable device")
	select {
	case f := <-got:
		t.Fatalf("the page's %s frame reached a device that is not the one asked for", f.Type)
	default:
	}
}

// TestDialBadMessage: the page's messages are checked as on /ws/connect.
func TestDialBadMessage(t *testing.T) {
	dev, _ := fakeDevice(t, "bob1")
	addr := dialServer(t, dev)
	ctx := testCtx(t)
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial?id="+idFor("bob1"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx) // the device's hello, which comes first
	require.NoError(t, err)
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, []byte{1, 1, 0}))
	_, _, err = ws.Read(ctx)
	require.Error(t, err)
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err))
}

// TestDialUnreachable: a discovered device that does not answer closes the
// page's WebSocket with a reason.
func TestDialUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close()) // nothing listens there any more
	old := deviceHelloTimeout
	deviceHelloTimeout = 500 * time.Millisecond
	t.Cleanup(func() { deviceHelloTimeout = old })
	addr := dialServer(t, discovery.Device{
		Info: discovery.Info{Device: device.Device{ID: "gone1", Name: "Gone"}}, Port: port, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	})
	ctx := testCtx(t)
	began := time.Now()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial?id=gone1", nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx)
	took := time.Since(began)
	t.Logf("a closed port failed after %s", took.Round(time.Millisecond))
	// The refusal came at once, its answer only when a silent service's
	// would: a closed port looks like an open one.
	assert.GreaterOrEqual(t, took, deviceHelloTimeout, "answered before the hello's time: a closed port shows")
	require.Error(t, err)
	assert.Equal(t, websocket.StatusTryAgainLater, websocket.CloseStatus(err))
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, dialFailure, ce.Reason)
}

// TestDialSilentServiceGetsNothing: a discovered address where some other
// service listens (it never sends a peerdrop hello; think Redis) receives
// not one byte of the page's, and the page sees the same failure as for a
// closed port.
func TestDialSilentServiceGetsNothing(t *testing.T) {
	old := deviceHelloTimeout
	deviceHelloTimeout = 500 * time.Millisecond
	t.Cleanup(func() { deviceHelloTimeout = old })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	received := make(chan int, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		received <- len(b)
	})
	addr := dialServer(t, discovery.Device{
		Info: discovery.Info{Device: device.Device{ID: idFor("bob1"), Name: "Bob", Fingerprint: fpFor("bob1")}},
		Port: ln.Addr().(*net.TCPAddr).Port, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	})
	ctx := testCtx(t)
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/dial?id="+idFor("bob1"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	began := time.Now()
	require.NoError(t, ws.Write(ctx, websocket.MessageBinary, frameBytes(t, signaling.TypeHello, pageHello())))
	_, _, err = ws.Read(ctx)
	t.Logf("a silent service failed after %s", time.Since(began).Round(time.Millisecond))
	require.Error(t, err)
	assert.Equal(t, websocket.StatusTryAgainLater, websocket.CloseStatus(err))
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, dialFailure, ce.Reason, "as for a closed port")
	assert.Equal(t, 0, <-received, "bytes of the page reached the service")
}
