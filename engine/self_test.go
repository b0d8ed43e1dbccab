package engine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/netnstest"
	"github.com/thepeerdrop/peerdrop/web"
)

// liveNetns re-runs the calling test in a namespace of its own where real
// mDNS flows between two interfaces (netnstest.InVethPair); true in the
// inner run, which does the work.
func liveNetns(t *testing.T) bool {
	t.Helper()
	return netnstest.InVethPair(t, "pdself", 77)
}

// browse runs a discovery.Browser (another device on the LAN) until the
// test ends and returns what it lists.
func browse(t *testing.T) func() map[string]discovery.Device {
	var mu sync.Mutex
	seen := map[string]discovery.Device{}
	b := &discovery.Browser{OnEvent: func(ev discovery.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Kind == discovery.Gone {
			delete(seen, ev.Device.ID)
		} else {
			seen[ev.Device.ID] = ev.Device
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); assert.NoError(t, <-done) })
	return func() map[string]discovery.Device {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]discovery.Device, len(seen))
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

// Renaming the device (Settings' Save) applies at once, without a restart:
// another device browsing over real mDNS sees the new name, a connection's
// hello gives it, and the web page shows it; so for the type.
func TestRenameAppliesAtOnce(t *testing.T) {
	if !liveNetns(t) {
		return
	}
	cfg := testConfig(t, "alice")
	cfg.Hidden = false
	cfg.Type = discovery.TypeLaptop
	cfg.WebListen = "127.0.0.1:0"
	a := runEngine(t, cfg)
	a.rec.wait(t, 0, "web client served", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL != "" })
	seen := browse(t)
	listed := func(name, typ string) func() bool {
		return func() bool {
			d, ok := seen()[a.Self().ID]
			return ok && d.Name == name && d.Type == typ
		}
	}
	require.Eventually(t, listed("alice", discovery.TypeLaptop), 30*time.Second, 20*time.Millisecond, "advertised as alice")

	mark := a.rec.mark()
	require.NoError(t, a.SetName("Alice's laptop"))
	assert.Equal(t, "Alice's laptop", a.Self().Name)
	require.Eventually(t, listed("Alice's laptop", discovery.TypeLaptop), 30*time.Second, 20*time.Millisecond,
		"advertised under the new name; seen: %v", seen())

	// A connection's hello names it so.
	bob := startEngine(t, "bob")
	m, err := bob.SendText(Target{Addrs: a.target().Addrs}, "hi")
	require.NoError(t, err)
	ev := bob.rec.wait(t, 0, "delivered", func(ev Event) bool { mr, ok := ev.(MessageReceived); return ok && mr.Message.ID == m.ID })
	assert.Empty(t, ev.(MessageReceived).Message.Err)
	assert.Equal(t, "Alice's laptop", ev.(MessageReceived).Message.Peer.Name, "the hello's name")

	// The web page says so.
	st := a.rec.wait(t, mark, "web client served again", func(ev Event) bool { s, ok := ev.(WebStatus); return ok && s.URL != "" }).(WebStatus)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	body, err := httpGet(ctx, strings.TrimSuffix(st.URL, "/")+"/api/info")
	require.NoError(t, err)
	var info web.Info
	require.NoError(t, json.Unmarshal(body, &info))
	assert.Equal(t, "Alice's laptop", info.Name)

	require.NoError(t, a.SetType(discovery.TypeDesktop))
	assert.Equal(t, discovery.TypeDesktop, a.Type())
	require.Eventually(t, listed("Alice's laptop", discovery.TypeDesktop), 30*time.Second, 20*time.Millisecond, "advertised as a desktop")

	// Checked like the name at start.
	assert.Error(t, a.SetName(""))
	assert.Error(t, a.SetName(strings.Repeat("x", 200)))
	assert.Error(t, a.SetType("toaster"))
	assert.Equal(t, "Alice's laptop", a.Self().Name)
}

// A renamed device connects to the server again under its new name: a
// paired device that lists it away sees the new name.
func TestRenameReachesTheServer(t *testing.T) {
	url := newRendezvous(t)
	acfg := testConfig(t, "alice")
	acfg.Server = url
	// Rounds often: bob's new connection may find alice before the server
	// tells her that his old one left, and then she sees him again at her
	// next round (30 s in the app).
	a := startRemoteCfg(t, acfg, func(e *Engine) { e.srv.finds.every = 200 * time.Millisecond })
	b := startRemote(t, "bob", url)
	ctx := pairingContext(t)
	code, err := b.StartPairing(ctx)
	require.NoError(t, err)
	_, err = a.JoinPairing(ctx, code.Code)
	require.NoError(t, err)
	bID := b.Self().ID
	assert.Equal(t, "bob", a.waitAway(t, 0, bID).Name)

	from := a.rec.mark()
	require.NoError(t, b.SetName("Bob's desktop"))
	a.rec.wait(t, from, "bob away under his new name", func(ev Event) bool {
		dc, ok := ev.(DevicesChanged)
		return ok && slices.ContainsFunc(dc.Devices, func(d Device) bool { return d.ID == bID && d.Away && d.Name == "Bob's desktop" })
	})
}
