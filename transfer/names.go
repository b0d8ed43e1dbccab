package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// maxNumber is the highest k tried for "name (k).ext".
const maxNumber = 10000

// NameKey is how the receiver compares two names: equal keys are the same
// name, whatever the bytes. It is the canonical caseless match of Unicode
// (NFD, full case folding, then NFC), so "café" in NFC and in NFD are one
// name, and so are "straße", "STRASSE" and "Strasse". Names on disk keep the
// sender's bytes; only comparisons use the key.
func NameKey(name string) string {
	return norm.NFC.String(cases.Fold().String(norm.NFD.String(name)))
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
// folder, is numbered like an existing file.
type diskNames struct {
	paths map[string]string // manifest path, or a folder above one -> path on disk
	taken map[nameSlot]bool // names in use, by folder on disk
	top   map[string]string // top-level manifest name -> name on disk
}

type nameSlot struct{ dir, key string }

// planNames names every path of entries on disk. top, when not nil, fixes
// the top-level names (an offer being resumed keeps the names it was given);
// otherwise each top-level name gets the first candidate whose key is not
// among existing (what the download folder holds, and names other offers
// have reserved). Below the top level the folders are the offer's own, so
// only its names compete: the plan of a manifest is the same every time.
func planNames(entries []Entry, top map[string]string, existing []string) (*diskNames, error) {
	n := &diskNames{paths: map[string]string{}, taken: map[nameSlot]bool{}, top: map[string]string{}}
	for _, name := range existing {
		n.taken[nameSlot{"", NameKey(name)}] = true
	}
	for mp, dp := range top {
		n.paths[mp], n.top[mp] = dp, dp
		n.taken[nameSlot{"", NameKey(dp)}] = true
	}
	for _, e := range entries {
		p := e.Path
		for i := 0; i <= len(p); i++ {
			if i < len(p) && p[i] != '/' {
				continue
			}
			prefix := p[:i]
			if _, ok := n.paths[prefix]; ok {
				continue
			}
			parentDisk, name := "", prefix
			if j := strings.LastIndexByte(prefix, '/'); j >= 0 {
				parentDisk, name = n.paths[prefix[:j]], prefix[j+1:]
			}
			cand, err := n.claim(parentDisk, name)
			if err != nil {
				return nil, err
			}
			if parentDisk == "" {
				n.paths[prefix] = cand
				n.top[prefix] = cand
			} else if cand == name && parentDisk == prefix[:len(prefix)-len(name)-1] {
				n.paths[prefix] = prefix // unchanged: no new string
			} else {
				n.paths[prefix] = parentDisk + "/" + cand
			}
		}
	}
	return n, nil
}

// claim takes the first free "name (k).ext" in folder dir.
func (n *diskNames) claim(dir, name string) (string, error) {
	for k := 0; k <= maxNumber; k++ {
		cand := numbered(name, k)
		slot := nameSlot{dir, NameKey(cand)}
		if !n.taken[slot] {
			n.taken[slot] = true
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free name for %q", name)
}

// disk is the path on disk of manifest path p.
func (n *diskNames) disk(p string) string {
	if d, ok := n.paths[p]; ok {
		return d
	}
	return p // not in the manifest: cannot happen for a validated index
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
