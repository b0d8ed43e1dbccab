package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// Service is the DNS-SD service type every peerdrop device advertises.
const Service = "_peerdrop._tcp"

// Domain is the mDNS domain.
const Domain = "local."

// Device types, as carried in the TXT record "type".
const (
	TypeDesktop = "desktop"
	TypeLaptop  = "laptop"
	TypePhone   = "phone"
	TypeTablet  = "tablet"
	TypeServer  = "server"
)

// ValidType reports whether t is one of the device types above.
func ValidType(t string) bool {
	switch t {
	case TypeDesktop, TypeLaptop, TypePhone, TypeTablet, TypeServer:
		return true
	}
	return false
}

// Info is what a device says about itself in its TXT record.
type Info struct {
	ID          string // stable device id
	Name        string // display name
	Type        string // one of the Type constants
	Version     int    // protocol version (signaling.Version)
	Fingerprint string // certificate fingerprint, "sha-256 AA:BB:..."
}

// TXT keys. Short keys keep the record small (RFC 6763 §6.2 asks for
// records under 200 bytes where possible; ours is about 150).
const (
	keyVersion     = "v"
	keyID          = "id"
	keyName        = "name"
	keyType        = "type"
	keyFingerprint = "fp"
)

// Validate checks what a hello checks, plus the device type.
func (i Info) Validate() error {
	h := signaling.Hello{DeviceID: i.ID, Name: i.Name, Version: i.Version, Fingerprint: i.Fingerprint}
	if err := h.Validate(); err != nil {
		return err
	}
	if !ValidType(i.Type) {
		return fmt.Errorf("%w: unknown device type %q", signaling.ErrMalformed, i.Type)
	}
	return nil
}

// EncodeTXT returns the TXT strings for i, "key=value" each (RFC 6763 §6.3).
// The version comes first, as RFC 6763 §6.7 recommends.
func EncodeTXT(i Info) []string {
	return []string{
		keyVersion + "=" + strconv.Itoa(i.Version),
		keyID + "=" + i.ID,
		keyName + "=" + i.Name,
		keyType + "=" + i.Type,
		keyFingerprint + "=" + i.Fingerprint,
	}
}

// maxTXTStrings bounds the work done on a hostile record.
const maxTXTStrings = 64

// DecodeTXT parses and validates a TXT record. Keys are case-insensitive and
// only the first occurrence of a key counts (RFC 6763 §6.4); unknown keys are
// ignored so later versions can add some. A missing name falls back to
// instance, the DNS-SD instance name.
func DecodeTXT(txt []string, instance string) (Info, error) {
	if len(txt) > maxTXTStrings {
		return Info{}, fmt.Errorf("%w: TXT record with %d strings", signaling.ErrMalformed, len(txt))
	}
	seen := make(map[string]string, 5)
	for _, s := range txt {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			continue
		}
		k = strings.ToLower(k)
		if _, dup := seen[k]; !dup {
			seen[k] = v
		}
	}
	v, err := strconv.Atoi(seen[keyVersion])
	if err != nil {
		return Info{}, fmt.Errorf("%w: TXT record without a protocol version", signaling.ErrMalformed)
	}
	i := Info{
		ID:          seen[keyID],
		Name:        seen[keyName],
		Type:        seen[keyType],
		Version:     v,
		Fingerprint: seen[keyFingerprint],
	}
	if i.Name == "" {
		i.Name = instance
	}
	if err := i.Validate(); err != nil {
		return Info{}, err
	}
	return i, nil
}

// instanceName is the DNS-SD instance name for a display name: the name
// itself, cut to the 63 bytes a DNS label can hold, at a rune boundary.
func instanceName(name string) string {
	const maxLabel = 63
	if len(name) <= maxLabel {
		return name
	}
	cut := maxLabel
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}

// DetectType guesses this machine's device type: a laptop has a battery;
// a Linux machine with no display session is a server; else a desktop.
func DetectType() string {
	matches, _ := filepath.Glob("/sys/class/power_supply/*/type")
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil && strings.TrimSpace(string(b)) == "Battery" {
			return TypeLaptop
		}
	}
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return TypeServer
	}
	return TypeDesktop
}
