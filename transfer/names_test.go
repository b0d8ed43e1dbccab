package transfer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	cafeNFC = "caf\u00e9.txt"  // é as one code point
	cafeNFD = "cafe\u0301.txt" // e and a combining acute accent
)

func TestNameKey(t *testing.T) {
	same := [][2]string{
		{cafeNFC, cafeNFD},
		{"straße.txt", "STRASSE.txt"},
		{"straße.txt", "Strasse.TXT"},
		{"Report.PDF", "report.pdf"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},                        // final and medial sigma fold alike
		{"\u212bngstr\u00f6m", "\u00c5ngstro\u0308m"}, // Angstrom sign, Å, o + diaeresis
		{"ﬁle", "FILE"},                               // the ligature folds to "fi"
	}
	for _, p := range same {
		assert.Equal(t, NameKey(p[0]), NameKey(p[1]), "%q and %q are one name", p[0], p[1])
	}
	different := [][2]string{
		{"a.txt", "b.txt"},
		{"cafe.txt", cafeNFC},               // accents count
		{"a\u200bb.txt", "ab.txt"},          // an invisible character is a difference (shown escaped)
		{"p\u0430ypal", "paypal"},           // a Cyrillic а is not a Latin a
		{"file", "ｆｉｌｅ"},                    // fullwidth letters are not folded (that is NFKC)
		{"report (1).txt", "report(1).txt"}, // spaces count
	}
	for _, p := range different {
		assert.NotEqual(t, NameKey(p[0]), NameKey(p[1]), "%q and %q are two names", p[0], p[1])
	}
}

func TestNumbered(t *testing.T) {
	for in, want := range map[string]string{"a.txt": "a (2).txt", "dir": "dir (2)", ".bashrc": ".bashrc (2)", "x.tar.gz": "x.tar (2).gz"} {
		assert.Equal(t, want, numbered(in, 2))
		assert.Equal(t, in, numbered(in, 0))
	}
}

func TestPlanNames(t *testing.T) {
	f := func(p string) Entry { return Entry{Path: p, Size: 1} }
	d := func(p string) Entry { return Entry{Path: p, Dir: true} }
	for _, tc := range []struct {
		name     string
		entries  []Entry
		existing []string
		want     map[string]string // manifest path -> path on disk
	}{
		{"nothing in the way", []Entry{f("a.txt"), d("dir"), f("dir/b.txt")}, []string{"other"},
			map[string]string{"a.txt": "a.txt", "dir": "dir", "dir/b.txt": "dir/b.txt"}},
		{"NFC and NFD in one offer", []Entry{f(cafeNFC), f(cafeNFD)}, nil,
			map[string]string{cafeNFC: cafeNFC, cafeNFD: "cafe\u0301 (1).txt"}},
		{"case folding in one offer", []Entry{f("straße.txt"), f("STRASSE.txt")}, nil,
			map[string]string{"straße.txt": "straße.txt", "STRASSE.txt": "STRASSE (1).txt"}},
		{"existing name in another form", []Entry{f(cafeNFC)}, []string{cafeNFD},
			map[string]string{cafeNFC: "caf\u00e9 (1).txt"}},
		{"existing and numbered ones", []Entry{f("Report.txt")}, []string{"report.txt", "REPORT (1).TXT"},
			map[string]string{"Report.txt": "Report (2).txt"}},
		{"the state folder is never a name", []Entry{d(".PeerDrop")}, []string{".peerdrop"},
			map[string]string{".PeerDrop": ".PeerDrop (1)"}},
		{"nested names in one folder", []Entry{d("t"), f("t/" + cafeNFC), f("t/" + cafeNFD), f("t/x/straße"), f("t/X/STRASSE")}, []string{"x"},
			map[string]string{
				"t": "t", "t/" + cafeNFC: "t/" + cafeNFC, "t/" + cafeNFD: "t/cafe\u0301 (1).txt",
				"t/x": "t/x", "t/x/straße": "t/x/straße", "t/X": "t/X (1)", "t/X/STRASSE": "t/X (1)/STRASSE",
			}},
		{"folders that fold alike", []Entry{d("Photos"), f("Photos/a.jpg"), d("photos"), f("photos/a.jpg")}, nil,
			map[string]string{"Photos": "Photos", "Photos/a.jpg": "Photos/a.jpg", "photos": "photos (1)", "photos/a.jpg": "photos (1)/a.jpg"}},
		{"a file and a folder that fold alike", []Entry{f("a"), f("A/b")}, nil,
			map[string]string{"a": "a", "A": "A (1)", "A/b": "A (1)/b"}},
		{"an implicit folder", []Entry{f("top/mid/leaf")}, []string{"TOP"},
			map[string]string{"top": "top (1)", "top/mid": "top (1)/mid", "top/mid/leaf": "top (1)/mid/leaf"}},
		{"a numbered name that the offer holds too", []Entry{f("a.txt"), f("A.txt"), f("a (1).txt")}, nil,
			map[string]string{"a.txt": "a.txt", "A.txt": "A (1).txt", "a (1).txt": "a (1) (1).txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, ValidateManifest(tc.entries, int64(countFiles(tc.entries))))
			n, err := planNames(tc.entries, nil, tc.existing)
			require.NoError(t, err)
			got := map[string]string{}
			for p := range tc.want {
				got[p] = n.disk(p)
			}
			assert.Equal(t, tc.want, got)

			// A resumed offer finds the same names from its top-level map.
			again, err := planNames(tc.entries, n.top, nil)
			require.NoError(t, err)
			for _, e := range tc.entries {
				assert.Equal(t, n.disk(e.Path), again.disk(e.Path), "resumed name of %q", e.Path)
			}
		})
	}
}

func countFiles(entries []Entry) int {
	n := 0
	for _, e := range entries {
		if !e.Dir {
			n++
		}
	}
	return n
}

func TestPlanNamesRunsOut(t *testing.T) {
	existing := []string{"x"}
	for k := 1; k <= maxNumber; k++ {
		existing = append(existing, numbered("x", k))
	}
	_, err := planNames([]Entry{{Path: "X"}}, nil, existing)
	assert.ErrorContains(t, err, "no free name")
}

// TestExistingNames: what the download folder holds and the top-level names
// other offers' resume state reserves are taken; the offer's own state is not.
func TestExistingNames(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "here.txt"), nil, 0o644))
	for id, top := range map[string]string{"other": `{"id":"other","top":{"café.txt":"café (1).txt"}}`, "mine": `{"id":"mine","top":{"a":"mine.txt"}}`} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, StateDir, id), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, StateDir, id, "meta.json"), []byte(top), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateDir, "broken"), []byte("{"), 0o600))
	names, err := existingNames(os.DirFS(dir), "mine")
	require.NoError(t, err)
	assert.Subset(t, names, []string{StateDir, "here.txt", "café (1).txt"})
	assert.NotContains(t, names, "mine.txt", "the offer's own state is not in its way")

	n, err := planNames([]Entry{{Path: "CAFÉ (1).TXT"}, {Path: "Here.txt"}}, nil, names)
	require.NoError(t, err)
	assert.Equal(t, "CAFÉ (1) (1).TXT", n.disk("CAFÉ (1).TXT"), "reserved by an offer waiting to resume")
	assert.Equal(t, "Here (1).txt", n.disk("Here.txt"))
}

// TestTooManyPathsDeclined runs the attack on a real receiver: a manifest of
// empty files, each MaxDepth parts deep, naming more than MaxNamedPaths
// distinct paths. The folder cap (MaxDirs) now refuses it in validation,
// before the names are planned; planNames bounds its map on its own too.
func TestTooManyPathsDeclined(t *testing.T) {
	h := startReceiver(t, acceptAll)
	deep := strings.Repeat("/a", MaxDepth-2)
	var entries []Entry
	for i := 0; i*MaxDepth <= MaxNamedPaths; i++ { // MaxDepth paths each
		entries = append(entries, Entry{Path: fmt.Sprintf("d%d%s/f", i, deep)})
	}
	require.Error(t, ValidateManifest(entries, 0), "over the folder cap")
	replies := hostile(t, h, offerJSON(NewID(), "", entries...)...)
	require.NotEmpty(t, replies)
	assert.Equal(t, CodeBadManifest, lastError(replies).Code, "replies: %+v", replies)
	assert.Empty(t, snapshot(t, h.dir), "nothing was created")

	_, err := planNames(entries[:MaxNamedPaths/MaxDepth], nil, nil)
	assert.NoError(t, err, "just under the limit")
	_, err = planNames(entries, nil, nil)
	assert.ErrorIs(t, err, ErrTooManyPaths)
}
