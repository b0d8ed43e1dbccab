package relay_test

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"encoding/base64"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/relay"
)

func TestCredentialsFormat(t *testing.T) {
	now := time.Unix(1_700_000_000, 500_000_000)
	user, pass, expires := relay.Credentials([]byte("s3cret"), "dev-42", time.Hour, now)

	assert.Equal(t, "1700003600:dev-42", user)
	assert.Equal(t, time.Unix(1_700_003_600, 0), expires)
	mac := hmac.New(sha1.New, []byte("s3cret"))
	mac.Write([]byte(user))
	assert.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), pass)

	user, _, expires = relay.Credentials([]byte("s3cret"), "x", 0, now)
	assert.Equal(t, now.Add(relay.DefaultCredentialTTL).Unix(), expires.Unix(), "zero TTL means the default")
	assert.True(t, strings.HasSuffix(user, ":x"))
}

// Our credentials are the ones pion makes, and its TURN REST handler
// accepts them: the same key as for the password we computed.
func TestCredentialsAgreeWithPion(t *testing.T) {
	const secret = "shared with coturn"
	for range 3 { // the two calls may straddle a second
		now := time.Now()
		user, pass, _ := relay.Credentials([]byte(secret), "alice", time.Hour, now)
		pionUser, pionPass, err := turn.GenerateLongTermTURNRESTCredentials(secret, "alice", time.Hour)
		require.NoError(t, err)
		if pionUser != user {
			continue
		}
		assert.Equal(t, pionPass, pass)

		userID, key, ok := turn.LongTermTURNRESTAuthHandler(secret, nil)(&turn.RequestAttributes{
			Username: user, Realm: relay.DefaultRealm, SrcAddr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 1},
		})
		require.True(t, ok)
		assert.Equal(t, "alice", userID)
		assert.Equal(t, turn.GenerateAuthKey(user, relay.DefaultRealm, pass), key)
		return
	}
	t.Fatal("clock kept crossing second boundaries")
}

func TestICEServers(t *testing.T) {
	before := time.Now()
	servers := relay.ICEServers("relay.example.org:3478", testSecret, "bob", 2*time.Hour)
	require.Len(t, servers, 2)
	assert.Equal(t, []string{"stun:relay.example.org:3478"}, servers[0].URLs)
	assert.Empty(t, servers[0].Username)

	turnEntry := servers[1]
	assert.Equal(t, []string{"turn:relay.example.org:3478?transport=udp"}, turnEntry.URLs)
	assert.Equal(t, webrtc.ICECredentialTypePassword, turnEntry.CredentialType)
	expiry, id, ok := strings.Cut(turnEntry.Username, ":")
	require.True(t, ok)
	assert.Equal(t, "bob", id)
	unix, err := strconv.ParseInt(expiry, 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, before.Add(2*time.Hour).Unix(), unix, 2)
	_, wantPass, _ := relay.Credentials(testSecret, "bob", 2*time.Hour, time.Unix(unix, 0).Add(-2*time.Hour))
	assert.Equal(t, wantPass, turnEntry.Credential)

	// They travel to clients as JSON (the W3C RTCIceServer shape) and come
	// back identical through pion's own decoder.
	raw, err := json.Marshal(servers)
	require.NoError(t, err)
	var decoded []webrtc.ICEServer
	require.NoError(t, json.Unmarshal(raw, &decoded))
	assert.Equal(t, servers, decoded)

	// pion accepts the entries as they are (it validates them here).
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
	require.NoError(t, err)
	require.NoError(t, pc.Close())

	v6 := relay.ICEServers(net.JoinHostPort("2001:db8::7", "3478"), testSecret, "bob", time.Hour)
	assert.Equal(t, []string{"turn:[2001:db8::7]:3478?transport=udp"}, v6[1].URLs)
}

func TestExternal(t *testing.T) {
	servers, err := relay.External([]string{
		"stun:stun.example.org:3478",
		"turn:coturn.example.org:3478?transport=udp",
		"turns:coturn.example.org:5349?transport=tcp",
	}, testSecret, "carol", time.Hour)
	require.NoError(t, err)
	require.Len(t, servers, 2)
	assert.Equal(t, []string{"stun:stun.example.org:3478"}, servers[0].URLs)
	assert.Nil(t, servers[0].Credential)
	assert.Equal(t, []string{
		"turn:coturn.example.org:3478?transport=udp",
		"turns:coturn.example.org:5349?transport=tcp",
	}, servers[1].URLs)
	assert.True(t, strings.HasSuffix(servers[1].Username, ":carol"))
	assert.NotEmpty(t, servers[1].Credential)

	_, err = relay.External([]string{"http://coturn.example.org"}, testSecret, "carol", time.Hour)
	assert.Error(t, err)
}
