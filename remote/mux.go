package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"sync"

	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// acceptQueue bounds the incoming pipes waiting for the host.
const acceptQueue = 16

var pipeIDRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// errMuxClosed says that the pipe outlived the demultiplexer that fed it.
var errMuxClosed = errors.New("remote: no longer reading from the rendezvous server")

type pipeKey struct{ peer, id string }

// member is another client we share rooms with.
type member struct {
	peer  rendezvous.Peer
	codes map[string]uint64 // canonical room code ("" for a find link) -> order of arrival
}

// mux owns a rendezvous client's Events: it routes signals to pipes by
// (sender, pipe id), keeps track of who shares a room with us, and breaks
// the pipes of peers that leave. New pipes that peers open are handed to
// accept, when set; otherwise they are refused.
type mux struct {
	client *rendezvous.Client
	accept chan *Pipe
	hooks  muxHooks

	mu      sync.Mutex
	pipes   map[pipeKey]*Pipe
	members map[string]*member
	arrived uint64
	changed chan struct{} // closed and replaced when members change

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	err      error // why routing ended; set before done closes
}

// muxHooks are a mux's optional callbacks. They run on its goroutine and
// must not block.
type muxHooks struct {
	// onError hears about signals the server refused to deliver.
	onError func(error)
	// onJoined hears about each client that entered one of our rooms, or
	// found us (Code "").
	onJoined func(rendezvous.PeerJoined)
}

// newMux starts routing client's events. With accepting, peers may open
// pipes to us (Accept); without, such pipes are refused.
func newMux(client *rendezvous.Client, accepting bool, hooks muxHooks) *mux {
	m := &mux{
		client:  client,
		hooks:   hooks,
		pipes:   map[pipeKey]*Pipe{},
		members: map[string]*member{},
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if accepting {
		m.accept = make(chan *Pipe, acceptQueue)
	}
	go m.run()
	return m
}

// close stops routing and breaks every pipe. Nobody reads the client's
// events afterwards: close the client too, or it stalls.
func (m *mux) close() {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
}

func (m *mux) run() {
	var err error
	defer func() {
		m.mu.Lock()
		m.err = err
		pipes := m.pipes
		m.pipes = map[pipeKey]*Pipe{}
		close(m.changed)
		m.mu.Unlock()
		for _, p := range pipes {
			p.gone(err)
		}
		close(m.done)
	}()
	events := m.client.Events()
	for {
		select {
		case <-m.stop:
			err = errMuxClosed
			return
		case ev, ok := <-events:
			if !ok {
				err = m.client.Err()
				if err == nil || errors.Is(err, rendezvous.ErrClosed) {
					err = rendezvous.ErrClosed
				} else {
					err = errors.Join(rendezvous.ErrClosed, err)
				}
				return
			}
			m.handle(ev)
		}
	}
}

func (m *mux) handle(ev rendezvous.Event) {
	switch ev := ev.(type) {
	case rendezvous.Signal:
		m.route(ev)
	case rendezvous.PeerJoined:
		code := canonicalRoom(ev.Code)
		m.mu.Lock()
		mb := m.members[ev.Peer.ClientID]
		if mb == nil {
			mb = &member{codes: map[string]uint64{}}
			m.members[ev.Peer.ClientID] = mb
		}
		mb.peer = ev.Peer
		m.arrived++
		if _, ok := mb.codes[code]; !ok {
			mb.codes[code] = m.arrived
		}
		m.changedLocked()
		m.mu.Unlock()
		if m.hooks.onJoined != nil {
			m.hooks.onJoined(ev)
		}
	case rendezvous.PeerLeft:
		m.mu.Lock()
		var broken []*Pipe
		if mb := m.members[ev.ClientID]; mb != nil {
			delete(mb.codes, canonicalRoom(ev.Code))
			if len(mb.codes) == 0 {
				delete(m.members, ev.ClientID)
				for k, p := range m.pipes {
					if k.peer == ev.ClientID {
						broken = append(broken, p)
					}
				}
			}
			m.changedLocked()
		}
		m.mu.Unlock()
		for _, p := range broken {
			p.gone(ErrPeerLeft)
		}
	case *rendezvous.Error:
		m.refused(ev)
	}
}

// refused handles a signal the server did not deliver. Every pipe to its
// recipient may have lost a message, so each of them breaks: a byte stream
// with a hole is no use. An error that names no recipient (a server older
// than the field) breaks every pipe. (unknown-peer needs nothing: that peer
// has left, and its PeerLeft breaks its pipes.)
func (m *mux) refused(e *rendezvous.Error) {
	if m.hooks.onError != nil {
		m.hooks.onError(e)
	}
	if e.Code == rendezvous.CodeUnknownPeer {
		return
	}
	m.mu.Lock()
	pipes := make([]*Pipe, 0, len(m.pipes))
	for k, p := range m.pipes {
		if e.To == "" || k.peer == e.To {
			pipes = append(pipes, p)
		}
	}
	m.mu.Unlock()
	for _, p := range pipes {
		p.fail(errors.Join(ErrLost, e))
	}
}

func (m *mux) changedLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *mux) route(s rendezvous.Signal) {
	c, ok := decodeChunk(s.Payload)
	if !ok {
		slog.Debug("remote: ignoring a signal that is no pipe message", slog.String("from", s.From))
		return
	}
	k := pipeKey{s.From, c.Pipe}
	m.mu.Lock()
	p := m.pipes[k]
	if p == nil {
		// Only a first message opens a pipe: anything later belongs to a
		// pipe we have closed.
		opens := c.Seq == 0 && !c.Close && m.members[s.From] != nil
		if !opens {
			m.mu.Unlock()
			return
		}
		if m.accept == nil {
			m.mu.Unlock()
			m.refuse(s.From, c.Pipe)
			return
		}
		p = newPipe(m, m.client.ClientID(), s.From, c.Pipe)
		select {
		case m.accept <- p:
		default:
			m.mu.Unlock()
			slog.Warn("remote: too many connections waiting, refusing one", slog.String("from", s.From))
			m.refuse(s.From, c.Pipe)
			return
		}
		m.pipes[k] = p
	}
	m.mu.Unlock()
	p.deliver(c)
}

// decodeChunk parses a signal payload as a pipe message; ok is false for
// anything else (malformed, a bad pipe id, an oversized chunk).
func decodeChunk(payload []byte) (c chunk, ok bool) {
	if err := json.Unmarshal(payload, &c); err != nil || !pipeIDRe.MatchString(c.Pipe) || len(c.Data) > MaxChunk {
		return chunk{}, false
	}
	return c, true
}

// refuse tells the opener of a pipe we do not take that it is closed.
func (m *mux) refuse(to, id string) {
	_ = m.client.Signal(to, chunk{Pipe: id, Seq: 0, Close: true})
}

// open starts a pipe to the client peerID.
func (m *mux) open(peerID string) (*Pipe, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	p := newPipe(m, m.client.ClientID(), peerID, hex.EncodeToString(b[:]))
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		return nil, m.err
	default:
	}
	if m.members[peerID] == nil {
		m.mu.Unlock()
		return nil, ErrPeerLeft
	}
	m.pipes[pipeKey{peerID, p.id}] = p
	m.mu.Unlock()
	// A message without data opens the pipe at once (docs/PROTOCOL.md
	// section 13.2): a reconnect's handshake starts with the other side's
	// hello, and only an opened pipe exists for it.
	p.writeMu.Lock()
	err := p.sendLocked(chunk{})
	p.writeMu.Unlock()
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

func (m *mux) remove(p *Pipe) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pipeKey{p.peer, p.id}
	if m.pipes[k] == p {
		delete(m.pipes, k)
	}
}

// first waits for the first client to have joined us in the room of code
// (the room's creator, when we joined it: the server lists members in the
// order they came).
func (m *mux) first(ctx context.Context, code string) (rendezvous.Peer, error) {
	code = canonicalRoom(code)
	for {
		m.mu.Lock()
		var (
			best  rendezvous.Peer
			order uint64
		)
		for _, mb := range m.members {
			if o, ok := mb.codes[code]; ok && (order == 0 || o < order) {
				best, order = mb.peer, o
			}
		}
		changed := m.changed
		m.mu.Unlock()
		if order != 0 {
			return best, nil
		}
		select {
		case <-changed:
		case <-m.done:
			return rendezvous.Peer{}, m.err
		case <-ctx.Done():
			return rendezvous.Peer{}, ctx.Err()
		}
	}
}

// link records a peer we found by its device id (the server tells the
// finder only in its reply, not with a peer-joined).
func (m *mux) link(p rendezvous.Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb := m.members[p.ClientID]
	if mb == nil {
		mb = &member{codes: map[string]uint64{}}
		m.members[p.ClientID] = mb
	}
	mb.peer = p
	m.arrived++
	if _, ok := mb.codes[""]; !ok {
		mb.codes[""] = m.arrived
	}
	m.changedLocked()
}

// member returns what we know of the client peerID: its hello and the
// rooms we share.
func (m *mux) member(peerID string) (rendezvous.Peer, []string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb := m.members[peerID]
	if mb == nil {
		return rendezvous.Peer{}, nil, false
	}
	codes := make([]string, 0, len(mb.codes))
	for c := range mb.codes {
		codes = append(codes, c)
	}
	return mb.peer, codes, true
}

// present reports whether peerID still shares a room with us.
func (m *mux) present(peerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[peerID] != nil
}

// canonicalRoom is the canonical form of a server code ("" stays "").
func canonicalRoom(code string) string {
	if n, err := rendezvous.NormalizeCode(code); err == nil {
		return n
	}
	return code
}
