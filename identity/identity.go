// Package identity owns a device's long-lived identity: the DTLS certificate
// whose SHA-256 fingerprint peers use to recognise it, and the device id
// derived from that fingerprint (DeviceIDFor), so that an id cannot be
// claimed without the certificate it names. The certificate is generated
// once and kept in the config dir, so both are stable across restarts.
package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"github.com/thepeerdrop/peerdrop/internal/device"
)

const (
	certFile   = "identity.pem"
	deviceFile = "device.json"
)

// Identity is this device as its peers see it.
type Identity struct {
	// DeviceID is DeviceIDFor(Fingerprint): self-certifying, so a peer
	// that introduces itself with an id must hold the certificate it names.
	DeviceID string
	// Certificate is the DTLS certificate used for every peer connection.
	Certificate webrtc.Certificate
	// Fingerprint is "sha-256 AA:BB:..." of Certificate, as it appears in SDP.
	Fingerprint string

	key *ecdsa.PrivateKey // Certificate's private key
	der []byte            // Certificate in DER
}

// Device returns this device's id and fingerprint as a device.Device
// (without a name or type, which are settings, not identity).
func (id *Identity) Device() device.Device {
	return device.Device{ID: id.DeviceID, Fingerprint: id.Fingerprint}
}

// CertificateDER returns the certificate in DER, whose SHA-256 is the
// fingerprint (a rendezvous announce carries it). It is nil for an
// Identity that Load did not make.
func (id *Identity) CertificateDER() []byte { return id.der }

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
	fp, err := Fingerprint(cert)
	if err != nil {
		return nil, err
	}
	id := DeviceIDFor(fp)
	if err := saveID(filepath.Join(dir, deviceFile), id); err != nil {
		return nil, err
	}
	key, der, err := keyAndDER(cert)
	if err != nil {
		return nil, err
	}
	return &Identity{DeviceID: id, Certificate: *cert, Fingerprint: fp, key: key, der: der}, nil
}

// keyAndDER parses the ECDSA key (its PKCS#8 "PRIVATE KEY" block) and the
// certificate's DER (its "CERTIFICATE" block) out of the certificate's PEM.
func keyAndDER(cert *webrtc.Certificate) (*ecdsa.PrivateKey, []byte, error) {
	text, err := cert.PEM()
	if err != nil {
		return nil, nil, fmt.Errorf("encode certificate: %w", err)
	}
	var (
		key *ecdsa.PrivateKey
		der []byte
	)
	rest := []byte(text)
	for key == nil || der == nil {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, nil, errors.New("certificate PEM lacks the key or the certificate")
		}
		switch b.Type {
		case "CERTIFICATE":
			if der == nil {
				der = b.Bytes
			}
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("certificate private key: %w", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, nil, errors.New("certificate private key is not ECDSA")
			}
			key = ek
		}
	}
	return key, der, nil
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

// saveID keeps device.json naming id: for people and tools that read the
// config dir. A config dir from before ids were derived holds a random id
// there; it is replaced, so an upgraded device has a new id (peers that
// paired it pair it again).
func saveID(path, id string) error {
	data, err := os.ReadFile(path)
	if err == nil {
		var rec deviceRecord
		if json.Unmarshal(data, &rec) == nil && rec.ID == id {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read device id %s: %w", path, err)
	}
	data, _ = json.Marshal(deviceRecord{ID: id})
	return atomicfile.Write(path, data, 0o600)
}
