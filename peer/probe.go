package peer

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// ProbeTimeout bounds one probe, connect included, unless the caller's
// context ends sooner.
const ProbeTimeout = 3 * time.Second

// Probe asks the LAN listener at addr (HOST:PORT) who it is, without a
// handshake (docs/PROTOCOL.md section 2.5), and returns its hello: a claim,
// like any hello, that only a handshake proves. It fails with an
// *UnreachableError (errors.Is finds syscall.ECONNREFUSED and the like)
// when nothing listens there, and with signaling.ErrHidden when a listener is
// there but does not want to be found.
func Probe(ctx context.Context, addr string) (signaling.Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return signaling.Hello{}, &UnreachableError{Addr: addr, Err: err}
	}
	defer tcp.Close()
	h, err := signaling.Probe(ctx, tcp)
	if err != nil {
		return signaling.Hello{}, fmt.Errorf("probe %s: %w", addr, err)
	}
	return h, nil
}
