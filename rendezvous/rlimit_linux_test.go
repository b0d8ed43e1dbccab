package rendezvous

import (
	"syscall"
	"testing"
)

// raiseFileLimit lifts RLIMIT_NOFILE (soft) towards want: every client is
// one descriptor here and one in the server.
func raiseFileLimit(b *testing.B, want int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Logf("getrlimit: %v", err)
		return
	}
	if lim.Cur >= uint64(want) {
		return
	}
	if lim.Max < uint64(want) {
		// Root may raise the hard limit too (up to fs.nr_open).
		hard := lim
		hard.Cur, hard.Max = uint64(want), uint64(want)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &hard) == nil {
			return
		}
	}
	lim.Cur = min(max(uint64(want), lim.Cur), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < uint64(want) {
		b.Logf("open files limit %d is below the %d this benchmark needs (raise ulimit -n)", lim.Cur, want)
	}
}
