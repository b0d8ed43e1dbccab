//go:build linux

package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page sends a large file and its tab closes in the middle: a page never
// resumes (its identity lasts one visit; its hello says "web"), so the
// receiver keeps no partial file or state for it (issue 16 item 3), whether
// the page sends to the device serving it or pairs with one off the LAN.
func TestWebClosedTabLeavesNoPartials(t *testing.T) {
	chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), webTimeout)
	defer cancel()
	big := filepath.Join(t.TempDir(), "big.bin")
	writeRandomFile(t, big, 256*MiB, 51)

	t.Run("to the device serving the page", func(t *testing.T) {
		dl := t.TempDir()
		r := start(t, ctx, "receiver", false, "--config-dir", t.TempDir(), "--name", receiverName, "--json",
			"receive", "--hidden", "--yes", "--dir", dl, "--port", "0", "--web", "--web-listen", "127.0.0.1:0")
		r.await("listening", nil)
		p := openBrowser(t, ctx, r.awaitAny("web", nil).str("url")+"?save=download", t.TempDir())
		p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
		closeMidFile(t, r, p, big, dl)
	})

	t.Run("off the LAN, through peerdrop serve", func(t *testing.T) {
		wsURL, pageURL := startServeWithPage(t, ctx)
		dl := t.TempDir()
		r, p := pairedPage(t, ctx, wsURL, pageURL, dl)
		closeMidFile(t, r, p, big, dl)
	})
}

// closeMidFile has page p send big to the receiver r, closes the tab once
// bytes arrive, and checks that r kept nothing of it in dl.
func closeMidFile(t *testing.T, r *proc, p *page, big, dl string) {
	t.Helper()
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{big}))
	r.await("accepted", nil)
	r.await("progress", func(ev event) bool { return ev.num("bytes") > 0 })
	require.NoError(t, chromedp.Cancel(p.ctx), "close the tab")
	r.await("interrupted", nil)
	names := dirNames(t, dl)
	assert.Empty(t, names, "no partial file, no .peerdrop state")
}
