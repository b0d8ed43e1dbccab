//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLookAlikeNames sends, in one offer, names that look the same once
// shown: "café.txt" in NFC and in NFD (and one more already in the download
// folder), "straße.txt" next to "STRASSE.txt" (at the top and inside a
// folder), and names with invisible characters and mixed scripts. Each must
// arrive as a file of its own, numbered, nothing overwritten; the receiver's
// prompt shows the invisible characters escaped and marks the mixed names,
// while its JSON events keep the raw names.
func TestLookAlikeNames(t *testing.T) {
	ctx := testContext(t)
	const (
		cafeNFC   = "caf\u00e9.txt"
		cafeNFD   = "cafe\u0301.txt"
		invisible = "a\u200bb\u2028c.txt" // zero-width space, line separator
		mixed     = "p\u0430ypal.txt"     // a Cyrillic а among Latin letters
		sender    = "\u0430lice"          // the sender's name starts with a Cyrillic а
	)
	src := t.TempDir()
	content := map[string]string{} // manifest path -> content
	add := func(rel string) string {
		content[rel] = "this is " + rel + "\n"
		return writeFile(t, src, rel, content[rel])
	}
	args := []string{
		add(invisible), add(mixed), add(cafeNFC), add(cafeNFD), add("straße.txt"), add("STRASSE.txt"),
	}
	add("notes/Straße.md")
	add("notes/STRASSE.md")
	args = append(args, filepath.Join(src, "notes"))

	dl := t.TempDir()
	existing := "Cafe\u0301.txt" // NFD, capitalised: the same name as both cafés
	writeFile(t, dl, existing, "old")

	r := startReceiver(t, ctx, receiverOpts{dir: dl, once: true, stdin: true})
	s := start(t, ctx, "sender", false, append([]string{"--config-dir", t.TempDir(), "--name", sender, "--json",
		"send", "--to", r.addr()}, args...)...)
	offer := r.await("offer", nil)
	assert.EqualValues(t, 8, offer.num("files"))
	assert.Equal(t, sender, offer.str("from"), "JSON events keep the raw name")
	// The prompt is written before the offer event's answer is read.
	require.Eventually(t, func() bool { return strings.Contains(r.stderr.String(), "Accept? [y/N]") }, testTimeout, 10*time.Millisecond)
	_, err := r.stdin.Write([]byte("y\n"))
	require.NoError(t, err)
	require.Equal(t, 0, s.wait(), "sender exit status; stderr: %s", s.stderr.String())
	require.Equal(t, 0, r.wait(), "receiver exit status; stderr: %s", r.stderr.String())

	prompt := r.stderr.String()
	t.Logf("receiver's prompt: %s", prompt)
	assert.Contains(t, prompt, `a\u200Bb\u2028c.txt`, "invisible characters are shown escaped")
	assert.NotContains(t, prompt, "\u200b", "no raw zero-width space on the terminal")
	assert.NotContains(t, prompt, "\u2028", "no raw line separator on the terminal")
	assert.Contains(t, prompt, mixed+" [mixes Cyrillic and Latin letters]", "a name that mixes scripts is marked")
	assert.Contains(t, prompt, sender+" [mixes Cyrillic and Latin letters] wants to send you", "so is the sender's name")

	// On disk: every file of its own, numbered where its name was taken.
	want := map[string]string{
		existing:              "old",
		invisible:             content[invisible],
		mixed:                 content[mixed],
		"caf\u00e9 (1).txt":   content[cafeNFC],
		"cafe\u0301 (2).txt":  content[cafeNFD],
		"straße.txt":          content["straße.txt"],
		"STRASSE (1).txt":     content["STRASSE.txt"],
		"notes/STRASSE.md":    content["notes/STRASSE.md"], // first: a folder is listed in byte order
		"notes/Straße (1).md": content["notes/Straße.md"],
	}
	got := map[string]string{}
	for p := range files(snapshot(t, dl)) {
		b, err := os.ReadFile(filepath.Join(dl, filepath.FromSlash(p)))
		require.NoError(t, err)
		got[p] = string(b)
	}
	assert.Equal(t, want, got, "files in the download folder (path -> content)")
	requireNoLeftovers(t, dl)

	// file-done: the raw name the sender gave, the numbered path on disk.
	paths := map[string]string{}
	for _, ev := range r.all("file-done") {
		rel, err := filepath.Rel(dl, ev.str("path"))
		require.NoError(t, err)
		paths[ev.str("name")] = filepath.ToSlash(rel)
	}
	assert.Equal(t, map[string]string{
		invisible: invisible, mixed: mixed, cafeNFC: "caf\u00e9 (1).txt", cafeNFD: "cafe\u0301 (2).txt",
		"straße.txt": "straße.txt", "STRASSE.txt": "STRASSE (1).txt",
		"notes/STRASSE.md": "notes/STRASSE.md", "notes/Straße.md": "notes/Straße (1).md",
	}, paths, "file-done events (name -> path)")
}
