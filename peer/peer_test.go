package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// verifyNoLeaks checks, after every other cleanup of t has run, that the test
// left no goroutine behind: pion's ICE, DTLS and SCTP workers must all be
// gone once Serve has returned and both Conns are closed. goleak retries for
// a while, which covers goroutines that are finishing on their own.
func verifyNoLeaks(t *testing.T) { t.Helper(); testkit.VerifyNoLeaks(t) }

func newConfig(t *testing.T, name string) Config {
	return Config{Identity: testkit.Identity(t), Name: name}
}

// testServer is a real Listener serving on 127.0.0.1.
type testServer struct {
	ln      *Listener
	addr    string
	handled atomic.Int32 // connections handed to the handler
	errs    chan error   // handshakes that failed (OnError)
}

// startServer listens on 127.0.0.1:0 and serves with handle until the test
// ends; setup, when set, configures the Listener before Serve starts. The
// cleanup cancels Serve and waits for it (and so for every handler) to return.
func startServer(t *testing.T, cfg Config, setup func(*Listener), handle func(context.Context, *Conn)) *testServer {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	s := &testServer{ln: ln, addr: ln.Addr().String(), errs: make(chan error, 16)}
	ln.OnError = func(_ net.Addr, err error) {
		select {
		case s.errs <- err:
		default:
		}
	}
	if setup != nil {
		setup(ln)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- ln.Serve(ctx, func(ctx context.Context, c *Conn) {
			s.handled.Add(1)
			handle(ctx, c)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			assert.NoError(t, err, "Serve")
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context was cancelled")
		}
	})
	return s
}

func (s *testServer) nextError(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the listener reported no failed handshake")
		return nil
	}
}

// closeAndWait is a handler body: it holds the connection until it ends or
// the server stops, then closes it.
func closeAndWait(ctx context.Context, c *Conn) {
	defer c.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
	}
}

func refuseHandler(t *testing.T) func(context.Context, *Conn) {
	return func(_ context.Context, c *Conn) {
		t.Error("handler called for a connection that must have been refused")
		_ = c.Close()
	}
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustDial(t *testing.T, addr string, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(dialCtx(t), addr, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitDone(t *testing.T, c *Conn, within time.Duration, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(within):
		t.Fatalf("%s: Done() not closed within %s", what, within)
	}
}

func TestDialEcho(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender ☺")

	serverSide := make(chan *Conn, 1)
	handlerDone := make(chan struct{})
	srv := startServer(t, srvCfg, nil, func(ctx context.Context, c *Conn) {
		defer close(handlerDone)
		defer c.Close()
		serverSide <- c
		dc := c.DataChannel()
		for {
			select {
			case m := <-c.Messages():
				if m.IsString {
					_ = dc.SendText("echo:" + string(m.Data))
				} else {
					_ = dc.Send(m.Data)
				}
			case <-c.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	})

	conn := mustDial(t, srv.addr, cliCfg)
	assert.Equal(t, srvCfg.Identity.DeviceID, conn.Remote.ID)
	assert.Equal(t, "Receiver", conn.Remote.Name)
	assert.Equal(t, srvCfg.Identity.Fingerprint, conn.Remote.Fingerprint)
	assert.Equal(t, int(signaling.Version), conn.Remote.Version)

	dc := conn.DataChannel()
	require.NotNil(t, dc)
	assert.Equal(t, ChannelLabel, dc.Label())
	assert.Equal(t, webrtc.DataChannelStateOpen, dc.ReadyState(), "Dial returns an open channel")
	assert.True(t, dc.Ordered())

	var srvConn *Conn
	select {
	case srvConn = <-serverSide:
	case <-time.After(10 * time.Second):
		t.Fatal("handler was not called")
	}
	assert.Equal(t, cliCfg.Identity.DeviceID, srvConn.Remote.ID)
	assert.Equal(t, "Sender ☺", srvConn.Remote.Name)
	assert.Equal(t, cliCfg.Identity.Fingerprint, srvConn.Remote.Fingerprint)
	assert.Equal(t, ChannelLabel, srvConn.DataChannel().Label())

	msgs := conn.Messages()

	// Say hello until the echo proves the handler listens.
	gotEcho := false
	for i := 0; i < 50 && !gotEcho; i++ {
		require.NoError(t, dc.SendText(fmt.Sprintf("ping %d", i)))
		deadline := time.After(200 * time.Millisecond)
	wait:
		for {
			select {
			case m := <-msgs:
				require.True(t, m.IsString)
				require.Regexp(t, `^echo:ping \d+$`, string(m.Data))
				gotEcho = true
				break wait
			case <-deadline:
				break wait
			}
		}
	}
	require.True(t, gotEcho, "no echo")

	// Now every message must come back, in order, text and binary.
	big := bytes.Repeat([]byte("0123456789abcdef"), (MaxMessageSize-1024)/16)
	require.NoError(t, dc.SendText("hello over webrtc"))
	require.NoError(t, dc.Send(big))
	require.NoError(t, dc.SendText("bye"))
	want := []struct {
		text bool
		data []byte
	}{{true, []byte("echo:hello over webrtc")}, {false, big}, {true, []byte("echo:bye")}}
	for i, w := range want {
		var m datachan.Message
		for {
			select {
			case m = <-msgs:
			case <-time.After(10 * time.Second):
				t.Fatalf("echo %d did not arrive", i)
			}
			if !m.IsString || !strings.HasPrefix(string(m.Data), "echo:ping ") {
				break
			} // else a late echo of an earlier ping
		}
		assert.Equal(t, w.text, m.IsString, "message %d", i)
		assert.True(t, bytes.Equal(w.data, m.Data), "message %d: got %d bytes", i, len(m.Data))
	}

	require.NoError(t, conn.Close())
	require.NoError(t, conn.Close(), "Close is idempotent")
	waitDone(t, conn, time.Second, "closed conn")
	select {
	case <-handlerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("server side did not notice the close")
	}
	assert.EqualValues(t, 1, srv.handled.Load())
}

// TestFirstMessageIsDelivered sends right after Dial returns, as
// transfer.Sender does with its offer: pion drops messages that arrive while
// no handler is set, so Conn must set one before the channel opens.
func TestFirstMessageIsDelivered(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	got := make(chan string, 1)
	srv := startServer(t, srvCfg, nil, func(ctx context.Context, c *Conn) {
		select {
		case m := <-c.Messages():
			got <- string(m.Data)
		case <-c.Done():
		case <-ctx.Done():
		}
		closeAndWait(ctx, c)
	})
	for i := range 20 {
		conn := mustDial(t, srv.addr, cliCfg)
		require.NoError(t, conn.DataChannel().SendText("first"))
		select {
		case m := <-got:
			assert.Equal(t, "first", m)
		case <-time.After(3 * time.Second):
			t.Fatalf("connection %d: the first message was lost", i)
		}
		require.NoError(t, conn.Close())
	}
}

func TestCloseNotifiesOtherSide(t *testing.T) {
	for _, closer := range []string{"dialer", "listener"} {
		t.Run(closer+" closes", func(t *testing.T) {
			verifyNoLeaks(t)
			srvCfg := newConfig(t, "Receiver")
			cliCfg := newConfig(t, "Sender")
			serverSide := make(chan *Conn, 1)
			handlerDone := make(chan struct{})
			closeNow := make(chan struct{})
			srv := startServer(t, srvCfg, nil, func(ctx context.Context, c *Conn) {
				defer close(handlerDone)
				serverSide <- c
				if closer == "listener" {
					select {
					case <-closeNow:
					case <-ctx.Done():
					}
					assert.NoError(t, c.Close())
					return
				}
				closeAndWait(ctx, c)
			})
			conn := mustDial(t, srv.addr, cliCfg)
			var srvConn *Conn
			select {
			case srvConn = <-serverSide:
			case <-time.After(10 * time.Second):
				t.Fatal("handler was not called")
			}

			var closing, other *Conn
			if closer == "dialer" {
				closing, other = conn, srvConn
			} else {
				closing, other = srvConn, conn
			}
			select {
			case <-other.Done():
				t.Fatal("Done closed before anyone closed the connection")
			case <-time.After(50 * time.Millisecond):
			}
			if closer == "dialer" {
				require.NoError(t, closing.Close())
			} else {
				close(closeNow)
			}
			waitDone(t, closing, 5*time.Second, "closing side")
			waitDone(t, other, 5*time.Second, "other side")
			assert.NoError(t, other.Close())
			select {
			case <-handlerDone:
			case <-time.After(10 * time.Second):
				t.Fatal("handler did not return")
			}
		})
	}
}

func TestListenerCheckRefuses(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	var checked atomic.Pointer[signaling.Hello]
	srv := startServer(t, srvCfg, func(ln *Listener) {
		ln.Check = func(h signaling.Hello) error {
			checked.Store(&h)
			return errors.New("this device is not paired")
		}
	}, refuseHandler(t))

	conn, err := Dial(dialCtx(t), srv.addr, cliCfg, nil)
	require.Error(t, err)
	assert.Nil(t, conn)
	assert.Contains(t, err.Error(), "this device is not paired")
	var re *signaling.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, signaling.CodeRefused, re.Code)

	h := checked.Load()
	require.NotNil(t, h, "Check was not called")
	assert.Equal(t, cliCfg.Identity.DeviceID, h.ID)
	assert.Equal(t, cliCfg.Identity.Fingerprint, h.Fingerprint)

	assert.ErrorContains(t, srv.nextError(t), "this device is not paired")
	assert.Zero(t, srv.handled.Load())
}

func TestDialCheckRefuses(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	srv := startServer(t, srvCfg, nil, refuseHandler(t))

	var seen signaling.Hello
	conn, err := Dial(dialCtx(t), srv.addr, cliCfg, func(h signaling.Hello) error {
		seen = h
		return errors.New("not the device I meant")
	})
	require.Error(t, err)
	assert.Nil(t, conn)
	assert.Contains(t, err.Error(), "not the device I meant")
	assert.Equal(t, srvCfg.Identity.Fingerprint, seen.Fingerprint)

	var re *signaling.RemoteError
	require.ErrorAs(t, srv.nextError(t), &re, "the listener is told why")
	assert.Equal(t, signaling.CodeRefused, re.Code)
	assert.Contains(t, re.Message, "not the device I meant")
	assert.Zero(t, srv.handled.Load())
}

func TestDialSelfRefused(t *testing.T) {
	verifyNoLeaks(t)
	cfg := newConfig(t, "Me")
	srv := startServer(t, cfg, nil, refuseHandler(t))
	_, err := Dial(dialCtx(t), srv.addr, cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "this device itself")
	srv.nextError(t)
	assert.Zero(t, srv.handled.Load())
}

func TestDialNoListener(t *testing.T) {
	verifyNoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Dial(dialCtx(t), addr, newConfig(t, "Sender"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
}

func TestDialSilentPeerHonoursContext(t *testing.T) {
	verifyNoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept() // accept and say nothing
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, ln.Addr().String(), newConfig(t, "Sender"), nil)
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("Dial ignored its context")
	}
}

func TestServeStopsOnClose(t *testing.T) {
	verifyNoLeaks(t)
	ln, err := Listen("127.0.0.1:0", newConfig(t, "Receiver"))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- ln.Serve(context.Background(), closeAndWait) }()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, ln.Close())
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	assert.Error(t, err, "port still open after Close")
}

func TestListenBadAddress(t *testing.T) {
	_, err := Listen("256.0.0.1:0", newConfig(t, "Receiver"))
	assert.Error(t, err)
}

// TestGarbageDoesNotStopServe checks that a bad handshake ends only its own
// connection: the listener goes on serving real peers.
func TestGarbageDoesNotStopServe(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	srv := startServer(t, srvCfg, nil, closeAndWait)

	raw, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	_, err = raw.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(5*time.Second)))
	f, err := signaling.ReadFrame(raw)
	require.NoError(t, err)
	assert.Equal(t, signaling.TypeHello, f.Type, "the listener speaks first")
	f, err = signaling.ReadFrame(raw)
	require.NoError(t, err)
	assert.Equal(t, signaling.TypeError, f.Type)
	_ = raw.Close()
	assert.ErrorIs(t, srv.nextError(t), signaling.ErrVersion)

	conn := mustDial(t, srv.addr, newConfig(t, "Sender"))
	assert.Equal(t, srvCfg.Identity.DeviceID, conn.Remote.ID)
	require.NoError(t, conn.Close())
}

// --- checkFingerprint -------------------------------------------------------

// realOffer returns an offer SDP made by pion with cfg's certificate.
func realOffer(t *testing.T, cfg Config) string {
	t.Helper()
	pc, err := cfg.newPeerConnection()
	require.NoError(t, err)
	defer func() { assert.NoError(t, pc.Close()) }()
	_, err = pc.CreateDataChannel(ChannelLabel, nil)
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	require.NoError(t, pc.SetLocalDescription(offer))
	sdp := pc.LocalDescription().SDP
	require.Contains(t, sdp, "a=fingerprint:")
	return sdp
}

var fingerprintLine = regexp.MustCompile(`(?m)^a=fingerprint:[^\r\n]*\r?\n`)

func TestCheckFingerprint(t *testing.T) {
	verifyNoLeaks(t)
	cfg := newConfig(t, "A")
	other := newConfig(t, "B")
	offer := realOffer(t, cfg)
	fp := cfg.Identity.Fingerprint

	t.Run("matching", func(t *testing.T) {
		assert.NoError(t, checkFingerprint(offer, fp))
	})
	t.Run("mismatching", func(t *testing.T) {
		err := checkFingerprint(offer, other.Identity.Fingerprint)
		assert.ErrorIs(t, err, ErrFingerprint)
	})
	t.Run("other algorithm same digest", func(t *testing.T) {
		err := checkFingerprint(offer, strings.Replace(fp, "sha-256", "sha-1", 1))
		assert.ErrorIs(t, err, ErrFingerprint)
	})
	t.Run("empty want", func(t *testing.T) {
		assert.ErrorIs(t, checkFingerprint(offer, ""), ErrFingerprint)
	})
	t.Run("none in sdp", func(t *testing.T) {
		stripped := fingerprintLine.ReplaceAllString(offer, "")
		require.NotContains(t, stripped, "fingerprint")
		err := checkFingerprint(stripped, fp)
		assert.ErrorIs(t, err, ErrFingerprint)
		assert.ErrorContains(t, err, "no fingerprint")
	})
	t.Run("want lower case", func(t *testing.T) {
		assert.NoError(t, checkFingerprint(offer, strings.ToLower(fp)))
	})
	t.Run("sdp lower case", func(t *testing.T) {
		lowered := fingerprintLine.ReplaceAllStringFunc(offer, strings.ToLower)
		require.NotEqual(t, offer, lowered)
		assert.NoError(t, checkFingerprint(lowered, fp))
	})
	t.Run("second fingerprint at session level mismatches", func(t *testing.T) {
		extra := "a=fingerprint:" + other.Identity.Fingerprint + "\r\n"
		mixed := strings.Replace(offer, "t=0 0\r\n", "t=0 0\r\n"+extra, 1)
		require.NotEqual(t, offer, mixed)
		assert.ErrorIs(t, checkFingerprint(mixed, fp), ErrFingerprint)
	})
	t.Run("second fingerprint in media mismatches", func(t *testing.T) {
		mixed := offer + "a=fingerprint:" + other.Identity.Fingerprint + "\r\n"
		assert.ErrorIs(t, checkFingerprint(mixed, fp), ErrFingerprint)
	})
	t.Run("garbage sdp", func(t *testing.T) {
		assert.Error(t, checkFingerprint("this is not sdp", fp))
		assert.Error(t, checkFingerprint("", fp))
	})
}

// --- man in the middle --------------------------------------------------------

// rewritingProxy forwards TCP connections to target, passing every handshake
// frame from the dialer through rewrite and the listener's bytes unchanged.
type rewritingProxy struct {
	addr      string
	rewritten atomic.Int32
}

func startRewritingProxy(t *testing.T, target string, toListener, toDialer func(signaling.Frame) signaling.Frame) *rewritingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &rewritingProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	pump := func(dst, src net.Conn, rewrite func(signaling.Frame) signaling.Frame) {
		defer wg.Done()
		defer dst.Close()
		defer src.Close()
		if rewrite == nil {
			_, _ = io.Copy(dst, src)
			return
		}
		for {
			f, err := signaling.ReadFrame(src)
			if err != nil {
				return
			}
			if err := signaling.WriteFrame(dst, rewrite(f)); err != nil {
				return
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Add(2)
			go pump(up, c, toListener)
			go pump(c, up, toDialer)
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return p
}

// swapFingerprint returns a rewrite that replaces the fingerprint in the SDP
// of frames of type ft by fp.
func (p *rewritingProxy) swapFingerprint(t *testing.T, ft signaling.FrameType, fp string) func(signaling.Frame) signaling.Frame {
	return func(f signaling.Frame) signaling.Frame {
		if f.Type != ft {
			return f
		}
		var s signaling.SDP
		if err := json.Unmarshal(f.Payload, &s); err != nil {
			t.Errorf("proxy: decode %s: %v", ft, err)
			return f
		}
		changed := fingerprintLine.ReplaceAllString(s.SDP, "a=fingerprint:"+fp+"\r\n")
		if changed == s.SDP {
			t.Errorf("proxy: no fingerprint to rewrite in the %s", ft)
			return f
		}
		s.SDP = changed
		payload, err := json.Marshal(s)
		if err != nil {
			t.Errorf("proxy: encode: %v", err)
			return f
		}
		p.rewritten.Add(1)
		return signaling.Frame{Type: f.Type, Payload: payload}
	}
}

func TestManInTheMiddleOfferRefused(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	mallory := newConfig(t, "Mallory")
	srv := startServer(t, srvCfg, nil, refuseHandler(t))

	// The rewrites count on mitm, declared before the proxy's goroutines.
	var mitm rewritingProxy
	proxy := startRewritingProxy(t, srv.addr, func(f signaling.Frame) signaling.Frame {
		return mitm.swapFingerprint(t, signaling.TypeOffer, mallory.Identity.Fingerprint)(f)
	}, nil)

	conn, err := Dial(dialCtx(t), proxy.addr, cliCfg, nil)
	require.Error(t, err)
	assert.Nil(t, conn)
	assert.EqualValues(t, 1, mitm.rewritten.Load(), "the proxy must have rewritten the offer")
	var re *signaling.RemoteError
	require.ErrorAs(t, err, &re, "the listener says why it stops")
	assert.Contains(t, re.Message, ErrFingerprint.Error())

	assert.ErrorIs(t, srv.nextError(t), ErrFingerprint)
	assert.Zero(t, srv.handled.Load(), "handler must never see the connection")
}

func TestManInTheMiddleAnswerRefused(t *testing.T) {
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	cliCfg := newConfig(t, "Sender")
	mallory := newConfig(t, "Mallory")
	// The listener answers in good faith and then waits for ICE checks that
	// never succeed; fail them sooner than the defaults so the test is quick.
	srvCfg.Tune = func(se *webrtc.SettingEngine) {
		se.SetICETimeouts(300*time.Millisecond, time.Second, 100*time.Millisecond)
	}
	handlerCalled := make(chan struct{}, 1)
	srv := startServer(t, srvCfg, nil, func(ctx context.Context, c *Conn) {
		handlerCalled <- struct{}{}
		_ = c.Close()
	})

	// The rewrites count on mitm, declared before the proxy's goroutines.
	var mitm rewritingProxy
	proxy := startRewritingProxy(t, srv.addr, nil, func(f signaling.Frame) signaling.Frame {
		return mitm.swapFingerprint(t, signaling.TypeAnswer, mallory.Identity.Fingerprint)(f)
	})

	start := time.Now()
	conn, err := Dial(dialCtx(t), proxy.addr, cliCfg, nil)
	require.Error(t, err)
	assert.Nil(t, conn)
	assert.EqualValues(t, 1, mitm.rewritten.Load(), "the proxy must have rewritten the answer")
	assert.ErrorIs(t, err, ErrFingerprint)
	assert.Less(t, time.Since(start), ConnectTimeout, "refused at once, not after a timeout")
	// The listener had answered in good faith; its side fails and is never handed out.
	assert.Error(t, srv.nextError(t))
	assert.Empty(t, handlerCalled)
}

func TestProxyPassThroughWorks(t *testing.T) {
	// The proxy itself is transparent: without rewriting, Dial through it
	// succeeds. This keeps the man-in-the-middle tests honest.
	verifyNoLeaks(t)
	srvCfg := newConfig(t, "Receiver")
	srv := startServer(t, srvCfg, nil, closeAndWait)
	proxy := startRewritingProxy(t, srv.addr, func(f signaling.Frame) signaling.Frame { return f }, func(f signaling.Frame) signaling.Frame { return f })
	conn := mustDial(t, proxy.addr, newConfig(t, "Sender"))
	assert.Equal(t, srvCfg.Identity.Fingerprint, conn.Remote.Fingerprint)
	require.NoError(t, conn.Close())
}

// SetSelf changes the name and type the listener's hello gives to the
// handshakes that follow (the device was renamed, or its type changed in
// Settings).
func TestListenerSetSelf(t *testing.T) {
	verifyNoLeaks(t)
	cfg := newConfig(t, "Old name")
	cfg.Type = "laptop"
	srv := startServer(t, cfg, nil, closeAndWait)
	c := mustDial(t, srv.addr, newConfig(t, "Sender"))
	assert.Equal(t, "Old name", c.Remote.Name)
	assert.Equal(t, "laptop", c.Remote.Type)
	c.Close()

	srv.ln.SetSelf("New name", "desktop")
	c = mustDial(t, srv.addr, newConfig(t, "Sender"))
	defer c.Close()
	assert.Equal(t, "New name", c.Remote.Name)
	assert.Equal(t, "desktop", c.Remote.Type)
}
