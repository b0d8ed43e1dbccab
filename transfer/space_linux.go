//go:build linux

package transfer

import "golang.org/x/sys/unix"

// freeSpace returns the bytes an unprivileged writer may still use on the
// file system holding dir; ok is false when it cannot be known.
func freeSpace(dir string) (free int64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	n := st.Bavail * uint64(st.Bsize)
	if n > 1<<62 {
		n = 1 << 62
	}
	return int64(n), true
}
