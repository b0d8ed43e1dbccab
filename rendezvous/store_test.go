package rendezvous

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thepeerdrop/peerdrop/internal/redistest"
)

// Redis is away longer than the instances' heartbeats live: each instance
// may have been reaped by another, so it closes its connections (the
// clients reconnect and announce again) rather than keep clients the
// tables no longer hold. Afterwards new clients pair across instances.
func TestLapsedInstanceClosesItsConnections(t *testing.T) {
	hs, r := instances(t, 2, func(c *Config) { quickBeats(c.Store) })
	a, b := hs[0], hs[1]
	alice := a.dial("192.0.2.1", testHello("alice"))
	bob := b.dial("198.51.100.2", testHello("bob"))
	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	_, err = bob.Join(ctxT(t), room.Code)
	require.NoError(t, err)

	r.Stop()
	time.Sleep(3 * time.Second) // longer than a heartbeat lives
	r.Restart()
	for _, c := range []*Client{alice, bob} {
		select {
		case <-c.Done():
			assert.Equal(t, websocket.StatusTryAgainLater, websocket.CloseStatus(c.Err()), "%v", c.Err())
		case <-time.After(10 * time.Second):
			t.Fatalf("%s kept a connection its instance may have lost", c.ClientID())
		}
	}
	carol := a.dial("192.0.2.3", testHello("carol"))
	dave := b.dial("198.51.100.4", testHello("dave"))
	room, err = carol.Create(ctxT(t))
	require.NoError(t, err)
	_, err = dave.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	assert.Equal(t, carol.ClientID(), expectType[PeerJoined](t, dave).Peer.ClientID)
}

// A client that disconnects while Redis is away cannot be dropped then:
// once Redis is back its instance drops it, and its room hears it left.
func TestDropMissedInOutageIsDoneLater(t *testing.T) {
	hs, r := instances(t, 2, nil)
	a, b := hs[0], hs[1]
	alice := a.dial("192.0.2.1", testHello("alice"))
	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	dev := newDevice(t, "laptop")
	bob := b.dial("198.51.100.2", dev.hello)
	require.NoError(t, bob.Announce(ctxT(t), dev.key, dev.cert))
	_, err = bob.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	expectType[PeerJoined](t, alice)

	r.Stop()
	require.NoError(t, bob.Close())
	require.Eventually(t, func() bool { return b.srv.Stats().Conns == 0 }, 15*time.Second, 50*time.Millisecond)
	r.Restart()
	select {
	case ev := <-alice.Events():
		assert.Equal(t, PeerLeft{ClientID: bob.ClientID(), Code: room.Code}, ev)
	case <-time.After(10 * time.Second):
		t.Fatal("alice was never told that bob left")
	}
	carol := a.dial("203.0.113.3", testHello("carol"))
	_, err = carol.Find(ctxT(t), dev.hello.ID)
	assert.ErrorIs(t, err, ErrNotFound, "bob's old connection is not found")
}

// The clients of a dead instance are all dropped, each in one script with
// its removal from the instance's list: a reap cut short (its time ran out,
// a failover) goes on at the next heartbeat, and a client whose entries
// are broken does not stop the rest.
func TestReapDropsEveryClient(t *testing.T) {
	hs, r := instances(t, 1, func(c *Config) { quickBeats(c.Store) })
	h := hs[0]
	dead, err := NewRedisStore(RedisOptions{URL: r.URL()})
	require.NoError(t, err)
	ds := dead.(*redisStore)
	t.Cleanup(func() { _ = ds.rdb.Close() })
	ds.cfg = &h.srv.cfg
	ctx := context.Background()
	const n = 2000
	for i := range n {
		id := fmt.Sprintf("%s%010x", ds.inst, i)
		require.NoError(t, ds.setPeer(ctx, &Peer{ClientID: id, Hello: testHello("g")}))
		require.NoError(t, ds.announce(ctx, fmt.Sprintf("%016x", i), "k", id, h.clock.Now()))
	}
	// One client's room list is not a set: its drop fails.
	require.NoError(t, ds.rdb.Set(ctx, ds.p+"cr:"+ds.inst+"0000000000", "x", 0).Err())
	require.Eventually(t, func() bool {
		left, _ := ds.rdb.SCard(ctx, ds.p+"ic:"+ds.inst).Result()
		pres, _ := ds.rdb.HLen(ctx, ds.p+"pres").Result()
		return left == 0 && pres <= 1
	}, 30*time.Second, 100*time.Millisecond, "every client reaped")
	require.Eventually(t, func() bool {
		on, _ := ds.rdb.SIsMember(ctx, ds.p+"instances", ds.inst).Result()
		return !on
	}, 5*time.Second, 50*time.Millisecond, "the instance is forgotten once it has no client")
}

// A recipient on another instance that reads nothing is closed by its
// instance as too slow, as one on the sender's instance makes the sender
// hear peer-busy: signals are never dropped unseen.
func TestSlowRecipientOnAnotherInstance(t *testing.T) {
	hs, _ := instances(t, 2, func(c *Config) {
		c.SendQueue = 256 << 10
		c.MessageRate = Limit{Every: time.Microsecond, Burst: 100000}
	})
	a, b := hs[0], hs[1]
	alice := a.dial("192.0.2.1", testHello("alice"))
	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	h := testHello("bob")
	bob := b.raw("198.51.100.2", &h)
	bob.send(&Envelope{Type: TypeJoin, Req: 2, Code: room.Code})
	require.Equal(t, TypeJoined, bob.read().Type)
	require.Equal(t, TypePeerJoined, bob.read().Type)
	expectType[PeerJoined](t, alice)
	payload := strings.Repeat("x", 60000)
	for range 600 {
		require.NoError(t, alice.Signal(bob.welcome.ClientID, payload))
	}
	require.Eventually(t, func() bool { return b.srv.m.slow.Load() > 0 }, 10*time.Second, 50*time.Millisecond,
		"bob's instance closes him as too slow")
}

// slowJoin widens the time between the store's join and the joiner's
// answers, as a pause or a slow Redis reply would.
type slowJoin struct {
	Store
	delay time.Duration
}

func (s *slowJoin) join(ctx context.Context, code, id string, now time.Time) (time.Time, []*Peer, error) {
	exp, m, err := s.Store.join(ctx, code, id, now)
	time.Sleep(s.delay)
	return exp, m, err
}

// A member that leaves while a join is answered is reported to the joiner
// after the join, not before: the joiner never keeps a member that left.
func TestPeerLeftComesAfterTheJoin(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Store = &slowJoin{Store: NewMemoryStore(), delay: 300 * time.Millisecond} })
	alice := h.dial("192.0.2.1", testHello("alice"))
	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	bob := h.dial("198.51.100.2", testHello("bob"))
	done := make(chan error, 1)
	go func() { _, err := bob.Join(ctxT(t), room.Code); done <- err }()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, alice.Close())
	require.NoError(t, <-done)
	assert.Equal(t, alice.ClientID(), expectType[PeerJoined](t, bob).Peer.ClientID)
	assert.Equal(t, PeerLeft{ClientID: alice.ClientID(), Code: room.Code}, expectType[PeerLeft](t, bob))
}

// slowHook delays every command of one name by d, widening a window.
type slowHook struct {
	name string
	d    time.Duration
}

func (h slowHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h slowHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h slowHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == h.name {
			time.Sleep(h.d)
		}
		return next(ctx, cmd)
	}
}

// A lapsed instance closes its clients only once it is ready again: told
// to try again later, they are let in at once.
func TestLapsedInstanceTakesItsClientsBack(t *testing.T) {
	hs, r := instances(t, 1, func(c *Config) {
		quickBeats(c.Store)
		c.Store.(*redisStore).rdb.AddHook(slowHook{name: "info", d: 150 * time.Millisecond})
	})
	a := hs[0]
	alice := a.dial("192.0.2.1", testHello("alice"))
	r.Stop()
	time.Sleep(3 * time.Second)
	r.Restart()
	select {
	case <-alice.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not closed")
	}
	_, err := a.tryDial("192.0.2.1", testHello("alice again"))
	require.NoError(t, err, "a client told 1013 reconnects at once")
}

// afterExists runs f once, right after the first EXISTS returns.
type afterExists struct {
	once sync.Once
	f    func()
}

func (h *afterExists) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterExists) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *afterExists) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "exists" {
			h.once.Do(h.f)
		}
		return err
	}
}

// Instance A's heartbeat lapsed and B starts to reap it; meanwhile A claims
// its id again and a new client says hello there. B leaves that client be.
func TestReapSparesAnInstanceBackAlive(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	mk := func() *redisStore {
		st, err := NewRedisStore(RedisOptions{URL: r.URL()})
		require.NoError(t, err)
		rs := st.(*redisStore)
		rs.log, rs.cfg = slog.New(slog.DiscardHandler), &Config{}
		rs.ctx = ctx
		t.Cleanup(func() { _ = rs.rdb.Close() })
		return rs
	}
	a, b := mk(), mk()
	require.NoError(t, a.setPeer(ctx, &Peer{ClientID: a.inst + "0000000001", Hello: testHello("old")}))
	fresh := a.inst + "0000000002"
	b.rdb.AddHook(&afterExists{f: func() {
		require.NoError(t, a.claim(ctx, a.p+"inst:"+a.inst))
		require.NoError(t, a.setPeer(ctx, &Peer{ClientID: fresh, Hello: testHello("fresh")}))
	}})
	var gone []string
	b.h = hooks{gone: func(_ context.Context, id string, _ []departure) { gone = append(gone, id) }}
	b.reap(ctx)
	assert.Empty(t, gone, "nothing of a live instance is reaped")
	n, err := b.rdb.Exists(ctx, b.p+"c:"+fresh).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the new client is kept")
	in, err := b.rdb.SIsMember(ctx, b.p+"instances", a.inst).Result()
	require.NoError(t, err)
	assert.True(t, in, "and its instance stays known")
}

// Signals held while a client's own (slow) request is handled wait for it;
// they do not count as messages the client failed to read.
func TestHeldSignalsDoNotMakeAClientSlow(t *testing.T) {
	n := 0
	hs, _ := instances(t, 2, func(c *Config) {
		c.MessageRate = Limit{Every: time.Microsecond, Burst: 100000}
		if n++; n == 2 {
			c.Store = &slowJoin{Store: c.Store, delay: 500 * time.Millisecond}
		}
	})
	a, b := hs[0], hs[1]
	alice := a.dial("192.0.2.1", testHello("alice"))
	bob := b.dial("198.51.100.2", testHello("bob"))
	room, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	_, err = bob.Join(ctxT(t), room.Code)
	require.NoError(t, err)
	expectType[PeerJoined](t, bob)
	expectType[PeerJoined](t, alice)
	room2, err := alice.Create(ctxT(t))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := bob.Join(ctxT(t), room2.Code); done <- err }()
	time.Sleep(100 * time.Millisecond)
	for range 2 * maxQueued {
		require.NoError(t, alice.Signal(bob.ClientID(), "candidate"))
	}
	require.NoError(t, <-done)
	got := 0
	for got < 2*maxQueued {
		if _, ok := expectEvent(t, bob).(Signal); ok {
			got++
		}
	}
	assert.Zero(t, b.srv.m.slow.Load(), "bob, who reads everything, is not closed as too slow")
}

// A claim whose reply was lost (applied in Redis, an error here) is found
// to be this instance's own on the next try; another process's is not.
func TestClaimRecognisesItsOwnKey(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	st, err := NewRedisStore(RedisOptions{URL: r.URL()})
	require.NoError(t, err)
	rs := st.(*redisStore)
	t.Cleanup(func() { _ = rs.rdb.Close() })
	key := rs.p + "inst:" + rs.inst
	require.NoError(t, rs.rdb.Set(ctx, key, rs.token, time.Minute).Err(), "the lost claim")
	require.NoError(t, rs.claim(ctx, key))
	assert.True(t, rs.claimed.Load())

	rs.claimed.Store(false)
	require.NoError(t, rs.rdb.Set(ctx, key, "another process", time.Minute).Err())
	assert.ErrorContains(t, rs.claim(ctx, key), "taken by another instance")
}

// Addresses that come and go leave rate-limit buckets behind; the store
// keeps at most MaxIPs×4 of them, refusing new addresses past that (503)
// until old buckets are full again and forgotten. Both stores.
func TestAddressesRememberedAreBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxIPs = 3 })
	ip := func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }
	// Each connection spends a connect and a message token: 2 buckets.
	for i := range 6 {
		c, err := h.tryDial(ip(i), testHello("passer-by"))
		require.NoError(t, err, "address %d", i)
		require.NoError(t, c.Close())
		require.Eventually(t, func() bool { return h.srv.Stats().Conns == 0 }, waitFor, 10*time.Millisecond)
	}
	_, err := h.tryDial(ip(7), testHello("one too many"))
	require.Error(t, err, "the store holds 12 buckets of 6 addresses: a 7th is refused")
	assert.Contains(t, err.Error(), "503")

	// Once the old buckets are full again they are forgotten.
	h.clock.Advance(time.Hour)
	c, err := h.tryDial(ip(8), testHello("later"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}
