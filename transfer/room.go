package transfer

// Free space on the receiving disk: the check before an offer is accepted
// and while it is written, and the clearing of old partial data to make
// room.

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path"
	"slices"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/units"
)

func (r *Receiver) margin() int64 {
	switch {
	case r.Margin == 0:
		return DefaultMargin
	case r.Margin < 0:
		return 0
	}
	return r.Margin
}

func (r *Receiver) free() (int64, bool) {
	if r.statfs != nil {
		return r.statfs(r.Dir)
	}
	return freeSpace(r.Dir)
}

// NoSpaceError says that an offer does not fit on the receiving device.
type NoSpaceError struct {
	Need, Have int64 // Need includes the margin; Have excludes what other offers still write
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("not enough free space on the receiving device: needs %s, has %s", sizeText(e.Need), sizeText(e.Have))
}

// checkSpace reports whether need more bytes fit, besides the margin and
// what offers in flight other than id still have to write; the caller
// holds r.mu.
func (r *Receiver) checkSpace(id string, need int64) error {
	free, ok := r.free()
	if !ok {
		return nil
	}
	have := free
	for other, a := range r.active {
		if other != id {
			have -= max(a.remaining.Load(), 0)
		}
	}
	if need+r.margin() > have {
		return &NoSpaceError{Need: need + r.margin(), Have: max(have, 0)}
	}
	return nil
}

// room is how many bytes offer id may write: the free space minus the
// margin and what other offers in flight still write. ok is false when free
// space cannot be measured.
func (r *Receiver) room(id string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	free, ok := r.free()
	if !ok {
		return 0, false
	}
	have := free
	for other, a := range r.active {
		if other != id {
			have -= max(a.remaining.Load(), 0)
		}
	}
	return max(have-r.margin(), 0), true
}

// SpaceFor reports whether an offer of need bytes fits now (nil when it does
// or free space cannot be measured).
func (r *Receiver) SpaceFor(need int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkSpace("", need)
}

// sizeText writes n bytes for people: "41.9 MB".
func sizeText(n int64) string { return units.Bytes(n) }

func limit(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return math.MaxInt64
	}
	return v
}

// idleStates lists the kept states no transfer is using (nor keep), oldest
// first; the caller holds r.mu.
func (r *Receiver) idleStates(root *os.Root, keep string) []keptState {
	var out []keptState
	for _, s := range listStates(root) {
		if s.id != keep && r.active[s.id] == nil {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b keptState) int { return a.mtime.Compare(b.mtime) })
	return out
}

// trimPartials removes kept states that expired (StaleAfter) or that go
// over PeerPartials or AllPartials, oldest first; never one in use.
func (r *Receiver) trimPartials(keep string) {
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return
	}
	defer root.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	states := r.idleStates(root, keep)
	drop := make([]bool, len(states))
	perPeer := map[string]int64{}
	latest := map[string]bool{}
	// Newest first, per sender: its latest offer stays.
	for i := len(states) - 1; i >= 0; i-- {
		s := states[i]
		if time.Since(s.mtime) > StaleAfter {
			drop[i] = true
			continue
		}
		if latest[s.from] && perPeer[s.from]+s.bytes > limit(r.PeerPartials, DefaultPeerPartials) {
			drop[i] = true
			continue
		}
		latest[s.from] = true
		perPeer[s.from] += s.bytes
	}
	var all int64
	for i, s := range states {
		if !drop[i] {
			all += s.bytes
		}
	}
	for i, s := range states { // oldest first
		if !drop[i] && all > limit(r.AllPartials, DefaultAllPartials) {
			drop[i] = true
			all -= s.bytes
		}
	}
	for i, s := range states {
		if drop[i] {
			slog.Info("removing kept partial data", slog.String("id", s.id), slog.Int64("bytes", s.bytes))
			_ = root.RemoveAll(path.Join(StateDir, s.id))
		}
	}
	_ = root.Remove(StateDir)
}

// makeRoom removes kept states nobody is using, oldest first, until need
// bytes fit for offer id. If removing them all would not be enough, it
// removes none: an offer too large for the disk must not wipe what others
// may still resume.
func (r *Receiver) makeRoom(id string, need int64) {
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return
	}
	defer root.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	states := r.idleStates(root, id)
	var kept int64
	for _, s := range states {
		kept += s.bytes
	}
	if r.checkSpace(id, need-kept) != nil {
		return
	}
	for _, s := range states {
		if r.checkSpace(id, need) == nil {
			break
		}
		slog.Info("removing kept partial data to make room", slog.String("id", s.id), slog.Int64("bytes", s.bytes))
		_ = root.RemoveAll(path.Join(StateDir, s.id))
	}
	_ = root.Remove(StateDir)
}
