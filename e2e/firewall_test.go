//go:build linux

package e2e

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onlyTwoPorts is a host firewall that lets in TCP 53318 and UDP 53318 and
// nothing else (no rule for established connections: what is not on those
// two ports is dropped).
func onlyTwoPorts(l *lan, h *host) {
	for _, ipt := range []string{"iptables", "ip6tables"} {
		l.in(h.ns, ipt, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
		l.in(h.ns, ipt, "-A", "INPUT", "-p", "tcp", "--dport", "53318", "-j", "ACCEPT")
		l.in(h.ns, ipt, "-A", "INPUT", "-p", "udp", "--dport", "53318", "-j", "ACCEPT")
		l.in(h.ns, ipt, "-P", "INPUT", "DROP")
	}
}

// A receiver whose firewall lets in only TCP 53318 and UDP 53318 takes a
// 100 MiB transfer: every peer connection uses UDP 53318. With a random UDP
// port per connection (--udp-port 0, as before), the same send fails.
func TestFirewallOnlyTwoPorts(t *testing.T) {
	l := newLAN(t, "a", "b")
	onlyTwoPorts(l, l.hosts["b"])
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	to := l.hosts["b"].ip + ":53318"

	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	sum := writeRandomFile(t, big, 100*MiB, 14)
	dl := t.TempDir()
	bp := bravo.run(ctx, "bravo-receive", "receive", "--yes", "--once", "--dir", dl)
	assert.Equal(t, 53318, int(bp.await("listening", nil).num("udp_port")), "UDP on the handshake's number")
	s := alpha.run(ctx, "alpha-send", "send", "--to", to, big)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	require.Equal(t, 0, bp.wait(), "stderr: %s", bp.stderr.String())
	assert.Equal(t, sum, sha256File(t, filepath.Join(dl, "big.bin")))

	// Random UDP ports: the firewall drops them.
	bp = bravo.run(ctx, "bravo-receive-random", "receive", "--yes", "--once", "--udp-port", "0", "--dir", t.TempDir())
	assert.Zero(t, bp.await("listening", nil).num("udp_port"))
	r, code := alpha.doctor(ctx, t, "--to", to)
	assert.Equal(t, 1, code)
	assert.Equal(t, true, field(r, "target", "handshake"), "the handshake port answers")
	assert.Equal(t, false, field(r, "target", "connected"))
	assert.Contains(t, field(r, "target", "error"), "UDP is blocked between the two devices")
	assert.Contains(t, joined(field(r, "advice")), "On Bravo with ufw: sudo ufw allow 53318/udp")
	s = alpha.run(ctx, "alpha-send-random", "send", "--to", to, big)
	assert.NotEqual(t, 0, s.wait(), "without the shared port the firewall stops the transfer")
	t.Logf("with random UDP ports: %s", s.stderr.String())
	assert.Contains(t, s.stderr.String(), "UDP is blocked between the two devices", "the step that failed, in plain words")
	bp.signal(syscall.SIGINT)
	bp.wait()

	// Nothing listens any more: the handshake port is the step that fails.
	r, code = alpha.doctor(ctx, t, "--to", to)
	assert.Equal(t, 1, code)
	assert.Equal(t, false, field(r, "target", "handshake"))
	assert.Contains(t, field(r, "target", "error"), "nothing answers on its handshake port (TCP 53318)")
	s = alpha.run(ctx, "alpha-send-nobody", "send", "--to", to, big)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "nothing answers on its handshake port (TCP 53318)")
}
