package transfer

// The staging area of a receive, under <download dir>/.peerdrop/<id>/:
// the offer's meta, partial files, folders made for it, placing verified
// files under their final names, and the clean-up of what is stale.

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type stateMeta struct {
	ID       string            `json:"id"`
	From     string            `json:"from"`
	Manifest string            `json:"manifest"`
	Top      map[string]string `json:"top"`
	Take     []int             `json:"take,omitempty"`
}

// loadMeta finds the state an earlier, interrupted attempt at the same
// offer from the same device left behind.
func (rs *recvSession) loadMeta(dir, digest string) (stateMeta, bool) {
	data, err := rs.root.ReadFile(path.Join(dir, "meta.json"))
	if err != nil {
		return stateMeta{}, false
	}
	var m stateMeta
	if json.Unmarshal(data, &m) != nil {
		return stateMeta{}, false
	}
	if m.ID != rs.off.id || m.From != rs.from.Fingerprint || m.Manifest != digest || m.Top == nil {
		return stateMeta{}, false
	}
	return m, true
}

func manifestDigest(entries []Entry) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, e := range entries {
		_ = enc.Encode(e)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// prepare picks names on disk for the offer's paths (never an existing one,
// names.go) and records the resume state. Folders are created as their
// first file is placed, and the offer's own (empty) folders at the end.
func (rs *recvSession) prepare(digest string) error {
	o := rs.off
	// One offer at a time lists the folder and reserves its names in its
	// meta.json: two offers accepted at once must not both take "café".
	rs.r.naming.Lock()
	defer rs.r.naming.Unlock()
	existing, err := existingNames(rs.root.FS(), o.id)
	if err != nil {
		return err
	}
	if o.names, err = planNames(o.accepted(), nil, existing); err != nil {
		return err
	}
	// Whatever an unrelated earlier attempt left here is not ours to resume.
	_ = rs.root.RemoveAll(o.dir)
	if err := rs.root.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", o.dir, err)
	}
	meta, _ := json.Marshal(stateMeta{ID: o.id, From: rs.from.Fingerprint, Manifest: digest, Top: o.names.top, Take: o.take})
	if err := rs.root.WriteFile(path.Join(o.dir, "meta.json"), meta, 0o600); err != nil {
		return fmt.Errorf("write resume state: %w", err)
	}
	return nil
}

// mkdirs creates folder p and its missing parents, remembering which it
// made so that a cancelled or failed offer can take them back.
func (rs *recvSession) mkdirs(p string) error {
	o := rs.off
	parts := strings.Split(p, "/")
	for i := range parts {
		dir := strings.Join(parts[:i+1], "/")
		err := rs.root.Mkdir(dir, 0o755)
		switch {
		case err == nil:
			o.made = append(o.made, dir)
		case errors.Is(err, fs.ErrExist):
		default:
			return fmt.Errorf("create folder %s: %w", dir, err)
		}
	}
	return nil
}

// removeMade removes the folders this connection created that are empty,
// deepest first: never one it did not make, never one with something in it.
func (rs *recvSession) removeMade() {
	o := rs.off
	for i := len(o.made) - 1; i >= 0; i-- {
		_ = rs.root.Remove(o.made[i])
	}
	o.made = nil
}

// makeFolders creates the offer's folder entries (empty ones included).
func (rs *recvSession) makeFolders() {
	o := rs.off
	for i, e := range o.entries {
		if !e.Dir || !o.in[i] {
			continue
		}
		p := rs.diskPath(e.Path)
		if err := rs.mkdirs(p); err != nil {
			rs.fail(-1, CodeIO, err.Error(), false)
			continue
		}
		rs.emit.emit(FolderDone{ID: o.id, Name: e.Path, Path: filepath.Join(rs.r.Dir, filepath.FromSlash(p))})
	}
}

// loadProgress reads what an earlier attempt finished and how far it got.
// Files sent in ranges (ranged) are resumed by their ranges instead; they
// are kept in o.ranges for resumeRanges.
func (rs *recvSession) loadProgress(ranged map[int]spans) (done []int, resume []ResumePoint) {
	o := rs.off
	if f, err := rs.root.Open(path.Join(o.dir, "done.log")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			idx, _, _ := strings.Cut(sc.Text(), "\t")
			i, err := strconv.Atoi(idx)
			if err != nil || i < 0 || i >= len(o.entries) || o.entries[i].Dir || !o.in[i] || o.done[i] {
				continue
			}
			o.done[i] = true
			o.bytes += o.entries[i].Size
			done = append(done, i)
		}
		f.Close()
	}
	o.ranges = ranged
	for i, e := range o.entries {
		if _, ok := ranged[i]; e.Dir || !o.in[i] || o.done[i] || ok {
			continue
		}
		info, err := rs.root.Stat(partName(o.dir, i))
		if err != nil {
			continue
		}
		if info.Size() > e.Size {
			_ = rs.root.Remove(partName(o.dir, i))
			continue
		}
		if info.Size() > 0 {
			resume = append(resume, ResumePoint{Index: i, Offset: info.Size()})
			o.bytes += info.Size()
		}
	}
	return done, resume
}

func partName(dir string, i int) string { return path.Join(dir, strconv.Itoa(i)+".part") }

// diskPath maps a manifest path to its path on disk, relative to the root.
func (rs *recvSession) diskPath(p string) string { return rs.off.names.disk(p) }

// place gives a verified partial file its final name, never replacing an
// existing file: a hard link fails if the name is taken, and then we number.
func (rs *recvSession) place(part, final string) (string, error) {
	if dir := path.Dir(final); dir != "." {
		if err := rs.mkdirs(dir); err != nil {
			return "", err
		}
	}
	dir, base := path.Split(final)
	for k := 0; k <= 10000; k++ {
		cand := dir + numbered(base, k)
		err := rs.root.Link(part, cand)
		if err == nil {
			_ = rs.root.Remove(part)
			return cand, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here (some file systems): check, then rename.
		if _, serr := rs.root.Lstat(cand); !errors.Is(serr, fs.ErrNotExist) {
			continue
		}
		if err := rs.root.Rename(part, cand); err != nil {
			return "", fmt.Errorf("name %s: %w", cand, err)
		}
		return cand, nil
	}
	return "", fmt.Errorf("no free name for %s", final)
}

// cleanup removes the offer's resume state and ends it.
func (rs *recvSession) cleanup() {
	o := rs.off
	rs.discardCurrent()
	rs.closeLanes()
	if o.doneLog != nil {
		_ = o.doneLog.Close()
	}
	if o.dir != "" {
		_ = rs.root.RemoveAll(o.dir)
		_ = rs.root.Remove(StateDir) // only if empty
	}
	if o.reg != nil {
		rs.r.unregister(o.id, o.reg)
	}
	rs.off, rs.phase = nil, idle
}

// CleanStale removes resume state in dir that nobody touched for age
// (StaleAfter): offers whose sender never came back.
func CleanStale(dir string, age time.Duration) {
	// Through os.Root: a .peerdrop that is a symlink cannot lead us outside.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return
	}
	defer root.Close()
	for _, s := range listStates(root) {
		if time.Since(s.mtime) > age {
			_ = root.RemoveAll(path.Join(StateDir, s.id))
		}
	}
	_ = root.Remove(StateDir)
}

// keptState is the resume state of one offer on disk.
type keptState struct {
	id    string
	from  string    // the sender's fingerprint ("" if meta.json is unreadable)
	bytes int64     // what its files hold
	mtime time.Time // its newest file's
}

// listStates lists the state folders below root's StateDir.
func listStates(root *os.Root) []keptState {
	d, err := root.Open(StateDir)
	if err != nil {
		return nil
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil
	}
	var out []keptState
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		s := keptState{id: e.Name(), mtime: info.ModTime()}
		dir := path.Join(StateDir, e.Name())
		if sub, err := root.Open(dir); err == nil {
			files, _ := sub.ReadDir(-1)
			sub.Close()
			for _, f := range files {
				if fi, err := f.Info(); err == nil {
					s.bytes += fi.Size()
					if fi.ModTime().After(s.mtime) {
						s.mtime = fi.ModTime()
					}
				}
			}
		}
		if data, err := root.ReadFile(path.Join(dir, "meta.json")); err == nil {
			var m stateMeta
			if json.Unmarshal(data, &m) == nil {
				s.from = m.From
			}
		}
		out = append(out, s)
	}
	return out
}

// placeFile gives verified file i its final name and says so.
func (rs *recvSession) placeFile(i int, sum string, resumedFrom int64) error {
	o := rs.off
	e := o.entries[i]
	final, err := rs.place(partName(o.dir, i), rs.diskPath(e.Path))
	if err != nil {
		rs.fail(i, CodeIO, err.Error(), true)
		_ = rs.root.Remove(partName(o.dir, i))
		return nil
	}
	if e.MTime > 0 {
		t := time.Unix(e.MTime, 0)
		_ = rs.root.Chtimes(final, t, t)
	}
	if _, err := fmt.Fprintf(o.doneLog, "%d\t%s\n", i, final); err != nil {
		slog.Warn("cannot record progress", slog.Any("err", err))
	}
	o.done[i] = true
	rs.emit.emit(FileDone{
		ID: o.id, Index: i, Name: e.Path, Path: filepath.Join(rs.r.Dir, filepath.FromSlash(final)),
		Size: e.Size, SHA256: sum, ResumedFrom: resumedFrom,
	})
	return rs.send(Message{Type: TypeFileOK, Index: i})
}
