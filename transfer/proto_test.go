package transfer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidatePath(t *testing.T) {
	ok := []string{"a.txt", "dir/sub/ü.txt", ".hidden", "photos/IMG 0001.JPG", "a/b/c/d", "emoji 👋.txt", "con-tract.txt"}
	for _, p := range ok {
		assert.NoError(t, ValidatePath(p), p)
	}
	bad := []string{
		"", "/etc/x", "../../x", "a/../b", "a/./b", "..", ".", "a//b", "a/", "a\\b", "..\\..\\x", "C:x", "C:/x",
		"a\x00b", "a\nb", "CON", "con.txt", "LPT1.tar.gz", "aux", "name.", "name ", "a/b./c",
		"x\u202etxt.exe", strings.Repeat("n", 256), strings.Repeat("a/", 65) + "f",
		strings.Repeat(strings.Repeat("d", 200)+"/", 21) + "f", "\xff\xfe",
	}
	for _, p := range bad {
		assert.Error(t, ValidatePath(p), "%q", p)
	}
}

func TestValidateManifest(t *testing.T) {
	f := func(p string, n int64) Entry { return Entry{Path: p, Size: n} }
	d := func(p string) Entry { return Entry{Path: p, Dir: true} }
	for _, tc := range []struct {
		name    string
		entries []Entry
		total   int64
		code    string
	}{
		{"ok", []Entry{d("t"), f("t/a", 3), f("t/e", 0), d("t/empty")}, 3, ""},
		{"empty offer", nil, 0, ""},
		{"duplicate", []Entry{f("a", 1), f("a", 1)}, 2, CodeBadManifest},
		{"same name but for case: the receiver numbers it", []Entry{f("A.txt", 1), f("a.TXT", 1)}, 2, ""},
		{"file and folder but for case: the receiver numbers it", []Entry{f("a", 1), f("A/b", 1)}, 2, ""},
		{"file used as folder", []Entry{f("a", 1), f("a/b", 1)}, 2, CodeBadManifest},
		{"wrong total", []Entry{f("a", 1)}, 5, CodeBadManifest},
		{"negative size", []Entry{f("a", -1)}, -1, CodeBadManifest},
		{"folder with size", []Entry{{Path: "d", Dir: true, Size: 4}}, 0, CodeBadManifest},
		{"traversal", []Entry{f("../../x", 1)}, 1, CodeBadManifest},
		{"absolute", []Entry{f("/etc/x", 1)}, 1, CodeBadManifest},
		{"too many", make([]Entry, MaxEntries+1), 0, CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateManifest(tc.entries, tc.total)
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.code, pe.Code, err.Error())
		})
	}
}

func TestDecodeMessage(t *testing.T) {
	id := strings.Repeat("ab", 16)
	sha := strings.Repeat("0f", 32)
	good := []string{
		`{"type":"offer","id":"` + id + `","count":2,"size":10,"text":"hi"}`,
		`{"type":"offer","id":"` + id + `","text":"text only"}`,
		`{"type":"entries","id":"` + id + `","entries":[{"path":"a","size":1},{"path":"d","dir":true}]}`,
		`{"type":"accept","id":"` + id + `","resume":[{"index":1,"offset":5}],"done":[0]}`,
		`{"type":"decline","id":"` + id + `"}`,
		`{"type":"file","index":3,"offset":7}`,
		`{"type":"file-end","index":3,"sha256":"` + sha + `"}`,
		`{"type":"file-ok","index":3}`, `{"type":"file-error","index":1,"code":"io"}`,
		`{"type":"abort","index":1}`, `{"type":"pause"}`, `{"type":"resume"}`,
		`{"type":"cancel","index":-1}`, `{"type":"cancel","index":4}`, `{"type":"retry","index":2}`,
		`{"type":"end","retries":1}`, `{"type":"done","failed":[1,2]}`,
		`{"type":"text","id":"` + id + `","text":"hello"}`, `{"type":"text-ack","id":"` + id + `"}`,
		`{"type":"error","code":"protocol","message":"x"}`,
	}
	for _, g := range good {
		m, err := DecodeMessage([]byte(g))
		require.NoError(t, err, g)
		p, err := Encode(m)
		require.NoError(t, err)
		again, err := DecodeMessage(p)
		require.NoError(t, err)
		assert.Equal(t, m, again)
	}
	bad := map[string]string{
		`not json`:                    CodeProtocol,
		`{"type":"teleport"}`:         CodeProtocol,
		`{"type":"offer","id":"XYZ"}`: CodeProtocol,
		`{"type":"offer","id":"` + id + `","count":-1}`:                                          CodeTooLarge,
		`{"type":"offer","id":"` + id + `","count":1e9}`:                                         CodeProtocol,
		`{"type":"offer","id":"` + id + `","size":-5}`:                                           CodeProtocol,
		`{"type":"entries","id":"` + id + `","entries":[]}`:                                      CodeProtocol,
		`{"type":"entries","id":"` + id + `","entries":[{"path":"../x"}]}`:                       CodeBadManifest,
		`{"type":"file","index":-1}`:                                                             CodeProtocol,
		`{"type":"file","index":100000}`:                                                         CodeProtocol,
		`{"type":"file","index":1,"offset":-1}`:                                                  CodeProtocol,
		`{"type":"file-end","index":1,"sha256":"ABC"}`:                                           CodeProtocol,
		`{"type":"file-end","index":1,"sha256":"` + strings.ToUpper(sha) + `"}`:                  CodeProtocol,
		`{"type":"cancel","index":-2}`:                                                           CodeProtocol,
		`{"type":"end","retries":-1}`:                                                            CodeProtocol,
		`{"type":"accept","id":"` + id + `","resume":[{"index":1,"offset":-3}]}`:                 CodeProtocol,
		`{"type":"text","id":"` + id + `","text":"` + strings.Repeat("x", MaxTextBytes+1) + `"}`: CodeTooLarge,
		`{"type":"text","text":"no id"}`:                                                         CodeProtocol,
	}
	for in, code := range bad {
		_, err := DecodeMessage([]byte(in))
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe, "%.80s", in)
		assert.Equal(t, code, pe.Code, "%.80s: %v", in, err)
	}
	_, err := DecodeMessage(make([]byte, MaxControlSize+1))
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, CodeTooLarge, pe.Code)
}

func TestEncodeWorstCaseText(t *testing.T) {
	// Every byte a JSON escape: the limit on text keeps the message under the cap.
	m := Message{Type: TypeText, ID: NewID(), Text: strings.Repeat("\x01", MaxTextBytes)}
	p, err := Encode(m)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(p), MaxControlSize)
}

func TestEntryBatchesStayUnderLimit(t *testing.T) {
	var entries []Entry
	for i := range 3000 {
		entries = append(entries, Entry{Path: strings.Repeat("p", 200) + "/" + strings.Repeat("q", 40) + NewID()[:8] + string(rune('a'+i%26)), Size: 1})
	}
	batches := entryBatches(entries)
	n := 0
	for _, b := range batches {
		require.NotEmpty(t, b)
		require.LessOrEqual(t, len(b), MaxEntriesPerMessage)
		p, err := Encode(Message{Type: TypeEntries, ID: NewID(), Entries: b})
		require.NoError(t, err)
		require.LessOrEqual(t, len(p), MaxControlSize)
		n += len(b)
	}
	assert.Equal(t, len(entries), n)
}
