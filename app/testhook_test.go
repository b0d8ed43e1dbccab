package app

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// hookLines reads the hook file.
func hookLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		assert.NotEmpty(t, m["time"])
		out = append(out, m)
	}
	return out
}

func TestTestHook(t *testing.T) {
	u, f := newTestUI(t)
	path := filepath.Join(t.TempDir(), "hook.jsonl")
	env := map[string]string{
		EnvTestHook:   path,
		EnvTestSend:   "Bob|/tmp/a.txt|/tmp/dir",
		EnvTestAnswer: "accept",
	}
	stop, err := u.startTestHooks(func(k string) string { return env[k] })
	require.NoError(t, err)

	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("c", "Carol", "phone")}})
	assert.Empty(t, f.Calls(), "Bob is not there yet")
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("c", "Carol", "phone"), dev("b", "Bob", "laptop")}})
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})
	u.HandleEvent(engine.ItemChanged{Item: running("sent-1")})
	u.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
	u.HandleEvent(engine.Problem{Err: assert.AnError})
	stop()
	u.HandleEvent(engine.ItemsCleared{}) // after stop: not written

	assert.Equal(t, []string{"Send b /tmp/a.txt,/tmp/dir", "Answer o1 true"}, f.Calls(), "sent once, accepted by the hook")

	lines := hookLines(t, path)
	var events []string
	for _, l := range lines {
		events = append(events, l["event"].(string))
	}
	assert.Equal(t, []string{"ready", "devices", "devices", "test-send", "devices", "item", "offer", "test-answer", "problem"}, events)
	assert.Equal(t, "Alice's Laptop", lines[0]["name"])
	assert.Equal(t, []any{"Carol", "Bob"}, lines[2]["names"])
	assert.Equal(t, "sent-1", lines[3]["item"])
	assert.Equal(t, "b", lines[3]["device_id"])
	assert.Equal(t, "running", lines[5]["state"])
	assert.Equal(t, "482 913", lines[6]["code"])
}

func TestTestHookBadEnv(t *testing.T) {
	u, _ := newTestUI(t)
	for _, env := range []map[string]string{
		{EnvTestSend: "Bob"},
		{EnvTestSend: "|/tmp/a"},
		{EnvTestAnswer: "maybe"},
		{EnvTestHook: filepath.Join(t.TempDir(), "no", "such", "dir", "x")},
	} {
		stop, err := u.startTestHooks(func(k string) string { return env[k] })
		assert.Error(t, err, "%v", env)
		stop()
	}
	stop, err := u.startTestHooks(func(string) string { return "" })
	assert.NoError(t, err)
	assert.Nil(t, u.hook.Load(), "off without variables")
	stop()
}

// The hook reports the server's state, pairing codes, pairings and which
// devices are away, for end-to-end tests of pairing from the app.
func TestEventSummaryServer(t *testing.T) {
	away := engine.Device{Away: true}
	away.ID, away.Name = "b", "Bob"
	assert.Equal(t, []string{"b"}, eventSummary(engine.DevicesChanged{Devices: []engine.Device{away, dev("c", "Carol", "phone")}})["away"])
	assert.Equal(t, map[string]any{"event": "server", "url": "wss://s/ws", "connected": true, "error": ""},
		eventSummary(engine.ServerStatus{URL: "wss://s/ws", Connected: true}))
	assert.Equal(t, "7KQ2M-XW4PD-R8T3Z", eventSummary(engine.PairingCodeShown{Code: engine.PairingCode{Code: "7KQ2M-XW4PD-R8T3Z"}})["code"])
	assert.Equal(t, map[string]any{"event": "paired", "peer": "Bob", "peer_id": "b"}, eventSummary(engine.Paired{Peer: engine.Peer{ID: "b", Name: "Bob"}}))
}

// The hook reports where the web client is served and which devices are
// pages on it, for end-to-end tests of the web client from the app.
func TestEventSummaryWeb(t *testing.T) {
	page := dev("p", "Browser (web)", "desktop")
	page.Web = true
	assert.Equal(t, []string{"p"}, eventSummary(engine.DevicesChanged{Devices: []engine.Device{page, dev("c", "Carol", "phone")}})["web"])
	assert.Equal(t, map[string]any{"event": "web", "url": "http://10.0.0.2:53319/", "error": ""},
		eventSummary(engine.WebStatus{URL: "http://10.0.0.2:53319/"}))
}

// The engine serves the web client before the hook starts (main starts the
// engine first): the hook says where right after "ready".
func TestTestHookWebServedBefore(t *testing.T) {
	u, f := newTestUI(t)
	f.webURL = "http://10.0.0.2:53319/"
	path := filepath.Join(t.TempDir(), "hook.jsonl")
	stop, err := u.startTestHooks(func(k string) string { return map[string]string{EnvTestHook: path}[k] })
	require.NoError(t, err)
	stop()
	lines := hookLines(t, path)
	require.Len(t, lines, 2)
	assert.Equal(t, "ready", lines[0]["event"])
	assert.Equal(t, "web", lines[1]["event"])
	assert.Equal(t, "http://10.0.0.2:53319/", lines[1]["url"])
}

// A build without the peerdrop_testhook tag (the app as released) never
// reads the PEERDROP_TEST_* variables: no file, no automatic answers.
func TestReleaseBuildIgnoresTestHooks(t *testing.T) {
	if TestHooksBuilt {
		t.Skip("built with the peerdrop_testhook tag")
	}
	u, _ := newTestUI(t)
	path := filepath.Join(t.TempDir(), "hook.jsonl")
	env := map[string]string{EnvTestHook: path, EnvTestAnswer: "accept", EnvTestSend: "Bob|/etc/passwd"}
	stop, err := u.StartTestHooks(func(k string) string { return env[k] })
	require.NoError(t, err)
	stop()
	assert.Nil(t, u.hook.Load())
	assert.NoFileExists(t, path)
}
