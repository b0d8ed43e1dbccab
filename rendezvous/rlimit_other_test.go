//go:build !linux

package rendezvous

import "testing"

// raiseFileLimit does nothing here: the benchmarks' tens of thousands of
// connections are measured on Linux.
func raiseFileLimit(b *testing.B, want int) {
	b.Logf("not raising the file limit to %d on this system", want)
}
