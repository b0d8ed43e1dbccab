package discovery

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// Service is the DNS-SD service type every peerdrop device advertises.
const Service = "_peerdrop._tcp"

// Domain is the mDNS domain.
const Domain = "local."

// Device types, as carried in the TXT record "type" (device.Type*).
const (
	TypeDesktop = device.TypeDesktop
	TypeLaptop  = device.TypeLaptop
	TypePhone   = device.TypePhone
	TypeTablet  = device.TypeTablet
	TypeServer  = device.TypeServer
)

// ValidType reports whether t is one of the device types (device.ValidType).
func ValidType(t string) bool { return device.ValidType(t) }

// Info is what a device says about itself in its TXT record.
type Info struct {
	device.Device
	Version int // protocol version (signaling.Version)
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
	h := signaling.Hello{Device: i.Device, Version: i.Version}
	if err := h.Validate(); err != nil {
		return err
	}
	if !device.ValidType(i.Type) {
		return fmt.Errorf("%w: %w %q", signaling.ErrMalformed, device.ErrUnknownType, i.Type)
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
		Device: device.Device{
			ID:          seen[keyID],
			Name:        seen[keyName],
			Type:        seen[keyType],
			Fingerprint: seen[keyFingerprint],
		},
		Version: v,
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

// DetectType guesses this machine's device type from what the system says
// of itself; see detectType.
func DetectType() string {
	return detectType(os.DirFS("/"), runtime.GOOS, os.Getenv)
}

// detectType reads, in order of trust:
//   - the chassis the administrator set (CHASSIS= in /etc/machine-info, as
//     hostnamectl set-chassis writes it);
//   - the chassis the firmware reports (SMBIOS chassis type in
//     /sys/class/dmi/id/chassis_type);
//   - a battery that powers the system (a laptop), not the battery of a
//     wireless mouse or keyboard (scope "Device"), which a desktop has too;
//   - on Linux, no display session: a server;
//
// and calls anything else a desktop. A command line run over ssh on a
// desktop computer is a desktop, not a server: the chassis says so.
func detectType(root fs.FS, goos string, getenv func(string) string) string {
	if b, err := fs.ReadFile(root, "etc/machine-info"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if ok && k == "CHASSIS" {
				if t := chassisType(strings.Trim(v, `"'`)); t != "" {
					return t
				}
			}
		}
	}
	if b, err := fs.ReadFile(root, "sys/class/dmi/id/chassis_type"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if t := smbiosType(n); t != "" {
				return t
			}
		}
	}
	supplies, _ := fs.Glob(root, "sys/class/power_supply/*/type")
	for _, m := range supplies {
		b, err := fs.ReadFile(root, m)
		if err != nil || strings.TrimSpace(string(b)) != "Battery" {
			continue
		}
		scope, _ := fs.ReadFile(root, path.Join(path.Dir(m), "scope"))
		if strings.TrimSpace(string(scope)) != "Device" {
			return TypeLaptop
		}
	}
	if goos == "linux" && getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return TypeServer
	}
	return TypeDesktop
}

// chassisType maps a machine-info CHASSIS value (systemd's
// machine-info(5)); "" when it names none of our types.
func chassisType(v string) string {
	switch v {
	case "desktop":
		return TypeDesktop
	case "laptop", "convertible":
		return TypeLaptop
	case "server", "vm", "container":
		return TypeServer
	case "tablet":
		return TypeTablet
	case "handset":
		return TypePhone
	}
	return ""
}

// smbiosType maps an SMBIOS chassis type (DMTF DSP0134, 7.4.1); "" for
// "other", "unknown" and what fits none of our types.
func smbiosType(n int) string {
	switch n {
	case 3, 4, 5, 6, 7, 13, 15, 16, 24, 34, 35, 36:
		// desktop, low profile, pizza box, mini tower, tower, all in one,
		// space-saving, lunch box, sealed-case PC, embedded PC, mini PC, stick PC
		return TypeDesktop
	case 8, 9, 10, 14, 31, 32:
		// portable, laptop, notebook, sub notebook, convertible, detachable
		return TypeLaptop
	case 30:
		return TypeTablet
	case 17, 23, 25, 28, 29:
		// main server chassis, rack mount, multi-system, blade, blade enclosure
		return TypeServer
	}
	return ""
}
