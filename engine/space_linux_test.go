package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sparse makes a file of size bytes that costs no room where it is.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
}

// TestOfferLargerThanFreeSpaceChooseLess: the download folder is a 100 MiB
// tmpfs (64 MiB of it kept free), the offer holds 60 MiB in three files.
// The user is asked anyway, told how much room there is; accepting all of
// it, or a part still too large, is refused and the offer stays open; a
// part that fits is received. With quick save (nobody to choose) the same
// offer is declined for space.
func TestOfferLargerThanFreeSpaceChooseLess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dl := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=100m", "tmpfs", dl).CombinedOutput()
	require.NoError(t, err, "mount: %s", out)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dl).Run() })

	a := startEngine(t, "alice")
	cfg := testConfig(t, "bob")
	cfg.DownloadDir = dl
	b := runEngine(t, cfg)

	src := t.TempDir()
	sparse(t, filepath.Join(src, "big.bin"), 40<<20)
	sparse(t, filepath.Join(src, "a.bin"), 10<<20)
	sparse(t, filepath.Join(src, "b.bin"), 10<<20)
	paths := []string{filepath.Join(src, "big.bin"), filepath.Join(src, "a.bin"), filepath.Join(src, "b.bin")}
	it, err := a.Send(b.target(), paths)
	require.NoError(t, err)

	o := b.rec.waitOffer(t, 0)
	t.Logf("offer: %d bytes, room %d", o.Size, o.Room)
	assert.True(t, o.TooBig, "60 MiB do not fit in 100 MiB minus 64")
	assert.InDelta(t, 36<<20, o.Room, 1<<20, "the room the entries chosen may use")
	err = b.Answer(o.ID, true)
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Contains(t, err.Error(), "not enough free space on the receiving device: needs ")
	require.ErrorIs(t, b.AnswerSome(o.ID, []int{0}), ErrNoSpace, "big.bin alone does not fit either")
	require.NoError(t, b.AnswerSome(o.ID, []int{1, 2}), "the offer stayed open; the two small ones fit")

	sent := a.rec.waitState(t, 0, it.ID, StateDone)
	assert.Equal(t, []string{"big.bin"}, sent.Skipped)
	got := b.rec.waitState(t, 0, o.ID, StateDone)
	assert.EqualValues(t, 20<<20, got.Total)
	names, err := os.ReadDir(dl)
	require.NoError(t, err)
	var have []string
	for _, e := range names {
		have = append(have, e.Name())
	}
	assert.Equal(t, []string{"a.bin", "b.bin"}, have)

	// Quick save: nobody chooses, so an offer that does not fit is declined.
	b.SetQuickSave(true)
	from := a.rec.mark()
	it2, err := a.Send(b.target(), paths)
	require.NoError(t, err)
	declined := a.rec.waitState(t, from, it2.ID, StateDeclined)
	assert.Contains(t, declined.Error, "not enough free space on the receiving device")
	assert.Equal(t, 1, b.rec.count(func(ev Event) bool { _, ok := ev.(OfferReceived); return ok }), "nobody was asked the second time")
}
