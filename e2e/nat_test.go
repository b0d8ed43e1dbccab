//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Off-LAN topology: a "public" bridge with the rendezvous server host s;
// Alice (host a) and Bob (host b) each on a LAN of their own behind a NAT
// router (ra, rb) whose WAN side is on the public bridge. All addresses are
// inside the namespaces: 203.0.113.0/24 (TEST-NET-3) is the "internet",
// 192.168.11.0/24 and 192.168.12.0/24 the two home networks.
const (
	natServerIP = "203.0.113.10"
	natServeURL = "ws://" + natServerIP + ":8080/ws"
)

// natKind is how the routers translate.
type natKind int

const (
	// natPortPreserving is Linux's plain MASQUERADE: one external port per
	// internal socket whatever the destination (endpoint-independent
	// mapping), so hole punching works.
	natPortPreserving natKind = iota
	// natSymmetric is MASQUERADE --random: every destination gets another
	// external port, so only a relay gets through.
	natSymmetric
)

// newNAT builds the topology; hosts "s", "a", "b" (and routers "ra", "rb").
func newNAT(t *testing.T, kind natKind) *lan {
	t.Helper()
	requireNetns(t)
	l := &lan{t: t, prefix: newPrefix(), hosts: map[string]*host{}}
	pub := l.prefix + "-pub"
	l.ip("netns", "add", pub)
	t.Cleanup(func() { l.ipQuiet("netns", "del", pub) })
	l.in(pub, "ip", "link", "set", "lo", "up")
	l.in(pub, "ip", "link", "add", "br0", "type", "bridge")
	l.in(pub, "ip", "link", "set", "br0", "up")

	addHost := func(name string) *host {
		h := &host{lan: l, name: name, ns: l.prefix + "-" + name}
		l.ip("netns", "add", h.ns)
		t.Cleanup(func() { l.ipQuiet("netns", "del", h.ns) })
		l.in(h.ns, "ip", "link", "set", "lo", "up")
		l.hosts[name] = h
		return h
	}
	// wire connects h's interface ifName to the public bridge.
	wire := func(h *host, ifName, cidr string) {
		veth := l.prefix + h.name + "w"
		peer := "p" + h.name
		l.ip("link", "add", veth, "netns", h.ns, "type", "veth", "peer", "name", peer, "netns", pub)
		l.in(h.ns, "ip", "link", "set", veth, "name", ifName)
		l.in(h.ns, "ip", "addr", "add", cidr, "dev", ifName)
		l.in(h.ns, "ip", "link", "set", ifName, "up")
		l.in(pub, "ip", "link", "set", peer, "master", "br0")
		l.in(pub, "ip", "link", "set", peer, "up")
	}

	s := addHost("s")
	s.ip = natServerIP
	wire(s, "eth0", natServerIP+"/24")

	for i, side := range []string{"a", "b"} {
		r := addHost("r" + side)
		r.ip = fmt.Sprintf("203.0.113.%d", i+1)
		wire(r, "wan", r.ip+"/24")
		h := addHost(side)
		lanNet := fmt.Sprintf("192.168.%d", 11+i)
		h.ip = lanNet + ".2"
		veth := l.prefix + side + "l"
		l.ip("link", "add", veth, "netns", r.ns, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		l.in(r.ns, "ip", "link", "set", veth, "name", "lan")
		l.in(r.ns, "ip", "addr", "add", lanNet+".1/24", "dev", "lan")
		l.in(r.ns, "ip", "link", "set", "lan", "up")
		l.in(h.ns, "ip", "addr", "add", h.ip+"/24", "dev", "eth0")
		l.in(h.ns, "ip", "link", "set", "eth0", "up")
		l.in(h.ns, "ip", "route", "add", "default", "via", lanNet+".1")
		l.in(r.ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		masq := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
		if kind == natSymmetric {
			masq = append(masq, "--random")
		}
		l.in(r.ns, masq...)
		// A home router's firewall: nothing unsolicited comes in from the
		// WAN. Without it an early connectivity check from the other side
		// creates a conntrack entry on our router that makes our own packet
		// to that address take another port, and the hole never opens.
		for _, chain := range []string{"INPUT", "FORWARD"} {
			l.in(r.ns, "iptables", "-A", chain, "-i", "wan", "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
		}
	}
	return l
}

// newPrefix is a fresh prefix for namespace names.
func newPrefix() string {
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	return "pd" + hex.EncodeToString(buf)
}

// output runs a command on the host and returns what it printed.
func (h *host) output(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.ns}, args...)...).CombinedOutput()
	return string(out), err
}

// startServe runs `peerdrop serve` on the topology's server host and waits
// until it serves.
func startServe(t *testing.T, ctx context.Context, l *lan, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--config-dir", t.TempDir(), "--json", "serve",
		"--listen", natServerIP + ":8080", "--turn-listen", natServerIP + ":3478", "--public-ip", natServerIP}, extra...)
	p := l.hosts["s"].peerdrop(ctx, "serve", args...)
	p.await("serving", nil)
	return p
}

// The topology itself: both home hosts reach the server through their NAT.
func TestNATTopology(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startServe(t, ctx, l)
	for _, side := range []string{"a", "b"} {
		// bash's /dev/tcp: no HTTP client needs to be installed.
		out, err := l.hosts[side].output("timeout", "5", "bash", "-c",
			`exec 3<>/dev/tcp/`+natServerIP+`/8080 && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && cat <&3`)
		require.NoError(t, err, "%s: %s", side, out)
		require.Contains(t, out, "ok")
		// ... through the router's MASQUERADE rule.
		rules, err := l.hosts["r"+side].output("iptables", "-t", "nat", "-L", "POSTROUTING", "-v", "-n", "-x")
		require.NoError(t, err, rules)
		m := regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+MASQUERADE`).FindStringSubmatch(rules)
		require.NotNil(t, m, rules)
		require.NotEqual(t, "0", m[1], "the connection went through the NAT: %s", rules)
	}
}
