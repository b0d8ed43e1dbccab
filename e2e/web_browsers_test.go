//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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

// The page in browsers as they ship, with their default settings: host
// candidates hidden behind .local names and no loopback ones, so these
// tests run on namespace hosts. Each runs in Firefox ESR (WebDriver BiDi)
// and in Chromium as a phone (a Pixel 5's 393 px screen, user agent and
// touch, over CDP).

// browserTab is what these tests do with a tab, in either browser.
type browserTab interface {
	poll(expr string, timeout time.Duration)
	str(expr string) string
	click(selector string)
	setFiles(selector string, paths ...string)
	navigate(url string)
	stateJSON() string
}

const (
	browserFirefox = "firefox"
	browserPhone   = "phone" // Chromium emulating a Pixel 5
)

// envBrowser tells an inner run which browser to drive.
const envBrowser = "PEERDROP_TEST_BROWSER"

// needBrowser skips t unless the browser is installed.
func needBrowser(t *testing.T, which string) {
	t.Helper()
	if which == browserFirefox {
		firefoxPath(t)
	} else {
		chromiumPath(t)
	}
	t.Setenv(envBrowser, which)
}

// openTab opens pageURL in the inner run's browser, saving downloads to
// downloads.
func openTab(t *testing.T, ctx context.Context, pageURL, downloads string) browserTab {
	t.Helper()
	if os.Getenv(envBrowser) == browserFirefox {
		return openFirefox(t, ctx, pageURL, downloads)
	}
	return openPhone(t, ctx, pageURL, downloads)
}

// tabName is what the page calls itself in the inner run's browser.
func tabName(which string) string {
	if which == browserFirefox {
		return "Browser (web)"
	}
	return "Android phone (web)"
}

// tabState decodes window.peerdrop.state.
func tabState(t *testing.T, p browserTab) offLANState {
	t.Helper()
	var s offLANState
	require.NoError(t, json.Unmarshal([]byte(p.stateJSON()), &s), "page state")
	return s
}

// Environment of the LAN tests' inner run (in host A's namespace).
const (
	envLANURL     = "PEERDROP_TEST_BR_URL"      // the page A serves
	envLANSendNS  = "PEERDROP_TEST_BR_SEND_NS"  // host B's namespace
	envLANSendCfg = "PEERDROP_TEST_BR_SEND_CFG" // Bravo's config folder
	envLANToPage  = "PEERDROP_TEST_BR_TO_PAGE"  // what Bravo sends to the page
	envLANToSum   = "PEERDROP_TEST_BR_TO_SUM"   // its SHA-256
	envLANFrom    = "PEERDROP_TEST_BR_FROM"     // what the page sends to Charlie
	envLANCharlie = "PEERDROP_TEST_BR_CHARLIE"  // Charlie's device id
)

func TestFirefoxPageOnLAN(t *testing.T) { pageOnLAN(t, browserFirefox) }
func TestPhonePageOnLAN(t *testing.T)   { pageOnLAN(t, browserPhone) }

// pageOnLAN: on a LAN of two hosts, A runs `receive --web` and the
// browser on its page; on B, Bravo sends to the page by name (one file,
// then 25 as one archive) and Charlie receives one the page sends. All
// arrive byte for byte, and the page shows no failure on the way (the
// probes a sender makes are answered for it).
func pageOnLAN(t *testing.T, which string) {
	if netnstest.Inside() {
		pageOnLANInside(t)
		return
	}
	needBrowser(t, which)
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
		envLANURL: pageURL, envLANSendNS: bravo.ns, envLANSendCfg: bravo.config,
		envLANToPage: toPage, envLANToSum: toSum, envLANFrom: fromPage, envLANCharlie: charlieID,
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

// pageOnLANInside is the browser's part, on host A.
func pageOnLANInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), webTimeout)
	defer cancel()
	which := os.Getenv(envBrowser)
	downloads := t.TempDir()
	p := openTab(t, ctx, os.Getenv(envLANURL)+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	bravo := func(args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", os.Getenv(envLANSendNS), peerdropBin,
			"--config-dir", os.Getenv(envLANSendCfg), "--name", "Bravo", "--json"}, args...)...)
	}

	// Bravo, on host B, sends to the page by name: it finds the page's
	// advertisement, probes it and hands its handshake to A's bridge.
	toPage := os.Getenv(envLANToPage)
	send := bravo("send", "--to", tabName(which), toPage)
	var out bytes.Buffer // read only after Wait
	send.Stdout, send.Stderr = &out, &out
	require.NoError(t, send.Start())
	p.poll(`document.querySelector("#offer-list .offer button.accept") !== null`, 60*time.Second)
	if which == browserPhone {
		assertFitsPhone(t, p, "with an offer")
	}
	p.click("#offer-list .offer button.accept")
	info, err := os.Stat(toPage)
	require.NoError(t, err)
	waitDownload(t, ctx, filepath.Join(downloads, filepath.Base(toPage)), info.Size())
	require.NoError(t, send.Wait(), "Bravo's send to the page: %s", out.String())
	st := tabState(t, p)
	require.Len(t, st.Received, 1, "state: %s", p.stateJSON())
	assert.Equal(t, os.Getenv(envLANToSum), st.Received[0].SHA256, "the page received it byte for byte")

	// An offer of many files is one download, a ZIP archive, after the
	// earlier download.
	paths, want := manyFiles(t, 25)
	send = bravo(append([]string{"send", "--to", tabName(which)}, paths...)...)
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
	listed, err := bravo("devices").CombinedOutput()
	require.NoError(t, err, "Bravo's devices: %s", listed)
	assert.Contains(t, string(listed), `"name":"`+tabName(which)+`"`, "Bravo lists the page")
	time.Sleep(time.Second) // what the page would report of the probe arrives within this
	assert.Equal(t, "[]", p.str(`JSON.stringify(window.peerdrop.state.errors)`), "the page reported no failure")

	// The page sends to Charlie, which A discovered on the LAN.
	charlie := os.Getenv(envLANCharlie)
	p.poll(`window.peerdrop.state.devices.some(d => d.device_id === "`+charlie+`")`, 30*time.Second)
	if which == browserPhone {
		assertFitsPhone(t, p, "with transfers and a nearby device")
	}
	p.click(`#nearby-list button[data-id="` + charlie + `"]`)
	p.poll(`window.peerdrop.state.target === "`+charlie+`"`, 5*time.Second)
	p.setFiles("#files", os.Getenv(envLANFrom))
	p.poll(`window.peerdrop.state.sent.length >= 1 && (window.peerdrop.state.sent[0].sent >= 1 || !!window.peerdrop.state.sent[0].error)`, 60*time.Second)
	st = tabState(t, p)
	require.Len(t, st.Sent, 1)
	assert.Empty(t, st.Sent[0].Error, "the page's send to Charlie; state: %s", p.stateJSON())
	assert.Empty(t, st.Sent[0].Failed)
	assert.Equal(t, "[]", p.str(`JSON.stringify(window.peerdrop.state.errors)`), "the page reported no failure")
}

// Environment of the off-LAN tests' inner run (on host a).
const (
	envOffNS     = "PEERDROP_TEST_BROFF_NS"     // host b's namespace
	envOffCfg    = "PEERDROP_TEST_BROFF_CFG"    // a config folder for the CLI on b
	envOffToPage = "PEERDROP_TEST_BROFF_TO"     // what the CLI sends to the page
	envOffToSum  = "PEERDROP_TEST_BROFF_TO_SUM" // its SHA-256
	envOffFrom   = "PEERDROP_TEST_BROFF_FROM"   // what the page sends to the CLI
	envOffInbox  = "PEERDROP_TEST_BROFF_INBOX"  // where the CLI saves it
)

func TestFirefoxPageOffLAN(t *testing.T) { pageOffLAN(t, browserFirefox) }
func TestPhonePageOffLAN(t *testing.T)   { pageOffLAN(t, browserPhone) }

// pageOffLAN: off the LAN, on the NAT topology, the page on host a
// (behind one home router) is served by `peerdrop serve` on the "internet"
// and meets a CLI on host b (behind another). Its host candidates are
// .local names nobody outside its LAN can resolve, as on a phone, so the
// connection runs on what the server's STUN and TURN give. Both ways: the
// page shows a code and the CLI sends to it; the CLI shows a code and the
// page joins it and sends.
func pageOffLAN(t *testing.T, which string) {
	if netnstest.Inside() {
		pageOffLANInside(t)
		return
	}
	needBrowser(t, which)
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	src := t.TempDir()
	toPage := filepath.Join(src, "to-the-page.bin")
	toSum := writeRandomFile(t, toPage, 3*MiB+5, 51)
	fromPage := filepath.Join(src, "from-the-page.bin")
	fromSum := writeRandomFile(t, fromPage, 2*MiB+7, 52)
	inbox := t.TempDir()
	cli := l.hosts["b"].device("Bob")
	for k, v := range map[string]string{
		envOffNS: cli.ns, envOffCfg: cli.config, envOffToPage: toPage, envOffToSum: toSum,
		envOffFrom: fromPage, envOffInbox: inbox,
	} {
		t.Setenv(k, v)
	}
	netnstest.Reexec(t, l.hosts["a"].ns)
	assert.Equal(t, map[string]string{"from-the-page.bin": fromSum}, files(snapshot(t, inbox)), "the page's file arrived byte for byte")
	requireNoLeftovers(t, inbox)
}

// pageOffLANInside is the browser's part, on host a.
func pageOffLANInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), webTimeout)
	defer cancel()
	which := os.Getenv(envBrowser)
	pageURL := "http://" + natServerIP + ":8080/"
	bob := func(args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", os.Getenv(envOffNS), peerdropBin,
			"--config-dir", os.Getenv(envOffCfg), "--name", "Bob", "--json"}, args...)...)
	}

	// The page shows a code; the CLI sends with it.
	downloads := t.TempDir()
	p := openTab(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.click("#create")
	p.poll(`window.peerdrop.state.code !== ''`, 20*time.Second)
	if which == browserPhone {
		assertFitsPhone(t, p, "showing a code")
	}
	toPage := os.Getenv(envOffToPage)
	send := bob("send", "--server", natServeURL, "--code", p.str(`window.peerdrop.state.code`), toPage)
	var out bytes.Buffer // read only after Wait
	send.Stdout, send.Stderr = &out, &out
	require.NoError(t, send.Start())
	p.poll(`document.querySelector("#offer-list .offer button.accept") !== null`, 60*time.Second)
	p.click("#offer-list .offer button.accept")
	info, err := os.Stat(toPage)
	require.NoError(t, err)
	waitDownload(t, ctx, filepath.Join(downloads, filepath.Base(toPage)), info.Size())
	require.NoError(t, send.Wait(), "the CLI's send to the page: %s", out.String())
	st := tabState(t, p)
	require.Len(t, st.Received, 1, "state: %s", p.stateJSON())
	assert.Equal(t, os.Getenv(envOffToSum), st.Received[0].SHA256, "the page received it byte for byte")
	assert.Empty(t, st.Errors)
	require.Len(t, st.Connections, 1)
	t.Logf("the page's candidates (CLI to page): %v", st.Connections[0].Candidates)

	// The CLI shows a code; the page joins it and sends.
	rcv := bob("receive", "--server", natServeURL, "--dir", os.Getenv(envOffInbox), "--yes", "--once")
	r := startCmd(t, ctx, "bob-receive", false, rcv, rcv.Args)
	code := r.await("pairing-code", nil).str("code")
	p.navigate(pageURL + "#" + code)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.click("#join")
	p.poll(`window.peerdrop.state.paired.length > 0 || window.peerdrop.state.errors.length > 0`, 40*time.Second)
	p.setFiles("#files", os.Getenv(envOffFrom))
	done := r.await("transfer-done", nil)
	assert.Empty(t, done.list("failed"), "transfer-done: %s", done)
	require.Equal(t, 0, r.wait(), "the CLI's receive; stderr: %s", r.stderr.String())
	p.poll(`window.peerdrop.state.sent.length >= 1`, 20*time.Second)
	st = tabState(t, p)
	assert.Empty(t, st.Sent[0].Error)
	assert.Empty(t, st.Errors)
	require.NotEmpty(t, st.Connections)
	t.Logf("the page's candidates (page to CLI): %v", st.Connections[len(st.Connections)-1].Candidates)
}

// assertFitsPhone checks the page on a phone's screen, as it is now: no
// sideways scrolling, every control on the screen, every button at least
// 44 × 44 px, the size a finger hits (WCAG 2.5.5, Apple's and Android's
// guidelines), and every text field at least half the screen wide (a
// pairing code is 17 characters).
func assertFitsPhone(t *testing.T, p browserTab, when string) {
	t.Helper()
	var got struct {
		Width int
		Bad   []string
	}
	require.NoError(t, json.Unmarshal([]byte(p.str(`(() => {
		const w = window.innerWidth, bad = [];
		const wide = document.documentElement.scrollWidth;
		if (wide > w) bad.push("the page is " + wide + " px wide");
		for (const e of document.querySelectorAll("button, .button, input, a, select, textarea")) {
			const r = e.getBoundingClientRect();
			if (r.width === 0 && r.height === 0) continue; // not shown
			const name = "#" + e.id + "." + e.className + " '" + e.textContent.trim().slice(0, 24) + "'";
			if (r.left < 0 || r.right > w + 0.5) bad.push(name + " leaves the screen (" + Math.round(r.left) + " to " + Math.round(r.right) + ")");
			if (e.matches("button, .button") && (r.width < 44 || r.height < 44)) bad.push(name + " is " + Math.round(r.width) + " × " + Math.round(r.height) + " px");
			if (e.matches("input[type=text]") && r.width < w / 2) bad.push(name + " is " + Math.round(r.width) + " px wide, too narrow to read what is typed");
		}
		return JSON.stringify({width: w, bad});
	})()`)), &got))
	assert.Equal(t, 393, got.Width, "a Pixel 5's screen")
	assert.Empty(t, got.Bad, "the page on a phone, %s", when)
}
