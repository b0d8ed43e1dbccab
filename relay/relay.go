// Package relay is the STUN/TURN half of `peerdrop serve`: an embedded
// pion/turn server that answers STUN binding requests for anyone and relays
// UDP only for clients holding time-limited credentials in coturn's
// use-auth-secret scheme (the TURN REST API), so a deployment can swap it for
// coturn with the same secret. It owns the relay policy (no open relay), the
// credentials and the ICE server entries handed to clients, and counts what
// it does for /metrics. It knows nothing of WebSockets or pairing.
package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// DefaultCredentialTTL is how long credentials stay valid unless
// Config.CredentialTTL says otherwise. It bounds a transfer that runs through
// the relay: pion's TURN client cannot change credentials on a live
// allocation, so a transfer longer than this needs an ICE restart with fresh
// ICE servers.
const DefaultCredentialTTL = 12 * time.Hour

// DefaultRealm is the realm announced when Config.Realm is empty.
const DefaultRealm = "peerdrop"

// closeTimeout bounds how long Close waits for pion's goroutines.
const closeTimeout = 5 * time.Second

// ErrNoSecret means Config.Secret is empty: without it every credential
// would be forgeable.
var ErrNoSecret = errors.New("relay: a TURN secret is required")

// PortRange limits the UDP ports of relayed sockets (both ends inclusive).
// The zero value lets the kernel pick ephemeral ports.
type PortRange struct {
	Min, Max uint16
}

func (r PortRange) validate() error {
	switch {
	case r.Min == 0 && r.Max == 0:
		return nil
	case r.Min == 0 || r.Max == 0 || r.Min > r.Max:
		return fmt.Errorf("relay: bad port range %d-%d", r.Min, r.Max)
	}
	return nil
}

// Config configures a Server.
type Config struct {
	// ListenUDP is where STUN and TURN requests arrive, e.g. ":3478".
	ListenUDP string
	// PublicIP is the relay address announced to clients: the server's
	// public address when it sits behind a 1:1 NAT. Default: the listen
	// address's IP, or when listening on all interfaces the first global
	// unicast IPv4 address of this host (127.0.0.1 when there is none).
	PublicIP net.IP
	// Realm is the TURN realm (default DefaultRealm).
	Realm string
	// Secret is shared with coturn's static-auth-secret. Required.
	Secret []byte
	// CredentialTTL is the lifetime of credentials made by Server.ICEServers
	// (default DefaultCredentialTTL).
	CredentialTTL time.Duration
	// PortRange limits the ports of relayed sockets (firewall rules).
	PortRange PortRange
	// AllowedPeers decides which peer addresses clients may relay to. Nil
	// means DefaultAllowedPeers and none of this server's own addresses.
	// A function set here replaces that whole policy (tests use it to allow
	// loopback peers). Whatever it says, clients may always reach another
	// allocation of this server at the PublicIP, which is what two relay-only
	// peers need (see Server.permit).
	AllowedPeers func(net.IP) bool
	// Logger receives the server's logs and pion's (default slog.Default()).
	Logger *slog.Logger
}

// Stats counts what the server did since it started.
type Stats struct {
	// Allocations is the number of allocations granted since start.
	Allocations uint64
	// ActiveAllocations is the number of allocations alive now.
	ActiveAllocations int
	// AuthFailures counts requests refused for wrong, expired or malformed
	// credentials (the first, unauthenticated request of every allocation
	// is normal and not counted).
	AuthFailures uint64
	// PeersRefused counts permissions and datagrams the peer policy refused.
	PeersRefused uint64
	// BytesToPeers is the payload the relay sockets sent to peers.
	BytesToPeers uint64
	// BytesFromPeers is the payload the relay sockets received from peers.
	BytesFromPeers uint64
}

// Server is a running STUN/TURN server.
type Server struct {
	log     *slog.Logger
	secret  []byte
	ttl     time.Duration
	relayIP net.IP
	allowed func(net.IP) bool
	// own follows this host's addresses, which the default policy refuses
	// (nil when Config.AllowedPeers replaces it).
	own      *ownAddrs
	listener *listenConn
	turn     *turn.Server

	// relayConns holds the live relayed sockets by port: the only ports at
	// relayIP that peers may be reached at when relayIP itself is not an
	// allowed peer.
	relayMu    sync.RWMutex
	relayConns map[int]*relayConn
	// relays counts relayed sockets whose reader (pion's per-allocation
	// goroutine) has not yet seen them closed.
	relays sync.WaitGroup

	allocations    atomic.Uint64
	authFailures   atomic.Uint64
	peersRefused   atomic.Uint64
	bytesToPeers   atomic.Uint64
	bytesFromPeers atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// check checks cfg and fills in its defaults.
func (cfg *Config) check() error {
	if len(cfg.Secret) == 0 {
		return ErrNoSecret
	}
	if err := cfg.PortRange.validate(); err != nil {
		return err
	}
	if ip := cfg.PublicIP; ip != nil && (ip.IsUnspecified() || ip.IsMulticast() || ip.To16() == nil) {
		return fmt.Errorf("relay: %s cannot be announced as the relay address", ip)
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = DefaultCredentialTTL
	}
	return nil
}

// New starts a server listening on cfg.ListenUDP.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With(slog.String("component", "relay"))

	pc, err := net.ListenPacket("udp", cfg.ListenUDP) //nolint:noctx // a listener, nothing to cancel
	if err != nil {
		return nil, fmt.Errorf("relay: listen %s: %w", cfg.ListenUDP, err)
	}
	listenIP := pc.LocalAddr().(*net.UDPAddr).IP
	relayIP, bindIP := addresses(cfg.PublicIP, listenIP, log)

	s := &Server{
		log:        log,
		secret:     append([]byte(nil), cfg.Secret...),
		ttl:        cfg.CredentialTTL,
		relayIP:    relayIP,
		allowed:    cfg.AllowedPeers,
		listener:   newListenConn(pc),
		relayConns: make(map[int]*relayConn),
	}
	if s.allowed == nil {
		s.own = newOwnAddrs(log, listenIP, relayIP)
		s.own.watch()
		s.allowed = func(ip net.IP) bool { return DefaultAllowedPeers(ip) && !s.own.contains(ip) }
	}

	pionLogs := pionLoggerFactory{log: log}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: pionLogs,
		AuthHandler:   s.authHandler(turn.LongTermTURNRESTAuthHandler(string(cfg.Secret), pionLogs.quiet("auth"))),
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: s.listener,
			RelayAddressGenerator: &relayGenerator{
				server: s,
				bindIP: bindIP,
				ports:  cfg.PortRange,
			},
			PermissionHandler: s.permission,
		}},
	})
	if err != nil {
		_ = pc.Close()
		if s.own != nil {
			s.own.stop()
		}
		return nil, fmt.Errorf("relay: start turn server: %w", err)
	}
	s.log.Info("relay listening",
		slog.String("addr", pc.LocalAddr().String()), slog.String("relay_ip", relayIP.String()),
		slog.String("realm", cfg.Realm))
	return s, nil
}

// permission says whether client may send to peer through its allocation.
func (s *Server) permission(client net.Addr, peer net.IP) bool {
	if s.permit(peer) {
		return true
	}
	s.peersRefused.Add(1)
	s.log.Debug("relay permission refused",
		slog.String("client", client.String()), slog.String("peer", peer.String()))
	return false
}

// Addr is the address STUN and TURN requests arrive at.
func (s *Server) Addr() net.Addr { return s.listener.LocalAddr() }

// RelayIP is the address announced in relayed candidates.
func (s *Server) RelayIP() net.IP { return s.relayIP }

// ICEServers returns fresh ICE server entries for the client id, pointing at
// this server's relay IP and listening port. A server reached through a DNS
// name should call the package function ICEServers with that name instead.
func (s *Server) ICEServers(id string) []webrtc.ICEServer {
	port := s.listener.LocalAddr().(*net.UDPAddr).Port
	return ICEServers(hostPort(s.relayIP, port), s.secret, id, s.ttl)
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Allocations:       s.allocations.Load(),
		ActiveAllocations: s.turn.AllocationCount(),
		AuthFailures:      s.authFailures.Load(),
		PeersRefused:      s.peersRefused.Load(),
		BytesToPeers:      s.bytesToPeers.Load(),
		BytesFromPeers:    s.bytesFromPeers.Load(),
	}
}

// Close stops the server, ends every allocation and returns once pion's
// goroutines have ended. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.own != nil {
			s.own.stop()
		}
		s.closeErr = s.turn.Close()
		// pion's read loop closes every allocation after its read fails;
		// only then is the set of relayed sockets final.
		timeout := time.NewTimer(closeTimeout)
		defer timeout.Stop()
		select {
		case <-s.listener.done:
		case <-timeout.C:
			s.closeErr = errors.Join(s.closeErr, errors.New("relay: turn read loop did not stop"))
			return
		}
		// pion stops closing allocations at the first error; whatever it
		// left open is closed here, so that every relay reader ends.
		s.relayMu.RLock()
		left := make([]*relayConn, 0, len(s.relayConns))
		for _, c := range s.relayConns {
			left = append(left, c)
		}
		s.relayMu.RUnlock()
		for _, c := range left {
			_ = c.Close()
		}
		relaysDone := make(chan struct{})
		go func() { s.relays.Wait(); close(relaysDone) }()
		select {
		case <-relaysDone:
		case <-timeout.C:
			s.closeErr = errors.Join(s.closeErr, errors.New("relay: relayed sockets did not stop"))
			return
		}
		// Each allocation's goroutine deletes its allocation as its last
		// step after its read failed; an empty table means they are done.
		for s.turn.AllocationCount() > 0 {
			select {
			case <-timeout.C:
				s.closeErr = errors.Join(s.closeErr, errors.New("relay: allocations did not end"))
				return
			case <-time.After(time.Millisecond):
			}
		}
		s.log.Info("relay stopped")
	})
	return s.closeErr
}

// permit says whether a client may create a permission for peer. Another
// allocation of this server lives at relayIP: two relay-only peers reach
// each other through it, so relayIP is always permitted, and relayConn then
// lets through only datagrams to live relay ports there (see packetAllowed).
//
// The host's addresses are read afresh for every permission (a
// CreatePermission or ChannelBind, a few per allocation): an address added a
// moment ago is refused at once. Datagrams check the last reading.
func (s *Server) permit(peer net.IP) bool {
	if s.own != nil {
		s.own.refresh()
	}
	return s.allowed(peer) || peer.Equal(s.relayIP)
}

// packetAllowed is permit for one datagram, with its port.
func (s *Server) packetAllowed(to *net.UDPAddr) bool {
	if s.allowed(to.IP) {
		return true
	}
	if !to.IP.Equal(s.relayIP) {
		return false
	}
	s.relayMu.RLock()
	_, live := s.relayConns[to.Port]
	s.relayMu.RUnlock()
	return live
}

func (s *Server) addRelay(c *relayConn) {
	s.relayMu.Lock()
	s.relayConns[c.port] = c
	s.relayMu.Unlock()
}

func (s *Server) removeRelay(c *relayConn) {
	s.relayMu.Lock()
	if s.relayConns[c.port] == c {
		delete(s.relayConns, c.port)
	}
	s.relayMu.Unlock()
}

// authHandler counts and logs what inner refuses: expired, malformed or
// unknown usernames. A wrong password passes here (the handler only derives
// the key) and fails pion's integrity check, reported through onAuth.
func (s *Server) authHandler(inner turn.AuthHandler) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		id, key, ok := inner(ra)
		if !ok {
			s.authFailures.Add(1)
			s.log.Debug("turn credentials refused", slog.String("reason", "expired or malformed username"),
				slog.String("username", ra.Username), slog.String("client", addrString(ra.SrcAddr)))
		}
		return id, key, ok
	}
}

func (s *Server) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if verdict {
		return
	}
	s.authFailures.Add(1)
	s.log.Debug("turn credentials refused", slog.String("reason", "wrong password"),
		slog.String("username", username), slog.String("method", method), slog.String("client", addrString(src)))
}

func (s *Server) onAllocationCreated(src, _ net.Addr, _, userID, _ string, relayAddr net.Addr, _ int) {
	s.allocations.Add(1)
	s.log.Debug("turn allocation created", slog.String("user", userID),
		slog.String("client", addrString(src)), slog.String("relay", addrString(relayAddr)))
}

func (s *Server) onAllocationDeleted(src, _ net.Addr, _, userID, _ string) {
	s.log.Debug("turn allocation deleted", slog.String("user", userID), slog.String("client", addrString(src)))
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// listenConn is the TURN listening socket; done is closed when pion's read
// loop has seen it fail, after which pion closes every allocation.
type listenConn struct {
	net.PacketConn
	done     chan struct{}
	doneOnce sync.Once
}

func newListenConn(pc net.PacketConn) *listenConn {
	return &listenConn{PacketConn: pc, done: make(chan struct{})}
}

func (c *listenConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		// pion's read loop ends on any error, so this socket is finished.
		c.doneOnce.Do(func() { close(c.done) })
	}
	return n, addr, err
}
