// Package rendezvoustest runs a rendezvous server on loopback for tests, in
// the style of net/http/httptest: NewServer starts it, t.Cleanup stops it.
// An option adds an embedded STUN/TURN relay whose ICE servers the
// rendezvous server hands out, as `peerdrop serve` does.
package rendezvoustest

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// TURNSecret is the shared secret of the relay WithTURN starts.
var TURNSecret = []byte("rendezvoustest-secret-0123456789abcdef")

// Server is a rendezvous server serving on loopback.
type Server struct {
	*rendezvous.Server
	// Relay is the embedded STUN/TURN relay, nil without WithTURN.
	Relay *relay.Server

	addr string
	stop func()
}

// Option adjusts a Server before it starts.
type Option func(*options)

type options struct {
	addr      string
	turn      bool
	unlimited bool
	mods      []func(*rendezvous.Config)
}

// WithAddr serves on addr instead of any free port of 127.0.0.1; a test
// that stopped a server starts a new one at the old one's Addr this way.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithTURN starts a STUN/TURN relay on loopback (with TURNSecret, and
// loopback peers allowed, which its default policy refuses) and hands its
// ICE servers to every client.
func WithTURN() Option { return func(o *options) { o.turn = true } }

// Unlimited lifts the per-address rate limits of connecting, pairing and
// presence: every device of a test shares one address.
func Unlimited() Option { return func(o *options) { o.unlimited = true } }

// WithConfig adjusts the server's config (limits, code lifetime, clock)
// after the other options have set theirs.
func WithConfig(mod func(*rendezvous.Config)) Option {
	return func(o *options) { o.mods = append(o.mods, mod) }
}

// NewServer starts a rendezvous server on loopback; it is closed when the
// test ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{addr: "127.0.0.1:0"}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{}
	var cfg rendezvous.Config
	if o.turn {
		s.Relay = NewRelay(t)
		cfg.ICEServers = s.iceServers
	}
	if o.unlimited {
		lots := rendezvous.Limit{Every: time.Millisecond, Burst: 1000}
		cfg.ConnectRate, cfg.PairRate, cfg.PresenceRate = lots, lots, lots
	}
	for _, mod := range o.mods {
		mod(&cfg)
	}
	srv, err := rendezvous.New(cfg)
	require.NoError(t, err)
	s.Server = srv
	s.addr, s.stop = testkit.Serve(t, o.addr, srv.Serve)
	return s
}

// URL is the server's WebSocket URL.
func (s *Server) URL() string { return "ws://" + s.addr + "/ws" }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// ICEServers is the STUN/TURN config the server hands to the client id,
// in the rendezvous wire's form; nil without WithTURN.
func (s *Server) ICEServers(id string) []rendezvous.ICEServer {
	if s.Relay == nil {
		return nil
	}
	return s.iceServers(id)
}

func (s *Server) iceServers(id string) []rendezvous.ICEServer {
	var out []rendezvous.ICEServer
	for _, is := range s.Relay.ICEServers(id) {
		cred, _ := is.Credential.(string)
		out = append(out, rendezvous.ICEServer{URLs: is.URLs, Username: is.Username, Credential: cred})
	}
	return out
}

// Close shuts the server down: every WebSocket is closed with "going away"
// and its goroutines end. The relay, if any, stays up until the test ends.
// Close may be called more than once.
func (s *Server) Close() { s.stop() }

// NewRelay starts a STUN/TURN relay on loopback with TURNSecret that
// relays to loopback peers too (its default policy refuses them); it is
// closed when the test ends.
func NewRelay(t testing.TB) *relay.Server {
	t.Helper()
	rs, err := relay.New(relay.Config{
		ListenUDP:    "127.0.0.1:0",
		Secret:       TURNSecret,
		AllowedPeers: func(net.IP) bool { return true },
		Logger:       slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rs.Close()) })
	return rs
}
