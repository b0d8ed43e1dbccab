package remote

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeChunk: any signal payload a server or peer sends is either
// refused or becomes a chunk that a pipe takes without breaking its limits.
func FuzzDecodeChunk(f *testing.F) {
	for _, c := range []chunk{
		{Pipe: "p1", Seq: 0, Data: []byte("hello")},
		{Pipe: "p1", Seq: 1, Close: true},
		{Pipe: "p2", Seq: 0},
	} {
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	f.Add([]byte(`{"pipe":"../x","seq":0}`))
	f.Add([]byte(`{"pipe":"p","seq":18446744073709551615,"data":"AAAA"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, ok := decodeChunk(payload)
		if !ok {
			return
		}
		if !pipeIDRe.MatchString(c.Pipe) || len(c.Data) > MaxChunk {
			t.Fatalf("accepted a bad chunk: %+v", c)
		}
		p := newPipe(nil, "me", "peer", c.Pipe)
		for range 3 { // the same chunk again breaks the sequence, never the limits
			p.deliver(c)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.held > maxBuffered {
			t.Fatalf("a pipe holds %d bytes, over its %d limit", p.held, maxBuffered)
		}
		if c.Seq != 0 && p.err == nil {
			t.Fatalf("a first message numbered %d was taken", c.Seq)
		}
	})
}
