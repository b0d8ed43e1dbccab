package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sparseFile makes a file of size bytes that takes no room on disk.
func sparseFile(t *testing.T, path string, size int64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
}

func TestOfferLargerThanFreeSpaceIsDeclined(t *testing.T) {
	src := t.TempDir()
	sparseFile(t, filepath.Join(src, "big.bin"), 40<<20)
	var asked atomic.Bool
	h := startReceiver(t, func(context.Context, OfferReceived) bool { asked.Store(true); return true })
	var free atomic.Int64
	free.Store(100 << 20) // of which 64 MiB are kept free
	h.rcv.statfs = func(string) (int64, bool) { return free.Load(), true }

	var reason atomic.Value
	_, err := send(t, h, []string{filepath.Join(src, "big.bin")}, "", func(e Event) {
		if d, ok := e.(Declined); ok {
			reason.Store(d.Reason)
		}
	})
	require.ErrorIs(t, err, ErrDeclined)
	t.Logf("sender was told: %v", reason.Load())
	assert.Equal(t, "not enough free space on the receiving device: needs 109 MB, has 105 MB", reason.Load())
	assert.False(t, asked.Load(), "the user is not asked about an offer that cannot fit")
	assert.Empty(t, snapshot(t, h.dir), "nothing is written")

	// The same offer fits once there is room.
	free.Store(110 << 20)
	_, err = send(t, h, []string{filepath.Join(src, "big.bin")}, "", nil)
	require.NoError(t, err)
	assert.True(t, asked.Load())
}

func TestSpaceReservedByOffersInFlight(t *testing.T) {
	r := &Receiver{Dir: t.TempDir(), Margin: 10 << 20}
	r.statfs = func(string) (int64, bool) { return 100 << 20, true }
	a, err := r.register("a", nil, 60<<20)
	require.NoError(t, err)
	err = r.SpaceFor(40 << 20)
	var ns *NoSpaceError
	require.ErrorAs(t, err, &ns, "60 MiB still to come for a, 10 kept free: 40 MiB do not fit in 100")
	assert.Equal(t, int64(50<<20), ns.Need)
	assert.Equal(t, int64(40<<20), ns.Have)
	_, err = r.register("b", nil, 40<<20)
	require.ErrorAs(t, err, &ns)
	require.NoError(t, r.SpaceFor(30<<20))
	a.remaining.Add(-20 << 20) // a wrote 20 MiB (free space would drop too; here only the reservation)
	require.NoError(t, r.SpaceFor(40<<20))
	r.unregister("a", a)
	require.NoError(t, r.SpaceFor(90<<20))

	r.statfs = func(string) (int64, bool) { return 0, false }
	require.NoError(t, r.SpaceFor(1<<40), "unknown free space: no check")
}

func TestRunningOutOfSpaceWhileWritingStops(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.bin"), randomBytes(10<<20))
	h := startReceiver(t, acceptAll)
	var calls atomic.Int32
	h.rcv.statfs = func(string) (int64, bool) {
		// Enough when the offer is checked, accepted and its file opened;
		// then someone else fills the disk.
		if calls.Add(1) <= 3 {
			return 1 << 30, true
		}
		return 1 << 20, true
	}
	_, err := send(t, h, []string{filepath.Join(src, "a.bin")}, "", nil)
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	t.Logf("sender got: %v", err)
	assert.Equal(t, CodeNoSpace, pe.Code)
	assert.Contains(t, pe.Reason, "ran out of free space")
	h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok })
	assert.Empty(t, snapshot(t, h.dir), "the partial file is removed")
}

// keepState writes the resume state an interrupted offer id from sender
// from leaves: meta.json and a partial file of size bytes (sparse), all
// last touched age ago.
func keepState(t *testing.T, dir, id, from string, size int64, age time.Duration) {
	t.Helper()
	sd := filepath.Join(dir, StateDir, id)
	meta, err := json.Marshal(stateMeta{ID: id, From: from, Manifest: "x", Top: map[string]string{}})
	require.NoError(t, err)
	writeFile(t, filepath.Join(sd, "meta.json"), meta)
	sparseFile(t, filepath.Join(sd, "0.part"), size)
	when := time.Now().Add(-age)
	for _, p := range []string{filepath.Join(sd, "meta.json"), filepath.Join(sd, "0.part"), sd} {
		require.NoError(t, os.Chtimes(p, when, when))
	}
}

func keptIDs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, StateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

func TestStalePartialsExpire(t *testing.T) {
	dir := t.TempDir()
	keepState(t, dir, "old", "A", 10, 7*time.Hour) // hours, not days
	keepState(t, dir, "young", "A", 10, 5*time.Hour)
	// The folder is old but its partial file was written a moment ago.
	keepState(t, dir, "writing", "B", 10, 48*time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(dir, StateDir, "writing", "0.part"), time.Now(), time.Now()))
	CleanStale(dir, StaleAfter)
	assert.ElementsMatch(t, []string{"young", "writing"}, keptIDs(t, dir))

	// The Receiver's own trim expires too, but never an offer in flight.
	keepState(t, dir, "old", "A", 10, 7*time.Hour) // hours, not days
	keepState(t, dir, "busy", "C", 10, 7*time.Hour)
	r := &Receiver{Dir: dir}
	a, err := r.register("busy", nil, 0)
	require.NoError(t, err)
	r.trimPartials("")
	assert.ElementsMatch(t, []string{"young", "writing", "busy"}, keptIDs(t, dir))
	r.unregister("busy", a)
	r.trimPartials("")
	assert.ElementsMatch(t, []string{"young", "writing"}, keptIDs(t, dir))
}

func TestPartialsCappedPerPeerAndInAll(t *testing.T) {
	dir := t.TempDir()
	const k = 1 << 10 // sizes in KiB; each state's meta.json adds a few bytes
	r := &Receiver{Dir: dir, PeerPartials: 100 * k, AllPartials: 255 * k}
	// A: its latest offer stays whatever its size; older ones go once the
	// sum passes 100 KiB.
	keepState(t, dir, "a1", "A", 150*k, time.Minute)
	keepState(t, dir, "a2", "A", 10*k, 2*time.Minute)
	keepState(t, dir, "b1", "B", 60*k, 3*time.Minute)
	keepState(t, dir, "b2", "B", 30*k, 4*time.Minute)
	keepState(t, dir, "b3", "B", 30*k, 5*time.Minute)
	r.trimPartials("")
	// a2 went (150+10 > 100); b3 went (60+30+30 > 100); 150+60+30 = 240 ≤ 255.
	assert.ElementsMatch(t, []string{"a1", "b1", "b2"}, keptIDs(t, dir))
	keepState(t, dir, "c1", "C", 40*k, 6*time.Minute)
	r.trimPartials("")
	// 280 > 255 in all: the oldest, c1, goes.
	assert.ElementsMatch(t, []string{"a1", "b1", "b2"}, keptIDs(t, dir))
	keepState(t, dir, "c1", "C", 40*k, 30*time.Second)
	r.trimPartials("")
	// Now b2 is the oldest: 280-30 = 250.
	assert.ElementsMatch(t, []string{"a1", "b1", "c1"}, keptIDs(t, dir))
}

// TestNewOfferMakesRoom: a new offer that does not fit removes kept states
// nobody resumes, oldest first, never one in flight, and then arrives.
func TestNewOfferMakesRoom(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "new.bin"), randomBytes(4<<20))
	h := startReceiver(t, acceptAll)
	h.rcv.Margin = 512 << 10
	// 10 MiB disk; what lies below .peerdrop takes room (sparse or not).
	h.rcv.statfs = func(string) (int64, bool) {
		var used int64
		_ = filepath.WalkDir(filepath.Join(h.dir, StateDir), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					used += fi.Size()
				}
			}
			return nil
		})
		return 10<<20 - used, true
	}
	keepState(t, h.dir, "oldest", "X", 3<<20, 3*time.Hour)
	keepState(t, h.dir, "older", "Y", 3<<20, 2*time.Hour)
	keepState(t, h.dir, "inflight", "Z", 3<<20, 4*time.Hour)
	a, err := h.rcv.register("inflight", nil, 0)
	require.NoError(t, err)
	defer h.rcv.unregister("inflight", a)

	// An offer that would not fit even without them removes nothing.
	h.rcv.makeRoom("huge", 20<<20)
	assert.ElementsMatch(t, []string{"oldest", "older", "inflight"}, keptIDs(t, h.dir))

	// Free: 10-9 = 1 MiB; needs 4.5. Dropping "oldest" leaves 4, "older" 7.
	_, err = send(t, h, []string{filepath.Join(src, "new.bin")}, "", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"inflight"}, keptIDs(t, h.dir))
	b, err := os.ReadFile(filepath.Join(h.dir, "new.bin"))
	require.NoError(t, err)
	assert.Len(t, b, 4<<20)
}

func TestFolderCaps(t *testing.T) {
	deep := func(n int) string { return strings.TrimPrefix(strings.Repeat("/d", n), "/") }
	require.NoError(t, ValidateManifest([]Entry{{Path: deep(MaxDepth-1) + "/f"}}, 0))
	err := ValidateManifest([]Entry{{Path: deep(MaxDepth) + "/f"}}, 0)
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe, "%d parts", MaxDepth+1)
	assert.Equal(t, CodeBadManifest, pe.Code)

	// MaxDirs folders, implicit ones counted: "a0/b", "a0" ... is two each.
	var entries []Entry
	for i := range MaxDirs / 2 {
		entries = append(entries, Entry{Path: fmt.Sprintf("a%d/b/f", i)})
	}
	require.NoError(t, ValidateManifest(entries, 0))
	entries = append(entries, Entry{Path: "one more", Dir: true})
	require.ErrorAs(t, ValidateManifest(entries, 0), &pe)
	assert.Equal(t, CodeBadManifest, pe.Code)
	assert.Contains(t, pe.Reason, "more than 10000 folders")

	// On the wire: refused, nothing created.
	h := startReceiver(t, acceptAll)
	replies := hostile(t, h, offerJSON(NewID(), "", entries...)...)
	assert.Equal(t, CodeBadManifest, lastError(replies).Code, "replies: %+v", replies)
	assert.Empty(t, snapshot(t, h.dir))
}

// TestFoldersOnlyWithTheirData: an accepted offer of deeply nested folders
// creates no folder before a file of it is placed, and a cancel leaves
// nothing; a finished one creates its empty folders at the end.
func TestFoldersOnlyWithTheirData(t *testing.T) {
	h := startReceiver(t, acceptAll)
	var entries []Entry
	for i := range 50 {
		p := fmt.Sprintf("top/x%d/%s", i, strings.TrimPrefix(strings.Repeat("/d", MaxDepth-3), "/"))
		entries = append(entries, Entry{Path: p, Dir: true}, Entry{Path: p + "/f", Size: 4})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, err := dialer(t, h.addr)(ctx)
	require.NoError(t, err)
	defer link.Close()
	id := NewID()
	for _, m := range offerJSON(id, "", entries...) {
		require.NoError(t, link.SendText([]byte(m.(string))))
	}
	for m := range link.Messages() {
		reply, err := DecodeMessage(m.Data)
		require.NoError(t, err)
		require.Equal(t, TypeAccept, reply.Type, "%+v", reply)
		break
	}
	// Accepted: 50 × 31 folders named, none created; only the resume state.
	assert.Equal(t, []string{StateDir}, topNames(t, h.dir))
	// Half a file: still no folder.
	f, _ := Encode(Message{Type: TypeFile, Index: 1})
	require.NoError(t, link.SendText(f))
	require.NoError(t, link.Send([]byte("da")))
	c, _ := Encode(Message{Type: TypeCancel, Index: -1})
	require.NoError(t, link.SendText(c))
	h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok })
	assert.Empty(t, snapshot(t, h.dir), "a cancelled offer leaves nothing")

	// The same tree sent for real: every folder, the empty ones too.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "tree", "a", "b", "c", "f"), []byte("data"))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "tree", "empty", "deeper"), 0o755))
	_, err = send(t, h, []string{filepath.Join(src, "tree")}, "", nil)
	require.NoError(t, err)
	assert.Equal(t, snapshot(t, src), snapshot(t, h.dir))
}

// TestCancelRemovesOnlyFoldersItMade: a cancel keeps a verified file and
// the folders it made for it, creates none for a file that failed its hash,
// and never touches a folder that existed before.
func TestCancelRemovesOnlyFoldersItMade(t *testing.T) {
	h := startReceiver(t, acceptAll)
	require.NoError(t, os.MkdirAll(filepath.Join(h.dir, "mine", "empty"), 0o755))
	entries := []Entry{
		{Path: "mine", Dir: true}, {Path: "mine/empty", Dir: true},
		{Path: "mine/kept/f", Size: 4}, {Path: "mine/gone/deep/g", Size: 4},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, err := dialer(t, h.addr)(ctx)
	require.NoError(t, err)
	defer link.Close()
	for _, m := range offerJSON(NewID(), "", entries...) {
		require.NoError(t, link.SendText([]byte(m.(string))))
	}
	for m := range link.Messages() {
		reply, err := DecodeMessage(m.Data)
		require.NoError(t, err)
		require.Equal(t, TypeAccept, reply.Type, "%+v", reply)
		break
	}
	// "mine" exists: the offer is named "mine (1)".
	for _, m := range []Message{
		{Type: TypeFile, Index: 2}, {Type: TypeFileEnd, Index: 2, SHA256: sum([]byte("data"))},
		{Type: TypeFile, Index: 3}, {Type: TypeFileEnd, Index: 3, SHA256: sum([]byte("nope"))},
		{Type: TypeCancel, Index: -1},
	} {
		b, _ := Encode(m)
		require.NoError(t, link.SendText(b))
		if m.Type == TypeFile {
			data := "data"
			require.NoError(t, link.Send([]byte(data)))
		}
	}
	h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok })
	assert.Equal(t, map[string]string{
		"mine": "/", "mine/empty": "/",
		"mine (1)": "/", "mine (1)/kept": "/", "mine (1)/kept/f": sum([]byte("data")),
	}, snapshot(t, h.dir))
}

func topNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestChooseOfferLargerThanFreeSpace: a receiver that can choose (Choose)
// is asked about an offer too large as a whole when part of it fits, and
// told the room; taking all of it is declined with the space error, taking
// a part that fits works, and an offer of which nothing fits is declined
// without asking.
func TestChooseOfferLargerThanFreeSpace(t *testing.T) {
	src := t.TempDir()
	sparseFile(t, filepath.Join(src, "big.bin"), 40<<20)
	writeFile(t, filepath.Join(src, "small.txt"), []byte("fits"))
	paths := []string{filepath.Join(src, "big.bin"), filepath.Join(src, "small.txt")}
	h := startReceiver(t, nil)
	var free atomic.Int64
	free.Store(100 << 20) // of which 64 MiB are kept free: 36 MiB of room
	h.rcv.statfs = func(string) (int64, bool) { return free.Load(), true }
	var take atomic.Pointer[[]int]
	asked := make(chan OfferReceived, 4)
	h.rcv.Choose = func(_ context.Context, o OfferReceived) ([]int, bool) {
		asked <- o
		return *take.Load(), true
	}
	// Choose runs before the answer goes out, so before send returns.
	wasAsked := func() OfferReceived {
		t.Helper()
		select {
		case o := <-asked:
			return o
		default:
			require.FailNow(t, "the receiver was not asked")
			return OfferReceived{}
		}
	}
	reasons := make(chan string, 4)
	onEvent := func(e Event) {
		if d, ok := e.(Declined); ok {
			reasons <- d.Reason
		}
	}

	take.Store(&[]int{0, 1}) // all of it: too much
	_, err := send(t, h, paths, "", onEvent)
	require.ErrorIs(t, err, ErrDeclined)
	o := wasAsked()
	assert.True(t, o.TooBig)
	assert.Equal(t, int64(36<<20), o.Room)
	assert.Equal(t, "not enough free space on the receiving device: needs 109 MB, has 105 MB", <-reasons)
	assert.Empty(t, snapshot(t, h.dir), "nothing is written")

	take.Store(&[]int{1})
	res, err := send(t, h, paths, "", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"big.bin"}, res.Skipped)
	assert.Equal(t, 1, res.Sent)
	assert.True(t, wasAsked().TooBig)
	assert.Equal(t, map[string]string{"small.txt": sum([]byte("fits"))}, snapshot(t, h.dir))

	free.Store(64 << 20) // no room at all: nothing to choose from
	_, err = send(t, h, paths, "", onEvent)
	require.ErrorIs(t, err, ErrDeclined)
	assert.Contains(t, <-reasons, "not enough free space on the receiving device")
	assert.Empty(t, asked, "not asked")
}
