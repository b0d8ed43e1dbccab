package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A device whose certificate changes under a pinned id is refused, with a
// warning, and both ends show the same verification code.
func TestChangedIdentityIsRefused(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	file := writeFile(t, src, "note.txt", "hello")
	senderDir, receiverDir := t.TempDir(), t.TempDir()
	port := freePort(t)

	// First contact: the sender pins the receiver's certificate.
	dl1 := t.TempDir()
	r := startReceiver(t, ctx, receiverOpts{configDir: receiverDir, dir: dl1, port: port, yes: true, once: true})
	s := runPeerdrop(t, ctx, "sender", "--config-dir", senderDir, "--name", senderName, "--json", "send", "--to", r.addr(), file)
	require.Equal(t, 0, s.wait(), "stderr: %s", strings.Join(s.stderrLines(), "\n"))
	require.Equal(t, 0, r.wait())
	code := s.await("connected", nil).str("code")
	assert.Regexp(t, regexp.MustCompile(`^\d{3} \d{3}$`), code)
	assert.Equal(t, code, r.await("offer", nil).str("code"), "the same code on both screens")

	// The receiver keeps its device id but gets a new certificate.
	require.NoError(t, os.Remove(filepath.Join(receiverDir, "identity.pem")))
	dl2 := t.TempDir()
	r = startReceiver(t, ctx, receiverOpts{configDir: receiverDir, dir: dl2, port: port, yes: true, label: "receiver-2"})
	s = runPeerdrop(t, ctx, "sender-2", "--config-dir", senderDir, "--name", senderName, "--json", "send", "--to", r.addr(), file)
	assert.NotEqual(t, 0, s.wait())
	assert.Contains(t, strings.Join(s.stderrLines(), "\n"), "identity changed")
	entries, err := os.ReadDir(dl2)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is sent to an impostor")
}
