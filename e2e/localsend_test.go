//go:build linux

package e2e

// LocalSend interop (docs/PROTOCOL-localsend.md) against an independent
// implementation of LocalSend protocol v2, the npm package localsend
// (localsend_harness_test.go), on namespace hosts: each lists the other,
// files and texts go both ways over HTTPS and (when allowed) HTTP, and a
// decline, a cancel halfway, a wrong PIN and a changed identity each end
// cleanly.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runStdin is run with a pipe for the prompts' answers.
func (d *device) runStdin(ctx context.Context, label string, args ...string) *proc {
	d.lan.t.Helper()
	global := []string{"--config-dir", d.config, "--name", d.name, "--json"}
	args = append(global, args...)
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", d.ns, peerdropBin}, args...)...)
	return startCmd(d.lan.t, ctx, label, true, cmd, args)
}

// lsReceive starts `receive --localsend` (with extra flags) and waits until
// LocalSend listens on its port.
func (d *device) lsReceive(ctx context.Context, dir string, stdin bool, extra ...string) *proc {
	d.lan.t.Helper()
	args := append([]string{"receive", "--dir", dir, "--localsend"}, extra...)
	var p *proc
	if stdin {
		p = d.runStdin(ctx, d.name+"-receive", args...)
	} else {
		p = d.run(ctx, d.name+"-receive", args...)
	}
	ls := p.await("localsend-listening", nil)
	require.EqualValues(d.lan.t, 53317, ls.num("port"))
	p.await("listening", nil)
	return p
}

// leftovers lists what is in dir but the names given (partials and state
// included).
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, k := range keep {
			if rel == k {
				return nil
			}
		}
		if de.IsDir() {
			if entries, _ := os.ReadDir(p); len(entries) > 0 {
				return nil // its content is listed
			}
		}
		out = append(out, rel)
		return nil
	}))
	return out
}

// Each side lists the other: our devices shows the npm receiver (HTTP,
// "not encrypted"), the npm discover shows our receiver.
func TestLocalSendDevicesBothWays(t *testing.T) {
	localSendCLI(t)
	l := newLAN(t, "a", "b", "c")
	ctx := lanContext(t)
	a, b, c := l.hosts["a"], l.hosts["b"], l.hosts["c"]
	alpha := a.device("Alpha")
	alpha.lsReceive(ctx, t.TempDir(), false, "--yes")
	localSendReceive(t, ctx, b, "b-receive", t.TempDir(), "--autoAccept", "--alias", "Npm Bravo")

	// Ours: the npm receiver answers our announcement with register.
	list := alpha.run(ctx, "alpha-devices", "devices", "--localsend", "--wait", "4s")
	require.Equal(t, 0, list.wait())
	var found event
	for _, d := range list.all("device") {
		if d.str("name") == "Npm Bravo" {
			found = d
		}
	}
	require.NotNil(t, found, "devices --localsend lists the npm receiver: %v", list.all("device"))
	assert.Equal(t, "localsend (not encrypted)", found.str("protocol"))
	assert.Equal(t, b.ip+":53317", found.str("address"))

	// Theirs: discover finds us (its scan asks /info on 53317; we answer
	// over HTTPS).
	disc := runLocalSend(t, ctx, c, "c-discover", "discover", "--json", "--timeout", "3", "--alias", "Npm Charlie")
	var us *localSendDevice
	for _, d := range disc.discovered() {
		if d.Alias == "Alpha" {
			us = &d
		}
	}
	require.NotNil(t, us, "the npm discover lists our device; output:\n%s", disc.output())
	assert.Equal(t, a.ip, us.IP)
	assert.Len(t, us.Fingerprint, 64, "our fingerprint is our certificate's SHA-256")
}

// The npm CLI sends to us: over HTTPS and over HTTP (allowed), accepted
// through our prompt; a decline ends with nothing on disk; a send cut off
// halfway leaves nothing either.
func TestLocalSendReceiveFromNpm(t *testing.T) {
	localSendCLI(t)
	l := newLAN(t, "a", "b")
	ctx := lanContext(t)
	a, b := l.hosts["a"], l.hosts["b"]
	dl := t.TempDir()
	r := a.device("Alpha").lsReceive(ctx, dl, true, "--localsend-http")
	src := t.TempDir()

	for _, proto := range []string{"https", "http"} {
		name := proto + ".bin"
		sum := writeRandomFile(t, filepath.Join(src, name), 3*MiB+5, uint64(len(proto)))
		send := startLocalSend(t, ctx, b, "b-send-"+proto, "send", "--protocol", proto, "--alias", "Npm Bravo", a.ip, filepath.Join(src, name))
		offer := r.await("offer", nil)
		assert.Equal(t, "Npm Bravo", offer.str("from"))
		assert.EqualValues(t, 1, offer.num("files"))
		_, err := r.stdin.Write([]byte("y\n"))
		require.NoError(t, err)
		require.Equal(t, 0, send.wait(), "send over %s; output:\n%s", proto, send.output())
		r.await("transfer-done", nil)
		assert.Equal(t, sum, sha256File(t, filepath.Join(dl, name)), "%s arrived intact over %s", name, proto)
	}

	// Declined: the sender fails, nothing is written.
	path := writeFile(t, src, "declined.txt", "not wanted\n")
	send := startLocalSend(t, ctx, b, "b-send-declined", "send", "--protocol", "https", a.ip, path)
	r.await("offer", nil)
	_, err := r.stdin.Write([]byte("n\n"))
	require.NoError(t, err)
	assert.Equal(t, 1, send.wait(), "a declined send fails; output:\n%s", send.output())
	assert.Contains(t, send.output(), "Failed to prepare upload")

	// Cut off halfway: the link is slowed so that the sender is killed
	// mid-file; our side ends the transfer and keeps nothing of it.
	require.NoError(t, exec.Command("ip", "netns", "exec", b.ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
		"rate", "40mbit", "burst", "64kb", "latency", "50ms").Run())
	big := filepath.Join(src, "big.bin")
	writeRandomFile(t, big, 40*MiB, 7)
	send = startLocalSend(t, ctx, b, "b-send-big", "send", "--protocol", "https", a.ip, big)
	r.await("offer", nil)
	_, err = r.stdin.Write([]byte("y\n"))
	require.NoError(t, err)
	r.await("progress", func(ev event) bool { return ev.num("bytes") > 4*MiB })
	require.NoError(t, send.cmd.Process.Kill())
	done := r.await("transfer-done", nil)
	assert.True(t, done.flag("cancelled"), "the transfer ends as cancelled: %s", done)
	require.Eventually(t, func() bool {
		return len(leftovers(t, dl, "https.bin", "http.bin")) == 0
	}, 10*time.Second, 100*time.Millisecond, "nothing is left of the declined and the cut-off transfers: %v", leftovers(t, dl, "https.bin", "http.bin"))
}

// A receiver that asks for a PIN: a wrong one is refused and writes
// nothing, the right one goes through.
func TestLocalSendPIN(t *testing.T) {
	localSendCLI(t)
	l := newLAN(t, "a", "b")
	ctx := lanContext(t)
	a, b := l.hosts["a"], l.hosts["b"]
	dl := t.TempDir()
	r := a.device("Alpha").lsReceive(ctx, dl, false, "--yes", "--pin", "4711")
	path := writeFile(t, t.TempDir(), "secret.txt", "for PIN holders\n")
	wrong := runLocalSend(t, ctx, b, "b-send-wrong-pin", "send", "--protocol", "https", "--pin", "1111", a.ip, path)
	assert.Equal(t, 1, wrong.exitStatus(), "a wrong PIN fails; output:\n%s", wrong.output())
	assert.Empty(t, r.all("offer"), "a wrong PIN never reaches the prompt")
	assert.Empty(t, leftovers(t, dl))
	right := runLocalSend(t, ctx, b, "b-send-right-pin", "send", "--protocol", "https", "--pin", "4711", a.ip, path)
	require.Equal(t, 0, right.exitStatus(), "output:\n%s", right.output())
	r.await("transfer-done", nil)
	got, err := os.ReadFile(filepath.Join(dl, "secret.txt"))
	require.NoError(t, err)
	assert.Equal(t, "for PIN holders\n", string(got))
}

// We send files and a text to the npm receiver, found by its name; its
// decline and its PIN are told in plain words; a receiver that comes back
// with another identity under the same name is refused.
func TestLocalSendSendToNpm(t *testing.T) {
	localSendCLI(t)
	l := newLAN(t, "a", "b")
	ctx := lanContext(t)
	a, b := l.hosts["a"], l.hosts["b"]
	alpha := a.device("Alpha")
	got := t.TempDir()
	r := localSendReceive(t, ctx, b, "b-receive", got, "--alias", "Grandma")
	src := t.TempDir()
	one := filepath.Join(src, "one.bin")
	sumOne := writeRandomFile(t, one, 2*MiB+3, 1)
	writeFile(t, src, "Trip/notes.txt", "day one\n")
	sumNotes := sha256File(t, filepath.Join(src, "Trip", "notes.txt"))

	// Unencrypted LocalSend is off unless allowed.
	refused := alpha.run(ctx, "alpha-send-http-off", "send", "--localsend", "--to", "Grandma", "--wait", "5s", one)
	assert.NotEqual(t, 0, refused.wait())
	assert.Contains(t, strings.Join(refused.stderrLines(), "\n"), "without encryption")

	send := alpha.run(ctx, "alpha-send", "send", "--localsend", "--localsend-http", "--to", "Grandma", "--wait", "5s", one, filepath.Join(src, "Trip"))
	r.waitOutput("Accept transfer? (y/N): ", 20*time.Second)
	r.answer("y")
	require.Equal(t, 0, send.wait(), "stderr: %v", send.stderrLines())
	assert.Equal(t, sumOne, awaitLocalSendFile(t, filepath.Join(got, "one.bin"), 2*MiB+3))
	assert.Equal(t, sumNotes, awaitLocalSendFile(t, filepath.Join(got, "Trip", "notes.txt"), int64(len("day one\n"))))

	text := alpha.run(ctx, "alpha-text", "send", "--localsend", "--localsend-http", "--to", "Grandma", "--text", "dinner at eight")
	r.waitOutput("Accept transfer? (y/N): ", 20*time.Second)
	r.answer("y")
	require.Equal(t, 0, text.wait(), "stderr: %v", text.stderrLines())
	text.await("text-delivered", nil)
	msg, err := os.ReadFile(filepath.Join(got, "message.txt"))
	require.NoError(t, err)
	assert.Equal(t, "dinner at eight", string(msg))

	// Declined: said so, nothing more arrives.
	declined := writeFile(t, src, "unwanted.txt", "no\n")
	send = alpha.run(ctx, "alpha-send-declined", "send", "--localsend", "--localsend-http", "--to", "Grandma", declined)
	r.waitOutput("Accept transfer? (y/N): ", 20*time.Second)
	r.answer("n")
	assert.NotEqual(t, 0, send.wait())
	assert.Contains(t, strings.Join(send.stderrLines(), "\n"), "declined")
	assert.NoFileExists(t, filepath.Join(got, "unwanted.txt"))

	// Cancelled halfway (the sender interrupted): both sides end.
	require.NoError(t, exec.Command("ip", "netns", "exec", a.ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
		"rate", "40mbit", "burst", "64kb", "latency", "50ms").Run())
	big := filepath.Join(src, "big.bin")
	writeRandomFile(t, big, 30*MiB, 9)
	send = alpha.run(ctx, "alpha-send-big", "send", "--localsend", "--localsend-http", "--to", "Grandma", big)
	r.waitOutput("Accept transfer? (y/N): ", 20*time.Second)
	r.answer("y")
	send.await("progress", func(ev event) bool { return ev.num("bytes") > 4*MiB })
	send.signal(os.Interrupt)
	assert.NotEqual(t, 0, send.wait(), "an interrupted send fails")
	require.NoError(t, exec.Command("ip", "netns", "exec", a.ns, "tc", "qdisc", "del", "dev", "eth0", "root").Run())
	r.waitOutput("Error processing file chunk", 10*time.Second) // the npm receiver saw the upload break

	// Grandma comes back with another identity (the npm CLI makes a new
	// fingerprint each run): refused.
	r.interrupt()
	require.Equal(t, 0, r.wait())
	got2 := t.TempDir()
	localSendReceive(t, ctx, b, "b-receive-again", got2, "--autoAccept", "--alias", "Grandma")
	again := alpha.run(ctx, "alpha-send-changed", "send", "--localsend", "--localsend-http", "--to", "Grandma", "--wait", "5s", one)
	assert.NotEqual(t, 0, again.wait())
	assert.Contains(t, strings.Join(again.stderrLines(), "\n"), "identity changed")

	// The user accepts the new identity: forgotten, the next send goes.
	forget := alpha.run(ctx, "alpha-forget", "trust", "forget-localsend", "Grandma")
	require.Equal(t, 0, forget.wait(), "stderr: %v", forget.stderrLines())
	after := alpha.run(ctx, "alpha-send-after-forget", "send", "--localsend", "--localsend-http", "--to", "Grandma", "--wait", "5s", one)
	require.Equal(t, 0, after.wait(), "stderr: %v", after.stderrLines())
	assert.Equal(t, sumOne, awaitLocalSendFile(t, filepath.Join(got2, "one.bin"), 2*MiB+3))
}

// A receiver asking for a PIN, and our sends with none and a wrong one.
func TestLocalSendSendPIN(t *testing.T) {
	localSendCLI(t)
	l := newLAN(t, "a", "b")
	ctx := lanContext(t)
	a, b := l.hosts["a"], l.hosts["b"]
	alpha := a.device("Alpha")
	got := t.TempDir()
	localSendReceive(t, ctx, b, "b-receive", got, "--alias", "Locked", "--pin", "2468")
	path := writeFile(t, t.TempDir(), "p.txt", "pinned\n")
	for _, c := range []struct{ pin, want string }{{"", "asks for a PIN"}, {"1357", "wrong PIN"}} {
		args := []string{"send", "--localsend", "--localsend-http", "--to", b.ip}
		if c.pin != "" {
			args = append(args, "--pin", c.pin)
		}
		args = append(args, path)
		p := alpha.run(ctx, "alpha-send-pin-"+c.pin, args...)
		assert.NotEqual(t, 0, p.wait())
		assert.Contains(t, strings.Join(p.stderrLines(), "\n"), c.want)
	}
	assert.NoFileExists(t, filepath.Join(got, "p.txt"))
	ok := alpha.run(ctx, "alpha-send-pin-ok", "send", "--localsend", "--localsend-http", "--pin", "2468", "--to", b.ip, path)
	require.Equal(t, 0, ok.wait(), "stderr: %v", ok.stderrLines())
	assert.Equal(t, sha256File(t, path), awaitLocalSendFile(t, filepath.Join(got, "p.txt"), int64(len("pinned\n"))))
}
