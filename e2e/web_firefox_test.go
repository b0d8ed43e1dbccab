package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// Environment of TestFirefoxPageOnLAN's inner run (in host A's namespace).
const (
	envFirefoxURL     = "PEERDROP_TEST_FF_URL"      // the page A serves
	envFirefoxSendNS  = "PEERDROP_TEST_FF_SEND_NS"  // host B's namespace
	envFirefoxSendCfg = "PEERDROP_TEST_FF_SEND_CFG" // Bravo's config folder
	envFirefoxToPage  = "PEERDROP_TEST_FF_TO_PAGE"  // what Bravo sends to the page
	envFirefoxToSum   = "PEERDROP_TEST_FF_TO_SUM"   // its SHA-256
	envFirefoxFrom    = "PEERDROP_TEST_FF_FROM"     // what the page sends to Charlie
	envFirefoxCharlie = "PEERDROP_TEST_FF_CHARLIE"  // Charlie's device id
)

// firefoxPageName is what the page calls itself in a desktop browser.
const firefoxPageName = "Browser (web)"

// Firefox with its default settings (host candidates behind .local names,
// no loopback) on a LAN of two hosts: A runs `receive --web` and Firefox on
// its page; on B, Bravo sends a file to the page by name and Charlie
// receives one the page sends. Both arrive byte for byte, and the page shows
// no failure on the way (the probes a sender makes are answered for it).
func TestFirefoxPageOnLAN(t *testing.T) {
	if netnstest.Inside() {
		firefoxInside(t)
		return
	}
	firefoxPath(t)
	l := newLAN(t, "a", "b")
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	charlie := l.hosts["b"].device("Charlie")
	inbox := t.TempDir()
	cp, charlieID := charlie.receive(ctx, inbox, "--yes", "--once")
	ap := alpha.run(ctx, "alpha-receive", "receive", "--dir", t.TempDir(), "--yes",
		"--web", "--web-listen", l.hosts["a"].ip+":53319")
	ap.await("listening", nil)
	pageURL := ap.awaitAny("web", nil).str("url")

	src := t.TempDir()
	toPage := filepath.Join(src, "to-the-page.bin")
	toSum := writeRandomFile(t, toPage, 3*MiB+5, 41)
	fromPage := filepath.Join(src, "from-the-page.bin")
	fromSum := writeRandomFile(t, fromPage, 2*MiB+7, 42)
	for k, v := range map[string]string{
		envFirefoxURL: pageURL, envFirefoxSendNS: bravo.ns, envFirefoxSendCfg: bravo.config,
		envFirefoxToPage: toPage, envFirefoxToSum: toSum, envFirefoxFrom: fromPage, envFirefoxCharlie: charlieID,
	} {
		t.Setenv(k, v)
	}
	netnstest.Reexec(t, l.hosts["a"].ns)

	require.Equal(t, 0, cp.wait(), "Charlie's receiver; stderr: %s", cp.stderr.String())
	assert.Equal(t, map[string]string{"from-the-page.bin": fromSum}, files(snapshot(t, inbox)), "arrived byte for byte")
	requireNoLeftovers(t, inbox)
	ap.signal(syscall.SIGINT)
	ap.wait()
}

// firefoxInside is the browser's part, on host A.
func firefoxInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), webTimeout)
	defer cancel()
	downloads := t.TempDir()
	p := openFirefox(t, ctx, os.Getenv(envFirefoxURL)+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)

	// Bravo, on host B, sends to the page by name: it finds the page's
	// advertisement, probes it and hands its handshake to A's bridge.
	toPage := os.Getenv(envFirefoxToPage)
	send := exec.CommandContext(ctx, "ip", "netns", "exec", os.Getenv(envFirefoxSendNS), peerdropBin,
		"--config-dir", os.Getenv(envFirefoxSendCfg), "--name", "Bravo", "--json", "send", "--to", firefoxPageName, toPage)
	var out bytes.Buffer // read only after Wait
	send.Stdout, send.Stderr = &out, &out
	require.NoError(t, send.Start())
	p.poll(`window.peerdrop.state.offers.length >= 1`, 60*time.Second)
	p.click("#offer-list .offer button.accept")
	info, err := os.Stat(toPage)
	require.NoError(t, err)
	waitDownload(t, ctx, filepath.Join(downloads, filepath.Base(toPage)), info.Size())
	require.NoError(t, send.Wait(), "Bravo's send to the page: %s", out.String())
	st := p.state()
	require.Len(t, st.Received, 1, "state: %s", p.stateJSON())
	assert.Equal(t, os.Getenv(envFirefoxToSum), st.Received[0].SHA256, "the page received it byte for byte")

	// An offer of many files is one download, a ZIP archive, after the
	// earlier download.
	paths, want := manyFiles(t, 25)
	send = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", os.Getenv(envFirefoxSendNS), peerdropBin,
		"--config-dir", os.Getenv(envFirefoxSendCfg), "--name", "Bravo", "--json", "send", "--to", firefoxPageName}, paths...)...)
	out.Reset()
	send.Stdout, send.Stderr = &out, &out
	require.NoError(t, send.Start())
	p.poll(`document.querySelector("#offer-list .offer button.accept") !== null`, 60*time.Second)
	p.click("#offer-list .offer button.accept")
	require.NoError(t, send.Wait(), "Bravo's send of 25 files to the page: %s", out.String())
	assert.Equal(t, want, waitZip(t, ctx, filepath.Join(downloads, "25 files from Bravo.zip"), len(want)),
		"every file in the archive, byte for byte")

	// Bravo lists the devices nearby, probing the page it now knows at its
	// last address: the bridge answers for the page, which shows nothing.
	devices := exec.CommandContext(ctx, "ip", "netns", "exec", os.Getenv(envFirefoxSendNS), peerdropBin,
		"--config-dir", os.Getenv(envFirefoxSendCfg), "--name", "Bravo", "--json", "devices")
	listed, err := devices.CombinedOutput()
	require.NoError(t, err, "Bravo's devices: %s", listed)
	assert.Contains(t, string(listed), `"name":"`+firefoxPageName+`"`, "Bravo lists the page")
	time.Sleep(time.Second) // what the page would report of the probe arrives within this
	errs, err := p.eval(`JSON.stringify(window.peerdrop.state.errors)`)
	require.NoError(t, err)
	assert.Equal(t, "[]", errs, "the page reported no failure")

	// The page sends to Charlie, which A discovered on the LAN.
	charlie := os.Getenv(envFirefoxCharlie)
	p.poll(`window.peerdrop.state.devices.some(d => d.device_id === "`+charlie+`")`, 30*time.Second)
	p.click(`#nearby-list button[data-id="` + charlie + `"]`)
	p.poll(`window.peerdrop.state.target === "`+charlie+`"`, 5*time.Second)
	p.setFiles("#files", os.Getenv(envFirefoxFrom))
	p.poll(`window.peerdrop.state.sent.length >= 1 && (window.peerdrop.state.sent[0].sent >= 1 || !!window.peerdrop.state.sent[0].error)`, 60*time.Second)
	st = p.state()
	require.Len(t, st.Sent, 1)
	assert.Empty(t, st.Sent[0].Error, "the page's send to Charlie; state: %s", p.stateJSON())
	assert.Empty(t, st.Sent[0].Failed)
	errs, err = p.eval(`JSON.stringify(window.peerdrop.state.errors)`)
	require.NoError(t, err)
	assert.Equal(t, "[]", errs, "the page reported no failure")
}
