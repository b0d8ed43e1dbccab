// Package identity owns a device's long-lived identity: a random device id and
// the DTLS certificate whose SHA-256 fingerprint peers use to recognise it.
// Both are generated once and kept in the config dir, so the fingerprint is
// stable across restarts.
package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/internal/atomicfile"
)

const (
	certFile   = "identity.pem"
	deviceFile = "device.json"
)

// Identity is this device as its peers see it.
type Identity struct {
	// DeviceID is random, generated once; it names the device independently of
	// its certificate so that a changed certificate can be noticed.
	DeviceID string
	// Certificate is the DTLS certificate used for every peer connection.
	Certificate webrtc.Certificate
	// Fingerprint is "sha-256 AA:BB:..." of Certificate, as it appears in SDP.
	Fingerprint string

	key *ecdsa.PrivateKey // Certificate's private key
}

// Signer returns the device key: the ECDSA P-256 private key of the
// certificate (it signs presence announcements on the rendezvous server).
// It is nil for an Identity that Load did not make.
func (id *Identity) Signer() crypto.Signer {
	if id.key == nil {
		return nil
	}
	return id.key
}

type deviceRecord struct {
	ID string `json:"id"`
}

// Load reads the identity kept in dir, creating it (and dir) on first use.
func Load(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create config dir %s: %w", dir, err)
	}
	cert, err := loadOrCreateCert(filepath.Join(dir, certFile))
	if err != nil {
		return nil, err
	}
	id, err := loadOrCreateID(filepath.Join(dir, deviceFile))
	if err != nil {
		return nil, err
	}
	fp, err := Fingerprint(cert)
	if err != nil {
		return nil, err
	}
	key, err := privateKey(cert)
	if err != nil {
		return nil, err
	}
	return &Identity{DeviceID: id, Certificate: *cert, Fingerprint: fp, key: key}, nil
}

// privateKey parses the ECDSA key out of the certificate's PEM (its PKCS#8
// "PRIVATE KEY" block).
func privateKey(cert *webrtc.Certificate) (*ecdsa.PrivateKey, error) {
	text, err := cert.PEM()
	if err != nil {
		return nil, fmt.Errorf("encode certificate: %w", err)
	}
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("certificate has no private key")
		}
		if b.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate private key: %w", err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("certificate private key is not ECDSA")
		}
		return ek, nil
	}
}

// Fingerprint returns the certificate's SHA-256 fingerprint in SDP form.
func Fingerprint(cert *webrtc.Certificate) (string, error) {
	fps, err := cert.GetFingerprints()
	if err != nil {
		return "", fmt.Errorf("certificate fingerprint: %w", err)
	}
	for _, fp := range fps {
		if fp.Algorithm == "sha-256" {
			return "sha-256 " + strings.ToUpper(fp.Value), nil
		}
	}
	return "", errors.New("certificate has no sha-256 fingerprint")
}

func loadOrCreateCert(path string) (*webrtc.Certificate, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		cert, err := webrtc.CertificateFromPEM(string(data))
		if err != nil {
			return nil, fmt.Errorf("read certificate %s: %w", path, err)
		}
		return cert, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	// pion's GenerateCertificate expires after a month; an identity must last.
	now := time.Now()
	cert, err := webrtc.NewCertificate(key, x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ThePeerDrop device"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.AddDate(20, 0, 0),
	})
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	pemText, err := cert.PEM()
	if err != nil {
		return nil, fmt.Errorf("encode certificate: %w", err)
	}
	if err := atomicfile.Write(path, []byte(pemText), 0o600); err != nil {
		return nil, err
	}
	return cert, nil
}

func loadOrCreateID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		var rec deviceRecord
		if err := json.Unmarshal(data, &rec); err != nil || rec.ID == "" {
			return "", fmt.Errorf("read device id %s: malformed file", path)
		}
		return rec.ID, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read device id %s: %w", path, err)
	}
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate device id: %w", err)
	}
	id := hex.EncodeToString(buf)
	data, _ = json.Marshal(deviceRecord{ID: id})
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return "", err
	}
	return id, nil
}
