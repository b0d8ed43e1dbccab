//go:build linux

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	qrcode "github.com/skip2/go-qrcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/web"
)

// The web client off the LAN: `peerdrop serve` serves the page, which
// pairs with a code through the server (the PAKE in JavaScript), runs the
// handshake over a pipe of signal messages and WebRTC with the server's
// STUN/TURN, against the real CLI.

// startServeWithPage runs `peerdrop serve` on loopback and returns its
// WebSocket URL and the URL of the page it serves.
func startServeWithPage(t *testing.T, ctx context.Context) (wsURL, pageURL string) {
	t.Helper()
	p := start(t, ctx, "serve", false, "--config-dir", t.TempDir(), "--json",
		"serve", "--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0")
	ev := p.await("serving", nil)
	wsURL, pageURL = ev.str("url"), ev.str("web")
	require.Equal(t, "http://"+ev.str("address")+"/", pageURL, "serving: %s", ev)
	return wsURL, pageURL
}

func webContext(t *testing.T) context.Context {
	t.Helper()
	chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// offLANState is what the off-LAN tests read of window.peerdrop.state.
type offLANState struct {
	webState
	Mode        string
	Code        string
	Link        string
	Paired      []struct{ Name, DeviceID, Fingerprint string }
	Connections []struct {
		Peer       string
		Candidates []string
	}
}

func (p *page) offLAN() offLANState {
	p.t.Helper()
	var s offLANState
	require.NoError(p.t, json.Unmarshal([]byte(p.stateJSON()), &s), "page state")
	return s
}

// The page opened with the pairing link of `peerdrop receive --server`
// has the code filled in, pairs and sends a file; it arrives intact.
func TestWebOffLANSendsToReceiver(t *testing.T) {
	ctx := webContext(t)
	wsURL, pageURL := startServeWithPage(t, ctx)
	dl := t.TempDir()
	r, code := startRemoteReceiver(t, ctx, wsURL, dl)
	link := remote.PairingLink(wsURL, code)
	require.Equal(t, pageURL+"#"+code, link, "the CLI's pairing link opens the page")

	p := openBrowser(t, ctx, link, t.TempDir())
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	assert.Equal(t, "server", p.offLAN().Mode)
	typed, err := chromedp.Run(p.ctx, chromedp.Value(chromedp.CSS(`#code`)))
	require.NoError(t, err)
	assert.Equal(t, code, typed, "the link fills in the code")

	p.do(chromedp.Click(chromedp.CSS("#join")))
	p.poll(`window.peerdrop.state.paired.length > 0 || window.peerdrop.state.errors.length > 0`, 40*time.Second)
	st := p.offLAN()
	require.Empty(t, st.Errors)
	require.Len(t, st.Paired, 1)
	assert.Equal(t, receiverName, st.Paired[0].Name)
	require.Len(t, st.Connections, 1)
	assert.Contains(t, st.Connections[0].Candidates, "relay", "the page got a relayed candidate from the server's TURN (welcome's ice_servers)")

	src := t.TempDir()
	const size = 2*MiB + 333
	sum := writeRandomFile(t, filepath.Join(src, "from-the-page.bin"), size, 21)
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{filepath.Join(src, "from-the-page.bin")}))
	done := r.await("transfer-done", nil)
	assert.Empty(t, done.list("failed"), "transfer-done: %s", done)
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())
	assert.Equal(t, sum, sha256File(t, filepath.Join(dl, "from-the-page.bin")), "the file, byte for byte")
	p.poll(`window.peerdrop.state.sent.length >= 1`, 20*time.Second)
	st = p.offLAN()
	assert.Empty(t, st.Sent[0].Error)
	assert.Empty(t, st.Sent[0].Failed)
	requireNoLeftovers(t, dl)
}

// The page shows a code; `peerdrop send --server URL --code CODE` sends a
// file to it; the download is intact.
func TestWebOffLANReceivesFromSender(t *testing.T) {
	ctx := webContext(t)
	wsURL, pageURL := startServeWithPage(t, ctx)
	p, downloads := openShowingCode(t, ctx, pageURL)
	st := p.offLAN()
	code := st.Code
	require.Regexp(t, regexp.MustCompile(`^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$`), code)
	assert.Equal(t, pageURL+"#"+code, st.Link, "the page's pairing link")
	drawn, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`document.querySelector("#my-qr svg path").getAttribute("d").length > 100`))
	require.NoError(t, err)
	assert.True(t, drawn, "the link is drawn as a QR code")

	src := t.TempDir()
	const size = 3*MiB + 71
	sum := writeRandomFile(t, filepath.Join(src, "to-the-page.bin"), size, 22)
	s := startSender(t, ctx, "--server", wsURL, "--code", code, filepath.Join(src, "to-the-page.bin"))
	conn := s.await("connected", nil)
	assert.Equal(t, "server", conn.str("via"), "connected: %s", conn)
	p.poll(`document.querySelector("#offer-list .offer button.accept") !== null`, 30*time.Second)
	p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())

	p.poll(`window.peerdrop.state.received.some(f => f.path === "to-the-page.bin")`, 30*time.Second)
	st = p.offLAN()
	require.Len(t, st.Received, 1)
	assert.Equal(t, sum, st.Received[0].SHA256, "the SHA-256 the page computed")
	require.Len(t, st.Paired, 1)
	assert.Equal(t, senderName, st.Paired[0].Name)
	require.Len(t, st.Connections, 1)
	assert.Contains(t, st.Connections[0].Candidates, "relay", "the page got a relayed candidate from the server's TURN (welcome's ice_servers)")
	waitDownload(t, ctx, filepath.Join(downloads, "to-the-page.bin"), size)
	assert.Equal(t, sum, sha256File(t, filepath.Join(downloads, "to-the-page.bin")), "the downloaded file, byte for byte")
}

// A wrong code fails in plain words in the page and on the CLI, both
// ways, and nothing arrives.
func TestWebOffLANWrongCode(t *testing.T) {
	ctx := webContext(t)
	wsURL, pageURL := startServeWithPage(t, ctx)

	t.Run("the page types a wrong code", func(t *testing.T) {
		dl := t.TempDir()
		r, code := startRemoteReceiver(t, ctx, wsURL, dl)
		wrong := code[:12] + "00000"
		if wrong == code {
			wrong = code[:12] + "11111"
		}
		p := openBrowser(t, ctx, pageURL+"#"+wrong, t.TempDir())
		p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
		p.do(chromedp.Click(chromedp.CSS("#join")))
		p.poll(`window.peerdrop.state.errors.length > 0`, 40*time.Second)
		st := p.offLAN()
		assert.Contains(t, st.Errors[0], "the pairing code did not match")
		assert.Empty(t, st.Paired)
		shown, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS(`#status`)))
		require.NoError(t, err)
		assert.Contains(t, shown, "the pairing code did not match", "the page says so")
		assert.NotEqual(t, 0, r.wait(), "receive --once ends with the failed pairing")
		assert.Contains(t, r.stderr.String(), "the pairing code did not match")
		assert.Empty(t, snapshot(t, dl), "nothing arrived")
	})

	t.Run("the page types an unknown or malformed code", func(t *testing.T) {
		p := openBrowser(t, ctx, pageURL+"#7KQ2M-XW4PD-R8T3Z", t.TempDir())
		p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
		where, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`location.href`))
		require.NoError(t, err)
		assert.Equal(t, pageURL, where, "the code is gone from the address bar (replaced in the history)")
		filled, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector("#code").value`))
		require.NoError(t, err)
		assert.Equal(t, "7KQ2M-XW4PD-R8T3Z", filled)
		p.do(chromedp.Click(chromedp.CSS("#join")))
		p.poll(`window.peerdrop.state.errors.length > 0`, 20*time.Second)
		assert.Contains(t, p.offLAN().Errors[0], "no such pairing code (expired or already used?)")
		p.do(chromedp.SetValue(chromedp.CSS("#code"), "7KQ2M-XW4PD"), chromedp.Click(chromedp.CSS("#join")))
		p.poll(`window.peerdrop.state.errors.length > 1`, 20*time.Second)
		assert.Contains(t, p.offLAN().Errors[1], "a pairing code is 15 letters and digits")
		assert.Empty(t, p.offLAN().Paired)
	})

	t.Run("a link with a malformed code", func(t *testing.T) {
		p := openBrowser(t, ctx, pageURL+"#7KQ2M%", t.TempDir())
		p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
		require.NotEmpty(t, p.offLAN().Errors, "the page says what is wrong")
		assert.Contains(t, p.offLAN().Errors[0], "a pairing code is 15 letters and digits")
		got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector("#code").value + " " + location.hash`))
		require.NoError(t, err)
		assert.Equal(t, "7KQ2M% ", got, "the fragment as it was, in the field; not in the address")
	})

	t.Run("the CLI types a wrong code", func(t *testing.T) {
		p, downloads := openShowingCode(t, ctx, pageURL)
		code := p.offLAN().Code
		wrong := code[:12] + "00000"
		if wrong == code {
			wrong = code[:12] + "11111"
		}
		file := writeFile(t, t.TempDir(), "a.txt", "must not arrive\n")
		s := startSender(t, ctx, "--server", wsURL, "--code", wrong, file)
		assert.Equal(t, 1, s.wait())
		assert.Contains(t, s.stderr.String(), "the pairing code did not match")
		assert.Empty(t, s.all("connected"))
		p.poll(`window.peerdrop.state.errors.length > 0`, 20*time.Second)
		assert.Contains(t, p.offLAN().Errors[0], "the pairing code did not match")
		// The code a failed run used is retired: the page shows a new one.
		p.poll(`window.peerdrop.state.code !== `+strconv.Quote(code), 20*time.Second)
		shown, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS(`#status`)))
		require.NoError(t, err)
		assert.Contains(t, shown, "The last pairing failed (the pairing code did not match", "the reason stays on screen with the new code")
		assert.Contains(t, shown, "here is a new code")
		s = startSender(t, ctx, "--server", wsURL, "--code", code, file)
		assert.Equal(t, 1, s.wait())
		assert.Contains(t, s.stderr.String(), "no such pairing code")
		assert.Empty(t, p.offLAN().Received)
		assertPageGotNothing(t, p, downloads)
	})
}

// openShowingCode opens the page off the LAN, saving to a fresh downloads
// folder, and has it show a pairing code.
func openShowingCode(t *testing.T, ctx context.Context, pageURL string) (p *page, downloads string) {
	t.Helper()
	downloads = t.TempDir()
	p = openBrowser(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.do(chromedp.Click(chromedp.CSS("#create")))
	p.poll(`window.peerdrop.state.code !== ''`, 20*time.Second)
	return p, downloads
}

// assertPageGotNothing checks that no offer reached the page and nothing
// was saved.
func assertPageGotNothing(t *testing.T, p *page, downloads string) {
	t.Helper()
	assert.Empty(t, p.offLAN().Offers, "no offer reached the page")
	entries, err := os.ReadDir(downloads)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was saved")
}

// The PAKE in the page computes the test vectors of
// docs/PROTOCOL-pairing.md P.9.
func TestWebPAKEVectors(t *testing.T) {
	ctx := webContext(t)
	_, pageURL := startServeWithPage(t, ctx)
	p := openBrowser(t, ctx, pageURL, t.TempDir())
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](
		`import("./pake.js").then(m => JSON.stringify(m.vectors()))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(got), &v), "vectors: %s", got)
	want := map[string]string{
		"pw":     "4b0ea924f00659619a8106ef8bb7d7947abf13d3bf35f81617dee13ace390823",
		"X":      "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
		"Y":      "047cf27b188d034f7e8a52380304b51ac3c08969e277f21b35a60b48fc4766997807775510db8ed040293d9ac69f7430dbba7dade63ce982299e04b79d227873d1",
		"TH":     "4a90c6df574a23f2b197680bf9849443deeecd930ae7b413e7c63e318d00a678",
		"k_I":    "a3a4484786ad391799dcd08a71df026d05ce500df286cc5c0d51229e15452acc",
		"k_R":    "64e3778f7fa10d7b645c493325d8ef4c7a655be77c372088c8777faf8809908d",
		"mac_R":  "36e28d6eeaa739d8c53459271ef9f2ae72292e0779cb57979a0dd547741a6f8a",
		"mac_I":  "5bca929bbe0d5baffab80fd23302ef0f8ea30c4df074209a6afac6d568f1bc39",
		"mac_ok": "5ffe690f98e9c72a064284565c6435ba44b24aa812875995cc73a188133d975c",
	}
	for k, hex := range want {
		assert.Equal(t, hex, v[k], "%s (P.9)", k)
	}
	for _, k := range []string{"U_on_curve", "V_on_curve", "order_ok"} {
		assert.Equal(t, true, v[k], k)
	}
	assert.False(t, strings.Contains(got, "NaN"))
}

// startSwappingServer serves the page, and its signaling WebSocket as a
// proxy to the real server at upstream that swaps every certificate
// fingerprint in the handshake frames it relays to the page (hello and
// SDP; the PAKE messages pass untouched): a server in the middle (P.7).
func startSwappingServer(t *testing.T, ctx context.Context, upstream string) string {
	t.Helper()
	fpRe := regexp.MustCompile(`([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}`)
	fake := strings.TrimSuffix(strings.Repeat("66:", 32), ":")
	// The device id goes with the fingerprint (it derives from it): a
	// careful server swaps both, so that the hello stays well formed.
	idRe := regexp.MustCompile(`"device_id":"[0-9a-f]{32}"`)
	fakeID := `"device_id":"` + strings.Repeat("66", 16) + `"`
	swap := func(msg []byte) []byte {
		var env map[string]any
		if json.Unmarshal(msg, &env) != nil || env["type"] != "signal" {
			return msg
		}
		payload, _ := env["payload"].(map[string]any)
		data, _ := payload["data"].(string)
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil || len(b) == 0 || b[0] != signaling.Version {
			return msg // a PAKE message, or no data
		}
		b = idRe.ReplaceAll(fpRe.ReplaceAll(b, []byte(fake)), []byte(fakeID))
		payload["data"] = base64.StdEncoding.EncodeToString(b)
		out, err := json.Marshal(env)
		if err != nil {
			return msg
		}
		return out
	}
	pump := func(ctx context.Context, from, to *websocket.Conn, rewrite func([]byte) []byte) {
		for {
			typ, msg, err := from.Read(ctx)
			if err != nil {
				return
			}
			if err := to.Write(ctx, typ, rewrite(msg)); err != nil {
				return
			}
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", web.ServerSite())
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		page, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{rendezvous.Subprotocol}})
		if err != nil {
			return
		}
		defer page.CloseNow()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		up, _, err := websocket.Dial(ctx, upstream, &websocket.DialOptions{Subprotocols: []string{rendezvous.Subprotocol}})
		if err != nil {
			return
		}
		defer up.CloseNow()
		page.SetReadLimit(1 << 20)
		up.SetReadLimit(1 << 20)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer cancel()
			pump(ctx, page, up, func(b []byte) []byte { return b })
		}()
		pump(ctx, up, page, swap)
		cancel() // ends the other direction's Read
		<-done
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL + "/"
}

// A server that swaps the certificate fingerprints in the handshake is
// caught by the page, whichever side it is on, and nothing arrives.
func TestWebOffLANRefusesSwappedCertificate(t *testing.T) {
	ctx := webContext(t)
	wsURL, _ := startServeWithPage(t, ctx)
	pageURL := startSwappingServer(t, ctx, wsURL)
	const why = "not the device the pairing code authenticated"

	t.Run("the page joins", func(t *testing.T) {
		dl := t.TempDir()
		r, code := startRemoteReceiver(t, ctx, wsURL, dl)
		p := openBrowser(t, ctx, pageURL+"#"+code, t.TempDir())
		p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
		p.do(chromedp.Click(chromedp.CSS("#join")))
		p.poll(`window.peerdrop.state.errors.length > 0`, 40*time.Second)
		st := p.offLAN()
		assert.Contains(t, st.Errors[0], why)
		assert.Empty(t, st.Paired, "no device to send to")
		ev := r.await("error", nil)
		assert.Contains(t, ev.str("message"), "refused", "the receiver hears the page refuse: %s", ev)
		assert.Empty(t, snapshot(t, dl), "nothing arrived")
	})

	t.Run("the page shows the code", func(t *testing.T) {
		p, downloads := openShowingCode(t, ctx, pageURL)
		file := writeFile(t, t.TempDir(), "a.txt", "must not arrive\n")
		s := startSender(t, ctx, "--server", wsURL, "--code", p.offLAN().Code, file)
		assert.NotEqual(t, 0, s.wait())
		assert.Empty(t, s.all("connected"))
		assert.Contains(t, s.stderr.String(), "refused", "the sender says why")
		p.poll(`window.peerdrop.state.errors.length > 0`, 20*time.Second)
		st := p.offLAN()
		assert.Contains(t, st.Errors[0], why)
		assertPageGotNothing(t, p, downloads)
	})
}

// The page's QR encoder draws what the CLI's (skip2/go-qrcode, level M)
// draws, module for module, for one of the eight masks, from version 1 to
// past 7 (version information) and with several blocks.
func TestWebQRCode(t *testing.T) {
	ctx := webContext(t)
	_, pageURL := startServeWithPage(t, ctx)
	p := openBrowser(t, ctx, pageURL, t.TempDir())
	var texts []string
	for _, n := range []int{5, 14, 20, 40, 60, 80, 100, 120, 150, 180, 210, 300} {
		texts = append(texts, strings.Repeat("peerdrop/#", 40)[:n])
	}
	arg, err := json.Marshal(texts)
	require.NoError(t, err)
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`import("./qr.js").then(m => JSON.stringify(`+string(arg)+
		`.map(t => [0, 1, 2, 3, 4, 5, 6, 7].map(k => m.encode(t, k).modules.map(r => r.map(d => d ? "1" : "0").join("")).join("\n")))))`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	var js [][]string
	require.NoError(t, json.Unmarshal([]byte(got), &js))
	require.Len(t, js, len(texts))
	for i, text := range texts {
		q, err := qrcode.New(text, qrcode.Medium)
		require.NoError(t, err)
		q.DisableBorder = true
		var b strings.Builder
		for y, row := range q.Bitmap() {
			if y > 0 {
				b.WriteByte('\n')
			}
			for _, dark := range row {
				b.WriteByte("01"[btoi(dark)])
			}
		}
		assert.True(t, slices.Contains(js[i], b.String()), "%d bytes (version %d): no mask gives the reference's symbol", len(text), q.VersionNumber)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// send --relay-only to the page: the bytes go through the server's TURN,
// which the page reaches with the credentials of its welcome.
func TestWebOffLANRelayOnly(t *testing.T) {
	ctx := webContext(t)
	wsURL, pageURL := startServeWithPage(t, ctx)
	p, downloads := openShowingCode(t, ctx, pageURL)

	file := writeFile(t, t.TempDir(), "relayed.txt", "through the relay, to a browser\n")
	s := startSender(t, ctx, "--server", wsURL, "--code", p.offLAN().Code, "--relay-only", file)
	conn := s.await("connected", nil)
	assert.Equal(t, "relay", conn.str("route_local"), "connected: %s", conn)
	p.poll(`document.querySelector("#offer-list .offer button.accept") !== null`, 30*time.Second)
	p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	p.poll(`window.peerdrop.state.received.some(f => f.path === "relayed.txt")`, 30*time.Second)
	waitDownload(t, ctx, filepath.Join(downloads, "relayed.txt"), int64(len("through the relay, to a browser\n")))
	assert.Equal(t, sha256File(t, file), sha256File(t, filepath.Join(downloads, "relayed.txt")))
}

// A second "Pair" that fails leaves the device paired before as it was:
// the page still sends to it, connecting again through the server.
func TestWebOffLANFailedPairKeepsPaired(t *testing.T) {
	ctx := webContext(t)
	wsURL, pageURL := startServeWithPage(t, ctx)
	dl := t.TempDir()
	r, p := pairedPage(t, ctx, wsURL, pageURL, dl)

	src := t.TempDir()
	sent := 0
	send := func(name string) {
		t.Helper()
		path := writeFile(t, src, name, "to "+name+"\n")
		p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{path}))
		sent++
		p.poll(`window.peerdrop.state.sent.length >= `+strconv.Itoa(sent), 30*time.Second)
		require.Empty(t, p.offLAN().Sent[sent-1].Error, "%s", p.stateJSON())
		done := r.await("transfer-done", nil)
		assert.Empty(t, done.list("failed"), "transfer-done: %s", done)
		got, err := os.ReadFile(filepath.Join(dl, name))
		require.NoError(t, err)
		assert.Equal(t, "to "+name+"\n", string(got))
	}
	send("first.txt")

	p.do(chromedp.SetValue(chromedp.CSS("#code"), "7KQ2M-XW4PD-R8T3Z"), chromedp.Click(chromedp.CSS("#join")))
	p.poll(`window.peerdrop.state.errors.length > 0`, 20*time.Second)
	assert.Contains(t, p.offLAN().Errors[0], "no such pairing code")

	send("second.txt")
}

// pairedPage starts `receive --server wsURL` saving to dl (it goes on after
// its first offer) and a page off the LAN that pairs with its code.
func pairedPage(t *testing.T, ctx context.Context, wsURL, pageURL, dl string) (*proc, *page) {
	t.Helper()
	r := start(t, ctx, "receiver", false, "--config-dir", t.TempDir(), "--name", receiverName, "--json",
		"receive", "--server", wsURL, "--hidden", "--yes", "--dir", dl)
	code := r.await("pairing-code", nil).str("code")
	p := openBrowser(t, ctx, pageURL+"#"+code, t.TempDir())
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.do(chromedp.Click(chromedp.CSS("#join")))
	p.poll(`window.peerdrop.state.paired.length > 0 || window.peerdrop.state.errors.length > 0`, 40*time.Second)
	require.Empty(t, p.offLAN().Errors)
	return r, p
}
