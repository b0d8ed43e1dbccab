//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// After one pairing with a code, Alice reaches Bob through the server by
// his name alone (Bob announced himself; the pinned certificates stand in
// for the code). A device Bob never paired with is refused.
func TestPresenceSendToPairedDevice(t *testing.T) {
	l := newNAT(t, natPortPreserving)
	ctx := natContext(t)
	startServe(t, ctx, l)
	dl := t.TempDir()
	bob := l.hosts["b"].device("Bob")
	alice := l.hosts["a"].device("Alice")
	bp := bob.run(ctx, "bob-receive", "receive", "--server", natServeURL, "--dir", dl, "--yes")
	code := bp.await("pairing-code", nil).str("code")

	src := t.TempDir()
	first := writeFile(t, src, "first.txt", "paired with a code\n")
	s := alice.run(ctx, "alice-pair", "send", "--server", natServeURL, "--code", code, first)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	bp.await("file-done", func(ev event) bool { return ev.str("name") == "first.txt" })

	second := filepath.Join(src, "second.bin")
	want := writeRandomFile(t, second, 2*MiB+3, 7)
	s = alice.run(ctx, "alice-presence", "send", "--server", natServeURL, "--to", "Bob", second)
	require.Equal(t, 0, s.wait(), "sender stderr: %s", s.stderr.String())
	c := s.await("connected", nil)
	assert.Equal(t, "server", c.str("via"))
	assert.Equal(t, "Bob", c.str("peer"))
	bp.await("file-done", func(ev event) bool { return ev.str("name") == "second.bin" })
	assert.Equal(t, want, sha256File(t, filepath.Join(dl, "second.bin")), "the file is intact")

	// Carol never paired with anyone: she does not know Bob.
	carol := l.hosts["a"].device("Carol")
	note := writeFile(t, t.TempDir(), "note.txt", "uninvited")
	s = carol.run(ctx, "carol-send", "send", "--server", natServeURL, "--to", "Bob", note)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "no paired device called Bob: pair with a code first")

	// Mallory has Bob pinned (Alice's trust file) but Bob never paired
	// with her: Bob refuses her.
	mallory := l.hosts["a"].device("Mallory")
	peers, err := os.ReadFile(filepath.Join(alice.config, "peers.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(mallory.config, "peers.json"), peers, 0o600))
	s = mallory.run(ctx, "mallory-send", "send", "--server", natServeURL, "--to", "Bob", note)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "pair with a code first")
	_, err = os.Stat(filepath.Join(dl, "note.txt"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing from an unpaired device arrives")

	// Bob loses his key: his new certificate gives him a new id (ids derive
	// from certificates), which he announces; nobody can take the old one.
	// Alice cannot reach "Bob" by name: the device she paired is gone.
	bp.signal(syscall.SIGINT)
	bp.wait()
	require.NoError(t, os.Remove(filepath.Join(bob.config, "identity.pem")))
	bp = bob.run(ctx, "bob-receive-2", "receive", "--server", natServeURL, "--dir", dl, "--yes")
	bp.await("pairing-code", nil)
	s = alice.run(ctx, "alice-changed", "send", "--server", natServeURL, "--to", "Bob", note)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, s.stderr.String(), "Bob is not connected to the server")
	_, err = os.Stat(filepath.Join(dl, "note.txt"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
