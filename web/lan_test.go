package web

import (
	"net"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// The URL shown for the web client names the address listened on, or this
// machine's LAN address when the server listens on every interface.
func TestURL(t *testing.T) {
	assert.Equal(t, "http://127.0.0.1:53319/", URL(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53319}))
	assert.Equal(t, "http://192.168.1.9:8080/", URL(&net.TCPAddr{IP: net.ParseIP("192.168.1.9"), Port: 8080}))
	assert.Equal(t, "http://[::1]:80/", URL(&net.TCPAddr{IP: net.IPv6loopback, Port: 80}))
	for _, ip := range []net.IP{nil, net.IPv4zero, net.IPv6unspecified} {
		u, err := url.Parse(URL(&net.TCPAddr{IP: ip, Port: 53319}))
		require.NoError(t, err)
		assert.Equal(t, "53319", u.Port())
		got := net.ParseIP(u.Hostname())
		if assert.NotNil(t, got, "%v gives %q", ip, u.Host) {
			assert.False(t, got.IsUnspecified(), "%v gives %q", ip, u.Host)
		}
	}
}

// A machine with a container bridge (listed first, private address, no
// phone behind it) and its real LAN: the URL names the LAN address, the
// one the default route leaves from.
func TestLANIPPrefersTheDefaultRoute(t *testing.T) {
	if netnstest.Inside() {
		ip := lanIP()
		require.NotNil(t, ip)
		assert.Equal(t, "10.79.0.5", ip.String())
		return
	}
	netnstest.Require(t)
	ns := netnstest.New(t, "pdweb")
	netnstest.IP(t, "-n", ns, "link", "add", "docker0", "type", "bridge")
	netnstest.IP(t, "-n", ns, "addr", "add", "172.17.0.1/16", "dev", "docker0")
	netnstest.IP(t, "-n", ns, "link", "set", "docker0", "up")
	netnstest.IP(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	netnstest.IP(t, "-n", ns, "addr", "add", "10.79.0.5/24", "dev", "eth0")
	netnstest.IP(t, "-n", ns, "link", "set", "eth0", "up")
	netnstest.IP(t, "-n", ns, "link", "set", "eth1", "up")
	netnstest.IP(t, "-n", ns, "route", "add", "default", "via", "10.79.0.1")
	netnstest.Reexec(t, ns)
}
