package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The derivation itself is tested in internal/device (the known answer of
// docs/PROTOCOL.md section 2.1); identity only forwards to it.
func TestDeviceIDForIsTheLeafs(t *testing.T) {
	const fp = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"
	assert.Equal(t, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", DeviceIDFor(fp))
	require.NoError(t, CheckID(DeviceIDFor(fp), fp))
	assert.ErrorIs(t, CheckID("0f1e2d3c4b5a69788796a5b4c3d2e1f1", fp), ErrIDMismatch)
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
