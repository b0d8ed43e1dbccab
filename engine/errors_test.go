package engine

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/peer"
)

// A connection to a handshake port where nothing listens says so, in
// plain words, from a real dial.
func TestConnectFailureNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err = DialFirst(ctx, []string{addr}, peer.Config{Identity: testkit.Identity(t), Name: "Alpha"}, nil)
	require.Error(t, err)
	msg, ok := connectFailure("Bravo", err)
	require.True(t, ok, "%v", err)
	assert.Contains(t, msg, "could not reach Bravo: nothing answers on its handshake port (TCP ")
	assert.Contains(t, msg, "is ThePeerDrop running there")
	assert.Equal(t, msg, describeSendError("Bravo", err, false), "the app says the same")
	assert.Equal(t, msg, explainConnect("Bravo", err).Error(), "and the command line")
	assert.ErrorIs(t, explainConnect("Bravo", err), err, "the chain is kept")
}

func TestConnectFailureSteps(t *testing.T) {
	timeout := &peer.UnreachableError{Addr: "10.0.0.2:53318", Err: errors.New("i/o timeout")}
	msg, ok := connectFailure("Bravo", timeout)
	require.True(t, ok)
	assert.Equal(t, "could not reach Bravo: no answer on its handshake port (TCP 53318); it has left the network, or its firewall drops TCP 53318", msg)

	noPath := &peer.NoPathError{Err: errors.New("no connection within 15s"), UDPPorts: []int{53318}}
	msg, ok = connectFailure("Bravo", noPath)
	require.True(t, ok)
	assert.Contains(t, msg, "UDP is blocked between the two devices (its firewall must let in UDP 53318)")

	_, ok = connectFailure("Bravo", errors.New("something else"))
	assert.False(t, ok)
}
