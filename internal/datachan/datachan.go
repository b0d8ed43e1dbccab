// Package datachan defines the message of an ordered, reliable data
// channel, which transfer.Link carries and peer.Conn delivers, and Pipe, an
// in-memory pair of such channels for tests of the transfer protocol.
package datachan

import (
	"errors"
	"slices"
	"sync"
)

// Message is one message on a data channel: a string message (a control
// message) when IsString, a binary one (file data) otherwise. Its
// boundaries are kept end to end.
type Message struct {
	IsString bool
	Data     []byte
	back     func([]byte) // gives Data back to its pool (Lent)
}

// ErrClosed is what a send on a closed end returns.
var ErrClosed = errors.New("data channel closed")

// ErrBroken is why a link broken by Options.Break or End.Break ended.
var ErrBroken = errors.New("link broken")

// DefaultInbox is how many messages wait at an end before the other is held
// back, as in peer.Conn.
const DefaultInbox = 32

// Options shape a Pipe.
type Options struct {
	// Inbox is how many messages wait at each end for its reader
	// (DefaultInbox when 0). While they wait, the sending end's buffered
	// amount grows: that is the backpressure.
	Inbox int
	// Break, when set, sees every message as it is sent, with the end that
	// sends it. Returning true breaks the link there: that message and all
	// not yet delivered are lost, and Done closes at both ends, as when a
	// network path dies mid-transfer. It runs in the sender's goroutine,
	// so a test may also hold the sender there; it must not call Close.
	Break func(from *End, m Message) bool
}

// Pipe returns two connected ends. What one sends the other receives, in
// order, copied (the sender may reuse its buffer once Send returns). Each
// direction has a goroutine, which ends when the link closes.
func Pipe(opts Options) (*End, *End) {
	if opts.Inbox <= 0 {
		opts.Inbox = DefaultInbox
	}
	l := &shared{done: make(chan struct{}), brk: opts.Break}
	a := &End{l: l, msgs: make(chan Message, opts.Inbox), wake: make(chan struct{}, 1)}
	b := &End{l: l, msgs: make(chan Message, opts.Inbox), wake: make(chan struct{}, 1)}
	a.peer, b.peer = b, a
	l.wg.Add(2)
	go a.pump()
	go b.pump()
	return a, b
}

// shared is what both ends of a pipe have in common: it closes once.
type shared struct {
	done chan struct{}
	once sync.Once
	brk  func(*End, Message) bool
	wg   sync.WaitGroup

	mu  sync.Mutex
	err error
}

func (l *shared) end(err error) {
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.done)
	})
}

// End is one end of a Pipe. It implements transfer.Link.
type End struct {
	l    *shared
	peer *End
	msgs chan Message  // what the peer sent, for our reader
	wake chan struct{} // our queue has something new for pump

	mu       sync.Mutex
	queue    []Message // sent, not yet in the peer's inbox
	buffered uint64    // bytes in queue
	lowAt    uint64
	low      chan struct{}
}

// Send sends p as a binary message.
func (e *End) Send(p []byte) error { return e.send(Message{Data: p}) }

// SendText sends p as a string message.
func (e *End) SendText(p []byte) error { return e.send(Message{IsString: true, Data: p}) }

func (e *End) send(m Message) error {
	select {
	case <-e.l.done:
		return ErrClosed
	default:
	}
	m.Data = slices.Clone(m.Data)
	if m.Data == nil {
		m.Data = []byte{}
	}
	if e.l.brk != nil && e.l.brk(e, m) {
		e.Break()
		return nil // like a path that dies: the sender learns it from Done
	}
	e.mu.Lock()
	e.queue = append(e.queue, m)
	e.buffered += uint64(len(m.Data))
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// pump moves what this end sent into the peer's inbox, as fast as the
// peer reads, until the link closes.
func (e *End) pump() {
	defer e.l.wg.Done()
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.mu.Unlock()
			select {
			case <-e.wake:
				continue
			case <-e.l.done:
				return
			}
		}
		m := e.queue[0]
		e.mu.Unlock()
		select {
		case e.peer.msgs <- m:
		case <-e.l.done:
			return
		}
		e.mu.Lock()
		e.queue[0] = Message{}
		e.queue = e.queue[1:]
		before := e.buffered
		e.buffered -= uint64(len(m.Data))
		if e.low != nil && before > e.lowAt && e.buffered <= e.lowAt {
			select {
			case e.low <- struct{}{}:
			default:
			}
		}
		e.mu.Unlock()
	}
}

// Messages delivers what the other end sent, in order. While nobody reads,
// the other end's buffered amount grows.
func (e *End) Messages() <-chan Message { return e.msgs }

// BufferedAmount is how many bytes sent have not reached the other end yet.
func (e *End) BufferedAmount() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buffered
}

// LowWater returns a channel that receives a value each time the buffered
// amount falls to n bytes or below; values that nobody takes merge into
// one. A later call replaces the earlier one.
func (e *End) LowWater(n uint64) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lowAt, e.low = n, make(chan struct{}, 1)
	return e.low
}

// Done is closed when either end closed or the link broke. Messages
// already in an inbox can still be read.
func (e *End) Done() <-chan struct{} { return e.l.done }

// Err is ErrBroken when the link broke, nil otherwise.
func (e *End) Err() error {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return e.l.err
}

// Close closes the link at both ends, dropping what has not been
// delivered yet, and waits for the pipe's goroutines; it is safe to call
// more than once.
func (e *End) Close() error {
	e.l.end(nil)
	e.l.wg.Wait()
	return nil
}

// Break ends the link as a dying network path does: Done closes at both
// ends and Err reports ErrBroken.
func (e *End) Break() { e.l.end(ErrBroken) }

// Lent is a message whose Data was lent by its reader's buffer pool:
// Release gives it back once the message has been used.
func Lent(isString bool, data []byte, back func([]byte)) Message {
	return Message{IsString: isString, Data: data, back: back}
}

// Release hands the message's buffer back to the pool it came from (see
// Lent), after which Data must not be used. Releasing a message that was not
// lent, or not releasing one, is harmless: the garbage collector takes it.
func (m Message) Release() {
	if m.back != nil {
		m.back(m.Data)
	}
}
