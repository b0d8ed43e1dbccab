package rendezvous

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// assertNoLeak checks that no goroutine is left but the one that waits for
// a test's own redis-server (stopped by its cleanup, after this check).
func assertNoLeak(t *testing.T) {
	t.Helper()
	goleak.VerifyNone(t, goleak.IgnoreAnyFunction("github.com/thepeerdrop/peerdrop/internal/redistest.(*Server).run.func1"))
}

func TestNormalizeCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"7KQ2M-XW4PD", "7KQ2M XW4PD"},
		{"7kq2mxw4pd", "7KQ2M XW4PD"},
		{" 7kq2m - xw4pd ", "7KQ2M XW4PD"},
		{"OoIiLl0000", "001111 0000"},
		{"ABCDE-FGHJK", "ABCDE FGHJK"},
		{"7KQ2M-XW4P", ""},   // short
		{"7KQ2M-XW4PDD", ""}, // long
		{"7KQ2M-XW4PU", ""},  // U is not in the alphabet
		{"7KQ2M_XW4PD", ""},
		{"7KQ2M-XW4P\u00e9", ""},
		{"", ""},
	} {
		got, err := NormalizeCode(tc.in)
		if tc.want == "" {
			assert.Error(t, err, tc.in)
			continue
		}
		want := string(bytes.ReplaceAll([]byte(tc.want), []byte(" "), nil))
		assert.NoError(t, err, tc.in)
		assert.Equal(t, want, got, tc.in)
	}
	assert.Equal(t, "7KQ2M-XW4PD", FormatCode("7kq2mxw4pd"))
	assert.Equal(t, "nope", FormatCode("nope"))
}

func TestNewCode(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k, err := newCode(rand.Reader)
		require.NoError(t, err)
		n, err := NormalizeCode(k)
		require.NoError(t, err)
		require.Equal(t, k, n, "codes are drawn in canonical form")
		seen[k] = true
	}
	assert.Len(t, seen, 1000)
	// All 50 bits are used: all-ones gives the last letter everywhere.
	k, err := newCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, 7)))
	require.NoError(t, err)
	assert.Equal(t, "ZZZZZZZZZZ", k)
	k, err = newCode(bytes.NewReader(make([]byte, 7)))
	require.NoError(t, err)
	assert.Equal(t, "0000000000", k)
	_, err = newCode(iotest.ErrReader(errors.New("no entropy")))
	assert.Error(t, err)
}

func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		remote, header, value, want, prefix string
	}{
		{"192.0.2.1:5000", "", "", "192.0.2.1", "192.0.2.0/24"},
		{"[2001:db8:1:2:3:4:5:6]:5000", "", "", "2001:db8:1:2::/64", "2001:db8:1::/56"},
		{"[::ffff:192.0.2.1]:5000", "", "", "192.0.2.1", "192.0.2.0/24"},
		{"192.0.2.1:5000", "X-Forwarded-For", "", "192.0.2.1", "192.0.2.0/24"},
		{"192.0.2.1:5000", "X-Forwarded-For", "198.51.100.1, 203.0.113.7", "203.0.113.7", "203.0.113.0/24"},
		{"192.0.2.1:5000", "X-Forwarded-For", "garbage", "192.0.2.1", "192.0.2.0/24"},
		{"192.0.2.1:5000", "", "203.0.113.7", "192.0.2.1", "192.0.2.0/24"}, // header ignored unless configured
	} {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.RemoteAddr = tc.remote
		if tc.value != "" {
			r.Header.Set("X-Forwarded-For", tc.value)
		}
		ip, prefix := clientIP(r, tc.header, 24, 56)
		assert.Equal(t, tc.want, ip, "%+v", tc)
		assert.Equal(t, tc.prefix, prefix, "%+v", tc)
	}
	r := httptest.NewRequest("GET", "/ws", nil)
	r.RemoteAddr = "[2001:db8:1:2:3:4:5:6]:5000"
	_, prefix := clientIP(r, "", 16, 48)
	assert.Equal(t, "2001:db8:1::/48", prefix, "the prefix lengths are configurable")
}

// FuzzClientIP: whatever the peer address and the proxy's header hold, the
// keys are an address and a network that contains it, never a panic.
func FuzzClientIP(f *testing.F) {
	f.Add("192.0.2.1:5000", "198.51.100.1, 203.0.113.7", uint8(24), uint8(56))
	f.Add("[2001:db8::1%eth0]:1", "::ffff:10.0.0.1", uint8(32), uint8(128))
	f.Add("garbage", ",,", uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, remote, header string, bits4, bits6 uint8) {
		// The configuration allows 1..32 and 1..128 (0 means the default).
		b4, b6 := int(bits4%32)+1, int(bits6%128)+1
		r := httptest.NewRequest("GET", "/ws", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", header)
		ip, prefix := clientIP(r, "X-Forwarded-For", b4, b6)
		if a, err := netip.ParseAddr(ip); err == nil {
			p, err := netip.ParsePrefix(prefix)
			if err != nil || !p.Contains(a) {
				t.Fatalf("address %q, network %q", ip, prefix)
			}
		}
	})
}

func TestDecodeEnvelope(t *testing.T) {
	hello := testHello("Alice's laptop")
	for _, tc := range []struct {
		name string
		in   string
		code string // "" = valid
	}{
		{"hello", mustJSON(t, Envelope{Type: TypeHello, Device: &hello}), ""},
		{"hello without device", `{"type":"hello"}`, CodeBadHello},
		{"hello id not its fingerprint's", `{"type":"hello","device":{"device_id":"` + testHello("other").ID + `","name":"n","type":"laptop","fingerprint":"` + hello.Fingerprint + `"}}`, CodeBadHello},
		{"hello bad type", `{"type":"hello","device":{"device_id":"a","name":"n","type":"toaster","fingerprint":"` + hello.Fingerprint + `"}}`, CodeBadHello},
		{"create", `{"type":"create","req":1}`, ""},
		{"join", `{"type":"join","code":"7KQ2M-XW4PD"}`, ""},
		{"join without code", `{"type":"join"}`, CodeBadCode},
		{"close all", `{"type":"close"}`, ""},
		{"announce", `{"type":"announce","device_id":"d1","certificate":"AA==","sig":"AA=="}`, ""},
		{"announce no sig", `{"type":"announce","device_id":"d1","certificate":"AA=="}`, CodeBadMessage},
		{"find", `{"type":"find","device_id":"d1"}`, ""},
		{"find bad id", `{"type":"find","device_id":"d 1"}`, CodeBadMessage},
		{"signal", `{"type":"signal","to":"0123456789abcdef","payload":{"sdp":"v=0"}}`, ""},
		{"signal null", `{"type":"signal","to":"0123456789abcdef","payload":null}`, CodeBadMessage},
		{"signal no payload", `{"type":"signal","to":"0123456789abcdef"}`, CodeBadMessage},
		{"signal bad to", `{"type":"signal","to":"ALICE","payload":1}`, CodeBadMessage},
		{"unknown type", `{"type":"welcome"}`, CodeBadMessage},
		{"not an object", `[1,2]`, CodeBadMessage},
		{"bad req", `{"type":"create","req":-1}`, CodeBadMessage},
	} {
		_, err := DecodeEnvelope([]byte(tc.in), DefaultMaxPayload)
		if tc.code == "" {
			assert.NoError(t, err, tc.name)
			continue
		}
		var e *Error
		require.True(t, errors.As(err, &e), tc.name)
		assert.Equal(t, tc.code, e.Code, tc.name)
	}
	e, err := DecodeEnvelope([]byte(`{"type":"signal","req":42,"to":"0123456789abcdef","payload":"`+string(bytes.Repeat([]byte("x"), 100))+`"}`), 64)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, uint32(42), e.Req, "the req survives for the error reply")
}

// FuzzDecodeEnvelope: the decoder never panics, and what it accepts survives
// a round trip through the encoder unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	hello := testHello("Alice's laptop")
	for _, s := range []string{
		mustJSON(f, Envelope{Type: TypeHello, Req: 1, Device: &hello}),
		`{"type":"create","req":2}`,
		`{"type":"join","req":3,"code":"7kq2m-xw4pd"}`,
		`{"type":"leave","code":"7KQ2MXW4PD"}`,
		`{"type":"close"}`,
		`{"type":"announce","device_id":"3f2a9c0d41b7e688","certificate":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE","sig":"MEUCIQ"}`,
		`{"type":"find","device_id":"3f2a9c0d41b7e688"}`,
		`{"type":"signal","to":"0123456789abcdef","payload":{"sdp":"v=0\r\n","candidates":["a","b"]}}`,
		`{"type":"signal","to":"0123456789abcdef","payload":"\u003chtml\u003e"}`,
		`{"type":"signal","payload":null}`,
		`{"TYPE":"create","Req":4}`,
		`{"type":"create","type":"join","code":"x"}`,
		`{"type":"x"`,
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data, 1024)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Code == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		b, err := jsonMarshal(&e)
		if err != nil {
			t.Fatalf("cannot encode an accepted envelope: %v", err)
		}
		e2, err := DecodeEnvelope(b, 1024)
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v\n%s", err, b)
		}
		b2, err := jsonMarshal(&e2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the envelope:\n%s\n%s", b, b2)
		}
		if !reflect.DeepEqual(e.Device, e2.Device) || e.Type != e2.Type || e.Req != e2.Req {
			t.Fatalf("round trip changed fields: %+v %+v", e, e2)
		}
		var anyJSON any
		if e.Type == TypeSignal && json.Unmarshal(e.Payload, &anyJSON) != nil {
			t.Fatalf("accepted a payload that is not JSON: %q", e.Payload)
		}
	})
}
