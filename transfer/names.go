package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// maxNumber is the highest k tried for "name (k).ext".
const maxNumber = 10000

// MaxNamedPaths bounds the distinct paths (files and folders, implicit
// parent folders included) of one offer that the receiver names: twice
// MaxEntries, room for an offer that leaves out every folder entry. Naming
// holds one map entry per path; without the bound a manifest of 100000
// paths 64 folders deep (6.4 million folders) took a gigabyte and a minute.
const MaxNamedPaths = 2 * MaxEntries

// ErrTooManyPaths says that an offer has more than MaxNamedPaths files and
// folders.
var ErrTooManyPaths = fmt.Errorf("more than %d files and folders in one offer", MaxNamedPaths)

// NameKey is how the receiver compares two names: equal keys are the same
// name, whatever the bytes. It is the canonical caseless match of Unicode
// (NFD, full case folding, then NFC), so "café" in NFC and in NFD are one
// name, and so are "straße", "STRASSE" and "Strasse". Names on disk keep the
// sender's bytes; only comparisons use the key.
func NameKey(name string) string { return newKeyer().key(name) }

// keyer computes NameKeys, reusing its case folder (not safe for
// concurrent use).
type keyer struct{ fold cases.Caser }

func newKeyer() *keyer { return &keyer{fold: cases.Fold()} }

func (k *keyer) key(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return norm.NFC.String(k.fold.String(norm.NFD.String(name)))
		}
	}
	// ASCII: folding is lower-casing and normalization changes nothing
	// (and ToLower returns name itself when it has no capital).
	return strings.ToLower(name)
}

// numbered returns name for k == 0, else "name (k).ext".
func numbered(name string, k int) string {
	if k == 0 {
		return name
	}
	ext := path.Ext(name)
	if ext == name { // ".bashrc"
		ext = ""
	}
	return fmt.Sprintf("%s (%d)%s", strings.TrimSuffix(name, ext), k, ext)
}

// diskNames maps the paths of one offer to paths on disk, relative to the
// download folder. No two names in one folder have the same NameKey: a name
// that matches an earlier one, or something already in the download
// folder, is numbered like an existing file. Its size is one map entry per
// distinct folder and file of the manifest (the folder cap of the manifest
// rules bounds it); only numbered names are stored as new strings.
type diskNames struct {
	// taken holds the names in use in each folder, the folder named by its
	// manifest path ("" for the download folder: the offer's folders and
	// those on disk are one to one), with the manifest path that holds
	// each ("" for a name that was there before).
	taken   map[nameSlot]string
	renamed map[string]string // manifest path -> its last part on disk, where numbered
	top     map[string]string // top-level manifest name -> name on disk
	keys    *keyer
	paths   int // distinct manifest paths named
}

type nameSlot struct{ dir, key string }

// planNames names every path of entries on disk. top, when not nil, fixes
// the top-level names (an offer being resumed keeps the names it was given);
// otherwise each top-level name gets the first candidate whose key is not
// among existing (what the download folder holds, and names other offers
// have reserved). Below the top level the folders are the offer's own, so
// only its names compete: the plan of a manifest is the same every time.
func planNames(entries []Entry, top map[string]string, existing []string) (*diskNames, error) {
	n := &diskNames{taken: map[nameSlot]string{}, renamed: map[string]string{}, top: map[string]string{}, keys: newKeyer()}
	for _, name := range existing {
		n.taken[nameSlot{"", n.keys.key(name)}] = ""
	}
	for mp, dp := range top {
		n.top[mp] = dp
		if dp != mp {
			n.renamed[mp] = dp
		}
		n.taken[nameSlot{"", n.keys.key(dp)}] = mp
	}
	for _, e := range entries {
		p := e.Path
		for start := 0; ; {
			end := strings.IndexByte(p[start:], '/')
			if end < 0 {
				end = len(p)
			} else {
				end += start
			}
			parent := ""
			if start > 0 {
				parent = p[:start-1]
			}
			if err := n.claim(parent, p[:end], p[start:end]); err != nil {
				return nil, err
			}
			if end == len(p) {
				break
			}
			start = end + 1
		}
	}
	return n, nil
}

// claim gives manifest path prefix, named name in folder parent, the first
// free "name (k).ext" there, unless it has one already.
func (n *diskNames) claim(parent, prefix, name string) error {
	if _, ok := n.renamed[prefix]; ok {
		return nil
	}
	if _, ok := n.top[prefix]; ok && parent == "" {
		return nil
	}
	for k := 0; k <= maxNumber; k++ {
		cand := numbered(name, k)
		slot := nameSlot{parent, n.keys.key(cand)}
		owner, used := n.taken[slot]
		if used && owner == prefix {
			return nil // a folder seen before, under its own name
		}
		if used {
			continue
		}
		if n.paths++; n.paths > MaxNamedPaths {
			return ErrTooManyPaths
		}
		n.taken[slot] = prefix
		if k > 0 {
			n.renamed[prefix] = cand
		}
		if parent == "" {
			n.top[prefix] = cand
		}
		return nil
	}
	return fmt.Errorf("no free name for %q", name)
}

// disk is the path on disk of manifest path p: p with each numbered part
// replaced.
func (n *diskNames) disk(p string) string {
	if len(n.renamed) == 0 {
		return p
	}
	var b strings.Builder
	changed := false
	for start := 0; ; {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		part := p[start:end]
		if r, ok := n.renamed[p[:end]]; ok {
			part, changed = r, true
		}
		if start > 0 {
			b.WriteByte('/')
		}
		b.WriteString(part)
		if end == len(p) {
			break
		}
		start = end + 1
	}
	if !changed {
		return p
	}
	return b.String()
}

// existingNames lists the download folder and the top-level names that
// other offers' resume state holds (offers running now, or waiting for
// their sender to come back), so that a new offer takes none of them.
func existingNames(root fs.FS, self string) ([]string, error) {
	list, err := fs.ReadDir(root, ".")
	if err != nil {
		return nil, fmt.Errorf("list download folder: %w", err)
	}
	names := make([]string, 0, len(list)+1)
	names = append(names, StateDir)
	for _, e := range list {
		names = append(names, e.Name())
	}
	states, err := fs.ReadDir(root, StateDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return names, nil // no state to honour
	}
	for _, s := range states {
		if s.Name() == self || !s.IsDir() {
			continue
		}
		data, err := fs.ReadFile(root, path.Join(StateDir, s.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var meta stateMeta
		if json.Unmarshal(data, &meta) != nil {
			continue
		}
		for _, disk := range meta.Top {
			names = append(names, disk)
		}
	}
	return names, nil
}
