package rendezvoustest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/rendezvoustest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

func dial(t *testing.T, url string) (*rendezvous.Client, error) {
	t.Helper()
	id := testkit.Identity(t)
	hello := rendezvous.Hello{ID: id.DeviceID, Name: "alice", Type: "laptop", Fingerprint: id.Fingerprint}
	c, err := rendezvous.Dial(testkit.Context(t, 10*time.Second), url, hello)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// A client of the server gets the TURN relay's ICE servers, and the
// config's own adjustments apply.
func TestServerWithTURN(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := rendezvoustest.NewServer(t, rendezvoustest.WithTURN(), rendezvoustest.Unlimited(),
		rendezvoustest.WithConfig(func(c *rendezvous.Config) { c.MaxConns = 1 }))
	c, err := dial(t, srv.URL())
	require.NoError(t, err)
	ice := c.ICEServers()
	require.NotEmpty(t, ice)
	require.NotEmpty(t, ice[0].URLs)
	assert.Contains(t, ice[0].URLs[0], srv.Relay.Addr().String())
	assert.NotEmpty(t, ice[len(ice)-1].Credential, "the TURN entry carries credentials")
	assert.Len(t, srv.ICEServers(c.ClientID()), len(ice))
	assert.Equal(t, 1, srv.Stats().Conns)

	_, err = dial(t, srv.URL())
	assert.Error(t, err, "MaxConns 1: the second client is refused")
}

// Without WithTURN there is no relay and no ICE server.
func TestServerWithoutTURN(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := rendezvoustest.NewServer(t)
	c, err := dial(t, srv.URL())
	require.NoError(t, err)
	assert.Nil(t, srv.Relay)
	assert.Empty(t, c.ICEServers())
	assert.Empty(t, srv.ICEServers(c.ClientID()))
}

// Close drops the clients; a new server at the old address takes them
// back. Close twice is fine.
func TestCloseAndRestartAtAddr(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv := rendezvoustest.NewServer(t)
	c, err := dial(t, srv.URL())
	require.NoError(t, err)
	srv.Close()
	srv.Close()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client was not dropped")
	}
	_, err = dial(t, srv.URL())
	require.Error(t, err, "nobody listens")

	again := rendezvoustest.NewServer(t, rendezvoustest.WithAddr(srv.Addr()))
	assert.Equal(t, srv.URL(), again.URL())
	_, err = dial(t, again.URL())
	require.NoError(t, err)
}
