package localsend

// Attacks found in review, each run against the fix.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// Someone announces a known HTTPS device's fingerprint with "http" from
// its own address, to receive its files unencrypted: the device stays
// HTTPS where it was, and a pin proven over TLS refuses HTTP.
func TestDowngradeRefused(t *testing.T) {
	a, b := startHost(t, "Alice", func(c *Config) { c.AllowHTTP = true }), startHost(t, "Bob", nil)
	one := writeFile(t, t.TempDir(), "one.bin", 100)
	_, err := sendFiles(t, a, b, "", one) // pins Bob over TLS
	require.NoError(t, err)
	real := b.device()
	a.node.saw(real.Info, real.Addr)
	fake := real.Info
	fake.Protocol = ProtocolHTTP
	a.node.saw(fake, netip.MustParseAddrPort("127.0.0.66:53317"))
	list := a.node.Devices()
	require.Len(t, list, 1)
	assert.Equal(t, real.Addr, list[0].Addr, "the address did not move")
	assert.True(t, list[0].Encrypted(), "still HTTPS")
	spoof := Device{Info: fake, Addr: netip.MustParseAddrPort("127.0.0.66:53317")}
	_, err = a.node.Dial(context.Background(), spoof, "")
	require.ErrorIs(t, err, trust.ErrIdentityChanged, "a pin proven over TLS refuses HTTP")
}

// One address cannot fill the device list.
func TestDevicesPerSourceBounded(t *testing.T) {
	a := startHost(t, "Alice", nil)
	src := netip.MustParseAddrPort("127.0.0.9:53317")
	for i := range 50 {
		a.node.saw(Info{Alias: "Fake " + strconv.Itoa(i), Fingerprint: fmt.Sprintf("fp%d", i), Protocol: ProtocolHTTPS}, src)
	}
	assert.Len(t, a.node.Devices(), maxDevicesPerSource)
	a.node.saw(Info{Alias: "Real", Fingerprint: "real", Protocol: ProtocolHTTPS}, netip.MustParseAddrPort("127.0.0.10:53317"))
	assert.Len(t, a.node.Devices(), maxDevicesPerSource+1, "another address is listed")
}

// Concurrent wrong PINs from one address are counted as they come: no
// more than pinAttempts get an answer other than 429.
func TestConcurrentPINGuesses(t *testing.T) {
	h := startHost(t, "Bob", func(c *Config) { c.PIN = "999999" })
	c, base := raw(h)
	defer c.CloseIdleConnections()
	body := prepareBody(map[string]FileInfo{"f": {ID: "f", FileName: "a.txt", Size: 1}})
	var wrong atomic.Int32
	var wg sync.WaitGroup
	for i := range maxConnsPerIP - 2 {
		wg.Go(func() {
			status, _ := post(t, c, base+"/prepare-upload?pin="+strconv.Itoa(i), body)
			if status == http.StatusUnauthorized {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, int(wrong.Load()), pinAttempts)
}

// A sender that holds one prepare-upload open with a slow body: a second
// is refused at once (409) without its body being read, and the slow one
// is cut off after bodyTimeout.
func TestSlowPrepareBody(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 500 * time.Millisecond
	t.Cleanup(func() { bodyTimeout = old })
	h := startHost(t, "Bob", nil)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", h.node.Port()), &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /api/localsend/v2/prepare-upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"info\":")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	c, base := raw(h)
	defer c.CloseIdleConnections()
	status, _ := post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"f": {ID: "f", FileName: "a.txt", Size: 1}}))
	assert.Equal(t, http.StatusConflict, status)
	// The slow one gets its answer (400) once its time is up, and the
	// server is free again.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	status, body := post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"f": {ID: "f", FileName: "a.txt", Size: 1}}))
	assert.Equal(t, http.StatusOK, status, body)
}

// A LocalSend receiver that refuses an upload at once: the sender hears
// of it at once (it does not stream the whole file into nothing), and the
// session left with an unused token is cancelled, so that the receiver is
// free for others.
func TestUploadRefusedEndsSession(t *testing.T) {
	var cancels, uploads atomic.Int32
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	defer srv.Close()
	fp := Fingerprint(srv.TLS.Certificates[0].Certificate[0])
	info := Info{Alias: "Refuser", Version: "2.1", Fingerprint: fp}
	mux.HandleFunc("GET /api/localsend/v2/info", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, info) })
	mux.HandleFunc("POST /api/localsend/v2/prepare-upload", func(w http.ResponseWriter, r *http.Request) {
		var p PrepareRequest
		_ = json.NewDecoder(r.Body).Decode(&p)
		resp := PrepareResponse{SessionID: "s", Files: map[string]string{}}
		for id := range p.Files {
			resp.Files[id] = "t" + id
		}
		writeJSON(w, 200, resp)
	})
	mux.HandleFunc("POST /api/localsend/v2/upload", func(w http.ResponseWriter, r *http.Request) {
		uploads.Add(1)
		fail(w, http.StatusInternalServerError, "disk full")
	})
	mux.HandleFunc("POST /api/localsend/v2/cancel", func(w http.ResponseWriter, r *http.Request) {
		cancels.Add(1)
		writeJSON(w, 200, errorBody{Message: "ok"})
	})
	a := startHost(t, "Alice", nil)
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	d := Device{Info: info, Addr: ap}
	d.Protocol = ProtocolHTTPS
	big := writeFile(t, t.TempDir(), "big.bin", 64<<20)
	offer, err := transfer.NewOffer([]string{big}, "")
	require.NoError(t, err)
	var sent atomic.Int64
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, ReconnectWindow: time.Millisecond,
		Dial: func(ctx context.Context) (transfer.Link, error) { return a.node.Dial(ctx, d, "") },
		OnEvent: func(ev transfer.Event) {
			if p, ok := ev.(transfer.Progress); ok {
				sent.Store(p.Bytes)
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.Run(ctx)
	require.ErrorIs(t, err, transfer.ErrIncomplete)
	require.Len(t, res.Failed, 1)
	assert.Contains(t, res.Failed[0].Message, "disk full")
	assert.NotContains(t, res.Failed[0].Message, "pin=", "no URL in the words")
	assert.EqualValues(t, 1, uploads.Load())
	require.Eventually(t, func() bool { return cancels.Load() == 1 }, 5*time.Second, 10*time.Millisecond, "the session with an unused token is cancelled")
	t.Logf("streamed %d of %d bytes before the sender heard", sent.Load(), 64<<20)
}
