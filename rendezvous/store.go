package rendezvous

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Store holds what the server's handlers share, and what instances of one
// deployment share: pairing codes and their rooms, presence links, announced
// devices and their pins, the rate limits of client addresses, and the way
// to a client's connection (a bus). The handlers are written once against
// it; NewMemoryStore keeps it in the process (the default: nothing to
// install), NewRedisStore in Redis, so that many instances behind one URL
// act as one server.
//
// Clients are named by their client id; a room by its canonical code, or ""
// for a presence link (two members, made by Find). Each method is atomic.
// Outcomes a client is told about come back as *Error (bad code, room full,
// too many rooms, ...); any other error means the store failed, and the
// request is refused with "try again".
type Store interface {
	// start hands the store its server's hooks and config; the store's
	// goroutines (if any) run until close.
	start(h hooks, cfg *Config) error
	// idPrefix starts every client id this instance gives out, so that a
	// message for it finds this instance ("" for a single process).
	idPrefix() string
	// ready reports whether the store can be used (nil) or why not.
	ready() error

	// allow takes a token from the bucket of kind (limitConnect, ...) of
	// the address key.
	allow(ctx context.Context, kind int, key string, now time.Time, l Limit) (bool, error)
	// setPeer records how a client is shown to others (its hello).
	setPeer(ctx context.Context, p *Peer) error
	// create issues code with creator id as the first member of its room;
	// errCodeTaken when the code is live or a tombstone.
	create(ctx context.Context, code, id string, now, expires time.Time) error
	// join adds id to the room of an open code and returns the members it
	// joined, oldest first, and the code's expiry.
	join(ctx context.Context, code, id string, now time.Time) (time.Time, []*Peer, error)
	// leave takes id out of the room of code ("" never: links end in drop
	// or with their other member) and returns the members left to tell.
	leave(ctx context.Context, code, id string) ([]string, error)
	// closeCode makes code (or, for "", every code id created) refuse
	// joins; ErrBadCode when id did not create it.
	closeCode(ctx context.Context, code, id string) error
	// announce binds deviceID to key (the first key wins for PinTTL after
	// its last announce) and makes id the device's connection.
	announce(ctx context.Context, deviceID, key, id string, now time.Time) error
	// find links id with the connection of deviceID and returns it;
	// linked is false when they were linked already.
	find(ctx context.Context, deviceID, id string) (p *Peer, linked bool, err error)
	// relay hands a signal from client from to client to when they share
	// a room (shared); delivered as deliver says.
	relay(ctx context.Context, from, to string, msg []byte) (shared, delivered bool, err error)
	// drop takes id out of every room and out of presence (when deviceID
	// still names it), and returns whom to tell of each room left.
	drop(ctx context.Context, id, deviceID string) ([]departure, error)
	// deliver hands a message to the connection of id, on whichever
	// instance holds it; false when none holds it, or a signal's recipient
	// on this instance is not keeping up.
	deliver(ctx context.Context, id string, msg []byte, signal bool) (bool, error)
	// stats counts rooms, links, open codes and announced devices.
	stats(ctx context.Context, now time.Time) (Stats, error)
	// close stops the store's goroutines.
	close() error
}

// hooks are what a store calls its server back with.
type hooks struct {
	local localDelivery
	// gone tells the members of the rooms a client left that the store
	// dropped by itself (its instance died, or its own drop failed).
	gone func(ctx context.Context, id string, left []departure)
	// live reports whether a client of this instance is connected.
	live func(id string) bool
	// lost closes every connection of this instance: the store forgot
	// them (they reconnect).
	lost func()
}

// localDelivery queues msg for the connection of id on this instance; false
// when there is none, or it does not keep up with signals (a client that
// does not keep up with the server's own messages is closed).
type localDelivery func(id string, msg []byte, signal bool) bool

// departure is a room a client left: its code ("" for a link) and the
// members still there.
type departure struct {
	code   string
	others []string
}

// errCodeTaken: the drawn code is in use; draw another.
var errCodeTaken = errors.New("code taken")

// errUnavailable is what a client is told when the store fails.
var errUnavailable = newError(CodeInternal, "the server's storage is unreachable; try again soon")

// memStore is the Store of a single process: maps under one mutex.
type memStore struct {
	cfg   *Config
	local localDelivery

	mu        sync.Mutex
	clients   map[string]*memClient
	codes     map[string]*memCode // canonical code -> live room or tombstone
	presence  map[string]string   // announced device id -> client id
	pins      map[string]*pin     // device id -> the key it first announced
	buckets   map[bucketKey]*bucket
	rooms     int // code rooms with members
	links     int
	openCodes int
	lastSweep time.Time
}

type memClient struct {
	peer  *Peer
	rooms []*memRoom
}

// memCode is an issued pairing code. Once dead (closed, creator gone,
// expired) room is nil, and the entry stays as a tombstone until the code's
// expiry so that the code is never issued again in its lifetime.
type memCode struct {
	room    *memRoom
	expires time.Time
}

// memRoom is a set of clients allowed to signal each other: a code room, or
// a two-member presence link made by find (code "").
type memRoom struct {
	code    string
	creator string
	members []string
	open    bool // the code still admits joins
	expires time.Time
}

type pin struct {
	key      string // PKIX DER
	lastSeen time.Time
}

type bucketKey struct {
	kind int
	key  string
}

// NewMemoryStore returns the in-process store, the default of New.
func NewMemoryStore() Store {
	return &memStore{
		clients:  make(map[string]*memClient),
		codes:    make(map[string]*memCode),
		presence: make(map[string]string),
		pins:     make(map[string]*pin),
		buckets:  make(map[bucketKey]*bucket),
	}
}

func (m *memStore) start(h hooks, cfg *Config) error {
	m.local, m.cfg = h.local, cfg
	return nil
}

func (m *memStore) idPrefix() string { return "" }
func (m *memStore) ready() error     { return nil }
func (m *memStore) close() error     { return nil }

func (m *memStore) deliver(_ context.Context, id string, msg []byte, signal bool) (bool, error) {
	return m.local(id, msg, signal), nil
}

func (m *memStore) allow(_ context.Context, kind int, key string, now time.Time, l Limit) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maybeSweep(now)
	k := bucketKey{kind, key}
	b := m.buckets[k]
	if b == nil {
		if len(m.buckets) >= m.cfg.MaxIPs*nLimits {
			m.sweep(now)
		}
		if len(m.buckets) >= m.cfg.MaxIPs*nLimits {
			return false, newError(CodeServerFull, "too many client addresses")
		}
		b = &bucket{}
		m.buckets[k] = b
	}
	return b.allow(now, l), nil
}

// client returns id's record, made on first use.
func (m *memStore) client(id string) *memClient {
	c := m.clients[id]
	if c == nil {
		c = &memClient{}
		m.clients[id] = c
	}
	return c
}

func (m *memStore) setPeer(_ context.Context, p *Peer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.client(p.ClientID).peer = p
	return nil
}

func (m *memStore) create(_ context.Context, code, id string, now, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.client(id)
	if len(c.rooms) >= m.cfg.MaxRoomsPerConn {
		return newError(CodeTooManyRooms, "")
	}
	m.maybeSweep(now)
	if len(m.codes) >= m.cfg.MaxCodes {
		return newError(CodeServerFull, "too many pairing codes in use")
	}
	// Live codes and tombstones alike: a code is issued once in its lifetime.
	if m.codes[code] != nil {
		return errCodeTaken
	}
	r := &memRoom{code: code, creator: id, members: []string{id}, open: true, expires: expires}
	m.codes[code] = &memCode{room: r, expires: expires}
	m.openCodes++
	m.rooms++
	c.rooms = append(c.rooms, r)
	return nil
}

func (m *memStore) join(_ context.Context, code, id string, now time.Time) (time.Time, []*Peer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.codes[code]
	if e != nil && e.room != nil && !now.Before(e.expires) {
		m.killCode(e.room)
	}
	// Unknown, expired and closed look the same from outside.
	if e == nil || e.room == nil || !e.room.open {
		return time.Time{}, nil, newError(CodeBadCode, "")
	}
	r := e.room
	if slices.Contains(r.members, id) {
		return time.Time{}, nil, newError(CodeProtocol, "already in this room")
	}
	if len(r.members) >= m.cfg.MaxRoomMembers {
		return time.Time{}, nil, newError(CodeRoomFull, "")
	}
	c := m.client(id)
	if len(c.rooms) >= m.cfg.MaxRoomsPerConn {
		return time.Time{}, nil, newError(CodeTooManyRooms, "")
	}
	peers := make([]*Peer, 0, len(r.members))
	for _, mid := range r.members {
		peers = append(peers, m.peer(mid))
	}
	r.members = append(r.members, id)
	c.rooms = append(c.rooms, r)
	return r.expires, peers, nil
}

// peer is how client id is shown; call with m.mu held.
func (m *memStore) peer(id string) *Peer {
	if c := m.clients[id]; c != nil && c.peer != nil {
		return c.peer
	}
	return &Peer{ClientID: id}
}

// roomOf finds id's room with code; call with m.mu held.
func (m *memStore) roomOf(id, code string) *memRoom {
	if c := m.clients[id]; c != nil {
		for _, r := range c.rooms {
			if r.code == code {
				return r
			}
		}
	}
	return nil
}

func (m *memStore) leave(_ context.Context, code, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.roomOf(id, code)
	if r == nil {
		return nil, newError(CodeBadCode, "")
	}
	return m.leaveRoom(id, r), nil
}

func (m *memStore) closeCode(_ context.Context, code, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if code == "" {
		if c := m.clients[id]; c != nil {
			for _, r := range c.rooms {
				if r.creator == id {
					m.killCode(r)
				}
			}
		}
		return nil
	}
	r := m.roomOf(id, code)
	if r == nil || r.creator != id {
		return newError(CodeBadCode, "")
	}
	m.killCode(r)
	return nil
}

// killCode makes r's code refuse joins from now on, for good.
func (m *memStore) killCode(r *memRoom) {
	if !r.open {
		return
	}
	r.open = false
	m.openCodes--
	if e := m.codes[r.code]; e != nil && e.room == r {
		e.room = nil // a tombstone until the code's expiry
	}
}

// leaveRoom takes id out of r and returns the members to tell. A presence
// link ends with either member; a code room with its last one.
func (m *memStore) leaveRoom(id string, r *memRoom) []string {
	r.members = slices.DeleteFunc(r.members, func(x string) bool { return x == id })
	if c := m.clients[id]; c != nil {
		c.rooms = slices.DeleteFunc(c.rooms, func(x *memRoom) bool { return x == r })
	}
	if r.creator == id {
		m.killCode(r)
	}
	others := slices.Clone(r.members)
	if r.code == "" {
		for _, o := range r.members {
			if c := m.clients[o]; c != nil {
				c.rooms = slices.DeleteFunc(c.rooms, func(x *memRoom) bool { return x == r })
			}
		}
		r.members = nil
		m.links--
		return others
	}
	if len(r.members) == 0 {
		m.rooms--
	}
	return others
}

func (m *memStore) announce(_ context.Context, deviceID, key, id string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pins[deviceID]
	if p != nil && p.key != key {
		return newError(CodeKeyMismatch, "this device id is bound to another key")
	}
	if p == nil {
		if len(m.pins) >= m.cfg.MaxPins {
			m.sweep(now)
		}
		if len(m.pins) >= m.cfg.MaxPins {
			return newError(CodeServerFull, "too many devices")
		}
		p = &pin{key: key}
		m.pins[deviceID] = p
	}
	p.lastSeen = now
	// The device reconnected: the newest connection wins.
	m.presence[deviceID] = id
	return nil
}

func (m *memStore) find(_ context.Context, deviceID, id string) (*Peer, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.presence[deviceID]
	if !ok || t == id {
		return nil, false, newError(CodeNotFound, "")
	}
	c, tc := m.client(id), m.client(t)
	for _, r := range c.rooms {
		if r.code == "" && slices.Contains(r.members, t) {
			return m.peer(t), false, nil
		}
	}
	if len(c.rooms) >= m.cfg.MaxRoomsPerConn || len(tc.rooms) >= m.cfg.MaxRoomsPerConn {
		return nil, false, newError(CodeTooManyRooms, "")
	}
	r := &memRoom{members: []string{id, t}}
	c.rooms = append(c.rooms, r)
	tc.rooms = append(tc.rooms, r)
	m.links++
	return m.peer(t), true, nil
}

func (m *memStore) relay(_ context.Context, from, to string, msg []byte) (shared, delivered bool, err error) {
	m.mu.Lock()
	if c := m.clients[from]; c != nil {
		for _, r := range c.rooms {
			if slices.Contains(r.members, to) {
				shared = true
				break
			}
		}
	}
	m.mu.Unlock()
	if !shared {
		return false, false, nil
	}
	return true, m.local(to, msg, true), nil
}

func (m *memStore) drop(_ context.Context, id, deviceID string) ([]departure, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []departure
	if c := m.clients[id]; c != nil {
		for len(c.rooms) > 0 {
			r := c.rooms[len(c.rooms)-1]
			out = append(out, departure{code: r.code, others: m.leaveRoom(id, r)})
		}
	}
	if deviceID != "" && m.presence[deviceID] == id {
		delete(m.presence, deviceID)
	}
	delete(m.clients, id)
	return out, nil
}

func (m *memStore) stats(context.Context, time.Time) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Rooms: m.rooms, Links: m.links, OpenCodes: m.openCodes, Announced: len(m.presence)}, nil
}

// maybeSweep forgets expired codes, old pins and full buckets, at most every
// 10 s (so the work is bounded and needs no goroutine).
func (m *memStore) maybeSweep(now time.Time) {
	if el := now.Sub(m.lastSweep); el >= 0 && el < 10*time.Second {
		return
	}
	m.sweep(now)
}

func (m *memStore) sweep(now time.Time) {
	m.lastSweep = now
	for k, e := range m.codes {
		if now.Before(e.expires) {
			continue
		}
		if e.room != nil {
			e.room.open = false
			m.openCodes--
		}
		delete(m.codes, k)
	}
	for k, p := range m.pins {
		if _, on := m.presence[k]; !on && now.Sub(p.lastSeen) > m.cfg.PinTTL {
			delete(m.pins, k)
		}
	}
	limits := [nLimits]Limit{m.cfg.ConnectRate, m.cfg.PairRate, m.cfg.PresenceRate, m.cfg.MessageRate}
	for k, b := range m.buckets {
		if b.full(now, limits[k.kind]) {
			delete(m.buckets, k)
		}
	}
}

// roundTripper is a store that talks to a server (Redis): its round trips,
// their total time and how many failed, for /metrics.
type roundTripper interface {
	roundTrips() (n uint64, total time.Duration, failed uint64)
}
