package engine

import "sync"

// Event is anything the engine reports.
type Event interface{ isEvent() }

// DevicesChanged: the nearby list changed; Devices is all of it, sorted.
type DevicesChanged struct{ Devices []Device }

// ItemChanged: a queue item was added or changed (state, progress at most
// ~10 times a second per item).
type ItemChanged struct{ Item Item }

// ItemsCleared: finished items were removed from the queue.
type ItemsCleared struct{}

// OfferReceived: someone offers files; answer with Engine.Answer.
type OfferReceived struct{ Offer Offer }

// OfferClosed: an offer is no longer waiting (answered, or the sender left).
type OfferClosed struct{ ID string }

// MessageReceived: a text message arrived (or one we sent changed).
type MessageReceived struct{ Message Message }

// Problem: something went wrong outside any item; Err is in plain words.
type Problem struct{ Err error }

// PairingCodeShown: while pairing (StartPairing), the code to show
// changed: it expired, or a pairing with it failed.
type PairingCodeShown struct{ Code PairingCode }

// Paired: a device paired with a code (shown here, or typed here); it is
// pinned and, while it is on the server and not nearby, listed as away.
type Paired struct{ Peer Peer }

// ServerStatus: the connection to the rendezvous server changed. URL is
// "" when none is set; Err says in plain words why it is down.
type ServerStatus struct {
	URL       string
	Connected bool
	Err       error
}

// WebStatus: the web client started or stopped being served. URL is what
// a phone opens ("" when it is not served); Err, in plain words, says why
// it could not be served.
type WebStatus struct {
	URL string
	Err error
}

func (DevicesChanged) isEvent()   {}
func (ItemChanged) isEvent()      {}
func (ItemsCleared) isEvent()     {}
func (OfferReceived) isEvent()    {}
func (OfferClosed) isEvent()      {}
func (MessageReceived) isEvent()  {}
func (Problem) isEvent()          {}
func (PairingCodeShown) isEvent() {}
func (Paired) isEvent()           {}
func (ServerStatus) isEvent()     {}
func (WebStatus) isEvent()        {}

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
