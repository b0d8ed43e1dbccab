package localsend

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/transfer"
)

// The decoders of what LocalSend peers send: an announcement, register or
// info (DecodeInfo), a prepare-upload (DecodePrepare) and its answer
// (DecodePrepareResponse). Whatever the bytes, they return an error or a
// value that passes the checks the rest of the package relies on.

func FuzzDecodeInfo(f *testing.F) {
	f.Add([]byte(`{"alias":"Nice Orange","version":"2.0","deviceModel":"Samsung","deviceType":"mobile","fingerprint":"random string","port":53317,"protocol":"https","download":true,"announce":true}`))
	f.Add([]byte(`{"alias":"","fingerprint":"x"}`))
	f.Add([]byte(`{"alias":"a\u0000b","fingerprint":"x","port":70000}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeInfo(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, in.Alias)
		require.LessOrEqual(t, len(in.Alias), maxAliasBytes)
		require.True(t, printable(in.Alias) && printable(in.Fingerprint))
		require.True(t, in.Port >= 0 && in.Port <= 65535)
		require.Contains(t, []string{"", ProtocolHTTP, ProtocolHTTPS}, in.Protocol)
		require.NotEmpty(t, peerOf(in).ID, "every fingerprint gives a device id")
	})
}

func FuzzDecodePrepare(f *testing.F) {
	f.Add([]byte(`{"info":{"alias":"Nice Orange","version":"2.0","deviceModel":"Samsung","deviceType":"mobile","fingerprint":"abc","port":53317,"protocol":"https","download":true},"files":{"id1":{"id":"id1","fileName":"photo.jpg","size":324242,"fileType":"image/jpeg","sha256":null,"preview":null,"metadata":{"modified":"2021-01-01T12:34:56Z"}}}}`))
	f.Add([]byte(`{"info":{"alias":"A","fingerprint":"f"},"files":{"t":{"id":"t","fileName":"m.txt","size":2,"fileType":"text/plain","preview":"hi"}}}`))
	f.Add([]byte(`{"info":{"alias":"A","fingerprint":"f"},"files":{"x":{"id":"x","fileName":"../../etc/passwd","size":1,"fileType":"a"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePrepare(bytes.NewReader(b))
		if err != nil {
			return
		}
		require.NotEmpty(t, p.Files)
		require.LessOrEqual(t, len(p.Files), MaxFiles)
		for id, fi := range p.Files {
			require.Equal(t, id, fi.ID)
			require.NoError(t, transfer.ValidatePath(fi.FileName))
			require.True(t, fi.Size >= 0 && fi.Size <= transfer.MaxFileSize)
			require.GreaterOrEqual(t, fi.modTime(), int64(0))
		}
		if text, ok := p.isText(); ok {
			require.LessOrEqual(t, len(text), transfer.MaxTextBytes)
		}
	})
}

func FuzzDecodePrepareResponse(f *testing.F) {
	f.Add([]byte(`{"sessionId":"mySessionId","files":{"0":"token1","1":"token2"}}`))
	f.Add([]byte(`{"sessionId":"s","files":{"9":"t"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		offered := map[string]bool{"0": true, "1": true}
		p, err := DecodePrepareResponse(bytes.NewReader(b), offered)
		if err != nil {
			return
		}
		require.NotEmpty(t, p.SessionID)
		for id, tok := range p.Files {
			require.True(t, offered[id])
			require.NotEmpty(t, tok)
		}
		_, err = json.Marshal(p)
		require.NoError(t, err)
	})
}
