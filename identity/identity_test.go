package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fingerprintForm = regexp.MustCompile(`^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$`)

func TestLoadCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "config")
	id, err := Load(dir)
	require.NoError(t, err)

	for _, name := range []string{certFile, deviceFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.Greater(t, fi.Size(), int64(0), name)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s must be private", name)
	}
	_, err = os.Stat(filepath.Join(dir, certFile+".tmp"))
	assert.ErrorIs(t, err, os.ErrNotExist, "temporary file left behind")

	assert.Regexp(t, `^[0-9a-f]{32}$`, id.DeviceID)
	assert.Equal(t, DeviceIDFor(id.Fingerprint), id.DeviceID, "the id is derived from the certificate")
	assert.Regexp(t, fingerprintForm, id.Fingerprint)
	// 32 bytes: "sha-256 " + 32 hex pairs joined by colons.
	hexPart := strings.TrimPrefix(id.Fingerprint, "sha-256 ")
	assert.Len(t, strings.Split(hexPart, ":"), 32)
}

func TestLoadIsStable(t *testing.T) {
	dir := t.TempDir()
	first, err := Load(dir)
	require.NoError(t, err)
	second, err := Load(dir)
	require.NoError(t, err)

	assert.Equal(t, first.DeviceID, second.DeviceID)
	assert.Equal(t, first.Fingerprint, second.Fingerprint)

	fp, err := Fingerprint(&second.Certificate)
	require.NoError(t, err)
	assert.Equal(t, first.Fingerprint, fp, "fingerprint must be derived from the stored certificate")
}

func TestDifferentDirsDiffer(t *testing.T) {
	a, err := Load(t.TempDir())
	require.NoError(t, err)
	b, err := Load(t.TempDir())
	require.NoError(t, err)
	assert.NotEqual(t, a.DeviceID, b.DeviceID)
	assert.NotEqual(t, a.Fingerprint, b.Fingerprint)
}

func TestCertificateLastsYears(t *testing.T) {
	id, err := Load(t.TempDir())
	require.NoError(t, err)
	exp := id.Certificate.Expires()
	assert.True(t, exp.After(time.Now().AddDate(10, 0, 0)), "certificate expires %s", exp)

	// And it still does after a reload from disk.
	dir := t.TempDir()
	_, err = Load(dir)
	require.NoError(t, err)
	again, err := Load(dir)
	require.NoError(t, err)
	assert.True(t, again.Certificate.Expires().After(time.Now().AddDate(10, 0, 0)))
}

func TestLoadMalformedFiles(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		content string
	}{
		{"pem garbage", certFile, "garbage"},
		{"pem empty", certFile, ""},
		{"pem wrong block", certFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"pem key only", certFile, "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o600))
			var (
				id  *Identity
				err error
			)
			require.NotPanics(t, func() { id, err = Load(dir) })
			require.Error(t, err)
			assert.Nil(t, id)
			assert.Contains(t, err.Error(), tc.file)
		})
	}
}

func TestTruncatedPEMFromRealIdentity(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	require.NoError(t, err)
	path := filepath.Join(dir, certFile)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data[:len(data)/2], 0o600))

	require.NotPanics(t, func() { _, err = Load(dir) })
	require.Error(t, err)
}

func TestSignerIsTheCertificateKey(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	require.NoError(t, err)
	id, err := Load(dir) // from the file, as on every later run
	require.NoError(t, err)
	s := id.Signer()
	require.NotNil(t, s)
	digest := sha256.Sum256([]byte("peerdrop"))
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	require.NoError(t, err)
	text, err := id.Certificate.PEM()
	require.NoError(t, err)
	var cert *x509.Certificate
	for rest := []byte(text); ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		require.NotNil(t, b, "no CERTIFICATE block")
		if b.Type == "CERTIFICATE" {
			cert, err = x509.ParseCertificate(b.Bytes)
			require.NoError(t, err)
			break
		}
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok)
	assert.True(t, ecdsa.VerifyASN1(pub, digest[:], sig), "the signature must verify with the certificate's public key")
}
