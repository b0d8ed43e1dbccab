package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// Probes (docs/PROTOCOL.md section 2.5): a device that finds others without
// multicast asks each address "who are you" on the handshake port. The
// listener speaks first as always; the prober answers its hello with a
// probe frame instead of its own hello, and a listener that may be found
// sends its hello again, without a commit, and closes. A hidden listener
// closes without a word: the prober lists nothing.

var (
	// ErrProbed is what Answerer returns when the dialer sent a probe
	// frame instead of its hello: no handshake follows. The listener
	// answers with AnswerProbe, or closes when it is hidden.
	ErrProbed = errors.New("the dialer asked who we are (a probe), no handshake")
	// ErrHidden means a listener answered the TCP connect and its hello,
	// but not the probe: it does not want to be found (receive --hidden).
	ErrHidden = errors.New("the device does not answer probes (it is hidden)")
)

// probeMessage is the probe frame's payload: an empty object, room for
// options later.
type probeMessage struct{}

// AnswerProbe answers a probe on conn with local, our hello without a
// commit (no handshake follows). The caller closes conn.
func AnswerProbe(ctx context.Context, conn net.Conn, local Hello) error {
	s := &session{conn: conn, ctx: ctx}
	local.Commit, local.Nonce = "", ""
	return s.send(TypeHello, local)
}

// Probe asks the listener at the other end of conn who it is and returns
// its hello, the second one (which must name the same device as the
// first). It fails with ErrHidden when the listener closes instead, and
// with the handshake's errors otherwise. The caller closes conn.
func Probe(ctx context.Context, conn net.Conn) (Hello, error) {
	s := &session{conn: conn, ctx: ctx}
	first, err := s.readHello()
	if err != nil {
		return Hello{}, err
	}
	if first.Commit == "" {
		return Hello{}, s.fail(CodeBadHello, fmt.Errorf("%w: the listener's hello has no commit", ErrMalformed))
	}
	if err := s.send(TypeProbe, probeMessage{}); err != nil {
		return Hello{}, err
	}
	again, err := s.readHello()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return Hello{}, ErrHidden
		}
		return Hello{}, err
	}
	if again.ID != first.ID || again.Fingerprint != first.Fingerprint {
		return Hello{}, fmt.Errorf("%w: the probe's answer names another device than the hello", ErrMalformed)
	}
	return again, nil
}
