package relay

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// rtnetlink multicast groups of address changes (linux/rtnetlink.h).
const (
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv6IfAddr = 0x100
)

// notifyAddressChanges sends on changed (without blocking) whenever the
// kernel reports an IPv4 or IPv6 address added or removed (rtnetlink
// multicast groups), and when it had to drop such reports. Its reader
// goroutine, counted in wg, ends when stop is called.
func notifyAddressChanges(changed chan<- struct{}, wg *sync.WaitGroup) (stop func(), err error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	sa := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: rtmgrpIPv4IfAddr | rtmgrpIPv6IfAddr}
	if err := syscall.Bind(fd, sa); err != nil {
		_ = syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	// A non-blocking descriptor joins Go's poller, so Close ends a Read.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			_, err := f.Read(buf)
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// A message, or ENOBUFS (reports were lost): read again either way.
			select {
			case changed <- struct{}{}:
			default:
			}
			if err != nil && !errors.Is(err, syscall.ENOBUFS) {
				return
			}
		}
	})
	return func() { _ = f.Close() }, nil
}
