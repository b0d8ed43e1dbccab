package engine

// Answering offers: an offer waits in pendingOffer until the user accepts
// (all of it, or some of its entries) or declines; receive.go asks.

import (
	"fmt"
	"slices"

	"github.com/thepeerdrop/peerdrop/transfer"
)

// pendingOffer is a question waiting for Answer.
type pendingOffer struct {
	answer  chan answer // buffered: Answer never waits
	entries int         // top-level entries of the offer
	// sizes are the bytes of the top-level entries listed (Offer.Entries),
	// size the offer's; space checks that the entries chosen fit.
	sizes []int64
	size  int64
	space func(need int64) error
}

// fits checks, before the answer goes out, that the entries taken (nil:
// all) fit in the free space now; the receiver checks again as it accepts.
func (p *pendingOffer) fits(take []int) error {
	if p.space == nil {
		return nil
	}
	need := p.size
	if take != nil {
		need = 0
		for _, i := range take {
			if i >= len(p.sizes) {
				return nil // not listed: the receiver's own check decides
			}
			need += p.sizes[i]
		}
	}
	if err := p.space(need); err != nil {
		return noSpaceError{err}
	}
	return nil
}

// answer is the user's decision about an offer: take lists the top-level
// entries kept (nil: all).
type answer struct {
	ok   bool
	take []int
}

// Answer accepts or declines a waiting offer.
func (e *Engine) Answer(offerID string, accept bool) error {
	p, err := e.pendingOffer(offerID)
	if err != nil {
		return err
	}
	if accept {
		if err := p.fits(nil); err != nil {
			return err // the offer stays open: choose less
		}
	}
	return e.deliverAnswer(offerID, p, answer{ok: accept})
}

// AnswerSome accepts a waiting offer, but only its top-level entries at
// the given indexes (Offer.Entries); the sender is told and skips the
// rest. At least one must be chosen.
func (e *Engine) AnswerSome(offerID string, entries []int) error {
	p, err := e.pendingOffer(offerID)
	if err != nil {
		return err
	}
	take := slices.Compact(slices.Sorted(slices.Values(entries)))
	switch {
	case len(take) == 0:
		return fmt.Errorf("answer %s: choose at least one file or folder", offerID)
	case take[0] < 0 || take[len(take)-1] >= p.entries:
		return fmt.Errorf("answer %s: no entry %v in the offer", offerID, entries)
	case len(take) == p.entries:
		take = nil
	case len(take) > transfer.MaxTake:
		return fmt.Errorf("answer %s: at most %d entries can be chosen; accept all instead", offerID, transfer.MaxTake)
	}
	if err := p.fits(take); err != nil {
		return err // the offer stays open: choose less
	}
	return e.deliverAnswer(offerID, p, answer{ok: true, take: take})
}

// pendingOffer is the offer waiting for an answer under this id. Its space
// check runs after, without the engine's lock: it asks the file system.
func (e *Engine) pendingOffer(offerID string) (*pendingOffer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.offers[offerID]
	if p == nil {
		return nil, fmt.Errorf("answer %s: %w", offerID, ErrUnknownOffer)
	}
	return p, nil
}

// deliverAnswer hands a to the offer p, unless it was answered (or went
// away) meanwhile.
func (e *Engine) deliverAnswer(offerID string, p *pendingOffer, a answer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.offers[offerID] != p {
		return fmt.Errorf("answer %s: %w", offerID, ErrUnknownOffer)
	}
	delete(e.offers, offerID)
	p.answer <- a
	return nil
}
