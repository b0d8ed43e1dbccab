package rendezvous

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// serve reads c until it ends, then takes it out of the server.
func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.cancel()
	c.readLoop()
	c.s.unregister(c)
	c.kill(websocket.StatusNormalClosure, "")
	c.stopTimer()
	<-c.writerDone
	c.s.log.Debug("rendezvous: disconnected", slog.String("client", c.id))
}

type conn struct {
	s      *Server
	ws     *websocket.Conn
	id     string
	ip     string // the address counted in s.ips
	prefix string // the network counted in s.prefixes

	nonce string

	// The handler of the current message only (one at a time).
	hello     *Hello
	announced string // the device id this connection announced
	stored    bool   // the store may hold the client (its hello was sent there)
	strikes   int

	helloed  atomic.Bool
	lastSeen atomic.Int64 // unix nanoseconds, real clock: last message or pong

	// ctx ends with kill (or a forced shutdown); it bounds pings.
	ctx    context.Context
	cancel context.CancelFunc

	// The hello deadline and keepalive pings: one timer, whose callback
	// holds timerMu while it runs.
	started      time.Time
	timer        *time.Timer
	timerMu      sync.Mutex
	timerStopped bool

	// Outgoing messages, under qmu. A writer goroutine runs only while the
	// queue has messages, or to close the connection after kill.
	qmu        sync.Mutex
	queue      [][]byte // nil when empty: an idle connection holds no buffer
	held       [][]byte // messages from elsewhere waiting for release
	holding    bool     // a request of c is being handled
	queued     int      // bytes in queue and held
	writing    bool     // a writer goroutine runs
	killed     bool
	closed     bool // the connection is closed: nothing more is written
	killCode   websocket.StatusCode
	killReason string
	flushBy    time.Time // after kill, what is queued is written by then
	killOnce   sync.Once
	doneOnce   sync.Once
	writerDone chan struct{} // closed once nothing will write to ws again
}

// maxQueued is the messages queued for one connection (besides
// Config.SendQueue bytes): a client that lets more pile up is too slow.
const maxQueued = 64

func (c *conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

// kill asks the writer to close the connection with code and reason, after
// flushing what is queued. The first call decides.
func (c *conn) kill(code websocket.StatusCode, reason string) {
	c.killOnce.Do(func() {
		c.cancel()
		c.qmu.Lock()
		c.killed, c.killCode, c.killReason = true, code, reason
		c.flushBy = time.Now().Add(time.Second)
		c.startWriterLocked()
		c.qmu.Unlock()
	})
}

// startWriterLocked starts the writer unless one runs or the connection is
// closed; call with c.qmu held. The handler's goroutine holds a count of
// s.wg until writerDone, so adding to it here is safe.
func (c *conn) startWriterLocked() {
	if c.writing || c.closed {
		return
	}
	c.writing = true
	c.s.wg.Add(1)
	go c.writer()
}

// enqueue queues a marshalled message without blocking; false when the
// connection's queue is full.
// A message from elsewhere (another client's signal, a peer-joined or
// peer-left) that comes while c's own request is being handled waits
// (held) until the request's answers are queued: whatever the store did
// after the request came after it, and so does its message. Otherwise a
// member leaving right after a join could be reported to the joiner before
// the join itself.
func (c *conn) enqueue(b []byte) bool { return c.push(b, false) }

func (c *conn) push(b []byte, own bool) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed {
		return true // nobody reads it any more; nothing to punish
	}
	if c.queued+len(b) > c.s.cfg.SendQueue {
		return false
	}
	if c.holding && !own {
		// Held messages wait for c's own request, not for c to read:
		// only their bytes count.
		c.held = append(c.held, b)
		c.queued += len(b)
		return true
	}
	if len(c.queue) >= maxQueued {
		return false
	}
	c.queued += len(b)
	c.queue = append(c.queue, b)
	c.startWriterLocked()
	return true
}

// hold makes messages from elsewhere wait until release.
func (c *conn) hold() {
	c.qmu.Lock()
	c.holding = true
	c.qmu.Unlock()
}

// release queues the messages held since hold.
func (c *conn) release() {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.holding = false
	if len(c.held) == 0 || c.closed {
		c.held = nil
		return
	}
	c.queue = append(c.queue, c.held...)
	c.held = nil
	c.startWriterLocked()
}

// send queues c's own answer; a client that does not keep up with its own
// messages is dropped.
func (c *conn) send(e *Envelope) {
	b, err := jsonMarshal(e)
	if err != nil {
		c.s.log.Error("rendezvous: encode", slog.String("type", e.Type), slog.Any("err", err))
		return
	}
	c.pushOrKill(b, true)
}

// sendRaw queues a marshalled server message from elsewhere (peer-joined,
// peer-left, or a signal relayed through another instance).
func (c *conn) sendRaw(b []byte) { c.pushOrKill(b, false) }

func (c *conn) pushOrKill(b []byte, own bool) {
	if !c.push(b, own) {
		c.s.m.slow.Add(1)
		c.kill(websocket.StatusPolicyViolation, "too slow")
	}
}

// writer writes the queue out and ends when it is empty; after kill it
// flushes what is queued (within a second) and closes the connection.
func (c *conn) writer() {
	defer c.s.wg.Done()
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 {
			if !c.killed {
				c.writing, c.queue = false, nil
				c.qmu.Unlock()
				return
			}
			c.closed, c.writing = true, false
			code, reason := c.killCode, c.killReason
			c.qmu.Unlock()
			_ = c.ws.Close(code, reason)
			c.doneOnce.Do(func() { close(c.writerDone) })
			return
		}
		b := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queued -= len(b)
		timeout := c.s.cfg.WriteTimeout
		if c.killed {
			timeout = min(timeout, time.Until(c.flushBy))
		}
		c.qmu.Unlock()
		if timeout <= 0 || !c.write(b, timeout) {
			c.qmu.Lock()
			c.closed, c.writing, c.queue, c.queued = true, false, nil, 0
			c.qmu.Unlock()
			_ = c.ws.CloseNow()
			c.doneOnce.Do(func() { close(c.writerDone) })
			return
		}
	}
}

func (c *conn) write(b []byte, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(c.s.hardCtx, timeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b) == nil
}

// onTimer enforces the hello deadline, then pings a quiet connection every
// ping interval and closes one silent for the idle timeout.
func (c *conn) onTimer() {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if c.timerStopped || c.ctx.Err() != nil {
		return
	}
	next := c.s.cfg.PingInterval
	if !c.helloed.Load() {
		left := c.s.cfg.HelloTimeout - time.Since(c.started)
		if left <= 0 {
			c.kill(websocket.StatusPolicyViolation, "no hello")
			return
		}
		next = min(next, left)
	}
	if !c.keepAlive() {
		if c.ctx.Err() == nil { // not a ping cut short by our own close
			c.s.m.idle.Add(1)
			_ = c.ws.CloseNow()
		}
		return
	}
	c.timer.Reset(next)
}

// stopTimer stops the timer and waits for a callback that is running
// (kill has ended its ping first).
func (c *conn) stopTimer() {
	c.timer.Stop()
	c.timerMu.Lock()
	c.timerStopped = true
	c.timerMu.Unlock()
}

// keepAlive pings a connection that has been quiet for a ping interval and
// reports false when it has been silent (no message, no pong) for the idle
// timeout.
func (c *conn) keepAlive() bool {
	quiet := time.Since(time.Unix(0, c.lastSeen.Load()))
	if quiet >= c.s.cfg.IdleTimeout {
		return false
	}
	if quiet < c.s.cfg.PingInterval {
		return true
	}
	// c.ctx ends when the connection is killed meanwhile.
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.IdleTimeout-quiet)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		return false
	}
	c.touch()
	return true
}
