// Package device says who a device is: its id, display name, type and
// certificate fingerprint, and what makes each well formed. Every package
// that names a device (the LAN hello, discovery, transfer, pairing, the
// rendezvous server, the trust store, the engine) uses this type and these
// checks, so a rule has one home. It depends on the standard library only,
// so the rendezvous server links no WebRTC or mDNS code through it.
package device

import (
	"errors"
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"
)

// Device is who a device says it is. Its JSON form is the rendezvous
// hello's device object (docs/PROTOCOL-rendezvous.md); other wire formats
// spell it their own way.
type Device struct {
	ID          string `json:"device_id,omitempty"`   // IDFor(Fingerprint)
	Name        string `json:"name,omitempty"`        // display name, ValidateName
	Type        string `json:"type,omitempty"`        // one of the Type constants; a claim
	Fingerprint string `json:"fingerprint,omitempty"` // "sha-256 AA:BB:...", as in SDP
}

// Device types, as a DNS-SD record, a hello or the rendezvous server
// carries them.
const (
	TypeDesktop = "desktop"
	TypeLaptop  = "laptop"
	TypePhone   = "phone"
	TypeTablet  = "tablet"
	TypeServer  = "server"
)

// Errors of the checks below. Validate wraps them, so callers can use
// errors.Is.
var (
	ErrBadID          = errors.New("bad device id")
	ErrBadName        = errors.New("bad display name")
	ErrBadFingerprint = errors.New("bad fingerprint")
	// ErrIDMismatch means a device id is not the one its fingerprint
	// derives: whoever sent the pair does not hold the certificate the id
	// names.
	ErrIDMismatch  = errors.New("device id does not match its certificate")
	ErrUnknownType = errors.New("unknown device type")
)

var (
	idRe          = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	fingerprintRe = regexp.MustCompile(`^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$`)
)

// Validate checks the id, name and fingerprint, in that order, and that
// the id derives from the fingerprint. The type is a claim and is not
// checked (ValidateAdvertised does).
func (d Device) Validate() error {
	if err := ValidateID(d.ID); err != nil {
		return err
	}
	if err := ValidateName(d.Name); err != nil {
		return err
	}
	if err := ValidateFingerprint(d.Fingerprint); err != nil {
		return err
	}
	return CheckID(d.ID, d.Fingerprint)
}

// ValidateAdvertised is Validate plus a known type: what a DNS-SD record
// or a rendezvous hello must carry.
func (d Device) ValidateAdvertised() error {
	if err := d.Validate(); err != nil {
		return err
	}
	if !ValidType(d.Type) {
		return fmt.Errorf("%w %q", ErrUnknownType, d.Type)
	}
	return nil
}

// ValidateID checks the form of an id: 1 to 64 letters, digits, '-' or
// '_'. Only CheckID says whether it is the id of a certificate.
func ValidateID(id string) error {
	if !idRe.MatchString(id) {
		return ErrBadID
	}
	return nil
}

// ValidateName checks a display name: 1 to 64 bytes of printable UTF-8.
func ValidateName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return nameError("display name must be 1 to 64 bytes of UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return nameError("display name has a control character")
		}
	}
	return nil
}

// nameError says what is wrong with a name in words a user reads as they
// are (a name is typed in settings and flags); it is an ErrBadName.
type nameError string

func (e nameError) Error() string        { return string(e) }
func (e nameError) Is(target error) bool { return target == ErrBadName }

// ValidateFingerprint checks the canonical form of a fingerprint:
// "sha-256 " and 32 upper-case hex bytes separated by colons.
func ValidateFingerprint(fp string) error {
	if !fingerprintRe.MatchString(fp) {
		return ErrBadFingerprint
	}
	return nil
}

// ValidType reports whether t is one of the device types above.
func ValidType(t string) bool {
	switch t {
	case TypeDesktop, TypeLaptop, TypePhone, TypeTablet, TypeServer:
		return true
	}
	return false
}
