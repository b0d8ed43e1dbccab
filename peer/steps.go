package peer

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// The steps of a connection that can fail, told apart so that the engine
// can say in plain words which one did (docs/PROTOCOL.md section 3): the
// TCP connect to the handshake port (UnreachableError), the handshake
// itself (signaling's errors, a refusal among them), and the data path over
// UDP after it (NoPathError).

// UnreachableError means the TCP connect to a handshake port failed:
// nothing listens there (errors.Is finds syscall.ECONNREFUSED), or nothing
// answered (a firewall dropping it, a device gone).
type UnreachableError struct {
	Addr string // HOST:PORT dialed
	Err  error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("dial %s: %v", e.Addr, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Port is the TCP port dialed (0 when Addr has none).
func (e *UnreachableError) Port() int {
	_, p, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// NoPathError means the handshake worked but no data path opened: ICE
// found no pair of addresses that reach each other, which on a LAN means
// UDP is blocked between the two devices.
type NoPathError struct {
	Err error
	// UDPPorts are the ports of the peer's host candidates, sorted, each
	// once (one port: the peer uses one UDP port for every connection);
	// none when unknown.
	UDPPorts []int
}

func (e *NoPathError) Error() string { return e.Err.Error() }
func (e *NoPathError) Unwrap() error { return e.Err }

// hostPorts lists the ports of the host candidates in an SDP.
func hostPorts(sdp string) []int {
	var out []int
	for line := range strings.Lines(sdp) {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "a="))
		// candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
		if len(f) < 8 || !strings.HasPrefix(f[0], "candidate:") || !strings.EqualFold(f[2], "udp") || f[7] != "host" {
			continue
		}
		if p, err := strconv.Atoi(f[5]); err == nil && p > 0 && p < 65536 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
