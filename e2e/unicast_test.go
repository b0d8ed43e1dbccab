//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Finding devices where multicast does not pass (discovery's unicast
// fallbacks): a subnet scan when mDNS lists nobody, and known devices
// probed at the address where they were last reached.

// runScanning is run with the subnet scan on (the harness turns it off for
// every other process: none may scan the machine's own network; these run
// inside namespaces the test made).
func (d *device) runScanning(ctx context.Context, label string, args ...string) *proc {
	d.lan.t.Helper()
	return d.runEnv(ctx, label, []string{"PEERDROP_SCAN=on"}, args...)
}

// dropMulticast makes every host of l drop mDNS multicast both ways, as an
// access point that filters multicast does.
func dropMulticast(l *lan) {
	for _, h := range l.hosts {
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			l.in(h.ns, "iptables", "-A", chain, "-d", "224.0.0.251", "-j", "DROP")
			l.in(h.ns, "ip6tables", "-A", chain, "-d", "ff02::fb", "-j", "DROP")
		}
	}
}

// Multicast dropped on the LAN: a device never seen before appears through
// the scan, and a send by name goes through.
func TestScanFindsDeviceWithoutMulticast(t *testing.T) {
	l := newLAN(t, "a", "b", "c")
	dropMulticast(l)
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	hidden := l.hosts["c"].device("Hidden")

	dl := t.TempDir()
	bp, bravoID := bravo.receive(ctx, dl, "--yes", "--once")
	hp := hidden.run(ctx, "hidden-receive", "receive", "--hidden", "--yes", "--dir", t.TempDir())
	hiddenID := hp.await("listening", nil).str("device_id")

	start := time.Now()
	watch := alpha.runScanning(ctx, "alpha-watch", "devices", "--watch")
	appeared := watch.awaitAny("appeared", byID(bravoID))
	t.Logf("multicast dropped: Bravo appeared through the scan %v after Alpha started looking", eventTime(t, appeared).Sub(start).Round(time.Millisecond))
	assert.Equal(t, l.hosts["b"].ip+":53318", appeared.str("address"))
	assert.Equal(t, "Bravo", appeared.str("name"))

	src := t.TempDir()
	writeFile(t, src, "note.txt", "found without multicast\n")
	s := alpha.runScanning(ctx, "alpha-send", "send", "--to", "Bravo", "--wait", "10s", filepath.Join(src, "note.txt"))
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	require.Equal(t, 0, bp.wait(), "stderr: %s", bp.stderr.String())
	assert.Equal(t, bravoID, s.await("resolved", nil).str("id"))
	got, err := os.ReadFile(filepath.Join(dl, "note.txt"))
	require.NoError(t, err)
	assert.Equal(t, "found without multicast\n", string(got))

	// A hidden receiver does not answer the probe: never listed.
	for _, ev := range watch.all("appeared") {
		assert.NotEqual(t, hiddenID, ev.str("id"), "a hidden receiver is never found by the scan")
	}
	hp.signal(syscall.SIGINT)
	hp.wait()
}

// Two subnets joined by a router, no multicast between them: a trusted
// device on the other subnet appears by its last address, and a send by
// name goes through.
func TestKnownDeviceOnAnotherSubnet(t *testing.T) {
	l := newRouted(t)
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")

	bp, bravoID := bravo.receive(ctx, t.TempDir())
	// Not listed: nothing crosses the router but unicast.
	list := alpha.runScanning(ctx, "alpha-devices", "devices", "--wait", "3s")
	require.Equal(t, 0, list.wait(), "stderr: %s", list.stderr.String())
	assert.Empty(t, list.all("device"), "another subnet: mDNS does not cross the router")

	// Alpha reaches Bravo once by its address and trusts it.
	src := t.TempDir()
	writeFile(t, src, "first.txt", "by address\n")
	s := alpha.run(ctx, "alpha-send-addr", "send", "--to", l.hosts["b"].ip+":53318", filepath.Join(src, "first.txt"))
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	tr := alpha.run(ctx, "alpha-trust", "trust", "add", bravoID)
	require.Equal(t, 0, tr.wait(), "stderr: %s", tr.stderr.String())

	start := time.Now()
	watch := alpha.runScanning(ctx, "alpha-watch", "devices", "--watch")
	appeared := watch.awaitAny("appeared", byID(bravoID))
	t.Logf("another subnet: trusted Bravo appeared at its last address %v after Alpha started looking", eventTime(t, appeared).Sub(start).Round(time.Millisecond))
	assert.Equal(t, l.hosts["b"].ip+":53318", appeared.str("address"))
	assert.Equal(t, "trusted", appeared.str("trust"))

	// doctor: no multicast from anyone on this subnet; Bravo reached.
	r, code := alpha.doctor(ctx, t, "--to", "Bravo")
	assert.Equal(t, 1, code)
	assert.Contains(t, joined(field(r, "problems")), "No other device's mDNS (multicast) was heard")
	assert.Equal(t, l.hosts["b"].ip+":53318", field(r, "target", "address"))
	assert.Equal(t, true, field(r, "target", "connected"))

	writeFile(t, src, "second.txt", "by name\n")
	s = alpha.run(ctx, "alpha-send-name", "send", "--to", "Bravo", "--wait", "10s", filepath.Join(src, "second.txt"))
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	assert.Equal(t, bravoID, s.await("resolved", nil).str("id"))
	bp.signal(syscall.SIGINT)
	bp.wait()
}

// A scan of a /22 starts a bounded number of probes a second: the host
// that answers for every address of the /22 counts the connection attempts
// that came faster than the bound, and there are none.
func TestScanRateIsBounded(t *testing.T) {
	l := newLAN(t, "s", "r")
	s, r := l.hosts["s"], l.hosts["r"]
	for _, h := range []*host{s, r} {
		l.in(h.ns, "ip", "addr", "flush", "dev", "eth0", "scope", "global")
	}
	s.ip, r.ip = "10.79.0.1", "10.79.0.2"
	l.in(s.ns, "ip", "addr", "add", s.ip+"/22", "dev", "eth0")
	l.in(r.ns, "ip", "addr", "add", r.ip+"/22", "dev", "eth0")
	// s sends the whole /22 to r's MAC address: one neighbour entry, not a
	// thousand (a full neighbour table holds SYNs back and sends them again,
	// which would count twice).
	l.in(s.ns, "ip", "route", "del", "10.79.0.0/22", "dev", "eth0")
	l.in(s.ns, "ip", "route", "add", r.ip+"/32", "dev", "eth0")
	l.in(s.ns, "ip", "route", "add", "10.79.0.0/22", "via", r.ip, "dev", "eth0")
	// r answers for every address of the /22 but s's (AnyIP), and refuses
	// every connection (nothing listens): one SYN per probe.
	// The local table goes after a rule that sends s's own address out.
	l.in(r.ns, "ip", "route", "add", "local", "10.79.0.0/22", "dev", "lo", "table", "local")
	l.in(r.ns, "ip", "rule", "add", "pref", "10", "to", s.ip, "lookup", "main")
	l.in(r.ns, "ip", "rule", "add", "pref", "50", "lookup", "local")
	l.in(r.ns, "ip", "rule", "del", "pref", "0")
	limit := strconv.Itoa(250) // a little above discovery.ScanRate (200 a second)
	l.in(r.ns, "iptables", "-A", "INPUT", "-p", "tcp", "--syn", "--dport", "53318", "-m", "limit",
		"--limit", limit+"/second", "--limit-burst", limit, "-j", "ACCEPT")
	l.in(r.ns, "iptables", "-A", "INPUT", "-p", "tcp", "--syn", "--dport", "53318", "-j", "ACCEPT")

	ctx := lanContext(t)
	scanner := s.device("Scanner")
	list := scanner.runScanning(ctx, "scanner-devices", "devices", "--wait", "9s")
	require.Equal(t, 0, list.wait(), "stderr: %s", list.stderr.String())

	out, err := exec.Command("ip", "netns", "exec", r.ns, "iptables", "-nvxL", "INPUT").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var counts []int
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "ACCEPT" {
			n, err := strconv.Atoi(f[0])
			require.NoError(t, err, line)
			counts = append(counts, n)
		}
	}
	require.Len(t, counts, 2, "%s", out)
	within, over := counts[0], counts[1]
	t.Logf("scan of a /22: %d probes within %s a second, %d faster", within, limit, over)
	assert.Equal(t, 1021, within+over, "every address of the /22 but the scanner's own, probed once")
	assert.Zero(t, over, "no probe came faster than the bound")
}

// newRouted builds two subnets joined by a router namespace: a on
// 10.78.1.2/24, b on 10.78.2.2/24, each with a default route through the
// router, which forwards unicast and, like any router, no multicast.
func newRouted(t *testing.T) *lan {
	t.Helper()
	requireNetns(t)
	l := &lan{t: t, prefix: newPrefix(), hosts: map[string]*host{}}
	rt := l.prefix + "-rt"
	l.ip("netns", "add", rt)
	t.Cleanup(func() { l.ipQuiet("netns", "del", rt) })
	l.in(rt, "ip", "link", "set", "lo", "up")
	l.in(rt, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	for i, name := range []string{"a", "b"} {
		subnet := "10.78." + strconv.Itoa(i+1)
		h := &host{lan: l, name: name, ns: l.prefix + "-" + name, ip: subnet + ".2"}
		l.ip("netns", "add", h.ns)
		t.Cleanup(func() { l.ipQuiet("netns", "del", h.ns) })
		l.in(h.ns, "ip", "link", "set", "lo", "up")
		veth := l.prefix + name + "r"
		l.ip("link", "add", veth, "netns", h.ns, "type", "veth", "peer", "name", "to"+name, "netns", rt)
		l.in(h.ns, "ip", "link", "set", veth, "name", "eth0")
		l.in(h.ns, "ip", "addr", "add", h.ip+"/24", "dev", "eth0")
		l.in(h.ns, "ip", "link", "set", "eth0", "up")
		l.in(h.ns, "ip", "route", "add", "default", "via", subnet+".1")
		l.in(rt, "ip", "addr", "add", subnet+".1/24", "dev", "to"+name)
		l.in(rt, "ip", "link", "set", "to"+name, "up")
		l.hosts[name] = h
	}
	return l
}

// doctor runs `peerdrop doctor` (with the scan on) and returns its report
// and exit status.
func (d *device) doctor(ctx context.Context, t *testing.T, args ...string) (map[string]any, int) {
	t.Helper()
	p := d.runScanning(ctx, d.name+"-doctor", append([]string{"doctor", "--wait", "2s"}, args...)...)
	code := p.wait()
	p.mu.Lock()
	events := p.events
	p.mu.Unlock()
	require.Len(t, events, 1, "doctor prints one JSON object; stderr: %s", p.stderr.String())
	b, _ := json.Marshal(events[0])
	t.Logf("doctor %s: exit %d, %s", strings.Join(args, " "), code, b)
	return events[0], code
}

// field digs a value out of a decoded JSON object by keys.
func field(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// joined is a JSON list of strings as one string.
func joined(v any) string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return strings.Join(out, "\n")
}

// Multicast dropped: doctor says no multicast is heard and what to open,
// and finds the device through the scan, with a working connection.
func TestDoctorMulticastDropped(t *testing.T) {
	l := newLAN(t, "a", "b")
	dropMulticast(l)
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	bp, _ := bravo.receive(ctx, t.TempDir())

	r, code := alpha.doctor(ctx, t, "--to", "Bravo")
	assert.Equal(t, 1, code, "a problem was found")
	assert.Equal(t, false, field(r, "multicast", "sent"), "this machine's firewall drops mDNS")
	assert.Contains(t, joined(field(r, "problems")), "mDNS queries cannot go out")
	assert.Contains(t, joined(field(r, "advice")), "sudo ufw allow 5353/udp")
	assert.Equal(t, true, field(r, "target", "found"), "found through the scan")
	assert.Equal(t, true, field(r, "target", "handshake"))
	assert.Equal(t, true, field(r, "target", "connected"))
	assert.False(t, bp.exited(), "the check's connection leaves the receiver running: %s", bp.stderr.String())
	bp.signal(syscall.SIGINT)
	bp.wait()
}
