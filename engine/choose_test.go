package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuickSave: with quick save on, an offer from a device never seen
// before is accepted without a question and still shows in the queue; off,
// the next offer is asked about again.
func TestQuickSave(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	f := filepath.Join(t.TempDir(), "one.txt")
	writeFile(t, f, []byte("one"))
	isOffer := func(ev Event) bool { _, ok := ev.(OfferReceived); return ok }

	b.SetQuickSave(true)
	assert.True(t, b.QuickSave())
	it, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	a.rec.waitState(t, 0, it.ID, StateDone)
	got := b.rec.wait(t, 0, "item done", func(ev Event) bool {
		ic, ok := ev.(ItemChanged)
		return ok && ic.Item.Direction == Incoming && ic.Item.State == StateDone
	}).(ItemChanged).Item
	assert.Equal(t, []string{filepath.Join(b.cfg.DownloadDir, "one.txt")}, got.Paths)
	assert.Zero(t, b.rec.count(isOffer), "nobody was asked")
	assert.Len(t, b.Items(), 1, "the offer shows in the queue")

	b.SetQuickSave(false)
	from := b.rec.mark()
	it2, err := a.Send(b.target(), []string{f})
	require.NoError(t, err)
	o := b.rec.waitOffer(t, from)
	assert.Equal(t, 1, b.rec.count(isOffer), "with quick save off the offer is asked about")
	require.NoError(t, b.Answer(o.ID, false))
	a.rec.waitState(t, 0, it2.ID, StateDeclined)
}

// TestAnswerSome: the receiver keeps 1 of 3 top-level entries; only it
// arrives, and both queue items say what was skipped.
func TestAnswerSome(t *testing.T) {
	a, b := startEngine(t, "alice"), startEngine(t, "bob")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "Trip", "a.jpg"), []byte("photo a"))
	writeFile(t, filepath.Join(src, "Trip", "b.jpg"), []byte("photo b"))
	writeFile(t, filepath.Join(src, "notes.txt"), []byte("notes"))
	writeFile(t, filepath.Join(src, "song.mp3"), []byte("la la"))
	it, err := a.Send(b.target(), []string{filepath.Join(src, "Trip"), filepath.Join(src, "notes.txt"), filepath.Join(src, "song.mp3")})
	require.NoError(t, err)

	o := b.rec.waitOffer(t, 0)
	assert.Equal(t, []OfferEntry{{Name: "Trip", Folder: true, Files: 2, Size: 14}, {Name: "notes.txt", Files: 1, Size: 5},
		{Name: "song.mp3", Files: 1, Size: 5}}, o.Entries)
	assert.Equal(t, 3, o.EntryCount)
	require.Error(t, b.AnswerSome(o.ID, nil), "nothing chosen")
	require.Error(t, b.AnswerSome(o.ID, []int{3}), "no such entry")
	require.NoError(t, b.AnswerSome(o.ID, []int{1}))

	sent := a.rec.waitState(t, 0, it.ID, StateDone)
	assert.Equal(t, []string{"Trip", "song.mp3"}, sent.Skipped)
	assert.Equal(t, 1, sent.Files)
	got := b.rec.waitState(t, 0, o.ID, StateDone)
	assert.Equal(t, []string{"Trip", "song.mp3"}, got.Skipped)
	assert.EqualValues(t, 5, got.Total)
	entries, err := os.ReadDir(b.cfg.DownloadDir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "notes.txt", entries[0].Name())
}
