package rendezvous

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/redistest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(benchServerEnv); mode != "" {
		os.Exit(runBenchServer(mode)) // a BenchmarkRelay child
	}
	if spec := os.Getenv(benchCrowdEnv); spec != "" {
		os.Exit(runCrowd(spec)) // a BenchmarkScaleOut child
	}
	goleak.VerifyTestMain(m)
}

const waitFor = 5 * time.Second

type harness struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	url   string
	clock *testkit.Clock
}

// newHarness runs a server on loopback. Tests take the client address from
// X-Forwarded-For so that one machine can play many addresses.
func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	clock := testkit.NewClock()
	cfg := Config{Now: clock.Now, ClientIPHeader: "X-Forwarded-For", Store: testStore(t)}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	h := &harness{t: t, srv: srv, ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", clock: clock}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		ts.Close()
	})
	return h
}

// storeEnv names the store every harness uses: "redis" runs the whole
// suite on a private Redis per test (make test runs it both ways).
const storeEnv = "PEERDROP_TEST_STORE"

// testStore is the store of a new harness: nil (the memory store) unless
// storeEnv asks for Redis.
func testStore(t testing.TB) Store {
	if os.Getenv(storeEnv) != "redis" {
		return nil
	}
	return newRedisStore(t, redistest.Start(t).URL(), "")
}

func newRedisStore(t testing.TB, url, prefix string) Store {
	st, err := NewRedisStore(RedisOptions{URL: url, Prefix: prefix})
	require.NoError(t, err)
	return st
}

var devices atomic.Int64

// testHello returns a valid hello for a new device.
func testHello(name string) Hello {
	n := devices.Add(1)
	sum := sha256.Sum256([]byte(name + fmt.Sprint(n)))
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	fp := "sha-256 " + strings.Join(pairs, ":")
	return Hello{
		ID:          identity.DeviceIDFor(fp),
		Name:        name,
		Type:        "laptop",
		Fingerprint: fp,
	}
}

func xff(ip string) DialOption {
	return WithHTTPHeader(http.Header{"X-Forwarded-For": {ip}})
}

// dial connects a client from ip; it is closed when the test ends.
func (h *harness) dial(ip string, hello Hello) *Client {
	h.t.Helper()
	c, err := h.tryDial(ip, hello)
	require.NoError(h.t, err)
	return c
}

func (h *harness) tryDial(ip string, hello Hello, opts ...DialOption) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := Dial(ctx, h.url, hello, append([]DialOption{xff(ip)}, opts...)...)
	if err == nil {
		h.t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// expectEvent returns the client's next event.
func expectEvent(t testing.TB, c *Client) Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		require.True(t, ok, "events closed: %v", c.Err())
		return ev
	case <-time.After(waitFor):
		t.Fatalf("no event for %s", c.ClientID())
	}
	return nil
}

func expectType[T Event](t testing.TB, c *Client) T {
	t.Helper()
	ev := expectEvent(t, c)
	v, ok := ev.(T)
	require.True(t, ok, "got %#v, want %T", ev, *new(T))
	return v
}

// noEvent checks that nothing arrives for a while.
func noEvent(t testing.TB, c *Client, d time.Duration) {
	t.Helper()
	select {
	case ev := <-c.Events():
		t.Fatalf("unexpected event for %s: %#v", c.ClientID(), ev)
	case <-time.After(d):
	}
}

// raw is a bare WebSocket to the server, for what the Client never sends.
type raw struct {
	t       testing.TB
	ws      *websocket.Conn
	welcome Envelope
}

func (h *harness) raw(ip string, hello *Hello) *raw {
	h.t.Helper()
	ctx := ctxT(h.t)
	ws, _, err := websocket.Dial(ctx, h.url, &websocket.DialOptions{
		Subprotocols: []string{Subprotocol},
		HTTPHeader:   http.Header{"X-Forwarded-For": {ip}},
	})
	require.NoError(h.t, err)
	ws.SetReadLimit(1 << 20)
	h.t.Cleanup(func() { _ = ws.CloseNow() })
	r := &raw{t: h.t, ws: ws}
	r.welcome = r.read()
	require.Equal(h.t, TypeWelcome, r.welcome.Type)
	if hello != nil {
		r.send(&Envelope{Type: TypeHello, Req: 1, Device: hello})
		require.Equal(h.t, TypeOK, r.read().Type)
	}
	return r
}

func (r *raw) send(e *Envelope) {
	r.t.Helper()
	b, err := json.Marshal(e)
	require.NoError(r.t, err)
	r.sendBytes(b)
}

func (r *raw) sendBytes(b []byte) {
	r.t.Helper()
	require.NoError(r.t, r.ws.Write(ctxT(r.t), websocket.MessageText, b))
}

func (r *raw) read() Envelope {
	r.t.Helper()
	e, err := r.tryRead()
	require.NoError(r.t, err)
	return e
}

func (r *raw) tryRead() (Envelope, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, data, err := r.ws.Read(ctx)
	if err != nil {
		return Envelope{}, err
	}
	var e Envelope
	require.NoError(r.t, json.Unmarshal(data, &e))
	return e, nil
}

// closeStatus reads until the server closes and returns its status.
func (r *raw) closeStatus() websocket.StatusCode {
	r.t.Helper()
	for {
		if _, err := r.tryRead(); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func httpGet(t testing.TB, h *harness, path string) (int, string) {
	t.Helper()
	resp, err := h.ts.Client().Get(h.ts.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func metricsText(t testing.TB, h *harness) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.srv.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}
