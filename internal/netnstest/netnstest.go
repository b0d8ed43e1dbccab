// Package netnstest builds network namespaces for tests that need real
// multicast or several hosts without touching the machine's own network. It
// needs root and the ip command (iproute2); without them tests skip and say
// why. Every namespace is deleted when its test ends.
package netnstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// inNetnsEnv marks a test binary re-run inside a namespace by Reexec.
const inNetnsEnv = "PEERDROP_TEST_IN_NETNS"

// Inside reports whether this process is a run started by Reexec.
func Inside() bool { return os.Getenv(inNetnsEnv) != "" }

// Require skips t unless it can build network namespaces.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: builds network namespaces and needs root (make test runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs the ip command (Debian package iproute2)")
	}
}

// Name returns a fresh namespace name: prefix and 6 random hex digits.
func Name(prefix string) string {
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	return prefix + hex.EncodeToString(buf)
}

// IP runs the ip command with args and fails t if it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// New adds a namespace with loopback up and deletes it when t ends.
func New(t testing.TB, prefix string) string {
	t.Helper()
	Require(t)
	ns := Name(prefix)
	IP(t, "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	IP(t, "-n", ns, "link", "set", "lo", "up")
	return ns
}

// Reexec runs the current test again, alone, inside namespace ns, and fails
// t unless it passes there. The inner run sees Inside() == true.
func Reexec(t *testing.T, ns string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside namespace %s:\n%s", ns, out)
	require.NoError(t, err, "the test failed inside the namespace")
	require.True(t, bytes.Contains(out, []byte("--- PASS: "+t.Name())), "the inner run did not pass")
}

// InVethPair re-runs the calling test in a namespace of its own with two
// interfaces, a veth pair with both ends inside (eth0 10.<octet>.0.1/24,
// eth1 10.<octet>.1.1/24), so real mDNS multicast flows between them and
// never reaches the machine's network. It reports true in the inner run,
// which does the work, and false in the outer one, which has then checked
// that the inner run passed.
func InVethPair(t *testing.T, prefix string, octet int) bool {
	t.Helper()
	if Inside() {
		return true
	}
	ns := New(t, prefix)
	IP(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	IP(t, "-n", ns, "addr", "add", fmt.Sprintf("10.%d.0.1/24", octet), "dev", "eth0")
	IP(t, "-n", ns, "addr", "add", fmt.Sprintf("10.%d.1.1/24", octet), "dev", "eth1")
	IP(t, "-n", ns, "link", "set", "eth0", "up")
	IP(t, "-n", ns, "link", "set", "eth1", "up")
	Reexec(t, ns)
	return false
}
