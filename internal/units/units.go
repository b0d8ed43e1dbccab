// Package units writes sizes for people, one way everywhere: the desktop
// app, the CLI and the messages the core sends (a decline's reason). The
// web page has the same rules in web/static/units.js, held to these by the
// e2e web test (the cases in units_test.go).
package units

import (
	"fmt"
	"math"
)

// Bytes writes a size in SI units, as file managers do: "980 B", "1.5 kB",
// "12.3 MB", "456 MB", "2.1 GB". One decimal below 100, none from 100 on;
// a negative size is "0 B".
func Bytes(n int64) string {
	if n < 1000 {
		if n < 0 {
			n = 0
		}
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n) / 1000
	i := 0
	// What rounds to 1000 is the next unit's "1.0".
	for math.Round(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	// Rounded by hand, half away from zero (fmt rounds half to even): the
	// page's Math.round does the same, so both write the same figure.
	if t := math.Round(v * 10); t < 1000 {
		return fmt.Sprintf("%.1f %s", t/10, units[i])
	}
	return fmt.Sprintf("%.0f %s", math.Round(v), units[i])
}

// Speed writes bytes per second: "12.3 MB/s"; "" when not moving.
func Speed(bps float64) string {
	if bps <= 0 {
		return ""
	}
	return Bytes(int64(bps)) + "/s"
}
