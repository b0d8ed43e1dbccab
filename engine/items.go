package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/transfer"
)

// progressEvery throttles ItemChanged events that only report progress.
const progressEvery = 100 * time.Millisecond

// speedWindow is the time constant of the smoothed speed: about the last
// few seconds count.
const speedWindow = 2 * time.Second

// maxFinished bounds the finished items kept, in memory and in the history file.
const maxFinished = 500

// decideEnd says how the question about an incoming offer ended.
type decideEnd int

const (
	decideAnswered   decideEnd = iota // the user (or auto-accept) answered
	decideSenderLeft                  // the sender went away first
	decideStopped                     // the engine stopped first
)

// item is a queue item with what the engine needs to drive it. It is only
// touched with Engine.mu held.
type item struct {
	Item

	transferID string // the transfer protocol's offer id

	// Outgoing.
	target          Target
	sender          *transfer.Sender
	cancel          context.CancelFunc // ends the current attempt at once
	gen             int                // attempt number: events of an older attempt are ignored
	connected       bool               // the current attempt has a link (or had one)
	accepted        bool               // the receiver accepted in the current attempt
	cancelRequested bool               // our user cancelled
	// fromWaiting: the current attempt was started by its device
	// appearing (favourites.go); if it never reached that device, the send
	// waits again instead of failing.
	fromWaiting bool

	// Incoming.
	rcv       *transfer.Receiver
	peerFP    string
	offerText string
	topPaths  []string // top-level paths on disk, as they are created
	decided   decideEnd

	// Progress figures.
	lastProgress time.Time // last ItemChanged that reported progress
	sampleAt     time.Time // last speed sample
	sampleBytes  int64
}

// snapshot is the Item as callers see it: a copy they may keep.
func (it *item) snapshot() Item {
	s := it.Item
	s.Paths = slices.Clone(it.Paths)
	s.Skipped = slices.Clone(it.Skipped)
	return s
}

// peerName is the other side's name for messages ("Bob declined").
func (it *item) peerName() string {
	if it.Peer.Name != "" {
		return it.Peer.Name
	}
	if len(it.target.Addrs) > 0 {
		return it.target.Addrs[0]
	}
	return "the other device"
}

// stopClock clears the speed figures: the item is not moving.
func (it *item) stopClock() {
	it.Speed, it.ETA = 0, 0
	it.sampleAt, it.sampleBytes = time.Time{}, 0
}

// progress records bytes moved at now and updates the smoothed speed and ETA.
func (it *item) progress(now time.Time, bytes, total int64) {
	if total > 0 {
		it.Total = total
	}
	switch {
	case it.sampleAt.IsZero() || bytes < it.sampleBytes:
		// First figure since the item (re)started moving: nothing to compare with.
		it.sampleAt, it.sampleBytes = now, bytes
	case now.Sub(it.sampleAt) >= 50*time.Millisecond:
		dt := now.Sub(it.sampleAt).Seconds()
		inst := float64(bytes-it.sampleBytes) / dt
		if it.Speed == 0 {
			it.Speed = inst
		} else {
			// An exponential average over time, not over samples, so that
			// the figure means the same whatever the event rate.
			a := 1 - math.Exp(-dt/speedWindow.Seconds())
			it.Speed += a * (inst - it.Speed)
		}
		it.sampleAt, it.sampleBytes = now, bytes
	}
	it.Bytes = bytes
	it.ETA = 0
	if it.Speed > 1 && it.Total > it.Bytes {
		it.ETA = time.Duration(float64(it.Total-it.Bytes) / it.Speed * float64(time.Second)).Round(time.Second)
	}
}

// finish puts the item in a final state.
func (it *item) finish(now time.Time, state State, msg string) {
	it.State, it.Error, it.Finished = state, msg, now
	it.stopClock()
	if state == StateDone {
		it.Bytes = it.Total
	}
}

// title names a set of top-level entries: "photo.jpg", "Trip (3 files)",
// "a.txt, b.txt and more (7 files)".
func title(tops []string, oneFile bool, more bool, files int, text string) string {
	switch {
	case len(tops) == 0 && text != "":
		return shorten(text, 80)
	case len(tops) == 0:
		return "nothing"
	case len(tops) == 1 && oneFile && !more:
		return tops[0]
	case len(tops) == 1 && !more:
		return fmt.Sprintf("%s (%s)", tops[0], plural(files, "file"))
	case len(tops) == 2 && !more:
		return fmt.Sprintf("%s and %s (%s)", tops[0], tops[1], plural(files, "file"))
	}
	return fmt.Sprintf("%s, %s and more (%s)", tops[0], tops[1], plural(files, "file"))
}

// offerTitle is the title of an offer we make.
func offerTitle(o *transfer.Offer) (string, int) {
	var tops []string
	files := 0
	oneFile := false
	for _, e := range o.Entries {
		if !e.Dir {
			files++
		}
		if !strings.Contains(e.Path, "/") {
			tops = append(tops, e.Path)
			oneFile = !e.Dir
		}
	}
	more := len(tops) > 2
	if more {
		tops = tops[:2]
	}
	return title(tops, oneFile && len(tops) == 1, more, files, o.Text), files
}

// incomingTitle is the title of an offer someone makes us.
func incomingTitle(o transfer.OfferReceived) string {
	tops := o.First
	more := len(tops) > 2
	if more {
		tops = tops[:2]
	}
	return title(tops, o.Files == 1 && o.Folders == 0, more, o.Files, o.Text)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// shorten cuts s to at most n runes, on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
