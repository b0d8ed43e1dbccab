package cli

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The URL shown for the web client names the host that was given, or this
// machine's LAN address when the server listens on every interface.
func TestWebHost(t *testing.T) {
	assert.Equal(t, "127.0.0.1", webHost("127.0.0.1"))
	assert.Equal(t, "192.168.1.9", webHost("192.168.1.9"))
	assert.Equal(t, "::1", webHost("::1"))
	for _, host := range []string{"", "0.0.0.0", "::"} {
		h := webHost(host)
		ip := net.ParseIP(h)
		if assert.NotNil(t, ip, "%q gives %q", host, h) {
			assert.False(t, ip.IsUnspecified(), "%q gives %q", host, h)
		}
	}
}

func TestWebFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"receive", "--web-listen", ":0"}, "--web-listen needs --web"},
	} {
		var stdout, stderr bytes.Buffer
		dir := t.TempDir()
		code := Run(append([]string{"--config-dir", dir, "--name", "t"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr.String())
		assert.Contains(t, stderr.String(), tc.want, tc.args)
	}
}
