package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page sends a large file to the device serving it and its tab closes in
// the middle: a page never resumes (its identity lasts one visit), so the
// receiver keeps no partial file or state for it (issue 16 item 3).
func TestWebClosedTabLeavesNoPartials(t *testing.T) {
	chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), webTimeout)
	defer cancel()
	dl := t.TempDir()
	r := start(t, ctx, "receiver", false, "--config-dir", t.TempDir(), "--name", receiverName, "--json",
		"receive", "--hidden", "--yes", "--dir", dl, "--port", "0", "--web", "--web-listen", "127.0.0.1:0")
	r.await("listening", nil)
	pageURL := r.awaitAny("web", nil).str("url")

	big := filepath.Join(t.TempDir(), "big.bin")
	writeRandomFile(t, big, 256*MiB, 51)
	tabCtx, closeTab := context.WithCancel(ctx)
	defer closeTab()
	p := openBrowser(t, tabCtx, pageURL+"?save=download", t.TempDir())
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{big}))
	r.await("accepted", nil)
	r.await("progress", func(ev event) bool { return ev.num("bytes") > 0 })
	require.NoError(t, chromedp.Cancel(p.ctx), "close the tab")

	r.await("interrupted", nil)
	// What the receiver kept: nothing of the page's offer.
	entries, err := os.ReadDir(dl)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "no partial file, no .peerdrop state")
}
