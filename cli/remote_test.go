package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --server takes the URL `peerdrop serve` prints, or less of it.
func TestServerURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8080/ws", ""},
		{"wss://serve.example.org/ws", "wss://serve.example.org/ws", ""},
		{"serve.example.org", "wss://serve.example.org/ws", ""},
		{"serve.example.org:8443", "wss://serve.example.org:8443/ws", ""},
		{"https://serve.example.org/", "wss://serve.example.org/ws", ""},
		{"http://10.0.0.1:8080", "ws://10.0.0.1:8080/ws", ""},
		{"ws://[::1]:8080/peerdrop/ws", "ws://[::1]:8080/peerdrop/ws", ""},
		{"", "", "empty"},
		{"ftp://example.org", "", "want a ws://"},
		{"ws://", "", "no host"},
	} {
		got, err := serverURL(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}
