package discovery

import (
	"maps"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/signaling"
)

func TestTXTRoundTrip(t *testing.T) {
	info := testInfo()
	require.NoError(t, info.Validate())
	txt := EncodeTXT(info)
	assert.Equal(t, []string{
		"v=2",
		"id=" + testID,
		"name=Alice's Laptop",
		"type=laptop",
		"fp=" + info.Fingerprint,
	}, txt, "version first (RFC 6763 §6.7), key=value each")

	got, err := DecodeTXT(txt, "some instance")
	require.NoError(t, err)
	assert.Equal(t, info, got)
}

func TestDecodeTXTKeysCaseInsensitive(t *testing.T) {
	info := testInfo()
	got, err := DecodeTXT([]string{"V=2", "ID=" + info.ID, "Name=" + info.Name, "TYPE=laptop", "Fp=" + info.Fingerprint}, "x")
	require.NoError(t, err)
	assert.Equal(t, info, got)
}

func TestDecodeTXTFirstOccurrenceWins(t *testing.T) {
	info := testInfo()
	txt := append(EncodeTXT(info),
		"name=Second", "NAME=Third", "id=ffffffffffffffff", "type=toaster", "v=3", "fp=bad")
	got, err := DecodeTXT(txt, "x")
	require.NoError(t, err, "later (invalid) duplicates are ignored")
	assert.Equal(t, info, got)

	// And an invalid first occurrence is not rescued by a valid later one.
	txt = []string{"v=2", "type=toaster", "id=" + info.ID, "name=A", "TYPE=laptop", "fp=" + info.Fingerprint}
	_, err = DecodeTXT(txt, "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "toaster")
}

func TestDecodeTXTUnknownKeysIgnored(t *testing.T) {
	info := testInfo()
	txt := append([]string{"color=blue", "flag", "=nokey", "", "future=a=b"}, EncodeTXT(info)...)
	got, err := DecodeTXT(txt, "x")
	require.NoError(t, err)
	assert.Equal(t, info, got)
}

func TestDecodeTXTNameFallsBackToInstance(t *testing.T) {
	info := testInfo()
	got, err := DecodeTXT(withoutKey(EncodeTXT(info), keyName), "Alice Laptop")
	require.NoError(t, err)
	assert.Equal(t, "Alice Laptop", got.Name, "no name key")

	info.Name = ""
	got, err = DecodeTXT(EncodeTXT(info), "Alice Laptop")
	require.NoError(t, err)
	assert.Equal(t, "Alice Laptop", got.Name, "empty name")

	// The instance then has to be a valid name.
	_, err = DecodeTXT(EncodeTXT(info), "")
	assert.ErrorIs(t, err, signaling.ErrMalformed)
}

func TestDecodeTXTRejects(t *testing.T) {
	set := func(key, value string) func([]string) []string {
		return func(txt []string) []string { return append(withoutKey(txt, key), key+"="+value) }
	}
	drop := func(key string) func([]string) []string {
		return func(txt []string) []string { return withoutKey(txt, key) }
	}
	lowerFP := strings.ToLower(fingerprint(0xAB))
	for _, tc := range []struct {
		name string
		mod  func([]string) []string
		want error
	}{
		{"missing version", drop(keyVersion), signaling.ErrMalformed},
		{"empty version", set(keyVersion, ""), signaling.ErrMalformed},
		{"non-numeric version", set(keyVersion, "one"), signaling.ErrMalformed},
		{"version 1", set(keyVersion, "1"), signaling.ErrVersion},
		{"version 3", set(keyVersion, "3"), signaling.ErrVersion},
		{"version 0", set(keyVersion, "0"), signaling.ErrVersion},
		{"missing id", drop(keyID), signaling.ErrMalformed},
		{"empty id", set(keyID, ""), signaling.ErrMalformed},
		{"65-char id", set(keyID, strings.Repeat("a", 65)), signaling.ErrMalformed},
		{"id with slash", set(keyID, "a/b"), signaling.ErrMalformed},
		{"lower-case fingerprint", set(keyFingerprint, lowerFP), signaling.ErrMalformed},
		{"short fingerprint", set(keyFingerprint, fingerprint(0xAB)[:len(fingerprint(0xAB))-3]), signaling.ErrMalformed},
		{"missing fingerprint", drop(keyFingerprint), signaling.ErrMalformed},
		{"unknown type", set(keyType, "toaster"), signaling.ErrMalformed},
		{"missing type", drop(keyType), signaling.ErrMalformed},
		{"control char in name", set(keyName, "Bad\x07Name"), signaling.ErrMalformed},
		{"newline in name", set(keyName, "Two\nLines"), signaling.ErrMalformed},
		{"65-byte name", set(keyName, strings.Repeat("n", 65)), signaling.ErrMalformed},
		{"invalid UTF-8 name", set(keyName, "bad\xff"), signaling.ErrMalformed},
		{"too many strings", func(txt []string) []string {
			for len(txt) <= maxTXTStrings {
				txt = append(txt, "pad=1")
			}
			return txt
		}, signaling.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			txt := tc.mod(EncodeTXT(testInfo()))
			got, err := DecodeTXT(txt, "Alice Laptop")
			require.Error(t, err, "%q", txt)
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, Info{}, got)
		})
	}
}

func TestDecodeTXTExactlyMaxStrings(t *testing.T) {
	txt := EncodeTXT(testInfo())
	for len(txt) < maxTXTStrings {
		txt = append(txt, "pad=1")
	}
	got, err := DecodeTXT(txt, "x")
	require.NoError(t, err, "%d strings are allowed", maxTXTStrings)
	assert.Equal(t, testInfo(), got)
}

// txtSize is a TXT record's RDATA size: each string and its length byte.
func txtSize(txt []string) int {
	n := 0
	for _, s := range txt {
		n += len(s) + 1
	}
	return n
}

func TestTXTSize(t *testing.T) {
	typical := txtSize(EncodeTXT(testInfo()))
	t.Logf("TXT record for %q: %d bytes", testInfo().Name, typical)
	assert.Less(t, typical, 200, "RFC 6763 §6.2: under 200 bytes for a typical name")

	// The longest record: 64-byte name and 64-char id.
	info := testInfo()
	info.Name = strings.Repeat("n", 64)
	require.NoError(t, info.Validate())
	txt := EncodeTXT(info)
	for _, s := range txt {
		assert.LessOrEqual(t, len(s), 255, "a TXT string holds 255 bytes: %q", s)
	}
	t.Logf("TXT record with a 64-byte name: %d bytes (over 200: RFC 6763 §6.2 only asks for that where possible)", txtSize(txt))
	assert.Less(t, txtSize(txt), 400, "RFC 6763 §6.2: up to 400 bytes should work")
}

func TestInstanceName(t *testing.T) {
	assert.Equal(t, "Alice's Laptop", instanceName("Alice's Laptop"))
	n63 := strings.Repeat("x", 63)
	assert.Equal(t, n63, instanceName(n63), "63 bytes fit a label")
	assert.Equal(t, n63, instanceName(n63+"yz"))

	long := strings.Repeat("é", 35) // 70 bytes, 2 per rune
	got := instanceName(long)
	assert.LessOrEqual(t, len(got), 63)
	assert.True(t, utf8.ValidString(got), "cut at a rune boundary: %q", got)
	assert.Equal(t, strings.Repeat("é", 31), got, "as many whole runes as fit")

	// A 3-byte rune straddling byte 63.
	got = instanceName("a" + strings.Repeat("€", 30)) // 91 bytes; runes start at 1, 4, ..., 61, 64
	assert.True(t, utf8.ValidString(got))
	assert.Equal(t, "a"+strings.Repeat("€", 20), got)
}

func TestValidType(t *testing.T) {
	for _, typ := range []string{TypeDesktop, TypeLaptop, TypePhone, TypeTablet, TypeServer} {
		assert.True(t, ValidType(typ), typ)
	}
	for _, typ := range []string{"", "toaster", "Laptop", "laptop ", "LAPTOP"} {
		assert.False(t, ValidType(typ), "%q", typ)
	}
}

func TestInfoValidateType(t *testing.T) {
	info := testInfo()
	require.NoError(t, info.Validate())
	info.Type = "toaster"
	err := info.Validate()
	require.ErrorIs(t, err, signaling.ErrMalformed)
	assert.Contains(t, err.Error(), `"toaster"`)
}

func TestDetectType(t *testing.T) {
	assert.True(t, ValidType(DetectType()))

	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	mouse := fstest.MapFS{ // a wireless mouse's battery, as the kernel lists it
		"sys/class/power_supply/hidpp_battery_0/type":  file("Battery\n"),
		"sys/class/power_supply/hidpp_battery_0/scope": file("Device\n"),
	}
	withMouse := func(extra fstest.MapFS) fstest.MapFS {
		out := fstest.MapFS{}
		maps.Copy(out, mouse)
		maps.Copy(out, extra)
		return out
	}
	display := func(k string) string {
		if k == "DISPLAY" {
			return ":0"
		}
		return ""
	}
	noDisplay := func(string) string { return "" }
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		env  func(string) string
		want string
	}{
		{"a desktop with a wireless mouse is no laptop", mouse, display, TypeDesktop},
		{"over ssh, the chassis says desktop", withMouse(fstest.MapFS{"sys/class/dmi/id/chassis_type": file("3\n")}), noDisplay, TypeDesktop},
		{"a tower", fstest.MapFS{"sys/class/dmi/id/chassis_type": file("7\n")}, noDisplay, TypeDesktop},
		{"a notebook", fstest.MapFS{"sys/class/dmi/id/chassis_type": file("10\n")}, display, TypeLaptop},
		{"a rack server", fstest.MapFS{"sys/class/dmi/id/chassis_type": file("23\n")}, display, TypeServer},
		{"a laptop's battery", fstest.MapFS{"sys/class/power_supply/BAT0/type": file("Battery\n"), "sys/class/power_supply/BAT0/scope": file("System\n")}, noDisplay, TypeLaptop},
		{"a battery without scope", fstest.MapFS{"sys/class/power_supply/BAT0/type": file("Battery\n")}, noDisplay, TypeLaptop},
		{"the administrator's word first", fstest.MapFS{"etc/machine-info": file("PRETTY_HOSTNAME=x\nCHASSIS=\"desktop\"\n"), "sys/class/dmi/id/chassis_type": file("9\n")}, noDisplay, TypeDesktop},
		{"a VM says other: no display, a server", fstest.MapFS{"sys/class/dmi/id/chassis_type": file("1\n")}, noDisplay, TypeServer},
		{"nothing known, a display", fstest.MapFS{}, display, TypeDesktop},
		{"nothing known, Wayland", fstest.MapFS{}, func(k string) string { return map[string]string{"WAYLAND_DISPLAY": "wayland-0"}[k] }, TypeDesktop},
	} {
		assert.Equal(t, tc.want, detectType(tc.fs, "linux", tc.env), tc.name)
	}
	assert.Equal(t, TypeDesktop, detectType(fstest.MapFS{}, "darwin", noDisplay), "no DISPLAY on a Mac says nothing")
}

func TestFreeInstance(t *testing.T) {
	assert.Equal(t, "Laptop (2)", freeInstance("Laptop", map[string]bool{"laptop": true}))
	assert.Equal(t, "Laptop (3)", freeInstance("Laptop", map[string]bool{"laptop": true, "laptop (2)": true}))
	long := strings.Repeat("é", 40) // 80 bytes
	got := freeInstance(long, nil)
	assert.LessOrEqual(t, len(got), 63)
	assert.True(t, utf8.ValidString(got))
	assert.True(t, strings.HasSuffix(got, " (2)"))
}
