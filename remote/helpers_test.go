package remote

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/rendezvoustest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

func verifyNoLeaks(t *testing.T) { t.Helper(); testkit.VerifyNoLeaks(t) }

func testContext(t *testing.T) context.Context { return testkit.Context(t, 60*time.Second) }

// world is a rendezvous server with an embedded STUN/TURN relay on loopback.
type world struct {
	relay *relay.Server
	url   string // the rendezvous server's WebSocket URL
}

// newWorld starts a relay (allowing loopback peers, which its default policy
// refuses) and a rendezvous server that hands out its ICE servers.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, nil)
}

// newWorldWith is newWorld with the rendezvous server's config adjusted.
func newWorldWith(t *testing.T, mod func(*rendezvous.Config)) *world {
	t.Helper()
	opts := []rendezvoustest.Option{rendezvoustest.WithTURN()}
	if mod != nil {
		opts = append(opts, rendezvoustest.WithConfig(mod))
	}
	srv := rendezvoustest.NewServer(t, opts...)
	return &world{relay: srv.Relay, url: srv.URL()}
}

// dial connects a device to url; the client is closed when the test ends.
func dialRendezvous(t *testing.T, url string, cfg peer.Config) *rendezvous.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rendezvous.Dial(ctx, url, rendezvous.Hello{
		ID: cfg.Identity.DeviceID, Name: cfg.Name, Type: "laptop", Fingerprint: cfg.Identity.Fingerprint,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// hosting is a Host serving in the background.
type hosting struct {
	codes  chan Code
	errs   chan error
	conns  chan *peer.Conn
	served chan error
}

// serveHost runs h.Serve on client until the test ends; every connection
// is handed to conns and held until it ends or Serve stops.
func serveHost(t *testing.T, h *Host, client *rendezvous.Client) *hosting {
	t.Helper()
	hs := &hosting{codes: make(chan Code, 8), errs: make(chan error, 8), conns: make(chan *peer.Conn, 8), served: make(chan error, 1)}
	h.OnCode = func(c Code) { hs.codes <- c }
	h.OnError = func(err error) {
		select {
		case hs.errs <- err:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		hs.served <- h.Serve(ctx, client, func(ctx context.Context, c *peer.Conn) {
			defer c.Close()
			hs.conns <- c
			select {
			case <-c.Done():
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-hs.served:
			assert.NoError(t, err, "Host.Serve")
		case <-time.After(20 * time.Second):
			t.Error("Host.Serve did not return after its context ended")
		}
	})
	return hs
}

func (hs *hosting) code(t *testing.T) Code {
	t.Helper()
	select {
	case c := <-hs.codes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the host showed no code")
		return Code{}
	}
}

func (hs *hosting) conn(t *testing.T) *peer.Conn {
	t.Helper()
	select {
	case c := <-hs.conns:
		return c
	case err := <-hs.errs:
		t.Fatalf("the host failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the host got no connection")
	}
	return nil
}

func (hs *hosting) err(t *testing.T) error {
	t.Helper()
	select {
	case err := <-hs.errs:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the host reported no error")
		return nil
	}
}
