package localsend

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/atomicfile"
	"github.com/thepeerdrop/peerdrop/trust"
)

// Pins is trust on first use for LocalSend devices. LocalSend has no
// device id of its own: a device is its alias, and its fingerprint is its
// certificate's SHA-256 (an HTTP peer's is a random string it announces).
// The first fingerprint a device proves (an HTTPS handshake with a
// certificate of that hash; for an HTTP peer, the one it announces) is
// kept for its alias, and a later contact with another one is refused as
// trust.ErrIdentityChanged, as for our own devices. Forget drops a pin.
type Pins struct {
	path string

	mu   sync.Mutex
	pins map[string]pin
}

type pin struct {
	Fingerprint string    `json:"fingerprint"`
	Seen        time.Time `json:"seen"`
	// TLS: the pin was proven by a TLS handshake; the device may not
	// come back unencrypted (a downgrade is refused like another
	// fingerprint).
	TLS bool `json:"tls,omitempty"`
}

// maxPins bounds the file; the least recently seen pin makes room.
const maxPins = 1000

// pinsFile is the file in the config folder.
const pinsFile = "localsend-pins.json"

// OpenPins reads the pins kept in dir.
func OpenPins(dir string) (*Pins, error) {
	p := &Pins{path: filepath.Join(dir, pinsFile), pins: map[string]pin{}}
	b, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("read LocalSend pins: %w", err)
	}
	if err := json.Unmarshal(b, &p.pins); err != nil {
		return nil, fmt.Errorf("read LocalSend pins %s: %w", p.path, err)
	}
	return p, nil
}

// Check refuses an alias pinned to another fingerprint, or proven over
// TLS and now met unencrypted; it stores nothing.
func (p *Pins) Check(alias, fingerprint string, encrypted bool) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.pins[alias]; ok && (old.Fingerprint != fingerprint || old.TLS && !encrypted) {
		return changed(alias, old.Fingerprint, fingerprint)
	}
	return nil
}

// Pin keeps fingerprint for alias once proven (tls: by a TLS handshake),
// or refuses another one, or a downgrade.
func (p *Pins) Pin(alias, fingerprint string, tls bool) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.pins[alias]
	if ok && (old.Fingerprint != fingerprint || old.TLS && !tls) {
		return changed(alias, old.Fingerprint, fingerprint)
	}
	if !ok && len(p.pins) >= maxPins {
		var oldest string
		for a, q := range p.pins {
			if oldest == "" || q.Seen.Before(p.pins[oldest].Seen) {
				oldest = a
			}
		}
		delete(p.pins, oldest)
	}
	p.pins[alias] = pin{Fingerprint: fingerprint, Seen: time.Now().UTC(), TLS: tls || old.TLS}
	return p.saveLocked()
}

// changed is the refusal of alias coming with fingerprint got.
func changed(alias, pinned, got string) error {
	return &trust.IdentityChangedError{ID: lsID(got), Name: alias, Pinned: pinned, Got: got}
}

// Lookup is the fingerprint pinned for alias.
func (p *Pins) Lookup(alias string) (string, bool) {
	if p == nil {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.pins[alias]
	return q.Fingerprint, ok
}

// Forget drops the pin of alias (the user accepts its new identity).
func (p *Pins) Forget(alias string) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pins, alias)
	return p.saveLocked()
}

func (p *Pins) saveLocked() error {
	b, err := json.MarshalIndent(p.pins, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(p.path, b, 0o600); err != nil {
		return fmt.Errorf("save LocalSend pins: %w", err)
	}
	return nil
}
