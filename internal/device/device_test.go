package device

import (
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

func TestIDFor(t *testing.T) {
	for _, tc := range []struct{ name, fp, want string }{
		{"known answer", katFingerprint, katID},
		{"lower-case hex", strings.ToLower(katFingerprint), katID},
		{"no prefix", strings.TrimPrefix(katFingerprint, "sha-256 "), ""},
		{"other hash", "sha-1 " + strings.TrimPrefix(katFingerprint, "sha-256 "), ""},
		{"short", katFingerprint[:len(katFingerprint)-3], ""},
		{"long", katFingerprint + ":00", ""},
		{"not hex", strings.Replace(katFingerprint, "0F", "0G", 1), ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, IDFor(tc.fp))
		})
	}
}

func TestCheckID(t *testing.T) {
	require.NoError(t, CheckID(katID, katFingerprint))
	assert.ErrorIs(t, CheckID("0f1e2d3c4b5a69788796a5b4c3d2e1f1", katFingerprint), ErrIDMismatch, "one digit off")
	assert.ErrorIs(t, CheckID(strings.ToUpper(katID), katFingerprint), ErrIDMismatch, "ids are lower case")
	assert.ErrorIs(t, CheckID("", "not a fingerprint"), ErrIDMismatch, "a malformed fingerprint matches nothing")
}

func TestValidate(t *testing.T) {
	good := Device{ID: katID, Name: "Kitchen PC", Type: TypeLaptop, Fingerprint: katFingerprint}
	require.NoError(t, good.Validate())
	require.NoError(t, good.ValidateAdvertised())

	mod := func(f func(*Device)) Device { d := good; f(&d); return d }
	for _, tc := range []struct {
		name string
		d    Device
		want error
	}{
		{"no id", mod(func(d *Device) { d.ID = "" }), ErrBadID},
		{"id with a space", mod(func(d *Device) { d.ID = "a b" }), ErrBadID},
		{"no name", mod(func(d *Device) { d.Name = "" }), ErrBadName},
		{"long name", mod(func(d *Device) { d.Name = strings.Repeat("x", 65) }), ErrBadName},
		{"control character", mod(func(d *Device) { d.Name = "tab\there" }), ErrBadName},
		{"not UTF-8", mod(func(d *Device) { d.Name = "\xff" }), ErrBadName},
		{"lower-case fingerprint", mod(func(d *Device) { d.Fingerprint = strings.ToLower(katFingerprint) }), ErrBadFingerprint},
		{"other certificate", mod(func(d *Device) { d.ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f1" }), ErrIDMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, tc.d.Validate(), tc.want)
			assert.ErrorIs(t, tc.d.ValidateAdvertised(), tc.want)
		})
	}

	// The type is a claim for Validate, a requirement for ValidateAdvertised.
	for _, typ := range []string{"", "toaster", "Desktop"} {
		d := mod(func(d *Device) { d.Type = typ })
		assert.NoError(t, d.Validate(), typ)
		assert.ErrorIs(t, d.ValidateAdvertised(), ErrUnknownType, typ)
	}
}

// The name errors read as they did when signaling owned them: users see
// them when they set a name.
func TestValidateNameWords(t *testing.T) {
	assert.EqualError(t, ValidateName(""), "display name must be 1 to 64 bytes of UTF-8")
	assert.EqualError(t, ValidateName("a\nb"), "display name has a control character")
	assert.NoError(t, ValidateName("Café ☕"))
}
