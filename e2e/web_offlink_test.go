//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/identity"
	pd "github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/netnstest"
	"github.com/thepeerdrop/peerdrop/signaling"
)

const (
	envOffLinkURL     = "PEERDROP_TEST_OFFLINK_URL"
	envOffLinkControl = "PEERDROP_TEST_OFFLINK_CONTROL"
)

// Issue 11, item 2: host R serves the web page and is on two networks,
// the LAN (with A and B) and a second one (10.88.0.0/24) only R reaches.
// A advertises, over real mDNS on the LAN, a fake device whose addresses
// are on R's second network and R's own loopback: R must not list it (and
// so never dial it for a page), while B, advertised on the LAN, is listed.
func TestWebBridgeIgnoresOffLinkAddresses(t *testing.T) {
	if netnstest.Inside() {
		offLinkInside(t)
		return
	}
	l := newLAN(t, "a", "b", "r")
	ctx := lanContext(t)
	r := l.hosts["r"]
	second := netnstest.New(t, "pdoff")
	netnstest.IP(t, "link", "add", "r2", "netns", r.ns, "type", "veth", "peer", "name", "s2", "netns", second)
	netnstest.IP(t, "-n", r.ns, "addr", "add", "10.88.0.1/24", "dev", "r2")
	netnstest.IP(t, "-n", r.ns, "link", "set", "r2", "up")
	netnstest.IP(t, "-n", second, "addr", "add", "10.88.0.2/24", "dev", "s2")
	netnstest.IP(t, "-n", second, "link", "set", "s2", "up")

	_, bravoID := l.hosts["b"].device("Bravo").receive(ctx, t.TempDir(), "--yes")
	rp := r.device("Rex").run(ctx, "r-receive", "receive", "--dir", t.TempDir(), "--yes",
		"--web", "--web-listen", r.ip+":53319")
	rp.await("listening", nil)
	t.Setenv(envOffLinkURL, rp.awaitAny("web", nil).str("url"))
	t.Setenv(envOffLinkControl, bravoID)
	netnstest.Reexec(t, l.hosts["a"].ns)
}

// offLinkInside is host A's part: the fake advertisement and the page's
// view of R's list.
func offLinkInside(t *testing.T) {
	pageURL, control := os.Getenv(envOffLinkURL), os.Getenv(envOffLinkControl)
	require.NotEmpty(t, pageURL)
	fake, err := identity.Load(t.TempDir())
	require.NoError(t, err)
	info := discovery.Info{Device: pd.Device{ID: fake.DeviceID, Name: "Fake", Type: discovery.TypeLaptop, Fingerprint: fake.Fingerprint}, Version: int(signaling.Version)}
	srv, err := zeroconf.RegisterProxy("Fake", discovery.Service, discovery.Domain, 53318,
		"pd-"+fake.DeviceID, []string{"10.88.0.2", "127.0.0.1"}, discovery.EncodeTXT(info), nil)
	require.NoError(t, err)
	defer srv.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listed := func() []string {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pageURL+"api/devices", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var list []struct {
			DeviceID string `json:"device_id"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
		var ids []string
		for _, d := range list {
			ids = append(ids, d.DeviceID)
		}
		return ids
	}
	require.Eventually(t, func() bool { return slices.Contains(listed(), control) }, 30*time.Second, 200*time.Millisecond,
		"R lists Bravo, advertised on the LAN")
	// Two more query rounds (every 4 s): the fake's answers have reached R.
	time.Sleep(9 * time.Second)
	ids := listed()
	t.Logf("R lists %v; the fake device is %s", ids, fake.DeviceID)
	assert.Contains(t, ids, control)
	assert.NotContains(t, ids, fake.DeviceID, "a device advertised with addresses off the LAN it was heard on is not listed")
}
