package signaling

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

const testFingerprint = "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

// testID is identity.DeviceIDFor(testFingerprint).
const testID = "abcdef0123456789abcdef0123456789"

// fingerprintOf makes a well-formed fingerprint out of seed (its SHA-256).
func fingerprintOf(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return "sha-256 " + strings.Join(parts, ":")
}

func validHello() Hello {
	return Hello{Device: device.Device{ID: testID, Name: "Alice's laptop", Fingerprint: testFingerprint}, Version: int(Version)}
}

// header builds a raw frame header.
func header(version byte, t FrameType, n uint32) []byte {
	h := make([]byte, headerLen)
	h[0] = version
	h[1] = byte(t)
	binary.BigEndian.PutUint32(h[2:], n)
	return h
}

func TestFrameRoundTrip(t *testing.T) {
	helloJSON, err := json.Marshal(validHello())
	require.NoError(t, err)
	cases := []struct {
		name  string
		frame Frame
	}{
		{"hello", Frame{Type: TypeHello, Payload: helloJSON}},
		{"offer", Frame{Type: TypeOffer, Payload: []byte(`{"sdp":"v=0\r\n"}`)}},
		{"answer", Frame{Type: TypeAnswer, Payload: []byte(`{"sdp":"v=0\r\n"}`)}},
		{"error", Frame{Type: TypeError, Payload: []byte(`{"code":"refused","message":"no"}`)}},
		{"empty payload", Frame{Type: TypeHello, Payload: []byte{}}},
		{"binary payload", Frame{Type: TypeOffer, Payload: []byte{0, 1, 2, 0xff, 0xfe}}},
		{"max payload", Frame{Type: TypeAnswer, Payload: bytes.Repeat([]byte{'x'}, MaxPayload)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WriteFrame(&buf, tc.frame))
			raw := buf.Bytes()
			require.Len(t, raw, headerLen+len(tc.frame.Payload))
			assert.Equal(t, Version, raw[0], "version byte first")
			assert.Equal(t, byte(tc.frame.Type), raw[1])
			assert.Equal(t, uint32(len(tc.frame.Payload)), binary.BigEndian.Uint32(raw[2:6]), "big-endian length")

			got, err := ReadFrame(&buf)
			require.NoError(t, err)
			assert.Equal(t, tc.frame.Type, got.Type)
			assert.Equal(t, tc.frame.Payload, got.Payload)
			assert.Zero(t, buf.Len(), "ReadFrame must consume exactly one frame")
		})
	}
}

func TestFramesBackToBack(t *testing.T) {
	var buf bytes.Buffer
	frames := []Frame{
		{Type: TypeHello, Payload: []byte(`{"a":1}`)},
		{Type: TypeOffer, Payload: []byte(`{"sdp":"x"}`)},
		{Type: TypeError, Payload: []byte{}},
	}
	for _, f := range frames {
		require.NoError(t, WriteFrame(&buf, f))
	}
	for _, want := range frames {
		got, err := ReadFrame(&buf)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ReadFrame(&buf)
	assert.ErrorIs(t, err, io.EOF)
}

func TestWriteFrameTooLarge(t *testing.T) {
	var buf bytes.Buffer
	err := WriteFrame(&buf, Frame{Type: TypeOffer, Payload: make([]byte, MaxPayload+1)})
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Zero(t, buf.Len(), "nothing may be written for an oversized frame")
}

func TestReadFrameErrors(t *testing.T) {
	cases := []struct {
		name    string
		input   []byte
		wantErr error // nil: any error
	}{
		{"version 0", header(0, TypeHello, 0), ErrVersion},
		{"version 1", append(header(1, TypeHello, 2), '{', '}'), ErrVersion},
		{"version 3", append(header(3, TypeHello, 2), '{', '}'), ErrVersion},
		{"version 255", header(255, TypeHello, 0), ErrVersion},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrVersion},
		{"type 0", header(Version, 0, 0), ErrMalformed},
		{"type 7", header(Version, 7, 0), ErrMalformed},
		{"type 255", header(Version, 255, 0), ErrMalformed},
		{"too large by one", header(Version, TypeOffer, MaxPayload+1), ErrTooLarge},
		{"too large max uint32", header(Version, TypeHello, 0xFFFFFFFF), ErrTooLarge},
		{"empty input", nil, io.EOF},
		{"truncated header", []byte{Version, byte(TypeHello), 0}, io.ErrUnexpectedEOF},
		{"truncated payload", append(header(Version, TypeHello, 10), "abc"...), io.ErrUnexpectedEOF},
		{"missing payload", header(Version, TypeAnswer, 1), io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadFrame(bytes.NewReader(tc.input))
			require.Error(t, err)
			assert.Equal(t, Frame{}, f)
			assert.ErrorIs(t, err, tc.wantErr)
		})
	}
}

func TestReadFrameTooLargeDoesNotReadPayload(t *testing.T) {
	// A reader that fails the test if ReadFrame tries to read past the header:
	// an oversized frame must be refused from its header alone.
	r := io.MultiReader(bytes.NewReader(header(Version, TypeOffer, 1<<31)), readerFunc(func([]byte) (int, error) {
		t.Error("ReadFrame read the payload of an oversized frame")
		return 0, io.EOF
	}))
	_, err := ReadFrame(r)
	require.ErrorIs(t, err, ErrTooLarge)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestFrameTypeString(t *testing.T) {
	assert.Equal(t, "hello", TypeHello.String())
	assert.Equal(t, "offer", TypeOffer.String())
	assert.Equal(t, "answer", TypeAnswer.String())
	assert.Equal(t, "error", TypeError.String())
	assert.Equal(t, "candidate", TypeCandidate.String())
	assert.Equal(t, "probe", TypeProbe.String())
	assert.Equal(t, "type 9", FrameType(9).String())
}

func TestHelloValidate(t *testing.T) {
	mod := func(f func(*Hello)) Hello {
		h := validHello()
		f(&h)
		return h
	}
	cases := []struct {
		name    string
		hello   Hello
		wantErr error // nil: valid
	}{
		{"valid", validHello(), nil},
		{"id of another certificate", mod(func(h *Hello) { h.ID = identity.DeviceIDFor(fingerprintOf("other")) }), identity.ErrIDMismatch},
		{"id one digit off", mod(func(h *Hello) { h.ID = testID[:31] + "0" }), identity.ErrIDMismatch},
		{"id upper case", mod(func(h *Hello) { h.ID = strings.ToUpper(testID) }), identity.ErrIDMismatch},
		{"id with dash and underscore", mod(func(h *Hello) { h.ID = "a-b_C" }), ErrMalformed},
		{"id 64 chars", mod(func(h *Hello) { h.ID = strings.Repeat("a", 64) }), ErrMalformed},
		{"old random id", mod(func(h *Hello) { h.ID = "0123456789abcdef" }), identity.ErrIDMismatch},
		{"name 64 bytes", mod(func(h *Hello) { h.Name = strings.Repeat("n", 64) }), nil},
		{"unicode name", mod(func(h *Hello) { h.Name = "Zoë's 电脑 📱" }), nil},

		{"empty id", mod(func(h *Hello) { h.ID = "" }), ErrMalformed},
		{"id 65 chars", mod(func(h *Hello) { h.ID = strings.Repeat("a", 65) }), ErrMalformed},
		{"id with space", mod(func(h *Hello) { h.ID = "a b" }), ErrMalformed},
		{"id with slash", mod(func(h *Hello) { h.ID = "../etc" }), ErrMalformed},
		{"id with newline", mod(func(h *Hello) { h.ID = "abc\n" }), ErrMalformed},
		{"id non-ascii", mod(func(h *Hello) { h.ID = "abcé" }), ErrMalformed},

		{"empty name", mod(func(h *Hello) { h.Name = "" }), ErrMalformed},
		{"name 65 bytes", mod(func(h *Hello) { h.Name = strings.Repeat("n", 65) }), ErrMalformed},
		{"name 22 runes but 66 bytes", mod(func(h *Hello) { h.Name = strings.Repeat("电", 22) }), ErrMalformed},
		{"name with newline", mod(func(h *Hello) { h.Name = "evil\nname" }), ErrMalformed},
		{"name with NUL", mod(func(h *Hello) { h.Name = "a\x00b" }), ErrMalformed},
		{"name with ESC", mod(func(h *Hello) { h.Name = "\x1b[31mred" }), ErrMalformed},
		{"name with DEL", mod(func(h *Hello) { h.Name = "a\x7f" }), ErrMalformed},
		{"name with bidi override", mod(func(h *Hello) { h.Name = "abc\u202edcba" }), ErrMalformed},
		{"name invalid utf-8", mod(func(h *Hello) { h.Name = "a\xffb" }), ErrMalformed},

		{"version 0", mod(func(h *Hello) { h.Version = 0 }), ErrVersion},
		{"version 1", mod(func(h *Hello) { h.Version = 1 }), ErrVersion},
		{"version 3", mod(func(h *Hello) { h.Version = 3 }), ErrVersion},
		{"version -1", mod(func(h *Hello) { h.Version = -1 }), ErrVersion},

		{"empty fingerprint", mod(func(h *Hello) { h.Fingerprint = "" }), ErrMalformed},
		{"lowercase fingerprint", mod(func(h *Hello) { h.Fingerprint = "sha-256 " + strings.ToLower(testFingerprint[8:]) }), ErrMalformed},
		{"sha-1 fingerprint", mod(func(h *Hello) { h.Fingerprint = "sha-1 " + testFingerprint[8:] }), ErrMalformed},
		{"fingerprint 31 bytes", mod(func(h *Hello) { h.Fingerprint = testFingerprint[:len(testFingerprint)-3] }), ErrMalformed},
		{"fingerprint 33 bytes", mod(func(h *Hello) { h.Fingerprint = testFingerprint + ":00" }), ErrMalformed},
		{"fingerprint no algorithm", mod(func(h *Hello) { h.Fingerprint = testFingerprint[8:] }), ErrMalformed},
		{"fingerprint trailing newline", mod(func(h *Hello) { h.Fingerprint = testFingerprint + "\n" }), ErrMalformed},
		{"fingerprint not hex", mod(func(h *Hello) { h.Fingerprint = strings.Replace(testFingerprint, "AB", "XY", 1) }), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.hello.Validate()
			if tc.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
		})
	}
}

func TestDecodeHello(t *testing.T) {
	good, err := json.Marshal(validHello())
	require.NoError(t, err)
	h, err := DecodeHello(good)
	require.NoError(t, err)
	assert.Equal(t, validHello(), h)

	// The wire names are part of the protocol.
	raw := `{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` + testFingerprint + `"}`
	h, err = DecodeHello([]byte(raw))
	require.NoError(t, err)
	assert.Equal(t, Hello{Device: device.Device{ID: testID, Name: "Bob", Fingerprint: testFingerprint}, Version: 2}, h)

	for _, bad := range []string{"", "null", "{}", "[]", `{"device_id":1}`, "{", `{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":1,"fingerprint":"` + testFingerprint + `"}`} {
		_, err := DecodeHello([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
	_, err = DecodeHello([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":7,"fingerprint":"` + testFingerprint + `"}`))
	assert.ErrorIs(t, err, ErrVersion)
	_, err = DecodeHello([]byte("not json"))
	assert.ErrorIs(t, err, ErrMalformed)

	// The device type is a hint: kept when it reads as a word, dropped
	// (not refused) otherwise.
	for typ, want := range map[string]string{`"desktop"`: "desktop", `"toaster"`: "toaster", `"Desk top"`: "",
		`"` + strings.Repeat("a", 17) + `"`: "", `""`: ""} {
		h, err := DecodeHello([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` +
			testFingerprint + `","type":` + typ + `}`))
		require.NoError(t, err, typ)
		assert.Equal(t, want, h.Type, typ)
	}
	_, err = DecodeHello([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` +
		testFingerprint + `","type":5}`))
	assert.ErrorIs(t, err, ErrMalformed, "not a string at all")

	// A web page says so (PROTOCOL 2.1, "web"); others leave it out.
	page := validHello()
	page.Web = true
	b, err := json.Marshal(page)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"web":true`)
	h, err = DecodeHello(b)
	require.NoError(t, err)
	assert.True(t, h.Web)
	b, err = json.Marshal(validHello())
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"web"`)
}

func TestDecodeSDP(t *testing.T) {
	s, err := DecodeSDP([]byte(`{"sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}`))
	require.NoError(t, err)
	assert.Equal(t, "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", s)

	for _, bad := range []string{"", "{}", `{"sdp":""}`, `{"sdp":5}`, "garbage"} {
		_, err := DecodeSDP([]byte(bad))
		assert.ErrorIs(t, err, ErrMalformed, "%q", bad)
	}
}

func TestDecodeCandidate(t *testing.T) {
	c, err := DecodeCandidate([]byte(`{"candidate":"candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host","mid":"0"}`))
	require.NoError(t, err)
	assert.Equal(t, Candidate{Candidate: "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host", Mid: "0"}, c)

	end, err := DecodeCandidate([]byte(`{}`))
	require.NoError(t, err)
	assert.Empty(t, end.Candidate, "an empty object ends the candidates")

	for name, p := range map[string]string{
		"not json":    `{`,
		"not a line":  `{"candidate":"a=candidate:1 1 udp 1 192.0.2.1 1 typ host"}`,
		"two lines":   `{"candidate":"candidate:1 1 udp 1 192.0.2.1 1 typ host\r\na=fingerprint:sha-256 00"}`,
		"too long":    `{"candidate":"candidate:` + strings.Repeat("x", MaxCandidate) + `"}`,
		"long mid":    `{"candidate":"candidate:1","mid":"` + strings.Repeat("0", 33) + `"}`,
		"wrong types": `{"candidate":1}`,
	} {
		_, err := DecodeCandidate([]byte(p))
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
}

func FuzzDecodeCandidate(f *testing.F) {
	f.Add([]byte(`{"candidate":"candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host","mid":"0"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"candidate":"candidate:x\n"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := DecodeCandidate(p)
		if err != nil {
			return
		}
		if len(c.Candidate) > MaxCandidate || strings.ContainsAny(c.Candidate, "\r\n") {
			t.Fatalf("accepted a candidate pion would misread: %q", c.Candidate)
		}
		if c.Candidate != "" && !strings.HasPrefix(c.Candidate, "candidate:") {
			t.Fatalf("accepted %q", c.Candidate)
		}
	})
}

func TestDecodeError(t *testing.T) {
	re, err := DecodeError([]byte(`{"code":"refused","message":"not now"}`))
	require.NoError(t, err)
	assert.Equal(t, CodeRefused, re.Code)
	assert.Equal(t, "not now", re.Message)
	assert.Contains(t, re.Error(), "refused")
	assert.Contains(t, re.Error(), "not now")

	long, err := json.Marshal(ErrorMessage{Code: CodeInternal, Message: strings.Repeat("m", 5000)})
	require.NoError(t, err)
	re, err = DecodeError(long)
	require.NoError(t, err)
	assert.Len(t, re.Message, 1024, "a peer's message is truncated")

	_, err = DecodeError([]byte("{"))
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestValidateName(t *testing.T) {
	assert.NoError(t, ValidateName("Kitchen PC"))
	assert.Error(t, ValidateName(""))
	assert.Error(t, ValidateName("tab\there"))
	assert.Error(t, ValidateName(strings.Repeat("x", 65)))
}

// fuzzSeeds are valid and nearly valid frames for FuzzReadFrame.
func fuzzSeeds(t testing.TB) [][]byte {
	hello, err := json.Marshal(validHello())
	require.NoError(t, err)
	frame := func(f Frame) []byte {
		var buf bytes.Buffer
		require.NoError(t, WriteFrame(&buf, f))
		return buf.Bytes()
	}
	return [][]byte{
		frame(Frame{Type: TypeHello, Payload: hello}),
		frame(Frame{Type: TypeOffer, Payload: []byte(`{"sdp":"v=0\r\n"}`)}),
		frame(Frame{Type: TypeAnswer, Payload: []byte{}}),
		frame(Frame{Type: TypeError, Payload: []byte(`{"code":"refused","message":"no"}`)}),
		header(Version, TypeHello, MaxPayload+1),
		header(2, TypeHello, 0),
		header(Version, 9, 0),
		append(header(Version, TypeOffer, 100), "short"...),
		{},
		{Version},
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ReadFrame(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrVersion) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) &&
				!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(fr.Payload) > MaxPayload {
			t.Fatalf("decoded payload of %d bytes, limit %d", len(fr.Payload), MaxPayload)
		}
		if fr.Type < TypeHello || fr.Type > TypeProbe {
			t.Fatalf("decoded unknown type %d", fr.Type)
		}
		// What decodes must encode to the bytes it came from and read back the same.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, fr); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(buf.Bytes(), data[:headerLen+len(fr.Payload)]) {
			t.Fatalf("re-encoded frame differs from input")
		}
		again, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if again.Type != fr.Type || !bytes.Equal(again.Payload, fr.Payload) {
			t.Fatalf("round trip changed the frame: %+v != %+v", again, fr)
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	good, err := json.Marshal(validHello())
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` + testFingerprint + `"}`))
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bo\u0000b","version":2,"fingerprint":"` + testFingerprint + `"}`))
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":1,"fingerprint":"` + testFingerprint + `"}`))
	f.Add([]byte(`{"DEVICE_ID":"x","Name":"\ud800","version":1.0}`))
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` + testFingerprint + `","commit":"` + strings.Repeat("0a", 32) + `"}`))
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` + testFingerprint + `","nonce":"` + strings.Repeat("0A", 32) + `"}`))
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` + testFingerprint + `","type":"desktop"}`))
	f.Add([]byte(`{"device_id":"abcdef0123456789abcdef0123456789","name":"Bob","version":2,"fingerprint":"` + testFingerprint + `","type":"De\u0000sk"}`))
	f.Add([]byte("null"))
	f.Add([]byte("{"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHello(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error is neither ErrMalformed nor ErrVersion: %v", err)
			}
			return
		}
		if verr := h.Validate(); verr != nil {
			t.Fatalf("DecodeHello accepted an invalid hello %+v: %v", h, verr)
		}
		if h.Type != "" && !typeRe.MatchString(h.Type) {
			t.Fatalf("DecodeHello kept type %q", h.Type)
		}
		// An accepted hello survives a round trip through JSON unchanged.
		p, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		h2, err := DecodeHello(p)
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v, %v (was %+v)", h2, err, h)
		}
	})
}

func FuzzDecodeSDP(f *testing.F) {
	f.Add([]byte(`{"sdp":"v=0\r\n"}`))
	f.Add([]byte(`{"sdp":"v=0\r\n","nonce":"` + strings.Repeat("5e", 32) + `"}`))
	f.Add([]byte(`{"sdp":"v=0\r\n","nonce":"` + strings.Repeat("5E", 32) + `"}`))
	f.Add([]byte(`{"sdp":"v=0\r\n","nonce":"5e"}`))
	f.Add([]byte(`{"sdp":""}`))
	f.Add([]byte(`{"nonce":7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSDP(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error is not ErrMalformed: %v", err)
			}
			return
		}
		if s.SDP == "" {
			t.Fatal("accepted an empty sdp")
		}
		if s.Nonce != "" && len(mustHex(s.Nonce)) != NonceSize {
			t.Fatalf("accepted a bad nonce %q", s.Nonce)
		}
	})
}
