package engine

// The transfer queue: items in both directions, oldest first, with the
// finished ones kept (and saved in history.go) up to maxFinished.

import "slices"

// Pause, Resume, Cancel and Retry act on a queue item. Retry starts a
// failed, cancelled or declined send again (same paths, same peer).
// Cancelling an offer that waits for our answer declines it.
func (e *Engine) Pause(itemID string) error  { return e.control(itemID, "pause") }
func (e *Engine) Resume(itemID string) error { return e.control(itemID, "resume") }
func (e *Engine) Cancel(itemID string) error { return e.control(itemID, "cancel") }
func (e *Engine) Retry(itemID string) error  { return e.retry(itemID) }

// Items is the queue, newest first, history included.
func (e *Engine) Items() []Item {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Item, 0, len(e.items))
	for i := len(e.items) - 1; i >= 0; i-- {
		out = append(out, e.items[i].snapshot())
	}
	return out
}

// ClearFinished removes finished items from the queue and its history file.
func (e *Engine) ClearFinished() {
	func() {
		defer e.lock()()
		e.items = slices.DeleteFunc(e.items, func(it *item) bool {
			if !it.State.Finished() {
				return false
			}
			e.forgetLocked(it)
			return true
		})
		e.emit(ItemsCleared{})
	}()
	e.saveHistory()
}

// forgetLocked drops it from the indexes; the caller removes it from e.items.
func (e *Engine) forgetLocked(it *item) {
	delete(e.byID, it.ID)
	if it.Direction == Incoming && e.incoming[it.transferID] == it {
		delete(e.incoming, it.transferID)
	}
}

// addItemLocked adds a new item as the newest; the caller holds e.mu.
func (e *Engine) addItemLocked(it *item) {
	e.items = append(e.items, it)
	e.byID[it.ID] = it
}

// trimLocked keeps at most maxFinished finished items, dropping the oldest.
func (e *Engine) trimLocked() {
	n := 0
	for _, it := range e.items {
		if it.State.Finished() {
			n++
		}
	}
	if n <= maxFinished {
		return
	}
	e.items = slices.DeleteFunc(e.items, func(it *item) bool {
		if n > maxFinished && it.State.Finished() {
			n--
			e.forgetLocked(it)
			return true
		}
		return false
	})
}
