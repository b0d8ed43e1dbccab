package engine

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.5":          "192.168.1.5:53318",
		" 192.168.1.5:4000 ":   "192.168.1.5:4000",
		"192.168.1.5:04000":    "192.168.1.5:4000",
		"fe80::1%eth0":         "[fe80::1%eth0]:53318",
		"[fe80::1%eth0]":       "[fe80::1%eth0]:53318",
		"[fe80::1%eth0]:53318": "[fe80::1%eth0]:53318",
		"[2001:db8::7]:9":      "[2001:db8::7]:9",
		"nas.local":            "nas.local:53318",
		"nas.local.:4000":      "nas.local.:4000",
		"my-pc":                "my-pc:53318",
	} {
		got, err := ParseAddress(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{
		"", "   ", "http://192.168.1.5:53318/", "192.168.1.5:0", "192.168.1.5:65536", "192.168.1.5:http",
		"192.168.1.5:-1", "192.168.1.5:", "999.1.1.1", "1.2.3", "fe80::1:53318:x", "fe80::1%eth0]:1", "[fe80::1%a]b]:1", "bob's laptop", "a b",
		"-bad.local", "bad-.local", "a..b", "user@host", "host/path", "ünicode.local", ":53318", "[::1",
		"x" + string(make([]byte, 300)),
	} {
		got, err := ParseAddress(in)
		assert.ErrorIs(t, err, ErrBadAddress, "%q gave %q", in, got)
	}
}

// A send to an address (no id, no discovery) reaches the device there and
// learns its name from the hello.
func TestSendToAddress(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	_, port, err := net.SplitHostPort(b.Addr())
	require.NoError(t, err)
	to, err := AddressTarget("127.0.0.1:" + port)
	require.NoError(t, err)
	assert.Equal(t, Target{Addrs: []string{"127.0.0.1:" + port}}, to, "nothing but the address typed")
	d, err := AddressDevice("nas.local:4000")
	require.NoError(t, err)
	assert.Equal(t, "nas.local:4000", d.Name, "shown as typed until it answers")
	assert.Equal(t, Target{Addrs: []string{"nas.local:4000"}}, TargetOf(d))

	src := filepath.Join(t.TempDir(), "note.txt")
	writeFile(t, src, []byte("by address"))
	it, err := a.Send(to, []string{src})
	require.NoError(t, err)
	accept(t, b, 0)
	done := a.rec.waitState(t, 0, it.ID, StateDone)
	assert.Equal(t, Peer{ID: b.Self().ID, Name: "bob"}, done.Peer, "named by its hello")
	sameTree(t, src, filepath.Join(b.cfg.DownloadDir, "note.txt"))

	ips, p := b.Addresses()
	assert.Equal(t, port, strconv.Itoa(p), "the port others type")
	for _, ip := range ips {
		assert.False(t, ip.IsLoopback(), "%s", ip)
	}
}
