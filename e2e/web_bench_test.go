package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestWebThroughput measures how fast the web page moves a file, each way,
// against the CLI-to-CLI transfer on the same machine in the same run (the
// baseline), and prints the figures side by side. It asserts nothing about
// speed: it is a measurement for `make bench` (PEERDROP_BENCH_WEB=1), skipped
// in `make test`. Sizes: PEERDROP_BENCH_WEB_MIB (default 128).
func TestWebThroughput(t *testing.T) {
	if os.Getenv("PEERDROP_BENCH_WEB") == "" {
		t.Skip("a measurement: run with PEERDROP_BENCH_WEB=1 (make bench)")
	}
	chromiumPath(t)
	mib := 128
	if v, err := strconv.Atoi(os.Getenv("PEERDROP_BENCH_WEB_MIB")); err == nil && v > 0 {
		mib = v
	}
	size := int64(mib) * MiB
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	dl := t.TempDir()
	r := start(t, ctx, "receiver", false, "--config-dir", t.TempDir(), "--name", receiverName, "--json",
		"receive", "--hidden", "--yes", "--dir", dl, "--port", "0", "--web", "--web-listen", "127.0.0.1:0")
	cliAddr := "127.0.0.1:" + strconv.Itoa(int(r.await("listening", nil).num("port")))
	pageURL := r.awaitAny("web", nil).str("url")
	downloads := t.TempDir()
	p := openBrowser(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	pageAddr := "127.0.0.1:" + strconv.Itoa(int(r.awaitAny("web-page", nil).num("port")))

	src := t.TempDir()
	file := filepath.Join(src, "bench.bin")
	writeRandomFile(t, file, size, 11)

	// span is the time from accept to the end, by the events of proc.
	span := func(proc *proc, from string) time.Duration {
		a := proc.awaitAny(from, nil)
		d := proc.awaitAny("transfer-done", nil)
		t0, err := time.Parse(time.RFC3339Nano, a.str("time"))
		require.NoError(t, err)
		t1, err := time.Parse(time.RFC3339Nano, d.str("time"))
		require.NoError(t, err)
		return t1.Sub(t0)
	}
	send := func(label, to string) time.Duration {
		s := start(t, ctx, label, false, "--config-dir", t.TempDir(), "--name", senderName, "--json", "send", "--to", to, file)
		if to == pageAddr {
			p.do(chromedp.Click(chromedp.CSS("#offer-list .offer button.accept")))
		}
		require.Equal(t, 0, s.wait(), "%s: %s", label, s.stderr.String())
		return span(s, "accepted")
	}

	baseline := send("cli-to-cli", cliAddr)
	require.NoError(t, os.Remove(filepath.Join(dl, "bench.bin")))
	toPage := send("cli-to-page", pageAddr)

	// The page sends to the receiver; the receiver's events time it.
	mark := len(r.all("transfer-done"))
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
	var fromPage time.Duration
	for fromPage == 0 {
		done := r.all("transfer-done")
		offers := r.all("offer")
		if len(done) > mark && len(offers) > 0 {
			t0, err := time.Parse(time.RFC3339Nano, offers[len(offers)-1].str("time"))
			require.NoError(t, err)
			t1, err := time.Parse(time.RFC3339Nano, done[len(done)-1].str("time"))
			require.NoError(t, err)
			fromPage = t1.Sub(t0)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the page's send did not finish")
		case <-time.After(100 * time.Millisecond):
		}
	}

	rate := func(d time.Duration) float64 { return float64(size) / MiB / d.Seconds() }
	var out string
	out += fmt.Sprintf("=== web page throughput: %d MiB (random) over loopback, Chromium headless, one run each\n", mib)
	out += fmt.Sprintf("  %-30s %9s %9s %7s\n", "direction", "seconds", "MiB/s", "ratio")
	for _, row := range []struct {
		name string
		d    time.Duration
	}{{"CLI -> CLI (baseline)", baseline}, {"CLI -> page", toPage}, {"page -> CLI", fromPage}} {
		out += fmt.Sprintf("  %-30s %9.2f %9.1f %7.2f\n", row.name, row.d.Seconds(), rate(row.d), rate(row.d)/rate(baseline))
	}
	fmt.Print(out)
}
