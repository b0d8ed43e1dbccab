package transfer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/peer"
)

// startChooser is a receiver that keeps only the top-level entries take lists.
func startChooser(t *testing.T, take []int) *receiverHost {
	t.Helper()
	h := startReceiver(t, nil)
	h.rcv.Choose = func(context.Context, OfferReceived) ([]int, bool) { return take, true }
	return h
}

func TestTopLevel(t *testing.T) {
	tops, of := TopLevel([]Entry{
		{Path: "Trip", Dir: true}, {Path: "Trip/a.jpg", Size: 3}, {Path: "notes.txt", Size: 5},
		{Path: "Trip/sub", Dir: true}, {Path: "Trip/sub/b.jpg", Size: 4}, {Path: "Implied/x", Size: 1},
	})
	assert.Equal(t, []TopEntry{
		{Path: "Trip", Folder: true, Files: 2, Size: 7},
		{Path: "notes.txt", Files: 1, Size: 5},
		{Path: "Implied", Folder: true, Files: 1, Size: 1},
	}, tops)
	assert.Equal(t, []int{0, 0, 1, 0, 0, 2}, of)

	entries := []Entry{{Path: "a", Size: 1}, {Path: "b", Size: 2}}
	for _, bad := range [][]int{{2}, {-1}, {1, 0}, {0, 0}} {
		_, _, err := Takes(entries, bad)
		assert.Error(t, err, "take %v", bad)
	}
	m, err := DecodeMessage([]byte(`{"type":"accept","id":"abababab","take":[]}`))
	require.NoError(t, err)
	assert.Nil(t, m.Take, "an empty take list is all, as an absent one")

	in, size, err := Takes(entries, []int{1})
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true}, in)
	assert.Equal(t, int64(2), size)
}

// TestAcceptSomeOfAnOffer: the receiver takes 1 of 3 top-level entries;
// only it lands, and the sender reports the other two skipped.
func TestAcceptSomeOfAnOffer(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "Trip", "a.jpg"), []byte("photo a"))
	writeFile(t, filepath.Join(src, "Trip", "b.jpg"), []byte("photo b"))
	writeFile(t, filepath.Join(src, "notes.txt"), []byte("the notes"))
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(1<<20))

	h := startChooser(t, []int{1})
	var accepted atomic.Pointer[Accepted]
	res, err := send(t, h, []string{filepath.Join(src, "Trip"), filepath.Join(src, "notes.txt"), filepath.Join(src, "big.bin")}, "", func(e Event) {
		if a, ok := e.(Accepted); ok {
			accepted.Store(&a)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, Result{Files: 1, Sent: 1, Bytes: 9, Skipped: []string{"Trip", "big.bin"}}, res)
	require.NotNil(t, accepted.Load())
	assert.Equal(t, []string{"Trip", "big.bin"}, accepted.Load().Skipped)

	done := h.events.wait(t, "transfer-done", func(e Event) bool { _, ok := e.(TransferDone); return ok }).(TransferDone)
	assert.Equal(t, TransferDone{ID: done.ID, Files: 1, Bytes: 9}, done, "nothing left out counts as failed")
	assert.Equal(t, map[string]string{"notes.txt": sum([]byte("the notes"))}, snapshot(t, h.dir))
	offer := h.events.wait(t, "offer", func(e Event) bool { _, ok := e.(OfferReceived); return ok }).(OfferReceived)
	assert.Equal(t, []TopEntry{{Path: "Trip", Folder: true, Files: 2, Size: 14}, {Path: "notes.txt", Files: 1, Size: 9},
		{Path: "big.bin", Files: 1, Size: 1 << 20}}, offer.Top)
	assert.Equal(t, 3, offer.TopCount)
}

// TestResumeOfAPartlyAcceptedOffer: after a drop, the sender's reconnect is
// accepted without asking for the same entries, and only they arrive.
func TestResumeOfAPartlyAcceptedOffer(t *testing.T) {
	src := t.TempDir()
	data := randomBytes(12 << 20)
	writeFile(t, filepath.Join(src, "left-out.bin"), randomBytes(1<<20))
	writeFile(t, filepath.Join(src, "big.bin"), data)
	h := startChooser(t, []int{1})
	var asked atomic.Int32
	h.rcv.Choose = func(context.Context, OfferReceived) ([]int, bool) {
		asked.Add(1)
		return []int{1}, true
	}
	var dropped atomic.Bool
	h.rcv.OnEvent = func(e Event) {
		h.events.add(e)
		if p, ok := e.(Progress); ok && p.Bytes >= 4<<20 && dropped.CompareAndSwap(false, true) {
			c := <-h.conns
			go c.Close()
		}
	}
	res, err := send(t, h, []string{filepath.Join(src, "left-out.bin"), filepath.Join(src, "big.bin")}, "", nil)
	require.NoError(t, err)
	assert.True(t, dropped.Load())
	assert.Equal(t, int32(1), asked.Load(), "the resumed offer is not asked about again")
	assert.Equal(t, []string{"left-out.bin"}, res.Skipped)
	assert.Equal(t, 1, res.Sent)
	fd := h.events.wait(t, "file-done", func(e Event) bool { _, ok := e.(FileDone); return ok }).(FileDone)
	assert.Positive(t, fd.ResumedFrom, "the receiver kept what it had")
	got, err := os.ReadFile(filepath.Join(h.dir, "big.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
	assert.Equal(t, map[string]string{"big.bin": sum(data)}, snapshot(t, h.dir))
}

// TestSenderWritesNothingLeftOut: a sender that sends a file the accept
// left out (hostile, or older than the take list) is told to skip it, and
// not a byte of it is written.
func TestSenderWritesNothingLeftOut(t *testing.T) {
	h := startChooser(t, []int{0})
	id := NewID()
	msgs := offerJSON(id, "", Entry{Path: "wanted.txt", Size: 2}, Entry{Path: "unwanted.txt", Size: 5})
	file, _ := Encode(Message{Type: TypeFile, Index: 1})
	end, _ := Encode(Message{Type: TypeFileEnd, Index: 1, SHA256: sum([]byte("hello"))})
	msgs = append(msgs, string(file), []byte("hello"), string(end), `{"type":"end"}`)
	replies := hostile(t, h, msgs...)
	require.NotEmpty(t, replies)
	assert.Equal(t, TypeAccept, replies[0].Type)
	assert.Equal(t, []int{0}, replies[0].Take)
	var types []string
	for _, r := range replies[1:] {
		types = append(types, r.Type)
		if r.Type == TypeCancel {
			assert.Equal(t, 1, r.Index)
		}
		if r.Type == TypeDone {
			assert.Equal(t, []int{0}, r.Failed, "only the accepted file counts, and it never came")
		}
	}
	assert.Equal(t, []string{TypeCancel, TypeDone}, types, "replies: %+v", replies)
	assert.Equal(t, map[string]string{"downloads": "/"}, snapshot(t, h.parent), "nothing written, no state left")
}

// hostileReceiver answers every offer with accept (take as given), then
// sends after; it returns what the sender sent.
func hostileReceiver(t *testing.T, take []int, after ...string) (addr string, got <-chan []Message) {
	t.Helper()
	ln, err := peer.Listen("127.0.0.1:0", peertest.Config(t, "Hostile"))
	require.NoError(t, err)
	out := make(chan []Message, 1)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ln.Serve(ctx, func(ctx context.Context, c *peer.Conn) {
			defer c.Close()
			var msgs []Message
			defer func() { out <- msgs }()
			dc := c.DataChannel()
			for {
				select {
				case raw := <-c.Messages():
					if !raw.IsString {
						msgs = append(msgs, Message{Type: "binary"})
						continue
					}
					m, err := DecodeMessage(raw.Data)
					if err != nil {
						return
					}
					msgs = append(msgs, m)
					switch m.Type {
					case TypeEntries:
						p, _ := Encode(Message{Type: TypeAccept, ID: m.ID, Take: take})
						_ = dc.SendText(string(p))
						for _, a := range after {
							_ = dc.SendText(a)
						}
					case TypeError:
						return
					}
				case <-c.Done():
					return
				case <-ctx.Done():
					return
				}
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-served
	})
	return ln.Addr().String(), out
}

// TestReceiverCannotWidenItsChoice: an accept that names a top-level entry
// the offer lacks, or a retry of an entry it left out, is a violation; the
// sender sends nothing it was not asked for.
func TestReceiverCannotWidenItsChoice(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(src, "b.txt"), []byte("b"))
	retry1, _ := Encode(Message{Type: TypeRetry, Index: 1})
	for _, tc := range []struct {
		name  string
		take  []int
		after []string
	}{
		{"take out of range", []int{0, 2}, nil},
		{"retry of a skipped entry", []int{0}, []string{string(retry1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := hostileReceiver(t, tc.take, tc.after...)
			o, err := NewOffer([]string{filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt")}, "")
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = NewSender(SendOptions{Offer: o, Dial: dialer(t, addr), ReconnectWindow: time.Second}).Run(ctx)
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, CodeProtocol, pe.Code)
			var msgs []Message
			select {
			case msgs = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the hostile receiver saw no end")
			}
			for _, m := range msgs {
				if m.Type == TypeFile {
					assert.Equal(t, 0, m.Index, "only the accepted entry is sent: %+v", msgs)
				}
			}
			assert.Equal(t, TypeError, msgs[len(msgs)-1].Type, "the sender said why: %+v", msgs)
		})
	}
}

// TestChooseNothingOrBadDeclines: a Choose that keeps nothing, or names an
// entry the offer lacks, declines; it never turns into "all".
func TestChooseNothingOrBadDeclines(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(src, "b.txt"), []byte("b"))
	for _, take := range [][]int{{}, {0, 5}, {-1, 1}} {
		h := startChooser(t, take)
		_, err := send(t, h, []string{filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt")}, "", nil)
		require.ErrorIs(t, err, ErrDeclined, "take %v", take)
		assert.Empty(t, snapshot(t, h.dir), "take %v", take)
	}
	// Duplicates and disorder are tidied: {1, 0, 1} is all of them.
	h := startChooser(t, []int{1, 0, 1})
	res, err := send(t, h, []string{filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt")}, "", nil)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Sent)
	assert.Empty(t, res.Skipped)
}

// A receiver that chose some entries and then cancels the whole transfer
// (cancel with index -1, what Receiver.Cancel sends) ends the send as
// cancelled: the sender does not look the -1 up among the skipped entries
// (it panicked there, taking the sending process down).
func TestCancelAllAfterChoosingSome(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(src, "b.txt"), bytes.Repeat([]byte("b"), 4<<20))
	cancelAll, _ := Encode(Message{Type: TypeCancel, Index: -1})
	addr, got := hostileReceiver(t, []int{1}, string(cancelAll))
	o, err := NewOffer([]string{filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt")}, "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = NewSender(SendOptions{Offer: o, Dial: dialer(t, addr), ReconnectWindow: time.Second}).Run(ctx)
	require.ErrorIs(t, err, ErrCancelled)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver saw no end")
	}
}
