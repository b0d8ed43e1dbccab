package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --to takes HOST:PORT or an IP address as an address; anything else is a
// name or id to look up nearby.
func TestParseTo(t *testing.T) {
	for _, tc := range []struct {
		in, addr, err string
	}{
		{"127.0.0.1:53318", "127.0.0.1:53318", ""},
		{"[::1]:9", "[::1]:9", ""},
		{"laptop.local:53318", "laptop.local:53318", ""},
		{"192.168.1.5", "192.168.1.5:53318", ""},
		{"fe80::1", "[fe80::1]:53318", ""},
		{"[::1]", "[::1]:53318", ""},
		{"Laptop", "", ""},
		{"0123456789abcdef", "", ""},
		{"Bob: laptop", "", ""},
		{"host:http", "", ""},
		{"127.0.0.1:0", "", "out of range"},
		{"127.0.0.1:70000", "", "out of range"},
		{":53318", "", "missing host"},
	} {
		addr, isAddr, err := parseTo(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.addr, addr, tc.in)
		assert.Equal(t, tc.addr != "", isAddr, tc.in)
	}
}
