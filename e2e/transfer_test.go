//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFolderTreeAndBigFile sends a folder tree (nested folders, an empty
// folder, an empty file, a one-byte file), a big file and a text in one offer
// and checks that everything arrives byte for byte.
func TestFolderTreeAndBigFile(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	writeFile(t, src, "tree/a/b/c/deep.txt", "all the way down\n")
	writeFile(t, src, "tree/a/b/naïve — notes.txt", "unicode and spaces in a name\n")
	writeFile(t, src, "tree/a/sibling.md", "# sibling\n")
	mkdir(t, src, "tree/empty-dir")
	writeFile(t, src, "tree/empty.txt", "")
	writeFile(t, src, "tree/one.bin", "\x00")
	// Not a multiple of the chunk size: the last chunk is a short one.
	const bigSize = 200*MiB + 12345
	bigSum := writeRandomFile(t, filepath.Join(src, "big.bin"), bigSize, 1)

	want := snapshot(t, src)
	require.Equal(t, bigSum, want["big.bin"].SHA256)
	wantFiles, wantDirs := files(want), dirs(want)
	require.Len(t, wantFiles, 6)
	require.ElementsMatch(t, []string{"tree", "tree/a", "tree/a/b", "tree/a/b/c", "tree/empty-dir"}, wantDirs)
	var wantBytes int64
	for _, n := range want {
		wantBytes += n.Size
	}

	dl := t.TempDir()
	r := startReceiver(t, ctx, receiverOpts{dir: dl, yes: true, once: true})
	const text = "the tree you asked for 🌳"
	s := startSender(t, ctx, "--to", r.addr(), "--text", text, filepath.Join(src, "tree"), filepath.Join(src, "big.bin"))

	offer := r.await("offer", nil)
	assert.Equal(t, text, offer.str("text"), "the offer carries the text")
	assert.Equal(t, senderName, offer.str("from"))
	assert.EqualValues(t, len(wantFiles), offer.num("files"))
	assert.EqualValues(t, len(wantDirs), offer.num("folders"))
	assert.EqualValues(t, wantBytes, offer.num("size"))
	assert.False(t, offer.flag("resuming"))

	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())
	assert.Empty(t, s.stderr.String(), "sender stderr after a clean transfer")

	// On disk: exactly the source, byte for byte, and nothing else.
	got := snapshot(t, dl)
	requireNoLeftovers(t, dl)
	assert.Equal(t, wantFiles, files(got), "files in the download folder (path -> SHA-256)")
	assert.ElementsMatch(t, wantDirs, dirs(got), "folders in the download folder")
	info, err := os.Stat(filepath.Join(dl, "tree", "empty-dir"))
	require.NoError(t, err, "the empty folder arrives")
	assert.True(t, info.IsDir())

	// Receiver events.
	done := map[string]string{}
	for _, ev := range r.all("file-done") {
		name := ev.str("name")
		done[name] = ev.str("sha256")
		assert.Equal(t, filepath.Join(dl, filepath.FromSlash(name)), ev.str("path"), "file-done path of %s", name)
		assert.Equal(t, want[name].Size, ev.num("size"), "file-done size of %s", name)
		assert.Zero(t, ev.num("resumed_from"), "file-done resumed_from of %s", name)
	}
	assert.Equal(t, wantFiles, done, "file-done events (name -> sha256) against the SHA-256 of the sources")
	var folders []string
	for _, ev := range r.all("folder-done") {
		folders = append(folders, ev.str("name"))
		assert.Equal(t, filepath.Join(dl, filepath.FromSlash(ev.str("name"))), ev.str("path"))
	}
	assert.ElementsMatch(t, wantDirs, folders, "folder-done events")
	assert.Empty(t, r.all("file-error"))
	rd := r.await("transfer-done", nil)
	assert.EqualValues(t, len(wantFiles), rd.num("files"))
	assert.EqualValues(t, wantBytes, rd.num("bytes"))
	assert.Empty(t, rd.list("failed"))
	assert.False(t, rd.flag("cancelled"))

	// Sender events.
	s.await("connected", nil)
	s.await("accepted", nil)
	var sent []string
	for _, ev := range s.all("file-sent") {
		sent = append(sent, ev.str("name"))
	}
	sort.Strings(sent)
	assert.ElementsMatch(t, keys(wantFiles), sent, "file-sent events")
	assert.Empty(t, s.all("file-error"))
	sd := s.await("transfer-done", nil)
	assert.EqualValues(t, len(wantFiles), sd.num("files"))
	assert.EqualValues(t, wantBytes, sd.num("bytes"))
	assert.Empty(t, sd.list("failed"))
	assert.False(t, sd.flag("cancelled"))
}

// TestTextMessage sends a message alone.
func TestTextMessage(t *testing.T) {
	ctx := testContext(t)
	dl := t.TempDir()
	r := startReceiver(t, ctx, receiverOpts{dir: dl, yes: true, once: true})
	const text = "hello 👋"
	s := startSender(t, ctx, "--to", r.addr(), "--text", text)

	ev := r.await("text", nil)
	assert.Equal(t, text, ev.str("text"))
	assert.Equal(t, senderName, ev.str("from"))

	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	delivered := s.await("text-delivered", nil)
	assert.Equal(t, ev.str("id"), delivered.str("id"), "text-delivered names the message the receiver got")
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())
	assert.Empty(t, r.all("offer"), "a message alone is not an offer")
	assert.Empty(t, snapshot(t, dl), "a message writes nothing to the download folder")
}

// TestDeclineWritesNothing answers "n" at the receiver's prompt.
func TestDeclineWritesNothing(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	writeFile(t, src, "album/song.txt", "la la la\n")
	mkdir(t, src, "album/empty")
	writeFile(t, src, "cover.txt", "a cover\n")

	dl := t.TempDir()
	r := startReceiver(t, ctx, receiverOpts{dir: dl, once: true, stdin: true})
	s := startSender(t, ctx, "--to", r.addr(), filepath.Join(src, "album"), filepath.Join(src, "cover.txt"))

	offer := r.await("offer", nil)
	assert.EqualValues(t, 2, offer.num("files"))
	assert.EqualValues(t, 2, offer.num("folders"))
	_, err := r.stdin.Write([]byte("n\n"))
	require.NoError(t, err)

	code := s.wait()
	assert.NotEqual(t, 0, code, "a declined send must fail")
	lines := s.stderrLines()
	require.Len(t, lines, 1, "one line on the sender's stderr: %q", lines)
	assert.Contains(t, lines[0], "declined")
	s.await("declined", nil)
	assert.Empty(t, s.all("file-sent"))

	r.await("declined", nil)
	assert.NotEqual(t, 0, r.wait(), "receive --once after a decline: nothing arrived")
	assert.Contains(t, r.stderr.String(), "Accept? [y/N]", "the receiver asked")
	assert.Empty(t, r.all("accepted"))
	assert.Empty(t, r.all("folder-done"))
	assert.Empty(t, r.all("file-done"))
	assert.Empty(t, snapshot(t, dl), "a declined offer leaves the download folder empty")
}

// TestExistingFileNotOverwritten sends a file whose name is taken.
func TestExistingFileNotOverwritten(t *testing.T) {
	ctx := testContext(t)
	dl := t.TempDir()
	writeFile(t, dl, "report.txt", "old")
	src := t.TempDir()
	const content = "the new report\n"
	writeFile(t, src, "report.txt", content)

	r := startReceiver(t, ctx, receiverOpts{dir: dl, yes: true, once: true})
	s := startSender(t, ctx, "--to", r.addr(), filepath.Join(src, "report.txt"))
	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())

	fd := r.await("file-done", nil)
	assert.Equal(t, "report.txt", fd.str("name"))
	assert.Equal(t, filepath.Join(dl, "report (1).txt"), fd.str("path"), "file-done path")

	old, err := os.ReadFile(filepath.Join(dl, "report.txt"))
	require.NoError(t, err)
	assert.Equal(t, "old", string(old), "the existing file is untouched")
	got, err := os.ReadFile(filepath.Join(dl, "report (1).txt"))
	require.NoError(t, err)
	assert.Equal(t, content, string(got))
	assert.ElementsMatch(t, []string{"report.txt", "report (1).txt"}, keys(files(snapshot(t, dl))))
	requireNoLeftovers(t, dl)
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
