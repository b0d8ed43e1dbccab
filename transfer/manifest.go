package transfer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// windowsReserved are names Windows treats as devices whatever the extension.
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
}

// ValidatePath checks that p is safe to create below any download folder on
// any desktop OS: relative, "/"-separated, no "." or ".." parts, no
// backslash, colon, NUL or control characters, no device names, no part that
// ends in a dot or space, within the length limits. It rejects rather than
// rewrites: a peer that sends such a name is broken or hostile.
func ValidatePath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if len(p) > MaxPathBytes {
		return fmt.Errorf("path of %d bytes, limit %d", len(p), MaxPathBytes)
	}
	if !utf8.ValidString(p) {
		return errors.New("path is not UTF-8")
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("absolute path %q", p)
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxDepth {
		return fmt.Errorf("path %q is nested deeper than %d", p, MaxDepth)
	}
	for _, part := range parts {
		if err := validateName(part); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
	}
	return nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty part")
	case name == "." || name == "..":
		return fmt.Errorf("%q part", name)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("name of %d bytes, limit %d", len(name), MaxNameBytes)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return fmt.Errorf("name %q ends in a dot or space", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || unicode.Is(unicode.Cc, r) {
			return errors.New("control character in name")
		}
		switch r {
		case '\\', ':', '*', '?', '"', '<', '>', '|':
			return fmt.Errorf("character %q in name", r)
		case '\u200e', '\u200f', '\u061c', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e',
			'\u2066', '\u2067', '\u2068', '\u2069':
			// Bidirectional controls can disguise an extension ("gpj.exe").
			return errors.New("bidirectional control character in name")
		}
	}
	base := strings.ToUpper(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if windowsReserved[strings.TrimRight(base, " ")] {
		return fmt.Errorf("device name %q", name)
	}
	return nil
}

// Validate checks one manifest entry.
func (e Entry) Validate() error {
	if err := ValidatePath(e.Path); err != nil {
		return &ProtocolError{Code: CodeBadManifest, Reason: err.Error()}
	}
	if e.Size < 0 || e.Size > MaxFileSize {
		return violation(CodeBadManifest, "%q: bad size %d", e.Path, e.Size)
	}
	if e.Dir && e.Size != 0 {
		return violation(CodeBadManifest, "%q: a folder with a size", e.Path)
	}
	return nil
}

// ValidateManifest checks a whole manifest: every entry, the limits, no
// path twice, no file that is also used as a folder, and that sizes add up
// to total. Paths are compared byte for byte: names that differ only in case
// or Unicode normalization ("a.txt" and "A.txt") are allowed, and the
// receiver numbers them (names.go).
func ValidateManifest(entries []Entry, total int64) error {
	if len(entries) > MaxEntries {
		return violation(CodeTooLarge, "%d entries, limit %d", len(entries), MaxEntries)
	}
	seen := make(map[string]bool, len(entries))
	files := make(map[string]bool, len(entries))
	var sum, bytes int64
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return err
		}
		bytes += int64(len(e.Path))
		if bytes > MaxManifestBytes {
			return violation(CodeTooLarge, "manifest over %d bytes", MaxManifestBytes)
		}
		if seen[e.Path] {
			return violation(CodeBadManifest, "%q appears twice", e.Path)
		}
		seen[e.Path] = true
		if !e.Dir {
			files[e.Path] = true
			sum += e.Size
			if sum > MaxFileSize {
				return violation(CodeBadManifest, "total size too large")
			}
		}
	}
	dirs := make(map[string]bool)
	for _, e := range entries {
		if e.Dir {
			dirs[e.Path] = true
		}
		for dir := path.Dir(e.Path); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
			if files[dir] {
				return violation(CodeBadManifest, "%q is a file and a folder", dir)
			}
			dirs[dir] = true
		}
		if len(dirs) > MaxDirs {
			return violation(CodeBadManifest, "more than %d folders", MaxDirs)
		}
	}
	if sum != total {
		return violation(CodeBadManifest, "sizes add up to %d, offer says %d", sum, total)
	}
	return nil
}

// Offer is what a sender proposes: entries and, for files, where to read them.
type Offer struct {
	ID      string
	Text    string
	Entries []Entry
	// Sources[i] is the local file behind Entries[i] ("" for folders).
	Sources []string
}

// TotalSize is the sum of the file sizes.
func (o *Offer) TotalSize() int64 {
	var n int64
	for _, e := range o.Entries {
		n += e.Size
	}
	return n
}

// NewID returns a random transfer or message id.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewOffer builds an offer from local paths: a file becomes one entry named by
// its base name; a folder becomes an entry for itself and one for everything
// below it, so empty files and empty folders travel too. Symlinks inside a
// folder are skipped (they could point anywhere); irregular files are refused.
func NewOffer(paths []string, text string) (*Offer, error) {
	if len(text) > MaxTextBytes {
		return nil, fmt.Errorf("text of %d bytes, limit %d", len(text), MaxTextBytes)
	}
	o := &Offer{ID: NewID(), Text: text}
	add := func(rel, src string, info fs.FileInfo) {
		e := Entry{Path: rel, Dir: info.IsDir(), MTime: info.ModTime().Unix()}
		if !e.Dir {
			e.Size = info.Size()
		} else {
			src = ""
		}
		o.Entries = append(o.Entries, e)
		o.Sources = append(o.Sources, src)
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("cannot send %s: %w", p, err)
		}
		base := filepath.Base(filepath.Clean(p))
		if base == "/" || base == "." || base == ".." {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("cannot send %s: %w", p, err)
			}
			base = filepath.Base(abs)
		}
		if err := validateName(base); err != nil {
			return nil, fmt.Errorf("cannot send %s: %w", p, err)
		}
		switch {
		case info.Mode().IsRegular():
			add(base, p, info)
		case info.IsDir():
			err := filepath.WalkDir(p, func(src string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type()&fs.ModeSymlink != 0 {
					return nil
				}
				if !d.IsDir() && !d.Type().IsRegular() {
					return nil // sockets, devices, pipes
				}
				rel, err := filepath.Rel(p, src)
				if err != nil {
					return err
				}
				name := base
				if rel != "." {
					name = base + "/" + filepath.ToSlash(rel)
				}
				if err := ValidatePath(name); err != nil {
					return fmt.Errorf("%s: %w", src, err)
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				add(name, src, fi)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("cannot send %s: %w", p, err)
			}
		default:
			return nil, fmt.Errorf("cannot send %s: not a regular file or folder", p)
		}
	}
	if len(o.Entries) == 0 && text == "" {
		return nil, errors.New("nothing to send")
	}
	if err := ValidateManifest(o.Entries, o.TotalSize()); err != nil {
		return nil, fmt.Errorf("cannot send: %w", err)
	}
	return o, nil
}

// TopEntry is one top-level file or folder of an offer: what a person
// sees and chooses in a prompt (PROTOCOL.md 4.2, "top-level entries").
type TopEntry struct {
	Path   string // the first part of its entries' paths
	Folder bool   // a folder entry, or the parent of other entries
	Files  int    // files at or below it
	Size   int64  // their bytes
}

// TopLevel groups entries by the first part of their paths, in the order
// each first appears: the top-level entries an accept's take list counts.
// of[i] is the index in tops of entries[i].
func TopLevel(entries []Entry) (tops []TopEntry, of []int) {
	at := map[string]int{}
	of = make([]int, len(entries))
	for i, e := range entries {
		first, _, nested := strings.Cut(e.Path, "/")
		k, ok := at[first]
		if !ok {
			k = len(tops)
			at[first] = k
			tops = append(tops, TopEntry{Path: first})
		}
		of[i] = k
		t := &tops[k]
		if nested || e.Dir {
			t.Folder = true
		}
		if !e.Dir {
			t.Files++
			t.Size += e.Size
		}
	}
	return tops, of
}

// Takes reports, per entry, whether a take list (top-level indexes, as an
// accept carries them; nil = all) includes it, and the bytes of the files
// it takes. It fails when the list names a top-level entry the offer does
// not have, names one twice, or is not in increasing order.
func Takes(entries []Entry, take []int) (in []bool, size int64, err error) {
	tops, of := TopLevel(entries)
	chosen := make([]bool, len(tops))
	for k, t := range take {
		if t < 0 || t >= len(tops) {
			return nil, 0, violation(CodeProtocol, "take: index %d out of range (%d top-level entries)", t, len(tops))
		}
		if k > 0 && t <= take[k-1] {
			return nil, 0, violation(CodeProtocol, "take: indexes must increase")
		}
		chosen[t] = true
	}
	in = make([]bool, len(entries))
	for i, e := range entries {
		in[i] = take == nil || chosen[of[i]]
		if in[i] && !e.Dir {
			size += e.Size
		}
	}
	return in, size, nil
}
