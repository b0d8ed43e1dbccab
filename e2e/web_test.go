//go:build linux

package e2e

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	cdpdevice "github.com/chromedp/chromedp/device"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/units"
	"github.com/thepeerdrop/peerdrop/internal/visible"
	"github.com/thepeerdrop/peerdrop/trust"
)

// The web client (web/static) in a real headless Chromium, against the
// real binary: `peerdrop receive --web` serves the page on loopback, the
// page registers to receive, and WebRTC runs between Chromium and pion.

// webTimeout bounds the whole web test (browser start, 50 MiB both ways).
const webTimeout = 4 * time.Minute

// chromiumPath finds Debian's chromium (make deps installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: the web client tests need it (make deps installs Debian's chromium)")
	return ""
}

// page is one browser tab on the web client.
type page struct {
	t     *testing.T
	ctx   context.Context // the chromedp tab context
	phone bool            // a phone's screen and touch: click taps
}

// openBrowser starts a headless Chromium with a fresh profile that saves
// downloads to downloads, and opens pageURL in it. It shows the page's
// host candidates as addresses and allows loopback ones, so that a page
// and a CLI connect on loopback.
func openBrowser(t *testing.T, ctx context.Context, pageURL, downloads string) *page {
	t.Helper()
	return openChromium(t, ctx, pageURL, downloads, false)
}

// openPhone is openBrowser with Chromium's default settings (host
// candidates behind .local names, no loopback ones: it needs the namespace
// LAN) and the screen, user agent and touch of a Pixel 5 (393 px wide).
func openPhone(t *testing.T, ctx context.Context, pageURL, downloads string) *page {
	t.Helper()
	return openChromium(t, ctx, pageURL, downloads, true)
}

func openChromium(t *testing.T, ctx context.Context, pageURL, downloads string, phone bool) *page {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	if !phone {
		// Plain host candidates: on loopback, .local names would need
		// mDNS on the test machine (a phone hides its addresses behind
		// them, and pion resolves them).
		opts = append(opts, chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
			chromedp.Flag("allow-loopback-in-peer-connection", true))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	_, err := chromedp.CallBrowser(tab, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	})
	require.NoError(t, err, "start chromium")
	p := &page{t: t, ctx: tab, phone: phone}
	if phone {
		p.do(chromedp.Emulate(cdpdevice.Pixel5))
	}
	p.do(chromedp.Navigate(pageURL))
	return p
}

// click clicks (on a phone: taps) the element matching the CSS selector.
func (p *page) click(selector string) {
	p.t.Helper()
	if p.phone {
		p.do(chromedp.ScrollIntoView(chromedp.CSS(selector)), chromedp.Tap(chromedp.CSS(selector)))
		return
	}
	p.do(chromedp.Click(chromedp.CSS(selector)))
}

// setFiles puts paths in the file input matching the CSS selector.
func (p *page) setFiles(selector string, paths ...string) {
	p.t.Helper()
	p.do(chromedp.SetUploadFiles(chromedp.CSS(selector), paths))
}

// navigate opens url in the tab.
func (p *page) navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// str evaluates a JavaScript expression whose value is a string.
func (p *page) str(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	require.NoError(p.t, err, "evaluate %s", expr)
	return v
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, steps...))
}

// poll waits until the JavaScript expression is truthy.
func (p *page) poll(expr string, timeout time.Duration) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		require.FailNowf(p.t, "page", "waiting for %s: %v; page state: %s", expr, err, p.stateJSON())
	}
}

// stateJSON is window.peerdrop.state, for failure messages.
func (p *page) stateJSON() string {
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(window.peerdrop && window.peerdrop.state)`))
	if err != nil {
		return err.Error()
	}
	return s
}

// state decodes window.peerdrop.state.
func (p *page) state() webState {
	p.t.Helper()
	var s webState
	require.NoError(p.t, json.Unmarshal([]byte(p.stateJSON()), &s), "page state")
	return s
}

type webState struct {
	Ready bool
	Port  int
	Sent  []struct {
		Files   int // offered
		Sent    int // arrived
		Bytes   int64
		Skipped []string
		Failed  []string
		Error   string
		Said    string // the transfer row's last words
	}
	Received []struct {
		Path   string
		Size   int64
		SHA256 string
	}
	Texts     []struct{ From, Text string }
	TextsSent []struct{ Text, Error string }
	Offers    []struct {
		ID        string
		From      string
		Files     int
		Declined  bool
		Withdrawn bool
		Code      string
	}
	Codes  []string // of the connections the page opened to send
	Errors []string
}

// waitDownload waits until dir/name holds size bytes (Chromium writes a
// .crdownload file and renames it when done).
func waitDownload(t *testing.T, ctx context.Context, path string, size int64) {
	t.Helper()
	for {
		if info, err := os.Stat(path); err == nil && info.Size() == size {
			return
		}
		select {
		case <-ctx.Done():
			names := dirNames(t, filepath.Dir(path))
			require.FailNowf(t, "no download", "%s did not arrive with %d bytes; the folder has %v", path, size, names)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestWebClient runs the web client against `peerdrop receive --web`: the
// page receives a 50 MiB file from `peerdrop send`, sends a folder to the
// receiver, exchanges messages both ways, declines an offer and cancels a
// transfer in each direction.
func TestWebClient(t *testing.T) {
	chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), webTimeout)
	defer cancel()

	dl := t.TempDir()
	args := []string{"--config-dir", t.TempDir(), "--name", receiverName, "--json",
		"receive", "--hidden", "--yes", "--dir", dl, "--port", "0", "--web", "--web-listen", "127.0.0.1:0"}
	r := start(t, ctx, "receiver", false, args...)
	r.await("listening", nil)
	w := r.awaitAny("web", nil)
	pageURL := w.str("url")
	u, err := url.Parse(pageURL)
	require.NoError(t, err, "web event url %q", pageURL)
	require.Equal(t, "127.0.0.1", u.Hostname(), "the URL names the address the page server listens on")

	downloads := t.TempDir()
	// save=download: the page hands files to the browser's downloads, as
	// on a phone (no folder picker in a headless browser).
	p := openBrowser(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	reg := r.awaitAny("web-page", nil)
	port := int(reg.num("port"))
	require.Positive(t, port, "web-page event: %s", reg)
	require.Equal(t, port, p.state().Port, "the page and the receiver agree on the page's port")
	pageAddr := "127.0.0.1:" + strconv.Itoa(port)
	require.Contains(t, reg.str("fingerprint"), "sha-256 ", "the page's hello carries its certificate")
	// The page derives its device id from its certificate as Go does
	// (identity.DeviceIDFor): the receiver took its hello, and the same
	// known answer comes out of the page's code.
	assert.Equal(t, identity.DeviceIDFor(reg.str("fingerprint")), reg.str("device_id"), "the page's id is its certificate's")
	const katFP = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"
	jsID, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`import("./handshake.js").then(m => m.deviceIdFor("`+katFP+`"))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, identity.DeviceIDFor(katFP), jsID, "known answer, JS and Go")
	assert.Equal(t, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", jsID)
	// And it refuses a hello whose id is another certificate's.
	verdict, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`import("./handshake.js").then(m => {
		const h = { device_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f1", name: "x", version: m.VERSION, fingerprint: "`+katFP+`" };
		try { m.validateHello(h); } catch (e) { return e.message; }
		h.device_id = m.deviceIdFor(h.fingerprint);
		m.validateHello(h);
		return "accepted another's id";
	})`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, "device id does not match its certificate", verdict)

	// The verification code's known answer (PROTOCOL.md section 11), JS
	// and Go: fingerprints AB…AB (dialer) and 01…01 (listener), nonces
	// 00 01 … 1f and 20 21 … 3f.
	katA := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	katB := "sha-256 " + strings.TrimSuffix(strings.Repeat("01:", 32), ":")
	nd, nl := make([]byte, 32), make([]byte, 32)
	for i := range 32 {
		nd[i], nl[i] = byte(i), byte(32+i)
	}
	jsCode, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`import("./handshake.js").then(m => m.verificationCode(%q, %q, %q, %q))`,
		katA, katB, hex.EncodeToString(nd), hex.EncodeToString(nl)), chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, trust.Code(katA, katB, nd, nl), jsCode, "known answer, JS and Go")
	assert.Equal(t, "363 453", jsCode)

	t.Run("page receives 50 MiB from the CLI", func(t *testing.T) {
		src := t.TempDir()
		const size = 50*MiB + 777
		sum := writeRandomFile(t, filepath.Join(src, "big.bin"), size, 7)
		s := startSender(t, ctx, "--to", pageAddr, filepath.Join(src, "big.bin"))
		p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
		require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
		s.await("transfer-done", func(e event) bool { return len(e.list("failed")) == 0 })
		// The page's prompt showed this connection's code, the one the CLI printed.
		code := s.awaitAny("connected", nil).str("code")
		require.Regexp(t, `^\d{3} \d{3}$`, code)
		assert.Equal(t, code, p.state().Offers[0].Code, "the same code on both screens")

		p.poll(`window.peerdrop.state.received.some(f => f.path === "big.bin")`, 30*time.Second)
		st := p.state()
		require.Len(t, st.Received, 1)
		assert.Equal(t, sum, st.Received[0].SHA256, "the SHA-256 the page computed")
		assert.EqualValues(t, size, st.Received[0].Size)
		waitDownload(t, ctx, filepath.Join(downloads, "big.bin"), size)
		assert.Equal(t, sum, sha256File(t, filepath.Join(downloads, "big.bin")), "the downloaded file, byte for byte")
	})

	// Browsers block or throttle a page that starts many downloads (two of
	// twenty were lost so, after earlier downloads): an offer of several
	// files is one download, a ZIP archive of the verified files.
	t.Run("page receives 25 files as one archive, after earlier downloads", func(t *testing.T) {
		paths, want := manyFiles(t, 25)
		s := startSender(t, ctx, append([]string{"--to", pageAddr}, paths...)...)
		p.poll(`document.querySelector("#offer-list .offer button.accept") !== null`, 30*time.Second)
		p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
		require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
		archive := filepath.Join(downloads, "25 files from "+senderName+".zip")
		got := waitZip(t, ctx, archive, len(want))
		assert.Equal(t, want, got, "every file in the archive, byte for byte (name -> SHA-256)")
		names := dirNames(t, downloads)
		assert.ElementsMatch(t, []string{"big.bin", filepath.Base(archive)}, names, "one download for the offer, beside the earlier one")
	})

	t.Run("page sends a folder to the CLI", func(t *testing.T) {
		src := t.TempDir()
		writeFile(t, src, "Trip/notes.txt", "hello world")
		writeFile(t, src, "Trip/photos/empty.txt", "")
		writeRandomFile(t, filepath.Join(src, "Trip", "photos", "map.bin"), 3*MiB+5, 9)
		want := snapshot(t, filepath.Join(src, "Trip"))

		p.do(chromedp.SetUploadFiles(chromedp.CSS("#folder"), []string{filepath.Join(src, "Trip")}))
		done := r.await("transfer-done", nil)
		assert.Empty(t, done.list("failed"), "transfer-done: %s", done)
		p.poll(`window.peerdrop.state.sent.length >= 1`, 30*time.Second)
		st := p.state()
		require.NotEmpty(t, st.Codes)
		offer := r.awaitAny("offer", func(e event) bool { return e.num("files") == 3 })
		assert.Equal(t, offer.str("code"), st.Codes[len(st.Codes)-1], "the receiver's prompt and the page's device card show the same code")
		require.Len(t, st.Sent, 1)
		assert.Empty(t, st.Sent[0].Error, "the page's send")
		assert.Empty(t, st.Sent[0].Failed)

		got := snapshot(t, filepath.Join(dl, "Trip"))
		assert.Equal(t, files(want), files(got), "files received from the page (path -> SHA-256)")
		requireNoLeftovers(t, dl)
	})

	t.Run("messages both ways", func(t *testing.T) {
		const toCLI = "from the page: héllo 👋"
		p.do(chromedp.SendKeys(chromedp.CSS("#text"), toCLI), chromedp.Click(chromedp.CSS("#send-text")))
		ev := r.await("text", func(e event) bool { return e.str("text") == toCLI })
		assert.NotEmpty(t, ev.str("from"))
		p.poll(`window.peerdrop.state.textsSent.length >= 1`, 20*time.Second)
		assert.Empty(t, p.state().TextsSent[0].Error)

		const toPage = "from the CLI: ça va ?"
		s := startSender(t, ctx, "--to", pageAddr, "--text", toPage)
		require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
		s.await("text-delivered", nil)
		p.poll(`window.peerdrop.state.texts.some(m => m.text === `+strconv.Quote(toPage)+` && m.from === "`+senderName+`")`, 10*time.Second)
	})

	t.Run("decline in the page", func(t *testing.T) {
		src := t.TempDir()
		path := writeFile(t, src, "unwanted.txt", "no thanks")
		s := startSender(t, ctx, "--to", pageAddr, path)
		p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.decline")))
		code := s.wait()
		assert.NotEqual(t, 0, code, "a declined send fails")
		s.await("declined", nil)
		assert.Contains(t, strings.ToLower(s.stderr.String()), "declined", "the sender says why")
		st := p.state()
		require.NotEmpty(t, st.Offers)
		assert.True(t, st.Offers[len(st.Offers)-1].Declined)
		_, err := os.Stat(filepath.Join(downloads, "unwanted.txt"))
		assert.True(t, os.IsNotExist(err), "nothing was saved")
	})

	t.Run("the page shows invisible characters escaped, as the CLI does", func(t *testing.T) {
		// visible.js against internal/visible, on the same strings.
		cases := []string{"report.txt", "cafe\u0301.txt", "\u2764\ufe0f.png", "a\u200bb\u2028c.txt", "\ufeffname",
			"gpj\u202eexe.scr", "a\x1b[31m\x07", "two\nlines\t", "a\u0085\u00ad\u00a0\u3000\u3164b", "\ue000\U000E0041",
			"p\u0430ypal.txt", "日本語のファイル.txt", "IMG1файл", "報告файл", "g\u03bfogle"}
		in, err := json.Marshal(cases)
		require.NoError(t, err)
		out, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`import('./visible.js').then((m) => JSON.stringify(`+
			string(in)+`.map((s) => [m.escapeName(s), m.escapeText(s), m.showName(s)])))`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		var got [][3]string
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		want := make([][3]string, len(cases))
		for i, c := range cases {
			want[i] = [3]string{visible.Escape(c), visible.Text(c), visible.Name(c)}
		}
		assert.Equal(t, want, got, "the page's escapes are the Go ones")

		// A real offer: the prompt shows such names escaped and marked.
		src := t.TempDir()
		s := startSender(t, ctx, "--to", pageAddr, writeFile(t, src, "a\u200bb\u2028c.txt", "x"), writeFile(t, src, "p\u0430ypal.txt", "y"))
		p.poll(`document.querySelector('#offer-list .offer .title')`, 20*time.Second)
		title, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector('#offer-list .offer .title').textContent`))
		require.NoError(t, err)
		t.Logf("the page's prompt: %s", title)
		assert.Contains(t, title, `a\u200Bb\u2028c.txt`)
		assert.Contains(t, title, "p\u0430ypal.txt [mixes Cyrillic and Latin letters]")
		assert.NotContains(t, title, "\u200b", "no raw zero-width space")
		assert.NotContains(t, title, "\u2028", "no raw line separator")
		p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.decline")))
		assert.NotEqual(t, 0, s.wait(), "a declined send fails")
	})

	t.Run("the page writes sizes as the app and the CLI do", func(t *testing.T) {
		// units.js against internal/units, on the cases of its table test.
		sizes := []int64{-1, 0, 1, 999, 1000, 1023, 1024, 1250, 1500, 2_250, 99_949, 99_950, 999_499, 999_500,
			999_949, 999_960, 12_345_678, 200 << 20, 456_000_000, 2_100_000_000, 1 << 30, 5_000_000_000_000, 1 << 50}
		in, err := json.Marshal(sizes)
		require.NoError(t, err)
		out, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`import('./units.js').then((m) => JSON.stringify(`+
			string(in)+`.map((n) => m.humanBytes(n))))`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		var got []string
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		want := make([]string, len(sizes))
		for i, n := range sizes {
			want[i] = units.Bytes(n)
		}
		t.Logf("the page: %v", got)
		assert.Equal(t, want, got, "the page's sizes are the Go ones")
	})

	t.Run("the sender gives up while the page decides", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "never.txt", "changed my mind")
		s := startSender(t, ctx, "--to", pageAddr, path)
		before := len(p.state().Offers)
		p.poll(fmt.Sprintf(`window.peerdrop.state.offers.length > %d`, before), 20*time.Second)
		s.signal(os.Interrupt)
		assert.NotEqual(t, 0, s.wait())
		p.poll(`window.peerdrop.state.offers.at(-1).withdrawn === true`, 20*time.Second)
		cards, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#offer-list .offer').length`))
		require.NoError(t, err)
		assert.Zero(t, cards, "the prompt went away with the offer")
		_, err = os.Stat(filepath.Join(downloads, "never.txt"))
		assert.True(t, os.IsNotExist(err), "nothing was saved")
	})

	t.Run("cancel in the page while receiving", func(t *testing.T) {
		src := t.TempDir()
		path := filepath.Join(src, "huge.bin")
		writeRandomFile(t, path, 256*MiB, 11)
		s := startSender(t, ctx, "--to", pageAddr, path)
		p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
		p.poll(`document.querySelector("#transfer-list progress").value > 0`, 60*time.Second)
		p.do(chromedp.Click(chromedp.CSS("#transfer-list .transfer button.cancel")))
		assert.NotEqual(t, 0, s.wait(), "a cancelled send fails")
		s.await("transfer-done", func(e event) bool { return e.flag("cancelled") })
		p.poll(`window.peerdrop.state.cancelled.length >= 1`, 10*time.Second)
		_, err := os.Stat(filepath.Join(downloads, "huge.bin"))
		assert.True(t, os.IsNotExist(err), "nothing was saved")
	})

	t.Run("cancel in the page while sending", func(t *testing.T) {
		src := t.TempDir()
		path := filepath.Join(src, "huge-up.bin")
		writeRandomFile(t, path, 256*MiB, 12)
		sent := len(p.state().Sent)
		p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{path}))
		r.await("accepted", nil)
		p.poll(`document.querySelector("#transfer-list progress").value > 0`, 60*time.Second)
		p.do(chromedp.Click(chromedp.CSS("#transfer-list .transfer button.cancel")))
		done := r.await("transfer-done", nil)
		assert.True(t, done.flag("cancelled"), "the receiver hears the cancel: %s", done)
		p.poll(`window.peerdrop.state.sent.length > `+strconv.Itoa(sent), 20*time.Second)
		assert.Equal(t, "cancelled", p.state().Sent[sent].Error)
		_, err := os.Stat(filepath.Join(dl, "huge-up.bin"))
		assert.True(t, os.IsNotExist(err), "no partial file under the final name")
		requireNoLeftovers(t, dl)
	})

	if t.Failed() {
		t.Log(fmt.Sprintf("page state: %s", p.stateJSON()))
	}
}

// manyFiles writes n small files of random bytes and returns their paths
// and name -> SHA-256.
func manyFiles(t *testing.T, n int) ([]string, map[string]string) {
	t.Helper()
	src := t.TempDir()
	var paths []string
	for i := range n {
		path := filepath.Join(src, fmt.Sprintf("photo-%02d.bin", i+1))
		writeRandomFile(t, path, int64(64*1024+i*4099), uint64(100+i))
		paths = append(paths, path)
	}
	return paths, files(snapshot(t, src))
}

// waitZip waits until the ZIP archive at path is complete (the browser
// renames it into place when done) and returns its files, name -> SHA-256;
// it checks that there are n of them, stored, not compressed.
func waitZip(t *testing.T, ctx context.Context, path string, n int) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if r, err := zip.OpenReader(path); err == nil {
			defer r.Close()
			require.Len(t, r.File, n, "files in %s", path)
			got := map[string]string{}
			for _, f := range r.File {
				assert.Equal(t, zip.Store, f.Method, "%s is stored, not compressed", f.Name)
				rc, err := f.Open()
				require.NoError(t, err)
				h := sha256.New()
				_, err = io.Copy(h, rc)
				require.NoError(t, err, "%s in %s (its CRC-32 is checked as it is read)", f.Name, path)
				rc.Close()
				got[f.Name] = hex.EncodeToString(h.Sum(nil))
			}
			return got
		}
		select {
		case <-ctx.Done():
			names := dirNames(t, filepath.Dir(path))
			require.FailNow(t, "no archive", "%s never appeared; the folder has %v", path, names)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
