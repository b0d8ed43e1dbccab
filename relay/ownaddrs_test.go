package relay_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/netnstest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/relay"
)

// Addresses added to the host after the relay started are its own as much
// as the first ones: a client can neither get a permission for one nor send
// through a permission it got before the address appeared. Runs in a
// network namespace with a veth pair, where the test adds addresses
// and listens on them as a UDP service of the server host would.
func TestNewHostAddressesAreRefused(t *testing.T) {
	if !netnstest.Inside() {
		ns := netnstest.New(t, "pdrelay")
		netnstest.IP(t, "-n", ns, "link", "add", "pd0", "type", "veth", "peer", "name", "pd1")
		netnstest.IP(t, "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "pd0")
		netnstest.IP(t, "-n", ns, "link", "set", "pd0", "up")
		netnstest.IP(t, "-n", ns, "link", "set", "pd1", "up")
		netnstest.Reexec(t, ns)
		return
	}
	testkit.VerifyNoLeaks(t)
	srv := newServer(t, func(c *relay.Config) { c.ListenUDP = "10.77.0.1:0" })
	user, pass, _ := relay.Credentials(testSecret, "mallory", time.Hour, time.Now())
	allocateFrom := func() net.PacketConn {
		t.Helper()
		conn, err := net.ListenPacket("udp4", "10.77.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		client := newTURNClientOn(t, srv, conn, user, pass)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		relayed, err := client.AllocateWithContext(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { _ = relayed.Close() })
		return relayed
	}
	// addService adds ip to the host and listens there, as a service would.
	addService := func(ip string) net.PacketConn {
		t.Helper()
		netnstest.IP(t, "addr", "add", ip+"/32", "dev", "pd0")
		pc, err := net.ListenPacket("udp4", ip+":7777")
		require.NoError(t, err)
		t.Cleanup(func() { _ = pc.Close() })
		return pc
	}

	// An address that appears after start, then a permission for it.
	svc := addService("10.77.0.9")
	relayed := allocateFrom()
	_, err := relayed.WriteTo([]byte("to the new address"), svc.LocalAddr())
	t.Logf("relaying to %s: %v", svc.LocalAddr(), err)
	assert.Error(t, err, "no permission for an address the host got after the relay started")
	msg, _, err := readWithin(svc, 500*time.Millisecond)
	assert.Error(t, err, "the service on the new address received %q", msg)

	// A permission granted while the address was nobody's, then the
	// address appears: datagrams stop as soon as the relay sees it.
	relayed = allocateFrom()
	later := &net.UDPAddr{IP: net.ParseIP("10.77.0.10"), Port: 7777}
	_, err = relayed.WriteTo([]byte("before"), later) // nobody answers on the link
	require.NoError(t, err, "10.77.0.10 is not the host's yet: a permission is granted")
	svc = addService("10.77.0.10")
	require.Eventually(t, func() bool { return relay.OwnsAddress(srv, later.IP) }, 10*time.Second, 10*time.Millisecond,
		"the relay never saw the new address")
	for range 3 {
		_, _ = relayed.WriteTo([]byte("through the old permission"), later)
	}
	msg, _, err = readWithin(svc, 500*time.Millisecond)
	assert.Error(t, err, "the service on the new address received %q", msg)
	assert.Positive(t, srv.Stats().PeersRefused)
}
