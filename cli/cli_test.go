package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/version"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/transfer"
)

func TestHumanBytes(t *testing.T) {
	// SI, as the app and the web page write sizes (internal/units).
	assert.Equal(t, "0 B", humanBytes(0))
	assert.Equal(t, "1.0 kB", humanBytes(1023))
	assert.Equal(t, "210 MB", humanBytes(200<<20))
	assert.Equal(t, "1.6 GB", humanBytes(3<<29))
}

// The JSON events are an interface for scripts: their names and fields are
// documented in the README and must not drift.
func TestJSONEvents(t *testing.T) {
	var stdout, stderr bytes.Buffer
	o := newOutput(&stdout, &stderr, true)
	o.event(transfer.FileDone{ID: "ab", Index: 1, Name: "a/b.txt", Path: "/d/a/b.txt", Size: 3, SHA256: "00", ResumedFrom: 2})
	o.event(transfer.FileDone{ID: "ab", Name: "a/b.txt", Size: 3})
	o.event(transfer.TransferDone{ID: "ab", Files: 1, Bytes: 3})
	o.event(transfer.TextReceived{From: transfer.Peer{Device: device.Device{Name: "Alice", ID: "d1"}}, ID: "t1", Text: "hi"})
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 4)
	var ev []map[string]any
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		assert.NotEmpty(t, m["time"])
		ev = append(ev, m)
	}
	assert.Equal(t, "file-done", ev[0]["event"])
	assert.Equal(t, "/d/a/b.txt", ev[0]["path"])
	assert.Equal(t, "00", ev[0]["sha256"])
	assert.EqualValues(t, 2, ev[0]["resumed_from"])
	assert.EqualValues(t, 3, ev[0]["size"])
	assert.Equal(t, "file-sent", ev[1]["event"], "the sender's confirmation has no path")
	assert.Equal(t, "transfer-done", ev[2]["event"])
	assert.Equal(t, []any{}, ev[2]["failed"], "failed is a list, never null")
	assert.Equal(t, "text", ev[3]["event"])
	assert.Equal(t, "Alice", ev[3]["from"])
	assert.Empty(t, stderr.String())
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"--name", "bad\x01name", "receive"},
		{"receive", "extra"},
		{"receive", "--port", "70000"},
		{"send"},
		{"send", "--text", "hi"},
		{"send", "--to", "x", "--wait", "0s", "--text", "hi"},
		{"--type", "toaster", "devices"},
		{"devices", "extra"},
		{"devices", "--wait", "-1s"},
		{"receive", "--yes", "--trusted"},
		{"trust"},
		{"trust", "frob", "x"},
		{"trust", "add"},
	} {
		var stdout, stderr bytes.Buffer
		args = append([]string{"--config-dir", t.TempDir()}, args...)
		code := Run(args, strings.NewReader(""), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v: %s", args, stderr.String())
		assert.Contains(t, stderr.String(), "peerdrop: ", "%v", args)
	}
}

// The QR code holds the server's web address with the code in the fragment
// (never sent to the server), drawn as a square of half blocks.
func TestPairingQR(t *testing.T) {
	assert.Equal(t, "https://serve.example.org/#7KQ2M-XW4PD-R8T3Z", remote.PairingLink("wss://serve.example.org/ws", "7KQ2M-XW4PD-R8T3Z"))
	assert.Equal(t, "http://203.0.113.10:8080/#ABCDE-FGHJK-MNPQR", remote.PairingLink("ws://203.0.113.10:8080/ws", "ABCDE-FGHJK-MNPQR"))
	art := qrText(remote.PairingLink("wss://serve.example.org/ws", "7KQ2M-XW4PD-R8T3Z"))
	lines := strings.Split(strings.TrimRight(art, "\n"), "\n")
	require.Greater(t, len(lines), 10)
	for _, l := range lines {
		assert.Equal(t, utf8.RuneCountInString(lines[0]), utf8.RuneCountInString(l), "a square of modules")
	}
	assert.Contains(t, art, "▀")
}

// --version prints the app's version and needs no config.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Run([]string{"--version"}, strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "peerdrop "+version.Get().String()+"\n", stdout.String())
	assert.Contains(t, stdout.String(), version.App)
}
