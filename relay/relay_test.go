package relay_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/relay"
)

var testSecret = []byte("a shared secret of the test server")

// testLogger is silent unless RELAY_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
}

// allowAll loosens the peer policy so that loopback peers can be relayed to.
func allowAll(net.IP) bool { return true }

func newServer(t *testing.T, tune func(*relay.Config)) *relay.Server {
	t.Helper()
	cfg := relay.Config{ListenUDP: "127.0.0.1:0", Secret: testSecret, Logger: testLogger()}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := relay.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	return srv
}

// newTURNClient returns a listening pion TURN client of srv.
func newTURNClient(t *testing.T, srv *relay.Server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, conn.Close()) })
	return newTURNClientOn(t, srv, conn, username, password)
}

// newTURNClientOn is newTURNClient on conn, which the caller closes.
func newTURNClientOn(t *testing.T, srv *relay.Server, conn net.PacketConn, username, password string) *turn.Client {
	t.Helper()
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: srv.Addr().String(),
		TURNServerAddr: srv.Addr().String(),
		Username:       username,
		Password:       password,
		Conn:           conn,
	})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	require.NoError(t, client.Listen())
	return client
}

// allocate allocates a relayed socket with valid credentials for id.
func allocate(t *testing.T, srv *relay.Server, id string) net.PacketConn {
	t.Helper()
	user, pass, _ := relay.Credentials(testSecret, id, time.Hour, time.Now())
	client := newTURNClient(t, srv, user, pass)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	relayed, err := client.AllocateWithContext(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = relayed.Close() })
	return relayed
}

func listenPeer(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// readWithin reads one datagram or fails after d.
func readWithin(pc net.PacketConn, d time.Duration) (string, net.Addr, error) {
	buf := make([]byte, 1500)
	if err := pc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", nil, err
	}
	n, from, err := pc.ReadFrom(buf)
	return string(buf[:n]), from, err
}

// (1) STUN works for anyone, without credentials.
func TestSTUNBindingReturnsMappedAddress(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := newServer(t, nil)

	conn, err := net.DialUDP("udp4", nil, srv.Addr().(*net.UDPAddr))
	require.NoError(t, err)
	client, err := stun.NewClient(conn) // closes conn on Close
	require.NoError(t, err)
	defer func() { assert.NoError(t, client.Close()) }()

	var mapped stun.XORMappedAddress
	var eventErr error
	require.NoError(t, client.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
		if eventErr = e.Error; eventErr == nil {
			eventErr = mapped.GetFrom(e.Message)
		}
	}))
	require.NoError(t, eventErr)
	local := conn.LocalAddr().(*net.UDPAddr)
	assert.True(t, mapped.IP.Equal(local.IP), "mapped %s, local %s", mapped.IP, local.IP)
	assert.Equal(t, local.Port, mapped.Port)
}

// (2) Valid REST credentials allocate, and a datagram goes to a peer and back.
func TestTURNRelaysDatagram(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	ports := relay.PortRange{Min: 42100, Max: 42119}
	srv := newServer(t, func(c *relay.Config) {
		c.AllowedPeers = allowAll
		c.PortRange = ports
	})
	relayed := allocate(t, srv, "alice")
	relayAddr := relayed.LocalAddr().(*net.UDPAddr)
	assert.True(t, relayAddr.IP.Equal(net.IPv4(127, 0, 0, 1)), "relay address %s", relayAddr)
	assert.True(t, relayAddr.Port >= int(ports.Min) && relayAddr.Port <= int(ports.Max), "relay port %d", relayAddr.Port)

	peer := listenPeer(t)
	_, err := relayed.WriteTo([]byte("ping"), peer.LocalAddr())
	require.NoError(t, err)
	msg, from, err := readWithin(peer, 3*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "ping", msg)
	assert.Equal(t, relayAddr.Port, from.(*net.UDPAddr).Port, "the peer sees the relayed address")

	_, err = peer.WriteTo([]byte("pong"), from)
	require.NoError(t, err)
	msg, from, err = readWithin(relayed, 3*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "pong", msg)
	assert.Equal(t, peer.LocalAddr().String(), from.String())

	// The counters follow the socket calls, not the datagrams: the goroutine
	// that sent "ping" may count it after "pong" has come back.
	assert.Eventually(t, func() bool {
		st := srv.Stats()
		return st.BytesToPeers == 4 && st.BytesFromPeers == 4
	}, time.Second, time.Millisecond, "relayed bytes: %+v", srv.Stats())
	st := srv.Stats()
	assert.Equal(t, uint64(1), st.Allocations)
	assert.Equal(t, 1, st.ActiveAllocations)
	assert.Zero(t, st.AuthFailures)
}

// IPv6 works the same way: the relay IP is the listening one.
func TestTURNRelaysOverIPv6(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	require.NoError(t, probe.Close())
	srv := newServer(t, func(c *relay.Config) {
		c.ListenUDP = "[::1]:0"
		c.AllowedPeers = allowAll
	})
	user, pass, _ := relay.Credentials(testSecret, "v6", time.Hour, time.Now())
	conn, err := net.ListenPacket("udp6", "[::1]:0")
	require.NoError(t, err)
	defer func() { assert.NoError(t, conn.Close()) }()
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: srv.Addr().String(), Username: user, Password: pass, Conn: conn,
	})
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, client.Listen())
	relayed, err := client.Allocate()
	require.NoError(t, err)
	defer func() { _ = relayed.Close() }()
	assert.Equal(t, "::1", relayed.LocalAddr().(*net.UDPAddr).IP.String())

	peer, err := net.ListenPacket("udp6", "[::1]:0")
	require.NoError(t, err)
	defer func() { _ = peer.Close() }()
	_, err = relayed.WriteTo([]byte("ping6"), peer.LocalAddr())
	require.NoError(t, err)
	msg, _, err := readWithin(peer, 3*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "ping6", msg)
}

// (3) Wrong, expired and malformed credentials get no allocation.
func TestBadCredentialsRefused(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := newServer(t, nil)
	now := time.Now()
	goodUser, goodPass, _ := relay.Credentials(testSecret, "alice", time.Hour, now)
	expiredUser, expiredPass, _ := relay.Credentials(testSecret, "alice", time.Hour, now.Add(-2*time.Hour))
	otherUser, otherPass, _ := relay.Credentials([]byte("another secret"), "alice", time.Hour, now)
	cases := []struct{ name, user, pass string }{
		{"wrong password", goodUser, goodPass + "x"},
		{"expired username", expiredUser, expiredPass},
		{"other secret", otherUser, otherPass},
		{"no expiry in username", "alice", goodPass},
		{"expiry moved forward", strings.Replace(goodUser, ":", "0:", 1), goodPass},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := newTURNClient(t, srv, tc.user, tc.pass)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			relayed, err := client.AllocateWithContext(ctx)
			if relayed != nil {
				_ = relayed.Close()
			}
			require.Error(t, err)
			var turnErr *stun.TurnError
			require.ErrorAs(t, err, &turnErr)
			assert.Equal(t, stun.CodeUnauthorized, turnErr.ErrorCodeAttr.Code)
			assert.Less(t, time.Since(start), time.Second, "refused at once, not timed out")
		})
	}
	st := srv.Stats()
	assert.Equal(t, uint64(len(cases)), st.AuthFailures)
	assert.Zero(t, st.Allocations)

	// Check, the client-side diagnosis, says the same in a sentence.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	bad := relay.ICEServers(srv.Addr().String(), []byte("another secret"), "alice", time.Hour)
	err := relay.Check(ctx, bad)
	require.ErrorIs(t, err, relay.ErrCredentialsRefused)
	assert.NoError(t, relay.Check(ctx, srv.ICEServers("alice")))
}

// (6) The default policy is no open relay: no loopback, link-local,
// multicast or unspecified peers, nothing of the server's own.
func TestDefaultPolicyRefusesLoopbackPeers(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	// The relay IP is announced only; it is not loopback, so loopback
	// peers get no exception.
	srv := newServer(t, func(c *relay.Config) { c.PublicIP = net.ParseIP("203.0.113.7") })
	user, pass, _ := relay.Credentials(testSecret, "mallory", time.Hour, time.Now())
	client := newTURNClient(t, srv, user, pass)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	relayed, err := client.AllocateWithContext(ctx)
	require.NoError(t, err)
	defer func() { _ = relayed.Close() }()
	assert.Equal(t, "203.0.113.7", relayed.LocalAddr().(*net.UDPAddr).IP.String())

	peer := listenPeer(t)
	_, err = relayed.WriteTo([]byte("let me in"), peer.LocalAddr())
	require.Error(t, err, "permission to a loopback peer must be refused")
	t.Logf("relaying to %s: %v", peer.LocalAddr(), err)
	_, _, err = readWithin(peer, 300*time.Millisecond)
	require.Error(t, err, "nothing reaches the loopback peer")

	for _, ip := range []string{"127.0.0.2", "169.254.169.254", "224.0.0.251", "0.0.0.0", "192.0.2.2"} {
		if ip == "192.0.2.2" && !isOwnAddress(ip) {
			continue // the server's own address on the test host's eth0, when it has one
		}
		err := client.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 53})
		assert.Error(t, err, "permission to %s", ip)
	}
	assert.NoError(t, client.CreatePermission(&net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 9}),
		"a public peer is allowed")
	assert.Positive(t, srv.Stats().PeersRefused)
}

func isOwnAddress(ip string) bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
			return true
		}
	}
	return false
}

// (6, continued) When the relay IP is itself loopback (as in tests), the
// policy lets datagrams through to other allocations only, not to whatever
// else listens on that address; two relay-only peers need exactly that.
func TestRelayIPReachesOnlyAllocations(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := newServer(t, nil) // default policy; relay IP 127.0.0.1
	a := allocate(t, srv, "a")
	b := allocate(t, srv, "b")

	peer := listenPeer(t)
	_, err := a.WriteTo([]byte("not for you"), peer.LocalAddr())
	require.NoError(t, err, "the permission is for the relay IP, which is allowed")
	_, _, err = readWithin(peer, 300*time.Millisecond)
	require.Error(t, err, "a service on the relay IP that is no allocation gets nothing")

	// b first opens its permission for a's address, then a can reach it.
	_, err = b.WriteTo([]byte("hello a"), a.LocalAddr())
	require.NoError(t, err)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err = a.WriteTo([]byte("hello b"), b.LocalAddr())
		require.NoError(t, err)
		msg, from, err := readWithin(b, 200*time.Millisecond)
		if err == nil {
			assert.Equal(t, "hello b", msg)
			assert.Equal(t, a.LocalAddr().String(), from.String())
			break
		}
		require.True(t, time.Now().Before(deadline), "relay to relay: %v", err)
	}
	assert.Positive(t, srv.Stats().PeersRefused)
}

// Close ends live allocations and every goroutine (VerifyNoLeaks checks), and can
// be called again.
func TestCloseEndsAllocations(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv, err := relay.New(relay.Config{ListenUDP: "127.0.0.1:0", Secret: testSecret, Logger: testLogger()})
	require.NoError(t, err)
	allocate(t, srv, "a")
	allocate(t, srv, "b")
	require.Equal(t, 2, srv.Stats().ActiveAllocations)

	start := time.Now()
	require.NoError(t, srv.Close())
	assert.Less(t, time.Since(start), time.Second)
	assert.Zero(t, srv.Stats().ActiveAllocations)
	assert.NoError(t, srv.Close())
}

func TestNewRefusesBadConfig(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	_, err := relay.New(relay.Config{ListenUDP: "127.0.0.1:0"})
	require.ErrorIs(t, err, relay.ErrNoSecret)
	for _, r := range []relay.PortRange{{Min: 5000}, {Max: 5000}, {Min: 6000, Max: 5000}} {
		_, err = relay.New(relay.Config{ListenUDP: "127.0.0.1:0", Secret: testSecret, PortRange: r})
		assert.Error(t, err, "port range %v", r)
	}
	_, err = relay.New(relay.Config{ListenUDP: "256.0.0.1:0", Secret: testSecret})
	assert.Error(t, err)
	_, err = relay.New(relay.Config{ListenUDP: "127.0.0.1:0", Secret: testSecret, PublicIP: net.IPv4zero})
	assert.Error(t, err)
}

func TestDefaultAllowedPeers(t *testing.T) {
	for _, tc := range []struct {
		ip      string
		allowed bool
	}{
		{"198.51.100.1", true},
		{"8.8.8.8", true},
		{"10.1.2.3", true}, // private networks may hold peers (see the doc comment)
		{"192.168.1.20", true},
		{"2001:db8::1", true},
		{"fd00::5", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"224.0.0.251", false},
		{"239.255.255.250", false},
		{"ff02::1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"255.255.255.255", false},
	} {
		assert.Equal(t, tc.allowed, relay.DefaultAllowedPeers(net.ParseIP(tc.ip)), tc.ip)
	}
	assert.False(t, relay.DefaultAllowedPeers(nil))
}

func TestCheckUnreachable(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	silent := listenPeer(t) // a socket that never answers
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := relay.Check(ctx, relay.ICEServers(silent.LocalAddr().String(), testSecret, "a", time.Hour))
	require.ErrorIs(t, err, relay.ErrUnreachable)
	require.ErrorIs(t, relay.Check(ctx, nil), relay.ErrNoTURN)
}
