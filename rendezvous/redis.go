package rendezvous

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisOptions say where the shared state of a deployment lives.
type RedisOptions struct {
	// URL is redis://[user@]host:port/db or rediss:// for TLS. A password
	// in it works, but Password is the place for one (a URL ends up in
	// process lists and logs).
	URL      string
	Password string
	// Prefix starts every key and channel, so that deployments (or tests)
	// can share one Redis. ["peerdrop:"]
	Prefix string
}

// instanceTTL is how long an instance counts as alive after its last
// heartbeat; it beats every heartbeat. A dead instance's clients are
// dropped (and their rooms told) by the next live instance to notice.
const (
	instanceTTL = 15 * time.Second
	heartbeat   = 2 * time.Second
	prefixLen   = 6 // hex digits of a client id that name its instance
)

// redisStore is the Store of a deployment of many instances: every table in
// Redis, every change one Lua script (atomic), and messages for a client on
// another instance published on that instance's channel. Keys, under
// Prefix (docs/DEPLOY.md lists them):
//
//	c:ID     hash: peer (the hello as JSON), dev (the device it announced)
//	cr:ID    set: the rooms of client ID
//	ic:INST  set: the clients of instance INST (to drop when it dies)
//	inst:INST  the instance's heartbeat (expires after instanceTTL)
//	instances  set: every instance that has had clients
//	k:CODE   hash: room, open, exp (a code; a tombstone once open is 0)
//	codes, open  sorted sets of codes (all, open) by expiry
//	rm:ROOM  sorted set: the members of ROOM in the order they came
//	rooms, links  sets: code rooms with members, presence links
//	pres     hash: device id -> client id
//	pin:DEV  hash: key, seen;  pins: sorted set of devices by last announce
//	rl:KIND:ADDR  hash: a rate limit's bucket
//	rlkeys   sorted set: buckets made in the last lifetime of one
//	seq      a counter ordering room members
//
// A code room is "CODE:CREATOR", a link "L:A:B" (A < B). Times are the
// Config's clock in microseconds, passed to the scripts, so that tests move
// them; keys also expire in Redis's own time, as a backstop.
type redisStore struct {
	rdb    *redis.Client
	p      string
	inst   string
	cfg    *Config
	h      hooks
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	// ttl and every: the heartbeat's lifetime and period (tests shorten
	// them before the server starts).
	ttl, every time.Duration
	token      string // the heartbeat's value: this process's, not another's

	claimed atomic.Bool
	err     atomic.Pointer[error] // nil: ready
	upSince atomic.Int64          // unix nanoseconds since Redis answers again
	// dirty: a change for a client may be missing (a drop or hello failed
	// with Redis away); the next heartbeat reconciles this instance's
	// clients with the connections it holds.
	dirty atomic.Bool
	// lapsed: the heartbeat was found lapsed; once the id is claimed
	// again (and the store ready), every connection is closed.
	lapsed atomic.Bool

	n, failed atomic.Uint64
	total     atomic.Int64 // nanoseconds
}

// NewRedisStore connects to the Redis of o (lazily: a Redis that is down
// makes the server unready, not New fail; a bad URL does).
func NewRedisStore(o RedisOptions) (Store, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	if o.Password != "" {
		opt.Password = o.Password
	}
	if o.Prefix == "" {
		o.Prefix = "peerdrop:"
	}
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = 1
	opt.ContextTimeoutEnabled = true // the callers' deadlines bound the I/O
	// Maintenance notifications are Redis Enterprise's; their goroutines
	// would outlive Close.
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	var id [3]byte
	var token [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(token[:]); err != nil {
		return nil, err
	}
	s := &redisStore{rdb: redis.NewClient(opt), p: o.Prefix, inst: hex.EncodeToString(id[:]), token: hex.EncodeToString(token[:]),
		ttl: instanceTTL, every: heartbeat}
	s.rdb.AddHook(s)
	notYet := errors.New("not connected to redis yet")
	s.err.Store(&notYet)
	return s, nil
}

func (s *redisStore) start(h hooks, cfg *Config) error {
	s.h, s.cfg, s.log = h, cfg, cfg.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	s.beat(ctx)
	cancel()
	ps := s.rdb.Subscribe(s.ctx, s.p+"bus:"+s.inst)
	s.wg.Add(2)
	go s.listen(ps)
	go s.keepAlive()
	return nil
}

func (s *redisStore) idPrefix() string { return s.inst }

func (s *redisStore) ready() error {
	if e := s.err.Load(); e != nil {
		return fmt.Errorf("redis unreachable: %w", *e)
	}
	return nil
}

func (s *redisStore) close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		err = s.rdb.Close()
	})
	return err
}

// keepAlive beats the instance's heartbeat, reconciles this instance's
// clients after a failure, and drops the clients of dead instances, until
// close.
func (s *redisStore) keepAlive() {
	defer s.wg.Done()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.every)
		s.beat(ctx)
		if s.err.Load() == nil {
			if s.dirty.Load() {
				s.reconcile(ctx)
			}
			// Reap only once every live instance has had a heartbeat's
			// lifetime to renew after an outage: the lapse may be
			// Redis's, not theirs.
			if time.Since(time.Unix(0, s.upSince.Load())) >= s.ttl {
				s.reap(ctx)
			}
		}
		cancel()
	}
}

// beat claims or renews the instance's heartbeat and records whether Redis
// answers.
func (s *redisStore) beat(ctx context.Context) {
	key := s.p + "inst:" + s.inst
	var err error
	if s.claimed.Load() {
		var ok bool
		ok, err = s.rdb.SetXX(ctx, key, s.token, s.ttl).Result()
		if err == nil && !ok {
			// The heartbeat lapsed (Redis was away too long): other
			// instances may have dropped this one's clients. Close them
			// all (they reconnect and announce again) and claim anew.
			s.log.Warn("rendezvous: this instance's heartbeat lapsed; closing its connections", slog.String("instance", s.inst))
			s.lapsed.Store(true)
			s.dirty.Store(true)
			s.claimed.Store(false)
			// Others may have seen no outage: wait a lifetime before
			// reaping them too.
			s.upSince.Store(time.Now().UnixNano())
		}
	}
	if err == nil && !s.claimed.Load() {
		err = s.claim(ctx, key)
	}
	was := s.err.Load()
	if err != nil {
		s.err.Store(&err)
		if was == nil {
			s.log.Error("rendezvous: redis unreachable; refusing new work until it is back", slog.Any("err", err))
		}
		return
	}
	if was != nil {
		s.upSince.Store(time.Now().UnixNano())
		s.dirty.Store(true) // what failed meanwhile is reconciled
		s.err.Store(nil)
		s.log.Info("rendezvous: redis reachable", slog.String("instance", s.inst))
	}
	// Only now, claimed and ready: the clients told to try again are let
	// in at once.
	if s.lapsed.Swap(false) {
		s.h.lost()
	}
}

// claim takes the instance's id in Redis, after checking Redis can run the
// scripts (7.0 or later: SINTERCARD).
func (s *redisStore) claim(ctx context.Context, key string) error {
	info, err := s.rdb.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	if v := redisVersion(info); v < 7 {
		return fmt.Errorf("Redis 7.0 or later is needed (this one is %d.x)", v)
	}
	ok, err := s.rdb.SetNX(ctx, key, s.token, s.ttl).Result()
	if err != nil {
		return err
	}
	if !ok {
		// A claim whose reply was lost may have been applied: the key
		// is ours if it holds our token.
		if v, err := s.rdb.Get(ctx, key).Result(); err == nil && v == s.token {
			s.claimed.Store(true)
			return nil
		}
		// Another live instance drew this id (1 in 16 million): stay
		// unready; a restart draws another.
		return fmt.Errorf("instance id %s is taken by another instance", s.inst)
	}
	s.claimed.Store(true)
	return nil
}

// redisVersion is the major version in INFO server's redis_version line.
func redisVersion(info string) int {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			major, _, _ := strings.Cut(v, ".")
			n, _ := strconv.Atoi(major)
			return n
		}
	}
	return 0
}

// reconcile drops this instance's clients that Redis still holds but that
// are no longer connected (their drop failed), telling their rooms.
func (s *redisStore) reconcile(ctx context.Context) {
	s.dirty.Store(false)
	iter := s.rdb.SScan(ctx, s.p+"ic:"+s.inst, 0, "", 512).Iterator()
	for iter.Next(ctx) {
		if id := iter.Val(); !s.h.live(id) {
			left, err := s.drop(ctx, id, "")
			if err != nil {
				s.dirty.Store(true)
				return
			}
			s.tellGone(id, left)
		}
	}
	if iter.Err() != nil {
		s.dirty.Store(true)
	}
}

// reap drops the clients of instances whose heartbeat stopped, telling the
// members of their rooms. Each client is taken and dropped in one script,
// by one live instance; the instance is forgotten once it has none left.
func (s *redisStore) reap(ctx context.Context) {
	insts, err := s.rdb.SMembers(ctx, s.p+"instances").Result()
	if err != nil {
		return
	}
	for _, in := range insts {
		if in == s.inst {
			continue
		}
		if n, err := s.rdb.Exists(ctx, s.p+"inst:"+in).Result(); err != nil || n > 0 {
			continue
		}
		dropped := 0
		for {
			v, err := s.run(ctx, reapScript, in, prefixLen)
			if err != nil {
				return // the next heartbeat carries on
			}
			r, _ := v.([]any)
			if len(r) == 0 {
				break
			}
			id, _ := r[0].(string)
			s.tellGone(id, departures(r[1:]))
			dropped++
		}
		s.log.Info("rendezvous: dropped the clients of a dead instance", slog.String("instance", in), slog.Int("clients", dropped))
	}
}

// tellGone tells the rooms of a client the store dropped, on a context of
// its own: the drop is done, and the heartbeat's may be about to end.
func (s *redisStore) tellGone(id string, left []departure) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	s.h.gone(ctx, id, left)
}

// listen hands messages published for this instance's clients to them.
func (s *redisStore) listen(ps *redis.PubSub) {
	defer s.wg.Done()
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-s.ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			// kind (s: signal, m: server message), client id, message
			b := m.Payload
			if len(b) < 1+16 {
				continue
			}
			// A recipient here that does not keep up is closed, as for
			// the server's own messages: its sender cannot be told.
			s.h.local(b[1:17], []byte(b[17:]), false)
		}
	}
}

func (s *redisStore) deliver(ctx context.Context, id string, msg []byte, signal bool) (bool, error) {
	if len(id) < prefixLen || id[:prefixLen] == s.inst {
		return s.h.local(id, msg, signal), nil
	}
	kind := "m"
	if signal {
		kind = "s"
	}
	n, err := s.rdb.Publish(ctx, s.p+"bus:"+id[:prefixLen], kind+id+string(msg)).Result()
	return n > 0, err
}

// quiet takes go-redis's own log lines (one per failed dial while Redis is
// down) to slog at debug level: the store logs the outage once, and
// /healthz and /metrics tell the rest.
type quiet struct{}

var quietOnce sync.Once

func (quiet) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// run runs a script with the prefix as its first argument.
func (s *redisStore) run(ctx context.Context, sc *redis.Script, args ...any) (any, error) {
	return sc.Run(ctx, s.rdb, nil, append([]any{s.p}, args...)...).Result()
}

func us(t time.Time) int64 { return t.UnixMicro() }

// outcome turns a script's status word into an error for the client.
func outcome(word string) error {
	switch word {
	case "ok":
		return nil
	case "taken":
		return errCodeTaken
	case CodeServerFull:
		return newError(CodeServerFull, "")
	case CodeProtocol:
		return newError(CodeProtocol, "already in this room")
	case CodeKeyMismatch:
		return newError(CodeKeyMismatch, "this device id is bound to another key")
	}
	return newError(word, "")
}

func (s *redisStore) allow(ctx context.Context, kind int, key string, now time.Time, l Limit) (bool, error) {
	v, err := s.run(ctx, allowScript, strconv.Itoa(kind)+":"+key, us(now), l.Every.Microseconds(), l.Burst,
		s.cfg.MaxIPs*nLimits)
	if err != nil {
		return false, err
	}
	if v == int64(-1) {
		return false, newError(CodeServerFull, "too many client addresses")
	}
	return v == int64(1), nil
}

func (s *redisStore) setPeer(ctx context.Context, p *Peer) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err = s.run(ctx, setPeerScript, p.ClientID, b, s.inst); err != nil {
		s.dirty.Store(true) // it may have run: the client is reconciled
	}
	return err
}

func (s *redisStore) create(ctx context.Context, code, id string, now, expires time.Time) error {
	v, err := s.run(ctx, createScript, code, id, us(now), us(expires), s.cfg.MaxCodes, s.cfg.MaxRoomsPerConn,
		s.cfg.CodeTTL.Milliseconds())
	if err != nil {
		return err
	}
	if v == CodeServerFull {
		return newError(CodeServerFull, "too many pairing codes in use")
	}
	return outcome(v.(string))
}

func (s *redisStore) join(ctx context.Context, code, id string, now time.Time) (time.Time, []*Peer, error) {
	v, err := s.run(ctx, joinScript, code, id, us(now), s.cfg.MaxRoomMembers, s.cfg.MaxRoomsPerConn)
	if err != nil {
		return time.Time{}, nil, err
	}
	r := v.([]any)
	if err := outcome(r[0].(string)); err != nil {
		return time.Time{}, nil, err
	}
	exp, _ := strconv.ParseInt(r[1].(string), 10, 64)
	var peers []*Peer
	for i := 2; i+1 < len(r); i += 2 {
		peers = append(peers, decodePeer(r[i].(string), r[i+1].(string)))
	}
	return time.UnixMicro(exp), peers, nil
}

// decodePeer reads a stored peer; one that does not parse (it cannot, but
// Redis is not this process) is shown by its id alone.
func decodePeer(id, js string) *Peer {
	p := &Peer{}
	if json.Unmarshal([]byte(js), p) != nil || p.ClientID != id {
		return &Peer{ClientID: id}
	}
	return p
}

func strs(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}

func (s *redisStore) leave(ctx context.Context, code, id string) ([]string, error) {
	v, err := s.run(ctx, leaveScript, code, id)
	if err != nil {
		return nil, err
	}
	r := v.([]any)
	if err := outcome(r[0].(string)); err != nil {
		return nil, err
	}
	return strs(r[1:]), nil
}

func (s *redisStore) closeCode(ctx context.Context, code, id string) error {
	v, err := s.run(ctx, closeScript, code, id)
	if err != nil {
		return err
	}
	return outcome(v.(string))
}

func (s *redisStore) announce(ctx context.Context, deviceID, key, id string, now time.Time) error {
	v, err := s.run(ctx, announceScript, deviceID, key, id, us(now), s.cfg.PinTTL.Microseconds(), s.cfg.MaxPins)
	if err != nil {
		return err
	}
	if v == CodeServerFull {
		return newError(CodeServerFull, "too many devices")
	}
	return outcome(v.(string))
}

func (s *redisStore) find(ctx context.Context, deviceID, id string) (*Peer, bool, error) {
	v, err := s.run(ctx, findScript, deviceID, id, s.cfg.MaxRoomsPerConn, prefixLen)
	if err != nil {
		return nil, false, err
	}
	r := v.([]any)
	if err := outcome(r[0].(string)); err != nil {
		return nil, false, err
	}
	return decodePeer(r[2].(string), r[3].(string)), r[1] == "1", nil
}

// relay checks the room and publishes in one round trip; a recipient on
// this instance gets the signal without Redis carrying it.
func (s *redisStore) relay(ctx context.Context, from, to string, msg []byte) (shared, delivered bool, err error) {
	here := to[:prefixLen] == s.inst
	payload := ""
	if !here {
		payload = "s" + to + string(msg)
	}
	v, err := s.run(ctx, relayScript, from, to, payload, prefixLen)
	if err != nil {
		return false, false, err
	}
	switch n := v.(int64); {
	case n < 0:
		return false, false, nil
	case here:
		return true, s.h.local(to, msg, true), nil
	default:
		return true, n > 0, nil
	}
}

func (s *redisStore) drop(ctx context.Context, id, _ string) ([]departure, error) {
	v, err := s.run(ctx, dropScript, id, prefixLen)
	if err != nil {
		s.dirty.Store(true) // the next heartbeat drops it
		return nil, err
	}
	r, _ := v.([]any)
	return departures(r), nil
}

// departures reads a drop's reply: per room left, its code (or ""), the
// count of members still there and their ids.
func departures(r []any) []departure {
	var out []departure
	for i := 0; i+1 < len(r); {
		code, _ := r[i].(string)
		n, _ := r[i+1].(int64)
		i += 2
		end := min(i+int(n), len(r))
		out = append(out, departure{code: code, others: strs(r[i:end])})
		i = end
	}
	return out
}

func (s *redisStore) stats(ctx context.Context, now time.Time) (Stats, error) {
	var st Stats
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SCard(ctx, s.p+"rooms")
		p.SCard(ctx, s.p+"links")
		p.ZCount(ctx, s.p+"open", "("+strconv.FormatInt(us(now), 10), "+inf")
		p.HLen(ctx, s.p+"pres")
		return nil
	})
	if err != nil {
		return st, err
	}
	n := func(i int) int { return int(cmds[i].(*redis.IntCmd).Val()) }
	st.Rooms, st.Links, st.OpenCodes, st.Announced = n(0), n(1), n(2), n(3)
	return st, nil
}

func (s *redisStore) roundTrips() (uint64, time.Duration, uint64) {
	return s.n.Load(), time.Duration(s.total.Load()), s.failed.Load()
}

// The redis.Hook that counts round trips.

func (s *redisStore) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *redisStore) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		t := time.Now()
		err := next(ctx, cmd)
		s.count(time.Since(t), err)
		return err
	}
}

func (s *redisStore) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		t := time.Now()
		err := next(ctx, cmds)
		s.count(time.Since(t), err)
		return err
	}
}

func (s *redisStore) count(d time.Duration, err error) {
	s.n.Add(1)
	s.total.Add(int64(d))
	var ne net.Error
	if err != nil && !errors.Is(err, redis.Nil) && (errors.As(err, &ne) || !isRedisError(err)) {
		s.failed.Add(1)
	}
}

// isRedisError reports an error reply of Redis (a script's own error),
// as opposed to a failure to reach it.
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// lib is the Lua the scripts share. ARGV[1] is the key prefix.
const lib = `
local P = ARGV[1]
local function kill_code(room)
  local code = string.sub(room, 1, 10)
  local k = P .. 'k:' .. code
  if redis.call('HGET', k, 'room') == room and redis.call('HGET', k, 'open') == '1' then
    redis.call('HSET', k, 'open', '0')
    redis.call('ZREM', P .. 'open', code)
  end
end
local function is_link(room) return string.sub(room, 1, 2) == 'L:' end
local function leave_room(room, id)
  local rm = P .. 'rm:' .. room
  redis.call('ZREM', rm, id)
  redis.call('SREM', P .. 'cr:' .. id, room)
  local others = redis.call('ZRANGE', rm, 0, -1)
  if is_link(room) then
    for _, o in ipairs(others) do redis.call('SREM', P .. 'cr:' .. o, room) end
    redis.call('DEL', rm)
    redis.call('SREM', P .. 'links', room)
    return others
  end
  if string.sub(room, 12) == id then kill_code(room) end
  if #others == 0 then
    redis.call('DEL', rm)
    redis.call('SREM', P .. 'rooms', room)
  end
  return others
end
local function room_of(id, code)
  for _, r in ipairs(redis.call('SMEMBERS', P .. 'cr:' .. id)) do
    if string.sub(r, 1, 11) == code .. ':' then return r end
  end
  return nil
end
local function fmt(x) return string.format('%.17g', x) end
local function drop_client(id, pl)
  local out = {}
  for _, room in ipairs(redis.call('SMEMBERS', P .. 'cr:' .. id)) do
    local code = ''
    if not is_link(room) then code = string.sub(room, 1, 10) end
    local others = leave_room(room, id)
    table.insert(out, code)
    table.insert(out, #others)
    for _, o in ipairs(others) do table.insert(out, o) end
  end
  local dev = redis.call('HGET', P .. 'c:' .. id, 'dev')
  if dev and redis.call('HGET', P .. 'pres', dev) == id then redis.call('HDEL', P .. 'pres', dev) end
  redis.call('DEL', P .. 'c:' .. id, P .. 'cr:' .. id)
  redis.call('SREM', P .. 'ic:' .. string.sub(id, 1, pl), id)
  return out
end
`

var (
	allowScript = redis.NewScript(lib + `
local key = ARGV[2]
local k = P .. 'rl:' .. key
local now, every, burst, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local life = math.ceil(every * burst / 1000) + 60000 -- ms: full again, and a minute
local h = redis.call('HMGET', k, 't', 'last')
local t, last = tonumber(h[1]), tonumber(h[2])
if not t then
  -- a new bucket: counted for its first lifetime, and refused past the
  -- bound (the memory store's), so that addresses that come and go
  -- cannot fill Redis; the busy ones are bounded by their connections
  redis.call('ZREMRANGEBYSCORE', P .. 'rlkeys', '-inf', now)
  if redis.call('ZCARD', P .. 'rlkeys') >= max then return -1 end
  redis.call('ZADD', P .. 'rlkeys', now + life * 1000, key)
  t, last = burst, now
end
if now > last then
  t = math.min(burst, t + (now - last) / every)
  last = now
end
local ok = 0
if t >= 1 then t = t - 1; ok = 1 end
redis.call('HSET', k, 't', fmt(t), 'last', fmt(last))
redis.call('PEXPIRE', k, life)
return ok
`)
	setPeerScript = redis.NewScript(lib + `
local id, inst = ARGV[2], ARGV[4]
redis.call('HSET', P .. 'c:' .. id, 'peer', ARGV[3])
redis.call('SADD', P .. 'ic:' .. inst, id)
redis.call('SADD', P .. 'instances', inst)
return 'ok'
`)
	createScript = redis.NewScript(lib + `
local code, id, now, exp = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local maxCodes, maxRooms, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('SCARD', P .. 'cr:' .. id) >= maxRooms then return 'too-many-rooms' end
redis.call('ZREMRANGEBYSCORE', P .. 'codes', '-inf', now)
redis.call('ZREMRANGEBYSCORE', P .. 'open', '-inf', now)
-- live codes and tombstones alike: a code is issued once in its lifetime
if redis.call('ZSCORE', P .. 'codes', code) then return 'taken' end
if redis.call('ZCARD', P .. 'codes') >= maxCodes then return 'server-full' end
local room = code .. ':' .. id
local k = P .. 'k:' .. code
redis.call('DEL', k)
redis.call('HSET', k, 'room', room, 'open', '1', 'exp', exp)
redis.call('PEXPIRE', k, ttl)
redis.call('ZADD', P .. 'codes', exp, code)
redis.call('ZADD', P .. 'open', exp, code)
redis.call('ZADD', P .. 'rm:' .. room, redis.call('INCR', P .. 'seq'), id)
redis.call('SADD', P .. 'cr:' .. id, room)
redis.call('SADD', P .. 'rooms', room)
return 'ok'
`)
	joinScript = redis.NewScript(lib + `
local code, id, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local maxMembers, maxRooms = tonumber(ARGV[5]), tonumber(ARGV[6])
local h = redis.call('HMGET', P .. 'k:' .. code, 'room', 'open', 'exp')
if not h[1] then return {'bad-code'} end
if h[2] == '1' and tonumber(h[3]) <= now then
  kill_code(h[1])
  h[2] = '0'
end
-- unknown, expired and closed look the same from outside
if h[2] ~= '1' then return {'bad-code'} end
local room = h[1]
local rm = P .. 'rm:' .. room
if redis.call('ZSCORE', rm, id) then return {'protocol'} end
if redis.call('ZCARD', rm) >= maxMembers then return {'room-full'} end
if redis.call('SCARD', P .. 'cr:' .. id) >= maxRooms then return {'too-many-rooms'} end
local out = {'ok', h[3]}
for _, m in ipairs(redis.call('ZRANGE', rm, 0, -1)) do
  table.insert(out, m)
  table.insert(out, redis.call('HGET', P .. 'c:' .. m, 'peer') or '')
end
redis.call('ZADD', rm, redis.call('INCR', P .. 'seq'), id)
redis.call('SADD', P .. 'cr:' .. id, room)
return out
`)
	leaveScript = redis.NewScript(lib + `
local room = room_of(ARGV[3], ARGV[2])
if not room then return {'bad-code'} end
local out = {'ok'}
for _, o in ipairs(leave_room(room, ARGV[3])) do table.insert(out, o) end
return out
`)
	closeScript = redis.NewScript(lib + `
local code, id = ARGV[2], ARGV[3]
if code == '' then
  for _, r in ipairs(redis.call('SMEMBERS', P .. 'cr:' .. id)) do
    if not is_link(r) and string.sub(r, 12) == id then kill_code(r) end
  end
  return 'ok'
end
local room = room_of(id, code)
if not room or string.sub(room, 12) ~= id then return 'bad-code' end
kill_code(room)
return 'ok'
`)
	announceScript = redis.NewScript(lib + `
local dev, key, id, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ttl, maxPins = tonumber(ARGV[6]), tonumber(ARGV[7])
local pk = P .. 'pin:' .. dev
local cur = redis.call('HGET', pk, 'key')
-- a pin not announced for ttl is forgotten (as by the memory store's sweep)
if cur and tonumber(redis.call('HGET', pk, 'seen')) < now - ttl and redis.call('HEXISTS', P .. 'pres', dev) == 0 then
  cur = nil
end
if cur and cur ~= key then return 'key-mismatch' end
if not cur and redis.call('ZCARD', P .. 'pins') >= maxPins then
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', P .. 'pins', '-inf', '(' .. fmt(now - ttl), 'LIMIT', 0, 1000)) do
    if redis.call('HEXISTS', P .. 'pres', d) == 0 then
      redis.call('DEL', P .. 'pin:' .. d)
      redis.call('ZREM', P .. 'pins', d)
    end
  end
  if redis.call('ZCARD', P .. 'pins') >= maxPins then return 'server-full' end
end
-- no expiry in Redis's time: a pin stays while its device is present
-- (as in memory); the count of pins is bounded by maxPins
redis.call('HSET', pk, 'key', key, 'seen', fmt(now))
redis.call('ZADD', P .. 'pins', now, dev)
-- the device reconnected: the newest connection wins
redis.call('HSET', P .. 'pres', dev, id)
redis.call('HSET', P .. 'c:' .. id, 'dev', dev)
return 'ok'
`)
	findScript = redis.NewScript(lib + `
local dev, id, maxRooms, pl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('HGET', P .. 'pres', dev)
if not t or t == id then return {'not-found'} end
-- a device on an instance that died is gone, whatever the tables say
if redis.call('EXISTS', P .. 'inst:' .. string.sub(t, 1, pl)) == 0 then return {'not-found'} end
local a, b = id, t
if b < a then a, b = b, a end
local room = 'L:' .. a .. ':' .. b
local peer = redis.call('HGET', P .. 'c:' .. t, 'peer') or ''
if redis.call('SISMEMBER', P .. 'cr:' .. id, room) == 1 then return {'ok', '0', t, peer} end
if redis.call('SCARD', P .. 'cr:' .. id) >= maxRooms or redis.call('SCARD', P .. 'cr:' .. t) >= maxRooms then
  return {'too-many-rooms'}
end
redis.call('ZADD', P .. 'rm:' .. room, 1, id, 2, t)
redis.call('SADD', P .. 'cr:' .. id, room)
redis.call('SADD', P .. 'cr:' .. t, room)
redis.call('SADD', P .. 'links', room)
return {'ok', '1', t, peer}
`)
	relayScript = redis.NewScript(lib + `
local from, to, payload, pl = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('SINTERCARD', 2, P .. 'cr:' .. from, P .. 'cr:' .. to, 'LIMIT', 1) == 0 then return -1 end
if payload == '' then return 0 end
return redis.call('PUBLISH', P .. 'bus:' .. string.sub(to, 1, pl), payload)
`)
	dropScript = redis.NewScript(lib + `
return drop_client(ARGV[2], tonumber(ARGV[3]))
`)
	reapScript = redis.NewScript(lib + `
local inst, pl = ARGV[2], tonumber(ARGV[3])
-- the instance may have claimed its id again since the reaper looked
if redis.call('EXISTS', P .. 'inst:' .. inst) == 1 then return {} end
local id = redis.call('SPOP', P .. 'ic:' .. inst)
if not id then
  redis.call('SREM', P .. 'instances', inst)
  return {}
end
local out = drop_client(id, pl)
table.insert(out, 1, id)
return out
`)
)
