package transfer

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecodeMessage: whatever a peer sends, decoding never panics, and what
// it accepts survives a round trip.
func FuzzDecodeMessage(f *testing.F) {
	id := strings.Repeat("ab", 16)
	for _, s := range []string{
		`{"type":"offer","id":"` + id + `","count":2,"size":10,"text":"hi"}`,
		`{"type":"entries","id":"` + id + `","entries":[{"path":"a/b","size":1},{"path":"d","dir":true}]}`,
		`{"type":"file-end","index":3,"sha256":"` + strings.Repeat("0f", 32) + `"}`,
		`{"type":"accept","id":"` + id + `","resume":[{"index":1,"offset":5}],"done":[0]}`,
		`{"type":"accept","id":"` + id + `","take":[0,2,7]}`, `{"type":"accept","id":"` + id + `","take":[2,2]}`,
		`{"type":"accept","id":"` + id + `","take":[-1]}`, `{"type":"accept","id":"` + id + `","take":[99999,100000]}`,
		`{"type":"cancel","index":-1}`, `{"type":"end","retries":1}`, `{"type":"done","failed":[1]}`,
		`{"type":"text","id":"` + id + `","text":"hello"}`, `{}`, `[]`, `null`, ``,
		`{"type":"offer","id":"` + id + `","count":1,"size":10,"lanes":4}`, `{"type":"lane","id":"` + id + `"}`,
		`{"type":"accept","id":"` + id + `","lanes":2,"ranges":[{"index":0,"offset":0,"end":1048576}]}`,
		`{"type":"accept","id":"` + id + `","lanes":9}`, `{"type":"file","index":0,"offset":16777216,"end":33554432}`,
		`{"type":"file","index":0,"offset":5,"end":5}`, `{"type":"end","retries":0,"lanes":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := DecodeMessage(p)
		if err != nil {
			return
		}
		if len(m.Take) > MaxTake {
			t.Fatalf("accept with %d take indexes passed", len(m.Take))
		}
		for k, i := range m.Take {
			if i < 0 || i >= MaxEntries || (k > 0 && i <= m.Take[k-1]) {
				t.Fatalf("take %v passed", m.Take)
			}
		}
		if m.Type == TypeAccept && (m.Lanes < 0 || m.Lanes > MaxLanes) {
			t.Fatalf("accept with %d lanes passed", m.Lanes)
		}
		for _, r := range m.Ranges {
			if m.Type == TypeAccept && (r.Index < 0 || r.Index >= MaxEntries || r.Offset < 0 || r.End <= r.Offset || r.End > MaxFileSize) {
				t.Fatalf("range %+v passed", r)
			}
		}
		if m.Type == TypeFile && m.End != 0 && (m.End <= m.Offset || m.End > MaxFileSize) {
			t.Fatalf("file range %d..%d passed", m.Offset, m.End)
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if _, err := DecodeMessage(enc); err != nil {
			t.Fatalf("accepted message does not decode again: %v\n%s", err, enc)
		}
	})
}

// FuzzValidateManifest: a manifest that passes never names a place outside
// the download folder, and the names the receiver gives its paths on disk
// never stand for one another (same NameKey).
func FuzzValidateManifest(f *testing.F) {
	f.Add([]byte(`[{"path":"a","size":1},{"path":"d","dir":true},{"path":"d/e","size":0}]`), int64(1))
	f.Add([]byte(`[{"path":"../../x","size":1}]`), int64(1))
	f.Add([]byte(`[{"path":"/etc/x","size":1}]`), int64(1))
	f.Add([]byte(`[{"path":"a\\..\\b","size":1}]`), int64(1))
	f.Add([]byte(`[{"path":"A","size":1},{"path":"a","size":1}]`), int64(2))
	f.Add([]byte(`[{"path":"caf\u00e9","size":1},{"path":"cafe\u0301","size":1},{"path":"d/stra\u00dfe","size":0},{"path":"D/STRASSE","size":0}]`), int64(2))
	f.Fuzz(func(t *testing.T, data []byte, total int64) {
		var entries []Entry
		if json.Unmarshal(data, &entries) != nil {
			return
		}
		if ValidateManifest(entries, total) != nil {
			return
		}
		root := filepath.FromSlash("/download/folder")
		for _, e := range entries {
			if err := ValidatePath(e.Path); err != nil {
				t.Fatalf("manifest passed with a bad path %q: %v", e.Path, err)
			}
			joined := filepath.Join(root, filepath.FromSlash(e.Path))
			if !strings.HasPrefix(joined, root+string(filepath.Separator)) {
				t.Fatalf("%q escapes the folder: %s", e.Path, joined)
			}
		}
		names, err := planNames(entries, nil, []string{"a"})
		if err != nil {
			t.Fatalf("no names for a valid manifest: %v", err)
		}
		seen := map[string]string{}
		for _, e := range entries {
			disk := names.disk(e.Path)
			key := ""
			for part := range strings.SplitSeq(disk, "/") {
				key += NameKey(part) + "/"
			}
			if other, ok := seen[key]; ok && other != e.Path {
				t.Fatalf("%q and %q both end up as %q", other, e.Path, disk)
			}
			seen[key] = e.Path
		}
	})
}
