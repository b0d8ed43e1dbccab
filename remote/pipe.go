package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// MaxChunk is the most bytes one signal carries: base64 makes 32 KiB into
// 43,692 bytes, well under the server's 64 KiB payload cap. Longer writes
// are split.
const MaxChunk = 32 * 1024

// maxBuffered bounds what a pipe holds for its reader: the handshake is a
// few frames of at most 64 KiB each, read as they come, so more than this
// is a peer (or server) trying to exhaust our memory.
const maxBuffered = 1 << 20

// chunk is the payload of one signal message: a piece of pipe pipeID's byte
// stream (or its end), numbered from 0 in each direction.
type chunk struct {
	Pipe  string `json:"pipe"`
	Seq   uint64 `json:"seq"`
	Data  []byte `json:"data,omitempty"` // standard base64 in JSON
	Close bool   `json:"close,omitempty"`
}

var (
	// ErrPeerLeft means the other device left the rendezvous server (or
	// every room we shared with it).
	ErrPeerLeft = errors.New("the other device left the rendezvous server")
	// ErrLost means a message of the pipe never arrived: the server dropped
	// it (a full queue, a rate limit) or reordered it.
	ErrLost = errors.New("a message between the devices was lost on the rendezvous server")
	// errOverflow says that the peer sent more than a pipe buffers.
	errOverflow = errors.New("the other device sent more than the handshake needs")
)

// Pipe is a net.Conn to another client of the rendezvous server, carried in
// signal messages (docs/PROTOCOL.md section 13). Read and Write are a byte
// stream; Send and Recv carry whole messages (one signal each), for the
// pairing PAKE, which reads no message beyond its own, so the stream can
// follow it on the same pipe. Deadlines work as net.Conn says. Write does
// not wait for the peer to read: the server queues what it relays.
type Pipe struct {
	m     *mux
	peer  string // the other client's id
	id    string // the pipe (session) id, chosen by the side that opened it
	local string // our client id

	writeMu sync.Mutex
	seqOut  uint64

	readMu sync.Mutex // one reader at a time: the wake channel has room for one
	mu     sync.Mutex
	inbox  [][]byte
	held   int    // bytes in inbox and cur
	cur    []byte // the chunk being read
	seqIn  uint64
	eof    bool  // the peer closed its end
	end    error // the peer is gone: reads get this after what arrived
	err    error // the pipe is broken: reads get this at once
	closed bool  // Close was called
	wake   chan struct{}

	rd, wd deadline
}

func newPipe(m *mux, local, peerID, id string) *Pipe {
	return &Pipe{m: m, local: local, peer: peerID, id: id, wake: make(chan struct{}, 1),
		rd: makeDeadline(), wd: makeDeadline()}
}

// Peer is the client id of the device at the other end.
func (p *Pipe) Peer() string { return p.peer }

// ID is the pipe's session id.
func (p *Pipe) ID() string { return p.id }

func (p *Pipe) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// deliver takes a chunk the mux routed here.
func (p *Pipe) deliver(c chunk) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notify()
	switch {
	case p.closed || p.err != nil || p.eof || p.end != nil:
		return
	case c.Seq != p.seqIn:
		p.err = fmt.Errorf("%w (expected message %d, got %d)", ErrLost, p.seqIn, c.Seq)
		return
	}
	p.seqIn++
	if len(c.Data) > 0 {
		if p.held+len(c.Data) > maxBuffered {
			p.err = errOverflow
			return
		}
		p.inbox = append(p.inbox, c.Data)
		p.held += len(c.Data)
	}
	if c.Close {
		p.eof = true
	}
}

// fail breaks the pipe: reads and writes return err from now on; what
// arrived before is lost, for the stream has a hole.
func (p *Pipe) fail(err error) {
	p.mu.Lock()
	if p.err == nil && !p.closed {
		p.err = err
	}
	p.mu.Unlock()
	p.notify()
}

// gone ends the pipe because the peer (or our connection to the server) is
// gone: writes fail at once, reads get what arrived before, then err.
func (p *Pipe) gone(err error) {
	p.mu.Lock()
	if p.end == nil && !p.eof && !p.closed {
		p.end = err
	}
	p.mu.Unlock()
	p.notify()
}

// Read reads the byte stream; io.EOF once the peer has closed and
// everything it sent has been read.
func (p *Pipe) Read(b []byte) (int, error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return 0, p.opError("read", net.ErrClosed)
		case p.err != nil:
			err := p.err
			p.mu.Unlock()
			return 0, p.opError("read", err)
		case isClosed(p.rd.wait()):
			p.mu.Unlock()
			return 0, p.opError("read", os.ErrDeadlineExceeded)
		}
		if len(p.cur) == 0 && len(p.inbox) > 0 {
			p.cur, p.inbox = p.inbox[0], p.inbox[1:]
		}
		if len(p.cur) > 0 {
			n := copy(b, p.cur)
			p.cur = p.cur[n:]
			p.held -= n
			p.mu.Unlock()
			return n, nil
		}
		if p.eof {
			p.mu.Unlock()
			return 0, io.EOF
		}
		if p.end != nil {
			err := p.end
			p.mu.Unlock()
			return 0, p.opError("read", err)
		}
		p.mu.Unlock()
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-p.wake:
		case <-p.rd.wait():
		}
	}
}

// Recv returns the next message whole (pairing.Transport). It must not be
// called while a chunk is partly read.
func (p *Pipe) Recv(ctx context.Context) ([]byte, error) {
	b, err := p.next(ctx, true)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// peek waits for the next message and returns it without taking it.
func (p *Pipe) peek(ctx context.Context) ([]byte, error) { return p.next(ctx, false) }

func (p *Pipe) next(ctx context.Context, take bool) ([]byte, error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return nil, p.opError("read", net.ErrClosed)
		case p.err != nil:
			err := p.err
			p.mu.Unlock()
			return nil, p.opError("read", err)
		case len(p.cur) > 0:
			p.mu.Unlock()
			return nil, errors.New("remote: a message was read in part as a byte stream")
		case len(p.inbox) > 0:
			b := p.inbox[0]
			if take {
				p.inbox = p.inbox[1:]
				p.held -= len(b)
			}
			p.mu.Unlock()
			return b, nil
		case p.eof:
			p.mu.Unlock()
			return nil, io.EOF
		case p.end != nil:
			err := p.end
			p.mu.Unlock()
			return nil, p.opError("read", err)
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-p.rd.wait():
			return nil, p.opError("read", os.ErrDeadlineExceeded)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Write sends b, in signals of at most MaxChunk bytes.
func (p *Pipe) Write(b []byte) (int, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	n := 0
	for len(b) > 0 {
		c := b[:min(len(b), MaxChunk)]
		if err := p.sendLocked(chunk{Data: c}); err != nil {
			return n, p.opError("write", err)
		}
		n += len(c)
		b = b[len(c):]
	}
	return n, nil
}

// Send sends msg as one message (pairing.Transport).
func (p *Pipe) Send(ctx context.Context, msg []byte) error {
	if len(msg) > MaxChunk {
		return fmt.Errorf("remote: a message of %d bytes, limit %d", len(msg), MaxChunk)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if err := p.sendLocked(chunk{Data: msg}); err != nil {
		return p.opError("write", err)
	}
	return nil
}

// sendLocked numbers c and signals it; call with writeMu held.
func (p *Pipe) sendLocked(c chunk) error {
	p.mu.Lock()
	closed, err := p.closed, p.err
	if err == nil {
		err = p.end
	}
	p.mu.Unlock()
	switch {
	case closed:
		return net.ErrClosed
	case err != nil:
		return err
	case isClosed(p.wd.wait()):
		return os.ErrDeadlineExceeded
	}
	c.Pipe = p.id
	c.Seq = p.seqOut
	if err := p.m.client.Signal(p.peer, c); err != nil {
		return fmt.Errorf("relay through the rendezvous server: %w", err)
	}
	p.seqOut++
	return nil
}

// Close ends our side: the peer reads io.EOF after what we sent. It is
// idempotent.
func (p *Pipe) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	// Tell the peer unless it is gone or done: a signal to a client that
	// shares no room with us any more only earns an error.
	tell := p.err == nil && p.end == nil && !p.eof
	p.closed = true
	p.inbox, p.cur, p.held = nil, nil, 0
	p.mu.Unlock()
	p.notify()
	p.m.remove(p)
	p.rd.set(time.Time{})
	p.wd.set(time.Time{})
	if tell {
		p.writeMu.Lock()
		defer p.writeMu.Unlock()
		c := chunk{Pipe: p.id, Seq: p.seqOut, Close: true}
		if err := p.m.client.Signal(p.peer, c); err == nil {
			p.seqOut++
		}
	}
	return nil
}

// pipeAddr names one end of a pipe: a rendezvous client id.
type pipeAddr string

func (a pipeAddr) Network() string { return "peerdrop-rendezvous" }
func (a pipeAddr) String() string  { return string(a) }

// LocalAddr is our rendezvous client id.
func (p *Pipe) LocalAddr() net.Addr { return pipeAddr(p.local) }

// RemoteAddr is the other device's rendezvous client id.
func (p *Pipe) RemoteAddr() net.Addr { return pipeAddr(p.peer) }

// SetDeadline sets both deadlines.
func (p *Pipe) SetDeadline(t time.Time) error {
	p.rd.set(t)
	p.wd.set(t)
	return nil
}

// SetReadDeadline bounds Read and Recv.
func (p *Pipe) SetReadDeadline(t time.Time) error { p.rd.set(t); return nil }

// SetWriteDeadline bounds Write and Send. A signal already being written
// finishes (the rendezvous client bounds it by 10 s).
func (p *Pipe) SetWriteDeadline(t time.Time) error { p.wd.set(t); return nil }

func (p *Pipe) opError(op string, err error) error {
	if errors.Is(err, io.EOF) {
		return err
	}
	return &net.OpError{Op: op, Net: "peerdrop-rendezvous", Source: p.LocalAddr(), Addr: p.RemoteAddr(), Err: err}
}

// deadline is a channel that closes when a settable time passes, as
// net.Pipe has it.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	c     chan struct{}
}

func makeDeadline() deadline { return deadline{c: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.c // the timer fired: wait until it has closed the channel
	}
	d.timer = nil
	closed := isClosed(d.c)
	if t.IsZero() {
		if closed {
			d.c = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.c = make(chan struct{})
		}
		c := d.c
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.c)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
