package netif

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnicast(t *testing.T) {
	parse := func(s string) net.Addr {
		_, n, err := net.ParseCIDR(s)
		require.NoError(t, err)
		ip, _, _ := net.ParseCIDR(s)
		n.IP = ip
		return n
	}
	for _, tc := range []struct {
		in   string
		want string // "" = not a unicast address
	}{
		{"192.168.1.20/24", "192.168.1.20"},
		{"10.0.0.1/8", "10.0.0.1"},
		{"2001:db8::5/64", "2001:db8::5"},
		{"fe80::1/64", "fe80::1%eth0"},
		{"127.0.0.1/8", ""},
		{"::1/128", ""},
		{"0.0.0.0/0", ""},
		{"224.0.0.251/32", ""},
	} {
		ip, ok := unicast(parse(tc.in), "eth0")
		if tc.want == "" {
			assert.False(t, ok, tc.in)
			continue
		}
		require.True(t, ok, tc.in)
		assert.Equal(t, netip.MustParseAddr(tc.want), ip, tc.in)
	}
	_, ok := unicast(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, "eth0")
	assert.False(t, ok, "not an interface address")
}

func TestUpHasNoLoopback(t *testing.T) {
	for _, a := range Up() {
		assert.False(t, a.IP.IsLoopback(), a.IP.String())
		assert.NotEmpty(t, a.Iface)
	}
}
