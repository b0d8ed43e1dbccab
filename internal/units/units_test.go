package units

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// cases are the rules; the e2e web test (TestWebClient) holds
// web/static/units.js to Bytes on the same sizes.
var cases = []struct {
	N    int64
	Want string
}{
	{-1, "0 B"}, {0, "0 B"}, {1, "1 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {1023, "1.0 kB"}, {1024, "1.0 kB"},
	{1250, "1.3 kB"}, {1500, "1.5 kB"}, {2_250, "2.3 kB"}, {99_949, "99.9 kB"}, {99_950, "100 kB"}, {999_499, "999 kB"}, {999_500, "1.0 MB"}, {999_949, "1.0 MB"},
	{999_960, "1.0 MB"}, {12_345_678, "12.3 MB"}, {200 << 20, "210 MB"}, {456_000_000, "456 MB"},
	{2_100_000_000, "2.1 GB"}, {1 << 30, "1.1 GB"}, {5_000_000_000_000, "5.0 TB"}, {1 << 62, "4.6 EB"},
}

func TestBytes(t *testing.T) {
	for _, tc := range cases {
		assert.Equal(t, tc.Want, Bytes(tc.N), "Bytes(%d)", tc.N)
	}
}

func TestSpeed(t *testing.T) {
	assert.Equal(t, "12.3 MB/s", Speed(12.3e6))
	assert.Equal(t, "", Speed(0))
	assert.Equal(t, "", Speed(-5))
}
