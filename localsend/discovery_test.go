package localsend

import (
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// listed waits until h lists a device called alias, and returns it.
func listed(t *testing.T, h *host, alias string) Device {
	t.Helper()
	var found Device
	require.Eventually(t, func() bool {
		for _, d := range h.node.Devices() {
			if d.Alias == alias {
				found = d
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "%s never lists %s", h.node.Self().Alias, alias)
	return found
}

// Real multicast in a namespace of its own (a veth pair, nothing reaches
// the machine's network): announcements are answered with register, so
// each node lists the other; a node that hears no multicast finds the
// others with the legacy scan; and the server on the protocol's own port
// refuses what our rules refuse.
func TestDiscoveryInANamespace(t *testing.T) {
	if !netnstest.InVethPair(t, "lsdisc", 91) {
		return
	}
	a := startHost(t, "Alpha", func(c *Config) { c.Port, c.Addr, c.NoDiscovery = 0, "", false })
	b := startHost(t, "Bravo", func(c *Config) { c.Addr, c.NoDiscovery = "", false })
	require.Equal(t, DefaultPort, a.node.Port())
	bravo := listed(t, a, "Bravo")
	alpha := listed(t, b, "Alpha")
	assert.Equal(t, uint16(b.node.Port()), bravo.Addr.Port(), "listed at the port it announced")
	assert.Equal(t, uint16(DefaultPort), alpha.Addr.Port())
	assert.True(t, alpha.Encrypted())
	assert.Equal(t, a.node.Self().Fingerprint, alpha.Fingerprint)

	// The device found is one a send reaches.
	one := writeFile(t, t.TempDir(), "found.bin", 1000)
	res, err := sendFiles(t, b, a, "", one)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent)

	// A node on another group port hears no one: the scan finds Alpha on
	// the protocol's port. (Every node here shares the namespace's
	// addresses, and the scan leaves out the address it scans from: a
	// second address on eth1 is where it finds Alpha.)
	out, err := exec.Command("ip", "addr", "add", "10.91.1.7/24", "dev", "eth1").CombinedOutput()
	require.NoError(t, err, "%s", out)
	targets := scanTargets()
	// 10.91.0.2-254, and 10.91.1.1-254 once: each address of eth1 is
	// left out only when scanning from it, so each is asked from the other.
	assert.Len(t, targets, 253+254, "each /24 but its network and broadcast addresses and the address it is scanned from")
	for _, ip := range targets {
		assert.True(t, netip.MustParsePrefix("10.91.0.0/16").Contains(ip), "%s is on this namespace's networks", ip)
	}
	c := startHost(t, "Charlie", func(c *Config) { c.Addr, c.NoDiscovery, c.GroupPort = "", false, 53399 })
	found := listed(t, c, "Alpha")
	assert.Equal(t, uint16(DefaultPort), found.Addr.Port())
	assert.True(t, found.Addr.Addr().Is4())

	// Hostile names at port 53317: refused, nothing written.
	cl, _ := raw(a)
	defer cl.CloseIdleConnections()
	url := fmt.Sprintf("https://%s/api/localsend/v2/prepare-upload", netip.AddrPortFrom(found.Addr.Addr(), DefaultPort))
	status, body := post(t, cl, url, prepareBody(map[string]FileInfo{"1": {ID: "1", FileName: "../../escape", Size: 1}}))
	assert.Equal(t, http.StatusBadRequest, status, body)
	status, body = post(t, cl, url, prepareBody(map[string]FileInfo{"1": {ID: "1", FileName: "huge", Size: 1 << 49}}))
	assert.Equal(t, http.StatusForbidden, status, body)
	nothingInButFile(t, a.dir, "found.bin")
}

// nothingInButFile checks that dir holds only name (and an empty state folder).
func nothingInButFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := readNames(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{name}, entries)
}
