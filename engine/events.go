package engine

import "sync"

// eventQueue delivers events to Config.OnEvent in the order they were
// queued, without a goroutine of its own: whoever queues an event while
// nobody is delivering becomes the deliverer until the queue is empty.
//
// State changes queue their event while still holding the engine's lock, so
// the queue order is the order of the changes; delivery happens after the
// lock is released, so OnEvent may call back into the engine (a nested call
// only queues, and the outer deliverer picks its events up).
type eventQueue struct {
	fn func(Event)

	mu         sync.Mutex
	pending    []Event
	delivering bool
}

// push queues ev; the caller holds the engine's lock.
func (q *eventQueue) push(ev Event) {
	if q.fn == nil {
		return
	}
	q.mu.Lock()
	q.pending = append(q.pending, ev)
	q.mu.Unlock()
}

// flush delivers what is queued, unless another goroutine is at it; the
// caller must not hold the engine's lock.
func (q *eventQueue) flush() {
	if q.fn == nil {
		return
	}
	q.mu.Lock()
	if q.delivering {
		q.mu.Unlock()
		return
	}
	q.delivering = true
	for len(q.pending) > 0 {
		ev := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.mu.Unlock()
		q.fn(ev)
		q.mu.Lock()
	}
	q.pending = nil
	q.delivering = false
	q.mu.Unlock()
}
