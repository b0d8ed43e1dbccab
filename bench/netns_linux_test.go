//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
)

// host is one end of a benchmark: a network namespace and the address the
// other end dials.
type host struct{ ns, addr string }

// place is where a pair runs: the sender's host and the receiver's.
type place struct {
	name       string
	send, recv host
}

// linkRate is the shaped link: the tbf queue on each end of the veth pair.
const linkRate = "1gbit"

// newLink builds two namespaces joined by a veth pair shaped to 1 Gbit/s
// both ways (tbf, as the issue measured) and returns the link between them
// and the sender namespace's own loopback (unshaped, same kernel paths as any
// loopback run, with drop counters of its own). Both go when b ends.
func newLink(b *testing.B) (link, loop place) {
	b.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		b.Skip("skipped: needs the tc command (Debian package iproute2)")
	}
	a := netnstest.New(b, "pdbs")
	r := netnstest.New(b, "pdbr")
	netnstest.IP(b, "link", "add", "veth0", "netns", a, "type", "veth", "peer", "name", "veth0", "netns", r)
	for _, x := range []struct{ ns, cidr string }{{a, "10.231.7.1/24"}, {r, "10.231.7.2/24"}} {
		netnstest.IP(b, "-n", x.ns, "addr", "add", x.cidr, "dev", "veth0")
		netnstest.IP(b, "-n", x.ns, "link", "set", "veth0", "up")
		out, err := exec.Command("tc", "-n", x.ns, "qdisc", "add", "dev", "veth0", "root",
			"tbf", "rate", linkRate, "burst", "256kb", "latency", "50ms").CombinedOutput()
		if err != nil {
			b.Fatalf("tc qdisc add in %s: %v\n%s", x.ns, err, out)
		}
	}
	link = place{name: "1 Gbit link", send: host{a, "10.231.7.1"}, recv: host{r, "10.231.7.2"}}
	loop = place{name: "loopback", send: host{a, "127.0.0.1"}, recv: host{a, "127.0.0.1"}}
	return link, loop
}

// inNS is the argument list that runs bin in ns through `ip netns exec`
// (which execs, so the pid, rusage and VmHWM are bin's own), with env
// (K=V) set through env(1) and the process pinned to cpu unless cpu < 0.
func inNS(ns string, env []string, cpu int, bin string, args ...string) []string {
	out := []string{"netns", "exec", ns}
	if len(env) > 0 {
		out = append(append(out, "env"), env...)
	}
	if cpu >= 0 {
		out = append(out, "taskset", "-c", strconv.Itoa(cpu))
	}
	return append(append(out, bin), args...)
}

// udpDrops is the namespace's count of UDP datagrams dropped for a full
// receive buffer, IPv4 and IPv6 (RcvbufErrors in /proc/net/snmp{,6}).
func udpDrops(b *testing.B, ns string) int64 {
	b.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp", "/proc/net/snmp6").Output()
	if err != nil {
		b.Fatalf("read UDP counters in %s: %v", ns, err)
	}
	n, err := parseRcvbufErrors(out)
	if err != nil {
		b.Fatalf("UDP counters in %s: %v", ns, err)
	}
	return n
}

// parseRcvbufErrors sums Udp: RcvbufErrors (a header line, then a value
// line) and Udp6RcvbufErrors.
func parseRcvbufErrors(data []byte) (int64, error) {
	var total int64
	var header []string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Udp6RcvbufErrors":
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("Udp6RcvbufErrors %q: %w", f[1], err)
			}
			total += n
		case len(f) > 1 && f[0] == "Udp:" && header == nil:
			header = f
		case len(f) > 1 && f[0] == "Udp:":
			for i, h := range header {
				if h == "RcvbufErrors" && i < len(f) {
					n, err := strconv.ParseInt(f[i], 10, 64)
					if err != nil {
						return 0, fmt.Errorf("RcvbufErrors %q: %w", f[i], err)
					}
					total += n
					found = true
				}
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("no Udp: RcvbufErrors")
	}
	return total, nil
}
