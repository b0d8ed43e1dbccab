//go:build linux

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// Environment of TestWebDialLAN's inner run (in host A's namespace).
const (
	envDialURL  = "PEERDROP_TEST_DIAL_URL"  // the page A serves
	envDialTo   = "PEERDROP_TEST_DIAL_TO"   // B's device id
	envDialFile = "PEERDROP_TEST_DIAL_FILE" // what the page sends
)

// The page sends to a device its serving process discovered (/ws/dial): on
// a LAN of two hosts, A runs `receive --web` and B `receive --yes`;
// Chromium runs on A (the test runs again inside A's namespace for it),
// lists B next to A, and sends B a file through A's bridge; it arrives
// byte for byte.
func TestWebDialLAN(t *testing.T) {
	if netnstest.Inside() {
		webDialInside(t)
		return
	}
	chromiumPath(t)
	l := newLAN(t, "a", "b")
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	dl := t.TempDir()
	bp, bravoID := bravo.receive(ctx, dl, "--yes", "--once")
	ap := alpha.run(ctx, "alpha-receive", "receive", "--dir", t.TempDir(), "--yes",
		"--web", "--web-listen", l.hosts["a"].ip+":53319")
	ap.await("listening", nil)
	pageURL := ap.awaitAny("web", nil).str("url")

	src := t.TempDir()
	path := filepath.Join(src, "through-the-bridge.bin")
	sum := writeRandomFile(t, path, 5*MiB+3, 31)
	t.Setenv(envDialURL, pageURL)
	t.Setenv(envDialTo, bravoID)
	t.Setenv(envDialFile, path)
	netnstest.Reexec(t, l.hosts["a"].ns)

	require.Equal(t, 0, bp.wait(), "Bravo's receiver; stderr: %s", bp.stderr.String())
	assert.Equal(t, map[string]string{"through-the-bridge.bin": sum}, files(snapshot(t, dl)), "arrived byte for byte")
	requireNoLeftovers(t, dl)
	ap.signal(syscall.SIGINT)
	ap.wait()
}

// webDialInside is the browser's part, on host A.
func webDialInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), webTimeout)
	defer cancel()
	pageURL, to, path := os.Getenv(envDialURL), os.Getenv(envDialTo), os.Getenv(envDialFile)
	require.NotEmpty(t, pageURL)
	p := openBrowser(t, ctx, pageURL+"?save=download", t.TempDir())
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	// A discovered B: the page lists it next to A, and sends to it.
	p.poll(`window.peerdrop.state.devices.some(d => d.device_id === "`+to+`" && d.name === "Bravo")`, 30*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#nearby-list button[data-id="` + to + `"]`)))
	p.poll(`window.peerdrop.state.target === "`+to+`"`, 5*time.Second)
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{path}))
	p.poll(`window.peerdrop.state.sent.length >= 1`, 60*time.Second)
	st := p.state()
	require.Len(t, st.Sent, 1)
	assert.Empty(t, st.Sent[0].Error, "the page's send to Bravo; state: %s", p.stateJSON())
	assert.Empty(t, st.Sent[0].Failed)
}
