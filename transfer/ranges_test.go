package transfer

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mergeSpans, given ranges in any order, makes the set that adding them one
// by one makes.
func TestMergeSpansMatchesAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var in []span
		var want spans
		for range r.IntN(50) {
			start := r.Int64N(1000)
			x := span{start, start + 1 + r.Int64N(40)}
			in = append(in, x)
			want = want.add(x.start, x.end)
		}
		got := mergeSpans(in)
		if len(want) == 0 {
			assert.Empty(t, got)
			continue
		}
		require.Equal(t, want, got, "from %v", in)
	}
}

// The attack: a sender opens the short last range of a small file and ends
// it with a wrong SHA-256, over and over. Each round used to add two lines
// to ranges.log for ever; the log now stays within its bound while the
// rounds go on, and the transfer still works afterwards.
func TestRangeLogStaysBoundedUnderRangeChurn(t *testing.T) {
	h := startReceiver(t, acceptAll)
	h.rcv.Lanes = 2
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	link, err := dialer(t, h.addr)(ctx)
	require.NoError(t, err)
	defer link.Close()
	id := NewID()
	offer, _ := Encode(Message{Type: TypeOffer, ID: id, Count: 2, Size: 20, Lanes: 2})
	entries, _ := Encode(Message{Type: TypeEntries, ID: id, Entries: []Entry{{Path: "a.bin", Size: 10}, {Path: "b.bin", Size: 10}}})
	require.NoError(t, link.SendText(offer))
	require.NoError(t, link.SendText(entries))
	accepted := make(chan Message, 1)
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() { // read every reply, so the receiver never waits on us
		defer close(stopped)
		for {
			select {
			case m, ok := <-link.Messages():
				if !ok {
					return
				}
				if reply, err := DecodeMessage(m.Data); err == nil && reply.Type == TypeAccept {
					accepted <- reply
				}
				m.Release()
			case <-stop:
				return
			}
		}
	}()
	select {
	case a := <-accepted:
		require.Equal(t, 2, a.Lanes, "the receiver agreed to ranges")
	case <-ctx.Done():
		t.Fatal("no accept")
	}
	const rounds = 3 * rangeLogSlack
	data := []byte("0123456789")
	send := func(m Message) {
		b, err := Encode(m)
		require.NoError(t, err)
		require.NoError(t, link.SendText(b))
	}
	for range rounds {
		send(Message{Type: TypeFile, Index: 0, Offset: 0, End: 10})
		require.NoError(t, link.Send(data))
		send(Message{Type: TypeFileEnd, Index: 0, SHA256: sum([]byte("not the data"))})
	}
	// The second file, whole, once the rounds are behind it.
	send(Message{Type: TypeFile, Index: 1})
	require.NoError(t, link.Send(data))
	send(Message{Type: TypeFileEnd, Index: 1, SHA256: sum(data)})
	h.events.wait(t, "file-done", func(e Event) bool { f, ok := e.(FileDone); return ok && f.Index == 1 })

	logs, err := filepath.Glob(filepath.Join(h.dir, StateDir, id, "ranges.log"))
	require.NoError(t, err)
	require.Len(t, logs, 1, "the offer's ranges.log")
	b, err := os.ReadFile(logs[0])
	require.NoError(t, err)
	lines := strings.Count(string(b), "\n")
	assert.LessOrEqual(t, lines, 2*rangeLogSlack+2, "ranges.log after %d rounds of 2 lines each", rounds)
	assert.Positive(t, lines)
	got, err := os.ReadFile(filepath.Join(h.dir, "b.bin"))
	require.NoError(t, err)
	assert.Equal(t, data, got)
}
