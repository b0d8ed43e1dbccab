package redistest

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A private server answers on its own port, keeps what it was told across
// a restart (append-only file), and is gone once stopped.
func TestServer(t *testing.T) {
	s := Start(t)
	assert.Equal(t, "redis://"+s.Addr+"/0", s.URL())
	reply, err := s.Do("SET", "pin:abc", "key-1")
	require.NoError(t, err)
	assert.Equal(t, "+OK", reply)

	s.Restart()
	got, err := s.Do("GET", "pin:abc")
	require.NoError(t, err)
	assert.Equal(t, "key-1", got, "the data survives a restart")
	got, err = s.Do("GET", "nothing")
	require.NoError(t, err)
	assert.Equal(t, "$-1", got, "nil for a missing key")

	s.Stop()
	_, err = net.DialTimeout("tcp", s.Addr, time.Second)
	assert.Error(t, err, "nothing listens once it is stopped")
	s.Stop() // twice is fine
}

// Two tests' servers are apart: each has its own port and data.
func TestServersApart(t *testing.T) {
	a, b := Start(t), Start(t)
	require.NotEqual(t, a.Addr, b.Addr)
	_, err := a.Do("SET", "k", "a")
	require.NoError(t, err)
	got, err := b.Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "$-1", got)
}
