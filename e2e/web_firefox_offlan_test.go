package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// Environment of TestFirefoxPageOffLAN's inner run (on host a).
const (
	envFFOffNS     = "PEERDROP_TEST_FFOFF_NS"     // host b's namespace
	envFFOffCfg    = "PEERDROP_TEST_FFOFF_CFG"    // a config folder for the CLI on b
	envFFOffToPage = "PEERDROP_TEST_FFOFF_TO"     // what the CLI sends to the page
	envFFOffToSum  = "PEERDROP_TEST_FFOFF_TO_SUM" // its SHA-256
	envFFOffFrom   = "PEERDROP_TEST_FFOFF_FROM"   // what the page sends to the CLI
	envFFOffInbox  = "PEERDROP_TEST_FFOFF_INBOX"  // where the CLI saves it
)

// Firefox with its default settings off the LAN, on the NAT topology: the
// page on host a (behind one home router) is served by `peerdrop serve` on
// the "internet" and meets a CLI on host b (behind another). Its host
// candidates are .local names nobody outside its LAN can resolve, as on a
// phone, so the connection runs on what the server's STUN and TURN give.
// Both ways: the page shows a code and the CLI sends to it; the CLI shows a
// code and the page joins it and sends.
func TestFirefoxPageOffLAN(t *testing.T) {
	if netnstest.Inside() {
		firefoxOffLANInside(t)
		return
	}
	firefoxPath(t)
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	src := t.TempDir()
	toPage := filepath.Join(src, "to-the-page.bin")
	toSum := writeRandomFile(t, toPage, 3*MiB+5, 51)
	fromPage := filepath.Join(src, "from-the-page.bin")
	writeRandomFile(t, fromPage, 2*MiB+7, 52)
	inbox := t.TempDir()
	cli := l.hosts["b"].device("Bob")
	for k, v := range map[string]string{
		envFFOffNS: cli.ns, envFFOffCfg: cli.config, envFFOffToPage: toPage, envFFOffToSum: toSum,
		envFFOffFrom: fromPage, envFFOffInbox: inbox,
	} {
		t.Setenv(k, v)
	}
	netnstest.Reexec(t, l.hosts["a"].ns)
	assert.Equal(t, files(snapshot(t, src))["from-the-page.bin"], files(snapshot(t, inbox))["from-the-page.bin"],
		"the page's file arrived byte for byte")
	requireNoLeftovers(t, inbox)
}

// firefoxOffLANInside is the browser's part, on host a.
func firefoxOffLANInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), webTimeout)
	defer cancel()
	pageURL := "http://" + natServerIP + ":8080/"
	cliArgs := func(args ...string) []string {
		return append([]string{"netns", "exec", os.Getenv(envFFOffNS), peerdropBin,
			"--config-dir", os.Getenv(envFFOffCfg), "--name", "Bob", "--json"}, args...)
	}

	// The page shows a code; the CLI sends with it.
	downloads := t.TempDir()
	p := openFirefox(t, ctx, pageURL+"?save=download", downloads)
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.click("#create")
	p.poll(`window.peerdrop.state.code !== ''`, 20*time.Second)
	code, err := p.eval(`window.peerdrop.state.code`)
	require.NoError(t, err)
	toPage := os.Getenv(envFFOffToPage)
	send := exec.CommandContext(ctx, "ip", cliArgs("send", "--server", natServeURL, "--code", code.(string), toPage)...)
	var out bytes.Buffer // read only after Wait
	send.Stdout, send.Stderr = &out, &out
	require.NoError(t, send.Start())
	p.poll(`window.peerdrop.state.offers.length >= 1 || window.peerdrop.state.errors.length > 0`, 60*time.Second)
	p.click("#offer-list .offer button.accept")
	info, err := os.Stat(toPage)
	require.NoError(t, err)
	waitDownload(t, ctx, filepath.Join(downloads, filepath.Base(toPage)), info.Size())
	require.NoError(t, send.Wait(), "the CLI's send to the page: %s", out.String())
	var st offLANState
	require.NoError(t, json.Unmarshal([]byte(p.stateJSON()), &st))
	require.Len(t, st.Received, 1, "state: %s", p.stateJSON())
	assert.Equal(t, os.Getenv(envFFOffToSum), st.Received[0].SHA256, "the page received it byte for byte")
	assert.Empty(t, st.Errors)
	require.Len(t, st.Connections, 1)
	t.Logf("the page's candidates (CLI to page): %v", st.Connections[0].Candidates)

	// The CLI shows a code; the page joins it and sends.
	rcv := exec.CommandContext(ctx, "ip", cliArgs("receive", "--server", natServeURL, "--dir", os.Getenv(envFFOffInbox), "--yes", "--once")...)
	r := startCmd(t, ctx, "bob-receive", false, rcv, rcv.Args)
	code = r.await("pairing-code", nil).str("code")
	p.result(nil, "browsingContext.navigate", map[string]any{"context": p.context, "url": pageURL + "#" + code.(string), "wait": "complete"})
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	p.click("#join")
	p.poll(`window.peerdrop.state.paired.length > 0 || window.peerdrop.state.errors.length > 0`, 40*time.Second)
	p.setFiles("#files", os.Getenv(envFFOffFrom))
	done := r.await("transfer-done", nil)
	assert.Empty(t, done.list("failed"), "transfer-done: %s", done)
	require.Equal(t, 0, r.wait(), "the CLI's receive; stderr: %s", r.stderr.String())
	p.poll(`window.peerdrop.state.sent.length >= 1`, 20*time.Second)
	st = offLANState{}
	require.NoError(t, json.Unmarshal([]byte(p.stateJSON()), &st))
	assert.Empty(t, st.Sent[0].Error)
	assert.Empty(t, st.Errors)
	require.NotEmpty(t, st.Connections)
	t.Logf("the page's candidates (page to CLI): %v", st.Connections[len(st.Connections)-1].Candidates)
}
