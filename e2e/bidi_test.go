//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// Firefox, driven over WebDriver BiDi (https://w3c.github.io/webdriver-bidi/),
// which firefox-esr speaks itself: no geckodriver. The browser runs with a
// fresh profile and its default settings (no prefs set): host candidates
// hidden behind .local names, as on a phone.

// firefoxPath is Debian's firefox-esr, or the test skips.
func firefoxPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no firefox-esr on PATH: the Firefox tests need it (make test installs Debian's firefox-esr)")
	return ""
}

// bidiTab is one Firefox tab under a BiDi session.
type bidiTab struct {
	t       *testing.T
	ctx     context.Context
	ws      *websocket.Conn
	id      int
	context string // the tab's browsing context id
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// openFirefox starts a headless Firefox with a fresh profile (HOME in a
// temporary folder, so downloads land in downloads), opens pageURL and
// returns the tab. Firefox ends with the test.
func openFirefox(t *testing.T, ctx context.Context, pageURL, downloads string) *bidiTab {
	t.Helper()
	home := t.TempDir()
	profile := filepath.Join(home, "profile")
	require.NoError(t, os.MkdirAll(profile, 0o700))
	require.NoError(t, os.MkdirAll(downloads, 0o755))
	require.NoError(t, os.Symlink(downloads, filepath.Join(home, "Downloads")))
	cmd := exec.CommandContext(ctx, firefoxPath(t), "--headless", "--no-remote", "--profile", profile,
		"--remote-debugging-port", "0", "about:blank")
	cmd.Env = append(os.Environ(), "HOME="+home, "MOZ_CRASHREPORTER_DISABLE=1")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = nil
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := bidiListening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case url <- m[1]:
				default:
				}
			}
		}
	}()
	var ws string
	select {
	case ws = <-url:
	case <-time.After(60 * time.Second):
		t.Fatal("firefox did not open its WebDriver BiDi port within 60 s")
	}
	conn, _, err := websocket.Dial(ctx, ws+"/session", nil)
	require.NoError(t, err, "connect to firefox")
	conn.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	b := &bidiTab{t: t, ctx: ctx, ws: conn}
	_, err = b.call("session.new", map[string]any{"capabilities": map[string]any{}})
	require.NoError(t, err, "session.new")
	var tree struct{ Contexts []struct{ Context string } }
	b.result(&tree, "browsingContext.getTree", map[string]any{})
	require.NotEmpty(t, tree.Contexts, "a tab")
	b.context = tree.Contexts[0].Context
	b.result(nil, "browsingContext.navigate", map[string]any{"context": b.context, "url": pageURL, "wait": "complete"})
	return b
}

// call sends one command and returns its result; events are skipped.
func (b *bidiTab) call(method string, params any) (json.RawMessage, error) {
	b.id++
	msg, err := json.Marshal(map[string]any{"id": b.id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	if err := b.ws.Write(b.ctx, websocket.MessageText, msg); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	for {
		_, data, err := b.ws.Read(b.ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var r struct {
			ID      int             `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if err := json.Unmarshal(data, &r); err != nil || r.ID != b.id {
			continue // an event, or another command's
		}
		if r.Error != "" {
			return nil, fmt.Errorf("%s: %s: %s", method, r.Error, r.Message)
		}
		return r.Result, nil
	}
}

// result runs a command that must succeed and decodes its result into v.
func (b *bidiTab) result(v any, method string, params any) {
	b.t.Helper()
	r, err := b.call(method, params)
	require.NoError(b.t, err)
	if v != nil {
		require.NoError(b.t, json.Unmarshal(r, v), "%s result %s", method, r)
	}
}

// eval evaluates a JavaScript expression in the tab (promises awaited) and
// returns its value, which must be a string, number or boolean.
func (b *bidiTab) eval(expr string) (any, error) {
	r, err := b.call("script.evaluate", map[string]any{
		"expression": expr, "target": map[string]any{"context": b.context}, "awaitPromise": true,
	})
	if err != nil {
		return nil, err
	}
	var res struct {
		Type   string
		Result struct {
			Type  string
			Value any
		}
		ExceptionDetails *struct{ Text string } `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(r, &res); err != nil {
		return nil, err
	}
	if res.Type == "exception" {
		text := "?"
		if res.ExceptionDetails != nil {
			text = res.ExceptionDetails.Text
		}
		return nil, errors.New("exception: " + text)
	}
	return res.Result.Value, nil
}

// poll waits until expr is truthy.
func (b *bidiTab) poll(expr string, timeout time.Duration) {
	b.t.Helper()
	end := time.Now().Add(timeout)
	for {
		v, err := b.eval("!!(" + expr + ")")
		if err == nil && v == true {
			return
		}
		if time.Now().After(end) {
			require.FailNowf(b.t, "page", "waiting for %s (last: %v, %v); page state: %s", expr, v, err, b.stateJSON())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stateJSON is window.peerdrop.state, for checks and failure messages.
func (b *bidiTab) stateJSON() string {
	v, err := b.eval(`JSON.stringify(window.peerdrop && window.peerdrop.state)`)
	if err != nil {
		return err.Error()
	}
	s, _ := v.(string)
	return s
}

// state decodes window.peerdrop.state.
func (b *bidiTab) state() webState {
	b.t.Helper()
	var s webState
	require.NoError(b.t, json.Unmarshal([]byte(b.stateJSON()), &s), "page state")
	return s
}

// click clicks the first element matching the CSS selector.
func (b *bidiTab) click(selector string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	v, err := b.eval(`(() => { const e = document.querySelector(` + string(sel) + `); if (!e) return false; e.click(); return true })()`)
	require.NoError(b.t, err)
	require.Equal(b.t, true, v, "no element %s", selector)
}

// setFiles puts paths in the file input matching the CSS selector, as a
// user picking them would (input.setFiles fires its change event).
func (b *bidiTab) setFiles(selector string, paths ...string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	var node struct {
		Result struct {
			Type     string
			SharedID string `json:"sharedId"`
		}
	}
	b.result(&node, "script.evaluate", map[string]any{
		"expression": "document.querySelector(" + string(sel) + ")", "target": map[string]any{"context": b.context},
		"awaitPromise": false, "resultOwnership": "root",
	})
	require.Equal(b.t, "node", node.Result.Type, "no element %s", selector)
	b.result(nil, "input.setFiles", map[string]any{
		"context": b.context, "element": map[string]any{"sharedId": node.Result.SharedID}, "files": paths,
	})
}

// navigate opens url in the tab.
func (b *bidiTab) navigate(url string) {
	b.t.Helper()
	b.result(nil, "browsingContext.navigate", map[string]any{"context": b.context, "url": url, "wait": "complete"})
}

// str evaluates a JavaScript expression whose value is a string.
func (b *bidiTab) str(expr string) string {
	b.t.Helper()
	v, err := b.eval(expr)
	require.NoError(b.t, err, "evaluate %s", expr)
	s, ok := v.(string)
	require.True(b.t, ok, "%s is %v, not a string", expr, v)
	return s
}
