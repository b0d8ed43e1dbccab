package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A known answer (docs/PROTOCOL.md section 2.1): the JS page and other
// implementations must derive the same id from this fingerprint.
const (
	katFingerprint = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"
	katID          = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

func TestDeviceIDFor(t *testing.T) {
	for _, tc := range []struct{ name, fp, want string }{
		{"known answer", katFingerprint, katID},
		{"lower-case hex", strings.ToLower(katFingerprint), katID},
		{"no prefix", strings.TrimPrefix(katFingerprint, "sha-256 "), ""},
		{"other hash", "sha-1 " + strings.TrimPrefix(katFingerprint, "sha-256 "), ""},
		{"short", katFingerprint[:len(katFingerprint)-3], ""},
		{"long", katFingerprint + ":00", ""},
		{"not hex", strings.Replace(katFingerprint, "0F", "0G", 1), ""},
		{"no colons", "sha-256 " + strings.ReplaceAll(strings.TrimPrefix(katFingerprint, "sha-256 "), ":", "-"), ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, DeviceIDFor(tc.fp))
		})
	}
}

func TestCheckID(t *testing.T) {
	require.NoError(t, CheckID(katID, katFingerprint))
	assert.ErrorIs(t, CheckID("0f1e2d3c4b5a69788796a5b4c3d2e1f1", katFingerprint), ErrIDMismatch, "one digit off")
	assert.ErrorIs(t, CheckID(strings.ToUpper(katID), katFingerprint), ErrIDMismatch, "ids are lower case")
	assert.ErrorIs(t, CheckID("", "not a fingerprint"), ErrIDMismatch, "a malformed fingerprint matches nothing")
}

// The id is the fingerprint's first 16 bytes: the SHA-256 of the
// certificate's DER, computed here without the fingerprint string.
func TestDeviceIDIsCertificateHash(t *testing.T) {
	id, err := Load(t.TempDir())
	require.NoError(t, err)
	sum := sha256.Sum256(id.CertificateDER())
	assert.Equal(t, hex.EncodeToString(sum[:16]), id.DeviceID)
}

// A config dir from before ids were derived keeps its certificate; its
// random id is replaced by the derived one, in memory and on disk.
func TestLoadMigratesRandomID(t *testing.T) {
	dir := t.TempDir()
	first, err := Load(dir)
	require.NoError(t, err)
	old, _ := json.Marshal(deviceRecord{ID: "a1b2c3d4e5f60718"})
	require.NoError(t, os.WriteFile(filepath.Join(dir, deviceFile), old, 0o600))

	again, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, first.Fingerprint, again.Fingerprint, "the certificate stays")
	assert.Equal(t, DeviceIDFor(again.Fingerprint), again.DeviceID)

	data, err := os.ReadFile(filepath.Join(dir, deviceFile))
	require.NoError(t, err)
	var rec deviceRecord
	require.NoError(t, json.Unmarshal(data, &rec))
	assert.Equal(t, again.DeviceID, rec.ID, "device.json is rewritten with the derived id")
}

// device.json only records the derived id: whatever it holds, Load
// rewrites it and never fails on it.
func TestLoadRewritesMalformedDeviceFile(t *testing.T) {
	for _, content := range []string{"not json at all", "{}", `{"id":""}`, `{"id":42}`, ""} {
		dir := t.TempDir()
		path := filepath.Join(dir, deviceFile)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		id, err := Load(dir)
		require.NoError(t, err, content)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.JSONEq(t, `{"id":"`+id.DeviceID+`"}`, string(data), content)
	}
}
