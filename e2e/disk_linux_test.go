package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size (as mount's size= option) on a new
// folder and unmounts it when the test ends; it skips unless root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount: %s", out)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestOfferLargerThanFreeSpaceIsDeclined sends a 40 MiB file to a receiver
// (--yes) whose download folder is a 32 MiB tmpfs: it is declined with the
// reason, the sender shows it, and nothing is written.
func TestOfferLargerThanFreeSpaceIsDeclined(t *testing.T) {
	ctx := testContext(t)
	dl := mountTmpfs(t, "32m")
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dl, &st))
	t.Logf("free space seen on the receiver's tmpfs: %d bytes", int64(st.Bavail)*st.Bsize)

	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "big.bin"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(40<<20)) // sparse: costs nothing here
	require.NoError(t, f.Close())

	r := startReceiver(t, ctx, receiverOpts{dir: dl, once: true, yes: true})
	s := startSender(t, ctx, "--to", r.addr(), filepath.Join(src, "big.bin"))
	code := s.wait()
	assert.NotEqual(t, 0, code, "a declined send must fail")
	d := s.await("declined", nil)
	t.Logf("sender: %s; stderr: %q", d, s.stderrLines())
	assert.Contains(t, d.str("reason"), "not enough free space on the receiving device: needs 109 MB, has ")
	assert.Contains(t, s.stderr.String(), "not enough free space on the receiving device")
	assert.Empty(t, s.all("file-sent"))

	r.await("declined", nil)
	assert.NotEqual(t, 0, r.wait())
	assert.Empty(t, r.all("accepted"))
	assert.Empty(t, snapshot(t, dl), "nothing is written")
}

// TestPartialDataExpiresInHours: `receive` removes, when it starts, the
// partial data of a transfer nobody resumed for more than 6 hours, and
// keeps a younger one.
func TestPartialDataExpiresInHours(t *testing.T) {
	ctx := testContext(t)
	dl := t.TempDir()
	state := func(id string, age time.Duration) string {
		dir := filepath.Join(dl, ".peerdrop", id)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		part := filepath.Join(dir, "0.part")
		require.NoError(t, os.WriteFile(part, make([]byte, 1<<20), 0o600))
		when := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(part, when, when))
		require.NoError(t, os.Chtimes(dir, when, when))
		return dir
	}
	old := state("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 7*time.Hour)
	young := state("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 5*time.Hour)
	startReceiver(t, ctx, receiverOpts{dir: dl})
	assert.NoDirExists(t, old, "7 hours old: removed")
	assert.DirExists(t, young, "5 hours old: kept for its sender")
}
