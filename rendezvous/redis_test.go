package rendezvous

import (
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/redistest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

// instances runs n servers on one private Redis with one clock, as n
// instances of a deployment behind a load balancer.
func instances(t *testing.T, n int, mod func(*Config)) ([]*harness, *redistest.Server) {
	t.Helper()
	if os.Getenv(storeEnv) == "redis" {
		t.Skip("skipped: runs on Redis in the memory-store pass already")
	}
	r := redistest.Start(t)
	clock := testkit.NewClock()
	hs := make([]*harness, n)
	for i := range hs {
		hs[i] = newHarness(t, func(c *Config) {
			c.Store = newRedisStore(t, r.URL(), "")
			c.Now = clock.Now
			if mod != nil {
				mod(c)
			}
		})
		hs[i].clock = clock
	}
	return hs, r
}

func TestInstancesPairAcrossRedis(t *testing.T) {
	hs, _ := instances(t, 2, nil)
	a, b := hs[0], hs[1]
	alice := a.dial("192.0.2.1", testHello("alice"))
	bob := b.dial("198.51.100.2", testHello("bob"))
	carol := a.dial("203.0.113.3", testHello("carol"))
	require.NotEqual(t, alice.ClientID()[:prefixLen], bob.ClientID()[:prefixLen], "each instance names its clients")

	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	joined, err := bob.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	assert.Equal(t, room.Expires.UnixMicro(), joined.Expires.UnixMicro())
	// Bob, on B, learns of Alice, on A, and Alice of Bob.
	assert.Equal(t, alice.ClientID(), expectType[PeerJoined](t, bob).Peer.ClientID)
	pj := expectType[PeerJoined](t, alice)
	assert.Equal(t, bob.ClientID(), pj.Peer.ClientID)
	assert.Equal(t, "bob", pj.Peer.Name)

	// Signals cross both ways; Carol, on A but in no room, reaches nobody.
	require.NoError(t, alice.Signal(bob.ClientID(), "offer"))
	s := expectType[Signal](t, bob)
	assert.Equal(t, alice.ClientID(), s.From)
	require.NoError(t, bob.Signal(alice.ClientID(), "answer"))
	assert.Equal(t, bob.ClientID(), expectType[Signal](t, alice).From)
	require.NoError(t, carol.Signal(bob.ClientID(), "hi"))
	e := expectType[*Error](t, carol)
	assert.ErrorIs(t, e, ErrUnknownPeer)
	noEvent(t, bob, 100*time.Millisecond)

	// The join and the room show on both instances.
	assert.Equal(t, Stats{Conns: 2, Rooms: 1, OpenCodes: 1}, a.srv.Stats())
	assert.Equal(t, Stats{Conns: 1, Rooms: 1, OpenCodes: 1}, b.srv.Stats())

	// Bob leaves on B: Alice hears it on A.
	require.NoError(t, bob.Close())
	assert.Equal(t, PeerLeft{ClientID: bob.ClientID(), Code: room.Code}, expectType[PeerLeft](t, alice))
}

func TestInstancesFindAcrossRedis(t *testing.T) {
	hs, _ := instances(t, 2, nil)
	a, b := hs[0], hs[1]
	dev := newDevice(t, "laptop")
	laptop := a.dial("192.0.2.1", dev.hello)
	require.NoError(t, laptop.Announce(ctxT(t), dev.key, dev.cert))
	phone := b.dial("198.51.100.2", testHello("phone"))

	peer, err := phone.Find(ctxT(t), dev.hello.ID)
	require.NoError(t, err)
	assert.Equal(t, Peer{ClientID: laptop.ClientID(), Hello: dev.hello}, peer)
	assert.Equal(t, phone.ClientID(), expectType[PeerJoined](t, laptop).Peer.ClientID)
	require.NoError(t, phone.Signal(laptop.ClientID(), "offer"))
	assert.Equal(t, phone.ClientID(), expectType[Signal](t, laptop).From)

	// The laptop comes back on B: found there.
	require.NoError(t, laptop.Close())
	assert.Equal(t, PeerLeft{ClientID: laptop.ClientID()}, expectType[PeerLeft](t, phone))
	laptop2 := b.dial("192.0.2.1", dev.hello)
	require.NoError(t, laptop2.Announce(ctxT(t), dev.key, dev.cert))
	tablet := a.dial("198.51.100.3", testHello("tablet"))
	peer, err = tablet.Find(ctxT(t), dev.hello.ID)
	require.NoError(t, err)
	assert.Equal(t, laptop2.ClientID(), peer.ClientID)
}

// An attacker spreading its attempts over the instances gets one budget,
// not one per instance.
func TestInstancesShareRateLimits(t *testing.T) {
	hs, _ := instances(t, 2, func(c *Config) { c.PairRate = PerMinute(10); c.MaxStrikes = 100 })
	const ip = "203.0.113.66"
	clients := []*Client{hs[0].dial(ip, testHello("x")), hs[1].dial(ip, testHello("y"))}
	var answered, refused int
	for i := range 20 {
		_, err := clients[i%2].Join(ctxT(t), "ABCDE-12345")
		switch {
		case errors.Is(err, ErrBadCode):
			answered++
		case errors.Is(err, ErrRateLimited):
			refused++
		default:
			t.Fatalf("join %d: %v", i, err)
		}
	}
	assert.Equal(t, 10, answered, "10 attempts a minute from one address, over both instances")
	assert.Equal(t, 10, refused)
	// Another address has its own budget.
	_, err := hs[1].dial("198.51.100.7", testHello("z")).Join(ctxT(t), "ABCDE-12345")
	assert.ErrorIs(t, err, ErrBadCode)
}

// Redis goes away: the instance says so on /healthz and refuses new work in
// plain words; Redis comes back (with what it had written): the instance
// recovers by itself, and the code issued before still works.
func TestInstanceRecoversWhenRedisReturns(t *testing.T) {
	hs, r := instances(t, 1, nil)
	h := hs[0]
	alice := h.dial("192.0.2.1", testHello("alice"))
	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)

	r.Stop()
	require.Eventually(t, func() bool { code, _ := httpGet(t, h, "/healthz"); return code == http.StatusServiceUnavailable },
		10*time.Second, 50*time.Millisecond, "healthz says not ready")
	_, body := httpGet(t, h, "/healthz")
	assert.Contains(t, body, "redis unreachable")
	_, err = alice.Create(ctxT(t))
	assert.ErrorContains(t, err, "storage is unreachable; try again soon")
	_, err = h.tryDial("192.0.2.2", testHello("late"))
	assert.Error(t, err, "no new connection while Redis is down")

	r.Restart()
	require.Eventually(t, func() bool { code, _ := httpGet(t, h, "/healthz"); return code == http.StatusOK },
		10*time.Second, 50*time.Millisecond, "healthz ready again")
	bob := h.dial("198.51.100.2", testHello("bob"))
	_, err = bob.Join(ctxT(t), room.Code)
	require.NoError(t, err, "the code outlived Redis's restart")
	assert.Equal(t, alice.ClientID(), expectType[PeerJoined](t, bob).Peer.ClientID)
	assert.Equal(t, bob.ClientID(), expectType[PeerJoined](t, alice).Peer.ClientID)
}

// An instance that dies (its heartbeat stops) loses its clients: a live
// instance drops them from their rooms and tells the members, and a find
// no longer returns them.
func TestDeadInstanceIsReaped(t *testing.T) {
	hs, r := instances(t, 1, func(c *Config) { quickBeats(c.Store) })
	h := hs[0]
	dev := newDevice(t, "laptop")
	phone := h.dial("198.51.100.2", testHello("phone"))
	room, err := phone.Create(ctxT(t))
	require.NoError(t, err)

	// A dead instance's client, as its instance left it in Redis: in the
	// room, announced, and its heartbeat gone.
	dead, err := NewRedisStore(RedisOptions{URL: r.URL()})
	require.NoError(t, err)
	ds := dead.(*redisStore)
	t.Cleanup(func() { _ = ds.rdb.Close() })
	ds.cfg = &h.srv.cfg
	ctx := ctxT(t)
	ghost := ds.inst + "0123456789"
	require.NoError(t, ds.setPeer(ctx, &Peer{ClientID: ghost, Hello: dev.hello}))
	_, members, err := ds.join(ctx, room.Code[:5]+room.Code[6:], ghost, h.clock.Now())
	require.NoError(t, err)
	require.Len(t, members, 1)
	require.NoError(t, ds.announce(ctx, dev.hello.ID, "key", ghost, h.clock.Now()))

	_, err = phone.Find(ctxT(t), dev.hello.ID)
	assert.ErrorIs(t, err, ErrNotFound, "no heartbeat: not found")
	assert.Equal(t, PeerLeft{ClientID: ghost, Code: room.Code}, expectType[PeerLeft](t, phone), "reaped")
	require.Eventually(t, func() bool { return h.srv.Stats().Announced == 0 }, waitFor, 20*time.Millisecond)
}

// quickBeats makes a Redis store's heartbeat last 2 s, renewed every 400
// ms, so that dead instances are reaped within seconds.
func quickBeats(st Store) {
	rs := st.(*redisStore)
	rs.ttl, rs.every = 2*time.Second, 400*time.Millisecond
}

func TestRedisStoreBadURL(t *testing.T) {
	_, err := NewRedisStore(RedisOptions{URL: "http://example.com"})
	assert.ErrorContains(t, err, "redis URL")
}
