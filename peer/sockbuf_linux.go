package peer

import (
	"net"
	"syscall"
)

// forceBuffers sets both buffers of c to n bytes: past net.core.rmem_max
// where the process may (SO_RCVBUFFORCE, CAP_NET_ADMIN), else up to it.
func forceBuffers(c *net.UDPConn, n int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{syscall.SO_RCVBUFFORCE, syscall.SO_RCVBUF}, {syscall.SO_SNDBUFFORCE, syscall.SO_SNDBUF}} {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o[0], n) != nil {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o[1], n)
			}
		}
	})
}

// readBuffer is the receive buffer the kernel granted c, in bytes of
// payload: Linux reports twice what it accounts for (its bookkeeping).
func readBuffer(c *net.UDPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	v := 0
	_ = raw.Control(func(fd uintptr) {
		v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return v / 2
}
