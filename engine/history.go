package engine

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"

	"github.com/thepeerdrop/peerdrop/internal/atomicfile"
)

// historyFileName holds the finished items, in the config dir.
const historyFileName = "history.json"

// historyVersion is the file's format; another version is ignored.
const historyVersion = 1

type historyFile struct {
	Version int             `json:"version"`
	Items   []historyRecord `json:"items"` // oldest first
}

type historyRecord struct {
	Item Item `json:"item"`
	// Addrs of an outgoing item, so that Retry works after a restart.
	Addrs []string `json:"addrs,omitempty"`
}

// loadHistory reads the finished items kept in path. The history is a
// convenience: a missing or malformed file is an empty history.
func loadHistory(path string) []*item {
	data, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			slog.Warn("transfer history: cannot read it, starting empty", slog.String("path", path), slog.Any("err", err))
		}
		return nil
	}
	var f historyFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != historyVersion {
		slog.Warn("transfer history: malformed file ignored", slog.String("path", path), slog.Any("err", err), slog.Int("version", f.Version))
		return nil
	}
	seen := map[string]bool{}
	var items []*item
	for _, r := range f.Items {
		it := r.Item
		if it.ID == "" || seen[it.ID] || !it.State.Finished() || (it.Direction != Outgoing && it.Direction != Incoming) {
			continue
		}
		seen[it.ID] = true
		it.Speed, it.ETA = 0, 0
		items = append(items, &item{Item: it, target: Target{ID: it.Peer.ID, Name: it.Peer.Name, Addrs: r.Addrs}})
	}
	if len(items) > maxFinished {
		items = items[len(items)-maxFinished:]
	}
	return items
}

// saveHistory writes the finished items to the history file. It must be
// called without e.mu held.
func (e *Engine) saveHistory() {
	e.histMu.Lock()
	defer e.histMu.Unlock()
	e.mu.Lock()
	f := historyFile{Version: historyVersion, Items: []historyRecord{}}
	for _, it := range e.items {
		if !it.State.Finished() {
			continue
		}
		r := historyRecord{Item: it.snapshot()}
		if it.Direction == Outgoing {
			r.Addrs = it.target.Addrs
		}
		f.Items = append(f.Items, r)
	}
	e.mu.Unlock()
	if len(f.Items) > maxFinished {
		f.Items = f.Items[len(f.Items)-maxFinished:]
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		err = atomicfile.Write(e.histPath, data, 0o600)
	}
	if err != nil {
		slog.Warn("transfer history: cannot save it", slog.Any("err", err))
	}
}
