//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Multi-host tests: each host is a network namespace with one veth link to a
// bridge in a namespace of its own, like machines on one switch. They need
// root (CI and `make test` run as root); without it they skip and say so.
// Every address they use is inside the namespaces they create.

// lan is a simulated LAN of hosts on one bridge.
type lan struct {
	t      *testing.T
	prefix string
	hosts  map[string]*host
}

// host is one machine on the LAN.
type host struct {
	lan  *lan
	name string // "a", "b", ...
	ns   string // its network namespace
	ip   string // its IPv4 address
}

// requireNetns skips the test unless it can build network namespaces.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: multi-host tests build network namespaces and need root (make test runs them as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: multi-host tests need the ip command (Debian package iproute2)")
	}
}

// newLAN builds hosts named names (a, b, c...) on one bridge, with IPv4
// 10.77.0.N/24, IPv6 fd77::N/64 and link-local IPv6. It is torn down when
// the test ends.
func newLAN(t *testing.T, names ...string) *lan {
	t.Helper()
	return newLANWith(t, true, names...)
}

// newLANWith is newLAN; without ipv4 the hosts have IPv6 addresses only.
func newLANWith(t *testing.T, ipv4 bool, names ...string) *lan {
	t.Helper()
	requireNetns(t)
	l := &lan{t: t, prefix: newPrefix(), hosts: map[string]*host{}}
	br := l.prefix + "-br"
	l.ip("netns", "add", br)
	t.Cleanup(func() { l.ipQuiet("netns", "del", br) })
	l.in(br, "ip", "link", "set", "lo", "up")
	l.in(br, "ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	l.in(br, "ip", "link", "set", "br0", "up")
	for i, name := range names {
		h := &host{lan: l, name: name, ns: l.prefix + "-" + name, ip: fmt.Sprintf("10.77.0.%d", i+1)}
		l.ip("netns", "add", h.ns)
		t.Cleanup(func() { l.ipQuiet("netns", "del", h.ns) })
		veth := l.prefix + name
		l.ip("link", "add", veth, "netns", h.ns, "type", "veth", "peer", "name", "v"+name, "netns", br)
		l.in(h.ns, "ip", "link", "set", veth, "name", "eth0")
		l.in(h.ns, "ip", "link", "set", "lo", "up")
		if ipv4 {
			l.in(h.ns, "ip", "addr", "add", h.ip+"/24", "dev", "eth0")
		} else {
			h.ip = fmt.Sprintf("fd77::%d", i+1)
		}
		l.in(h.ns, "ip", "-6", "addr", "add", fmt.Sprintf("fd77::%d/64", i+1), "dev", "eth0", "nodad")
		l.in(h.ns, "ip", "link", "set", "eth0", "up")
		l.in(br, "ip", "link", "set", "v"+name, "master", "br0")
		l.in(br, "ip", "link", "set", "v"+name, "up")
		l.hosts[name] = h
	}
	return l
}

func (l *lan) ip(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(l.t, err, "ip %s: %s", strings.Join(args, " "), out)
}

func (l *lan) ipQuiet(args ...string) { _ = exec.Command("ip", args...).Run() }

// in runs a command inside namespace ns.
func (l *lan) in(ns string, args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	require.NoError(l.t, err, "in %s: %s: %s", ns, strings.Join(args, " "), out)
}

// link sets the host's link up or down, as if its cable were pulled.
func (h *host) link(up bool) { h.linkNamed("eth0", up) }

// linkNamed sets the host's interface ifName up or down.
func (h *host) linkNamed(ifName string, up bool) {
	state := "down"
	if up {
		state = "up"
	}
	h.lan.in(h.ns, "ip", "link", "set", ifName, state)
}

// peerdrop starts peerdrop on the host with args.
func (h *host) peerdrop(ctx context.Context, label string, args ...string) *proc {
	h.lan.t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, peerdropBin}, args...)...)
	return startCmd(h.lan.t, ctx, label, false, cmd, args)
}

// device is one peerdrop identity (config dir and name) on a host.
type device struct {
	*host
	name   string
	config string
	typ    string // --type, if set
}

func (h *host) device(name string) *device {
	return &device{host: h, name: name, config: h.lan.t.TempDir()}
}

func (d *device) run(ctx context.Context, label string, args ...string) *proc {
	d.lan.t.Helper()
	return d.runEnv(ctx, label, nil, args...)
}

// runEnv is run with env (KEY=VALUE) added to the environment.
func (d *device) runEnv(ctx context.Context, label string, env []string, args ...string) *proc {
	d.lan.t.Helper()
	global := []string{"--config-dir", d.config, "--name", d.name, "--json"}
	if d.typ != "" {
		global = append(global, "--type", d.typ)
	}
	args = append(global, args...)
	cmd := exec.CommandContext(ctx, "ip", append(append([]string{"netns", "exec", d.ns, "env"}, env...), append([]string{peerdropBin}, args...)...)...)
	return startCmd(d.lan.t, ctx, label, false, cmd, args)
}

// receive starts `receive --yes` (or with extra flags) and waits until it
// listens; it returns the process and its device id.
func (d *device) receive(ctx context.Context, dir string, extra ...string) (*proc, string) {
	d.lan.t.Helper()
	args := append([]string{"receive", "--dir", dir}, extra...)
	if len(extra) == 0 {
		args = append(args, "--yes")
	}
	p := d.run(ctx, d.name+"-receive", args...)
	l := p.await("listening", nil)
	require.True(d.lan.t, l.flag("discoverable"), "a receiver advertises itself: %s", l)
	return p, l.str("device_id")
}

// eventTime is the time a process stamped on an event.
func eventTime(t *testing.T, ev event) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, ev.str("time"))
	require.NoError(t, err, "event time in %s", ev)
	return ts
}

func byID(id string) func(event) bool { return func(ev event) bool { return ev.str("id") == id } }

// Devices see each other, never themselves, and follow devices that quit
// or lose their link.
func TestLANDevicesAppearAndGo(t *testing.T) {
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	charlie := l.hosts["c"].device("Charlie")
	charlie.typ = "phone"

	// A advertises too: its own list must never show it.
	_, alphaID := alpha.receive(ctx, t.TempDir())
	watch := alpha.run(ctx, "alpha-watch", "devices", "--watch")
	watch.await("browsing", nil)

	// Each device appears within a second of starting.
	bp, bravoID := bravo.receive(ctx, t.TempDir())
	cp, charlieID := charlie.receive(ctx, t.TempDir())
	for _, x := range []struct {
		p  *proc
		id string
	}{{bp, bravoID}, {cp, charlieID}} {
		appeared := watch.awaitAny("appeared", byID(x.id))
		listening := x.p.all("listening")[0]
		delay := eventTime(t, appeared).Sub(eventTime(t, listening))
		t.Logf("%s appeared %v after it started listening", appeared.str("name"), delay)
		assert.LessOrEqual(t, delay, time.Second, "a device appears within 1 s of starting")
		assert.Equal(t, l.hosts[map[string]string{bravoID: "b", charlieID: "c"}[x.id]].ip+":53318", appeared.str("address"))
	}

	// A one-shot listing shows both, with their type, and not A; no code:
	// a verification code belongs to a connection (its handshake's nonces).
	list := alpha.run(ctx, "alpha-devices", "devices", "--wait", "2s")
	require.Equal(t, 0, list.wait(), "stderr: %s", list.stderr.String())
	devs := list.all("device")
	ids := map[string]event{}
	for _, d := range devs {
		ids[d.str("id")] = d
	}
	require.Len(t, ids, 2, "devices: %v", devs)
	assert.Contains(t, ids, bravoID)
	assert.Contains(t, ids, charlieID)
	assert.NotContains(t, ids, alphaID, "never list ourselves")
	assert.Equal(t, "Bravo", ids[bravoID].str("name"))
	assert.Equal(t, "phone", ids[charlieID].str("type"))
	assert.NotContains(t, ids[bravoID], "code")

	// B quits cleanly: gone within 5 s (its goodbye).
	quit := time.Now()
	bp.signal(syscall.SIGINT)
	gone := watch.awaitAny("gone", byID(bravoID))
	t.Logf("Bravo gone %v after it was told to quit", eventTime(t, gone).Sub(quit))
	assert.LessOrEqual(t, eventTime(t, gone).Sub(quit), 5*time.Second, "gone within 5 s of a clean quit")
	bp.wait()

	// C's cable is pulled: no goodbye can get out; gone within 30 s.
	cut := time.Now()
	l.hosts["c"].link(false)
	gone = watch.awaitAny("gone", byID(charlieID))
	t.Logf("Charlie gone %v after its link went down", eventTime(t, gone).Sub(cut))
	assert.LessOrEqual(t, eventTime(t, gone).Sub(cut), 30*time.Second, "gone within 30 s of a cut link")

	// The cable goes back in: C is back, with nothing restarted.
	back := time.Now()
	l.hosts["c"].link(true)
	again := watch.awaitAny("appeared", func(ev event) bool { return ev.str("id") == charlieID && eventTime(t, ev).After(cut) })
	t.Logf("Charlie back %v after its link came up", eventTime(t, again).Sub(back))
	assert.LessOrEqual(t, eventTime(t, again).Sub(back), 10*time.Second, "back soon after the link is")

	for _, ev := range watch.all("appeared") {
		assert.NotEqual(t, alphaID, ev.str("id"), "never list ourselves")
	}
	assert.False(t, cp.exited(), "Charlie's receiver survived the link going down: %s", cp.stderr.String())
}

// send --to NAME finds the device, the folder arrives intact, both ends show
// the same verification code, and a changed certificate is refused in both
// directions.
func TestLANSendByName(t *testing.T) {
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")

	src := t.TempDir()
	writeFile(t, src, "album/one.txt", "first\n")
	writeFile(t, src, "album/deep/two.txt", "second\n")
	writeRandomFile(t, filepath.Join(src, "album", "photo.bin"), 3*MiB+7, 7)
	mkdir(t, src, "album/empty")
	want := snapshot(t, src)

	dl := t.TempDir()
	bp, bravoID := bravo.receive(ctx, dl, "--yes", "--once")

	// A's device list shows B as new...
	list := alpha.run(ctx, "alpha-devices", "devices", "--wait", "1s")
	require.Equal(t, 0, list.wait())
	listed := list.await("device", byID(bravoID))
	assert.Equal(t, "new", listed.str("trust"))

	s := alpha.run(ctx, "alpha-send", "send", "--to", "Bravo", filepath.Join(src, "album"))
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	require.Equal(t, 0, bp.wait(), "stderr: %s", bp.stderr.String())
	assert.Equal(t, bravoID, s.await("resolved", nil).str("id"))
	assert.Equal(t, files(want), files(snapshot(t, dl)), "the folder arrived intact")
	requireNoLeftovers(t, dl)

	// ... and both ends show the same code once they connect.
	code := s.await("connected", nil).str("code")
	assert.Regexp(t, `^\d{3} \d{3}$`, code)
	assert.Equal(t, code, bp.await("offer", nil).str("code"), "the same code on both screens")

	// B gets a new certificate: it is a new device, with a new id (ids
	// derive from certificates), so nobody can take B's id with another
	// certificate. A lists it as new; B's old id is gone.
	require.NoError(t, os.Remove(filepath.Join(bravo.config, "identity.pem")))
	bp, newID := bravo.receive(ctx, t.TempDir())
	require.NotEqual(t, bravoID, newID)
	list = alpha.run(ctx, "alpha-devices-2", "devices", "--wait", "1s")
	require.Equal(t, 0, list.wait())
	fresh := list.await("device", byID(newID))
	assert.Equal(t, "new", fresh.str("trust"))
	for _, d := range list.all("device") {
		assert.NotEqual(t, bravoID, d.str("id"), "the old id is not listed")
	}
	bp.signal(syscall.SIGINT)
	bp.wait()
}

// Two devices with one name: sending to the name is an error that lists
// both; sending by id works. --trusted accepts only trusted devices.
func TestLANAmbiguousNameAndTrusted(t *testing.T) {
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	laptop1 := l.hosts["b"].device("Laptop")
	laptop2 := l.hosts["c"].device("Laptop")
	dl := t.TempDir()
	_, id1 := laptop1.receive(ctx, dl, "--trusted")
	_, id2 := laptop2.receive(ctx, t.TempDir())

	s := alpha.run(ctx, "alpha-send", "send", "--to", "laptop", "--text", "which one?")
	assert.Equal(t, 1, s.wait())
	msg := s.stderr.String()
	assert.Contains(t, msg, "2 nearby devices are called")
	assert.Contains(t, msg, id1)
	assert.Contains(t, msg, id2)

	// By id: laptop1 only accepts trusted devices, and Alpha is not one.
	src := t.TempDir()
	file := writeFile(t, src, "note.txt", "for the trusted only")
	s = alpha.run(ctx, "alpha-send-id", "send", "--to", id1, file)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "declined")
	assertEmptyDir(t, dl)

	// laptop1's owner trusts Alpha (the running receiver sees it at once).
	tr := laptop1.run(ctx, "laptop1-trust", "trust", "add", "Alpha")
	require.Equal(t, 0, tr.wait(), "stderr: %s", tr.stderr.String())
	s = alpha.run(ctx, "alpha-send-trusted", "send", "--to", id1, file)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	assert.Equal(t, map[string]string{"note.txt": sha256File(t, file)}, files(snapshot(t, dl)))
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	names := dirNames(t, dir)
	assert.Empty(t, names, "nothing written to %s", dir)
}

// lanContext bounds a multi-host test (they wait for expiries).
func lanContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// On a LAN without IPv4, devices find each other over IPv6 multicast and a
// folder goes over IPv6.
func TestLANIPv6Only(t *testing.T) {
	l := newLANWith(t, false, "a", "b")
	ctx := lanContext(t)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	src := t.TempDir()
	writeFile(t, src, "v6/note.txt", "over IPv6\n")
	dl := t.TempDir()
	bp, bravoID := bravo.receive(ctx, dl, "--yes", "--once")

	list := alpha.run(ctx, "alpha-devices", "devices", "--wait", "2s")
	require.Equal(t, 0, list.wait(), "stderr: %s", list.stderr.String())
	d := list.await("device", byID(bravoID))
	assert.Equal(t, "[fd77::2]:53318", d.str("address"), "the global IPv6 address comes first")

	s := alpha.run(ctx, "alpha-send", "send", "--to", "Bravo", filepath.Join(src, "v6"))
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	require.Equal(t, 0, bp.wait(), "stderr: %s", bp.stderr.String())
	assert.Equal(t, files(snapshot(t, src)), files(snapshot(t, dl)))
}

// With a server, the LAN stays first: a paired device that is nearby is
// reached directly, the server only when the LAN does not answer.
func TestLANFirstWithServer(t *testing.T) {
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	server := l.hosts["c"]
	url := "ws://" + server.ip + ":8080/ws"
	serve := server.peerdrop(ctx, "serve", "--config-dir", t.TempDir(), "--json", "serve",
		"--listen", server.ip+":8080", "--turn-listen", server.ip+":3478", "--public-ip", server.ip)
	serve.await("serving", nil)
	alpha := l.hosts["a"].device("Alpha")
	bravo := l.hosts["b"].device("Bravo")
	dl := t.TempDir()
	bp := bravo.run(ctx, "bravo-receive", "receive", "--server", url, "--dir", dl, "--yes")
	code := bp.await("pairing-code", nil).str("code")
	lan := bp.awaitAny("listening", nil)
	require.True(t, lan.flag("discoverable"), "with --server the receiver is on the LAN too: %s", lan)

	// Pairing goes through the server: a code is a server thing.
	src := t.TempDir()
	one := writeFile(t, src, "one.txt", "paired through the server\n")
	s := alpha.run(ctx, "alpha-pair", "send", "--server", url, "--code", code, one)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	assert.Equal(t, "server", s.await("connected", nil).str("via"))

	// Later, by name: Bravo is nearby, so the LAN.
	two := writeFile(t, src, "two.txt", "straight across the LAN\n")
	s = alpha.run(ctx, "alpha-send-lan", "send", "--server", url, "--to", "Bravo", two)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	assert.Equal(t, "lan", s.await("connected", nil).str("via"))

	// Bravo's LAN port stops answering (a firewall): the server instead.
	port := fmt.Sprint(lan.num("port"))
	for _, tables := range []string{"iptables", "ip6tables"} {
		l.in(l.hosts["b"].ns, tables, "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset")
	}
	three := writeFile(t, src, "three.txt", "around the firewall\n")
	s = alpha.run(ctx, "alpha-send-fallback", "send", "--server", url, "--to", "Bravo", three)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	assert.Equal(t, "server", s.await("connected", nil).str("via"))
	assert.Contains(t, s.awaitAny("error", nil).str("message"), "not reachable on the local network")

	// An impostor on the LAN takes Bravo's name and config but not his key
	// (so not his id: ids derive from certificates, and a TXT record or
	// hello claiming his id with another certificate is refused): it is
	// another device, and the paired Bravo, not on the LAN, is reached
	// through the server.
	impostor := l.hosts["c"].device("Bravo")
	entries, err := os.ReadDir(bravo.config)
	require.NoError(t, err)
	for _, en := range entries {
		if en.IsDir() || en.Name() == "identity.pem" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(bravo.config, en.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(impostor.config, en.Name()), b, 0o600))
	}
	// Only the impostor answers on the LAN: Bravo's mDNS stops at his host.
	for _, tables := range []string{"iptables", "ip6tables"} {
		l.in(l.hosts["b"].ns, tables, "-A", "OUTPUT", "-p", "udp", "--dport", "5353", "-j", "DROP")
	}
	idl := t.TempDir()
	ip := impostor.run(ctx, "impostor-receive", "receive", "--dir", idl, "--yes")
	require.NotEqual(t, lan.str("device_id"), ip.await("listening", nil).str("device_id"), "the impostor cannot take Bravo's id")
	four := writeFile(t, src, "four.txt", "for the real Bravo only\n")
	s = alpha.run(ctx, "alpha-send-impostor", "send", "--server", url, "--to", "Bravo", four)
	require.Equal(t, 0, s.wait(), "stderr: %s", s.stderr.String())
	assert.Equal(t, "server", s.await("connected", nil).str("via"))
	assertEmptyDir(t, idl)

	for _, f := range []string{one, two, three, four} {
		assert.Equal(t, sha256File(t, f), sha256File(t, filepath.Join(dl, filepath.Base(f))))
	}
	ip.signal(syscall.SIGINT)
	ip.wait()
	bp.signal(syscall.SIGINT)
	bp.wait()
}
