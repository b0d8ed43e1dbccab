//go:build linux

package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// pageName is the name the web client gives itself in a desktop browser
// (web/static/handshake.js, defaultName).
const pageName = "Browser (web)"

// The real desktop app serves the web client: headless Chromium opens the
// URL the app reports, the page shows up among the app's devices (and is
// advertised over mDNS: the app also discovers it, and lists it once), the
// app sends the page a file through the code a drop runs, and the page sends
// the app a file that the app accepts through its prompt. The whole test runs
// in a network namespace of its own, loopback only (with multicast on), so
// that the app's default ports and its advertisements stay there.
func TestDesktopAppWebClient(t *testing.T) {
	if !netnstest.Inside() {
		chromiumPath(t)
		if _, err := exec.LookPath("xvfb-run"); err != nil {
			t.Skip("skipped: needs xvfb-run (Debian package xvfb; make test installs it)")
		}
		ns := netnstest.New(t, "pdgw")
		netnstest.IP(t, "-n", ns, "link", "set", "lo", "multicast", "on")
		buildGUI(t) // outside too: the inner run finds it in the build cache
		netnstest.Reexec(t, ns)
		return
	}
	buildGUI(t) // before the clock starts: the first cgo build is slow
	ctx, cancel := context.WithTimeout(context.Background(), webTimeout)
	defer cancel()

	toPage := writeFile(t, t.TempDir(), "for-the-phone.txt", "from the desktop app\n")
	g := startGUI(t, ctx, nil, "Alpha", envTestSend+"="+pageName+"|"+toPage, envTestAnswer+"=accept")
	g.await(ctx, "ready", nil)
	web := g.await(ctx, "web", func(ev map[string]any) bool { return ev["url"] != "" })
	pageURL, _ := web["url"].(string)
	u, err := url.Parse(pageURL)
	require.NoError(t, err, "web event %v", web)
	assert.Equal(t, "53319", u.Port(), "the app serves the page on its default port")

	downloads := t.TempDir()
	p := openBrowser(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	dev := g.await(ctx, "devices", func(ev map[string]any) bool {
		web, _ := ev["web"].([]any)
		names, _ := ev["names"].([]any)
		return len(web) == 1 && slices.Contains(names, any(pageName))
	})
	names, _ := dev["names"].([]any)
	assert.Equal(t, []any{pageName}, names, "the page is listed once, though its advertisement is seen too")

	// The app sends to the page (the hook drops the file on its tile).
	sent := g.await(ctx, "test-send", nil)
	assert.Nil(t, sent["error"], "the app's send: %v", sent)
	p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
	waitDownload(t, ctx, filepath.Join(downloads, "for-the-phone.txt"), int64(len("from the desktop app\n")))
	g.await(ctx, "item", func(ev map[string]any) bool { return ev["direction"] == "send" && ev["state"] == "done" })

	// The page sends to the app, which asks and (the hook) accepts.
	src := t.TempDir()
	const size = 3*MiB + 17
	sum := writeRandomFile(t, filepath.Join(src, "from-the-phone.bin"), size, 21)
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{filepath.Join(src, "from-the-phone.bin")}))
	offer := g.await(ctx, "offer", nil)
	assert.Equal(t, pageName, offer["from"])
	g.await(ctx, "test-answer", nil)
	done := g.await(ctx, "item", func(ev map[string]any) bool { return ev["direction"] == "receive" && ev["state"] == "done" })
	paths, _ := done["paths"].([]any)
	require.Len(t, paths, 1, "item: %v", done)
	assert.Equal(t, sum, sha256File(t, paths[0].(string)), "the file the page sent, byte for byte")
	p.poll(`window.peerdrop.state.sent.length >= 1`, 20*time.Second)
	assert.Empty(t, p.state().Sent[0].Error)
	_, err = os.Stat(paths[0].(string))
	require.NoError(t, err)
}
