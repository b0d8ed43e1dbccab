package pairing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// side names one end of a relay: the message's sender.
type side int

const (
	sideA side = iota // the initiator in most tests
	sideB
)

// hook sees the n-th message (from 0) sent by from and returns what the
// relay delivers instead: nil drops it, several are delivered in order.
type hook func(from side, n int, msg []byte) [][]byte

// relay is an in-memory, untrusted relay between two endpoints. Delivery is
// synchronous (Send puts the result in the other end's inbox), so a test
// needs no goroutine besides its two Authenticate calls.
type relay struct {
	mu    sync.Mutex
	hook  hook
	count [2]int
	log   [2][][]byte // what each side sent, before the hook
	inbox [2]chan []byte
}

func newRelay(h hook) *relay {
	return &relay{hook: h, inbox: [2]chan []byte{make(chan []byte, 16), make(chan []byte, 16)}}
}

func (r *relay) end(s side) Transport { return endpoint{r: r, s: s} }

func (r *relay) sent(s side) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.log[s]...)
}

type endpoint struct {
	r *relay
	s side
}

func (e endpoint) Send(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg = append([]byte(nil), msg...)
	e.r.mu.Lock()
	n := e.r.count[e.s]
	e.r.count[e.s]++
	e.r.log[e.s] = append(e.r.log[e.s], msg)
	e.r.mu.Unlock()
	out := [][]byte{msg}
	if e.r.hook != nil {
		out = e.r.hook(e.s, n, msg)
	}
	for _, m := range out {
		select {
		case e.r.inbox[1-e.s] <- m:
		default:
			return errors.New("test relay: inbox full")
		}
	}
	return nil
}

func (e endpoint) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-e.r.inbox[e.s]:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type result struct {
	peer Peer
	err  error
}

// run authenticates a (on side A) and b (on side B) concurrently and waits
// for both.
func run(t *testing.T, ctx context.Context, ta, tb Transport, codeA, codeB string, roleA, roleB Role, a, b Identity) (result, result) {
	t.Helper()
	var ra, rb result
	var wg sync.WaitGroup
	wg.Go(func() { ra.peer, ra.err = Authenticate(ctx, ta, codeA, roleA, a) })
	wg.Go(func() { rb.peer, rb.err = Authenticate(ctx, tb, codeB, roleB, b) })
	wg.Wait()
	return ra, rb
}

// pair runs a normal pairing of alice (initiator) and bob through r.
func pair(t *testing.T, r *relay, codeA, codeB string) (result, result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return run(t, ctx, r.end(sideA), r.end(sideB), codeA, codeB, Initiator, Responder, alice, bob)
}

var (
	alice = Identity{ID: identity.DeviceIDFor(fp(0xA1)), Fingerprint: fp(0xA1)}
	bob   = Identity{ID: identity.DeviceIDFor(fp(0xB0)), Fingerprint: fp(0xB0)}
	eve   = Identity{ID: identity.DeviceIDFor(fp(0xEE)), Fingerprint: fp(0xEE)}
)

// fp is a well-formed fingerprint whose 32 bytes are all b.
func fp(b byte) string {
	const hex = "0123456789ABCDEF"
	s := "sha-256 "
	for i := range 32 {
		if i > 0 {
			s += ":"
		}
		s += string([]byte{hex[b>>4], hex[b&15]})
	}
	return s
}

func peerOf(id Identity) Peer { return Peer{ID: id.ID, Fingerprint: id.Fingerprint} }

func requireErr(t *testing.T, err, target error, who string) {
	t.Helper()
	require.Error(t, err, who)
	require.ErrorIs(t, err, target, "%s: %v", who, err)
}
