// Package trust owns what this device knows about others: the certificate
// fingerprint pinned for each device id once a connection proved it (trust
// on first use), which devices the user trusts, and the verification code
// two people compare to rule out anyone in the middle.
//
// A hello is only a claim: Verify, at hello time, refuses a known device
// that comes with another certificate and stores nothing. Pin records a
// device once DTLS has proven that the peer holds the certificate (the data
// channel opened), so a made-up hello never reaches the file.
package trust

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/atomicfile"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

const fileName = "peers.json"

// maxDevices bounds the store. When it is full, a new pin takes the place
// of the least recently seen device that is neither trusted nor seen within
// keepRecent; when every device is one of those, the new device is not
// pinned (its connection goes on: its id already binds its certificate, it
// is only not remembered).
const maxDevices = 10_000

// keepRecent is how long a proven device is safe from eviction.
const keepRecent = 24 * time.Hour

// flushDelay bounds how long an update of a known device (its name and
// last-seen time, on each connection) waits in memory before the file is
// written: the updates of a burst of connections share one write. Close
// writes what is left. A first pin is written at once, so that another
// process (`peerdrop trust add`) sees it; it needs a connection that DTLS
// proved, which paces it. The user's own changes (trust, forget, re-pair)
// are written at once.
const flushDelay = 500 * time.Millisecond

// ErrIdentityChanged means a known device id came with another certificate.
var ErrIdentityChanged = errors.New("this device's identity changed")

// IdentityChangedError names the device whose certificate changed.
type IdentityChangedError struct {
	ID, Name, Pinned, Got string
}

func (e *IdentityChangedError) Error() string {
	return fmt.Sprintf("this device's identity changed: %q (id %s) presented a different certificate than before; "+
		"if it was reinstalled, pair it again, otherwise someone may be impersonating it", e.Name, e.ID)
}

// Permanent tells a reconnecting sender that trying again will not help.
func (e *IdentityChangedError) Permanent() bool { return true }

// Is makes errors.Is(err, ErrIdentityChanged) true.
func (e *IdentityChangedError) Is(target error) bool { return target == ErrIdentityChanged }

// Device is what we remember of another device. Its Type is not kept.
type Device struct {
	device.Device
	FirstSeen time.Time
	LastSeen  time.Time
	Trusted   bool
	// Addrs are the LAN handshake addresses (HOST:PORT) where a connection
	// we opened reached it, most recent first, at most MaxAddrs: where to
	// look for it when multicast does not pass (SeenAt).
	Addrs []string
}

// MaxAddrs bounds the addresses kept per device.
const MaxAddrs = 4

// deviceFile is a Device as the store file spells it.
type deviceFile struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Trusted     bool      `json:"trusted,omitempty"`
	Addrs       []string  `json:"addrs,omitempty"`
}

// MarshalJSON writes d as the store file spells it.
func (d Device) MarshalJSON() ([]byte, error) {
	return json.Marshal(deviceFile{
		ID: d.ID, Name: d.Name, Fingerprint: d.Fingerprint,
		FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, Trusted: d.Trusted, Addrs: d.Addrs,
	})
}

// UnmarshalJSON reads d as the store file spells it.
func (d *Device) UnmarshalJSON(b []byte) error {
	var f deviceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*d = Device{
		Device:    device.Device{ID: f.ID, Name: f.Name, Fingerprint: f.Fingerprint},
		FirstSeen: f.FirstSeen, LastSeen: f.LastSeen, Trusted: f.Trusted,
		Addrs: validAddrs(f.Addrs),
	}
	return nil
}

// valid says whether id and fingerprint are well formed and id derives
// from fingerprint (device.IDFor).
func valid(id, fingerprint string) bool {
	return device.ValidateFingerprint(fingerprint) == nil && device.CheckID(id, fingerprint) == nil
}

// Store is the pinned and trusted devices, kept in the config dir. It is
// safe for concurrent use. Close writes what is still in memory.
type Store struct {
	path    string
	mu      sync.Mutex
	devices map[string]*Device
	seen    os.FileInfo // the file as last read or written; nil: none
	// pending are the updates of known devices not written yet, by id:
	// they are applied again over a file another process changed.
	pending map[string]Device
	flush   *time.Timer // a write scheduled for pending; nil: none
	closed  bool
}

// Open reads the store in configDir; a missing file is an empty store.
// Entries whose id does not derive from their fingerprint (pinned before
// ids were derived from certificates) are dropped: those devices now have
// another id, and pair again.
func Open(configDir string) (*Store, error) {
	s := &Store{path: filepath.Join(configDir, fileName), devices: map[string]*Device{}, pending: map[string]Device{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the file into s.devices; the caller holds mu (or owns s).
func (s *Store) load() error {
	info, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.devices, s.seen = map[string]*Device{}, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	var list []Device
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("read %s: malformed file: %w", s.path, err)
	}
	devices := make(map[string]*Device, len(list))
	for i := range list {
		d := list[i]
		if valid(d.ID, d.Fingerprint) {
			devices[d.ID] = &d
		}
	}
	s.devices, s.seen = devices, info
	return nil
}

// sync reloads the file when another process changed it (`peerdrop trust
// add` while `peerdrop receive` runs), so a long-running process neither
// misses the change nor overwrites it; the caller holds mu. Updates not
// written yet are applied over what it read, except to devices it no
// longer has (forgotten there). A file that cannot be read keeps what is in
// memory.
func (s *Store) sync() {
	info, err := os.Stat(s.path)
	switch {
	case err != nil && s.seen == nil:
		return
	case err == nil && s.seen != nil && os.SameFile(info, s.seen) && info.ModTime().Equal(s.seen.ModTime()) && info.Size() == s.seen.Size():
		return
	}
	if err := s.load(); err != nil {
		slog.Warn("trusted devices: keeping the list in memory", slog.Any("err", err))
		return
	}
	for id, p := range s.pending {
		if d := s.devices[id]; d != nil && d.Fingerprint == p.Fingerprint {
			d.Name = p.Name
			if len(p.Addrs) > 0 {
				d.Addrs = p.Addrs
			}
			if p.LastSeen.After(d.LastSeen) {
				d.LastSeen = p.LastSeen
			}
		} else {
			delete(s.pending, id)
		}
	}
}

// Verify is the check at hello time, before anything is proven: a known id
// must come with its pinned fingerprint, or the result is an
// *IdentityChangedError. It stores nothing: a hello is only a claim.
func (s *Store) Verify(id, fingerprint string) error {
	if !valid(id, fingerprint) {
		return errors.New("malformed device id or fingerprint")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	if d := s.devices[id]; d != nil && d.Fingerprint != fingerprint {
		return &IdentityChangedError{ID: id, Name: d.Name, Pinned: d.Fingerprint, Got: fingerprint}
	}
	return nil
}

// Pin applies trust on first use to a device whose certificate a
// connection has proven (DTLS completed with the certificate its hello
// named): an unknown id is pinned to fingerprint (written at once), a known
// one must have it pinned (else an *IdentityChangedError) and has its name
// and last-seen time updated (written within flushDelay).
func (s *Store) Pin(id, name, fingerprint string) error {
	if !valid(id, fingerprint) {
		return errors.New("malformed device id or fingerprint")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	now := time.Now().UTC()
	d := s.devices[id]
	if d == nil {
		s.makeRoom()
		if len(s.devices) >= maxDevices {
			slog.Warn("trusted devices: the list is full of trusted and recently seen devices; not remembering this one",
				slog.String("id", id), slog.String("name", name))
			return nil
		}
		s.devices[id] = &Device{Device: device.Device{ID: id, Name: name, Fingerprint: fingerprint}, FirstSeen: now, LastSeen: now}
		if err := s.save(); err != nil {
			delete(s.devices, id)
			return err
		}
		return nil
	}
	if d.Fingerprint != fingerprint {
		return &IdentityChangedError{ID: id, Name: d.Name, Pinned: d.Fingerprint, Got: fingerprint}
	}
	d.Name, d.LastSeen = name, now
	s.pending[id] = *d
	s.scheduleLocked()
	return nil
}

// scheduleLocked writes pending within flushDelay (at once after Close);
// the caller holds mu.
func (s *Store) scheduleLocked() {
	if s.closed {
		s.saveLogged()
		return
	}
	if s.flush == nil {
		s.flush = time.AfterFunc(flushDelay, s.flushPending)
	}
}

// flushPending is the scheduled write.
func (s *Store) flushPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush = nil
	if len(s.pending) > 0 {
		s.sync()
		s.saveLogged()
	}
}

// saveLogged saves, logging a failure (nobody waits for a scheduled
// write); the caller holds mu.
func (s *Store) saveLogged() {
	if err := s.save(); err != nil {
		slog.Warn("trusted devices: write failed", slog.Any("err", err))
	}
}

// Flush writes what waits in memory now.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flush != nil {
		s.flush.Stop()
		s.flush = nil
	}
	if len(s.pending) == 0 {
		return nil
	}
	s.sync()
	return s.save()
}

// Close writes what waits in memory; later pins are written at once. It
// is safe to call more than once.
func (s *Store) Close() error {
	err := s.Flush()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return err
}

// Repair replaces the pinned fingerprint of id: the user paired it again.
func (s *Store) Repair(id, fingerprint string) error {
	if !valid(id, fingerprint) {
		return errors.New("malformed device id or fingerprint")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	d := s.devices[id]
	if d == nil {
		return fmt.Errorf("no device with id %s", id)
	}
	d.Fingerprint = fingerprint
	return s.save()
}

// SetTrusted marks a pinned device as trusted (or not).
func (s *Store) SetTrusted(id string, trusted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	d := s.devices[id]
	if d == nil {
		return fmt.Errorf("no device with id %s", id)
	}
	d.Trusted = trusted
	return s.save()
}

// IsTrusted reports whether id is trusted and presents its pinned fingerprint.
func (s *Store) IsTrusted(id, fingerprint string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	d := s.devices[id]
	return d != nil && d.Trusted && d.Fingerprint == fingerprint
}

// Forget removes a device: its next connection is a first contact again.
func (s *Store) Forget(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	delete(s.devices, id)
	delete(s.pending, id)
	return s.save()
}

// Pinned returns what is pinned for device id.
func (s *Store) Pinned(id string) (Device, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	d := s.devices[id]
	if d == nil {
		return Device{}, false
	}
	return *d, true
}

// IsPinned reports whether id is pinned with fingerprint: a paired device
// that reaches us by its id (remote.Host.Known) must be.
func (s *Store) IsPinned(id, fingerprint string) bool {
	d, ok := s.Pinned(id)
	return ok && d.Fingerprint == fingerprint
}

// List returns the devices sorted by name, then id.
func (s *Store) List() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// makeRoom makes room for one more device when the store is full: the
// least recently seen device goes, unless it is trusted or was seen within
// keepRecent; then nothing goes. The caller holds mu.
func (s *Store) makeRoom() {
	if len(s.devices) < maxDevices {
		return
	}
	cutoff := time.Now().Add(-keepRecent)
	var oldest *Device
	for _, d := range s.devices {
		if !d.Trusted && d.LastSeen.Before(cutoff) && (oldest == nil || d.LastSeen.Before(oldest.LastSeen)) {
			oldest = d
		}
	}
	if oldest != nil {
		delete(s.devices, oldest.ID)
		delete(s.pending, oldest.ID)
	}
}

// save writes the store atomically and clears pending; the caller holds mu.
func (s *Store) save() error {
	list := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		list = append(list, *d)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	// A temporary file of our own: two processes may save at once.
	if err := atomicfile.Write(s.path, data, 0o600); err != nil {
		return err
	}
	clear(s.pending)
	if info, err := os.Stat(s.path); err == nil {
		s.seen = info
	}
	return nil
}

// CodeLabel starts the input of Code; a new derivation gets a new label.
const CodeLabel = "peerdrop-code/2"

// Code is the verification code of one connection (docs/PROTOCOL.md
// section 11): both sides compute the same six digits from the dialer's and
// the listener's certificate fingerprints and the two nonces of the
// handshake. The listener committed to its nonce before it saw the
// dialer's, and the dialer chose its nonce before it saw the listener's,
// so a device in the middle cannot grind certificates or nonces until
// both codes match: each attempt is one guess in a million.
// Derivation: SHA-256 over CodeLabel, the dialer's fingerprint, the
// listener's fingerprint, the dialer's nonce and the listener's nonce (both
// in lower-case hex), each followed by "\n"; the first 8 bytes as a
// big-endian uint64, modulo 1,000,000, written as "ddd ddd".
func Code(dialerFP, listenerFP string, dialerNonce, listenerNonce []byte) string {
	msg := CodeLabel + "\n" + dialerFP + "\n" + listenerFP + "\n" +
		hex.EncodeToString(dialerNonce) + "\n" + hex.EncodeToString(listenerNonce) + "\n"
	sum := sha256.Sum256([]byte(msg))
	n := binary.BigEndian.Uint64(sum[:8]) % 1_000_000
	return fmt.Sprintf("%03d %03d", n/1000, n%1000)
}

// TrustCodeLabel starts the input of DeviceCode; a new derivation gets a
// new label.
const TrustCodeLabel = "peerdrop-trust/1"

// deviceCodeRounds makes each DeviceCode cost this many SHA-256 runs: a
// few milliseconds for us, and for a device that grinds certificates to
// match someone's code, this factor on 10^12 tries.
const deviceCodeRounds = 1 << 14

// DeviceCode is the twelve digits that stand for one device's certificate
// fingerprint in TrustCode, as "dddd dddd dddd". Derivation: h = SHA-256
// of TrustCodeLabel "\n" fingerprint "\n" (the fingerprint in lower case);
// then deviceCodeRounds-1 times h = SHA-256(h || fingerprint); the first 8
// bytes of h as a big-endian uint64, modulo 10^12.
func DeviceCode(fingerprint string) string {
	fp := []byte(strings.ToLower(fingerprint))
	h := sha256.Sum256([]byte(TrustCodeLabel + "\n" + string(fp) + "\n"))
	buf := make([]byte, 0, len(h)+len(fp))
	for range deviceCodeRounds - 1 {
		buf = append(append(buf[:0], h[:]...), fp...)
		h = sha256.Sum256(buf)
	}
	n := binary.BigEndian.Uint64(h[:8]) % 1_000_000_000_000
	s := fmt.Sprintf("%012d", n)
	return s[:4] + " " + s[4:8] + " " + s[8:]
}

// TrustCode is what two devices show when one is about to trust the other,
// before any connection (so without the nonces of Code): the DeviceCode of
// each device's fingerprint, the smaller first, joined by " · ". Both
// devices show the same 24 digits. Each half is bound to one certificate,
// so a device in the middle must grind a certificate whose twelve digits
// match a given device's, once for each side (10^12 tries of
// deviceCodeRounds hashes each); one code from both fingerprints together
// would fall to a birthday search over certificates for both sides at once
// (about 10^6 tries each for twelve digits).
func TrustCode(fingerprintA, fingerprintB string) string {
	a, b := DeviceCode(fingerprintA), DeviceCode(fingerprintB)
	if b < a {
		a, b = b, a
	}
	return a + " · " + b
}
