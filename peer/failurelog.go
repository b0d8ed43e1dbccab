package peer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Reporting limits of a Listener: a flood of connections must not become a
// flood of log lines. Each interval, the first reportBurst failures of
// peers that said something are reported one by one (OnError and the log);
// everything else is counted and summed up in one line at the interval's end.
const (
	reportInterval = 10 * time.Second
	reportBurst    = 5
	// maxCountedSources bounds the addresses one summary tells apart.
	maxCountedSources = 1024
)

// failureLog reports the connections a Listener turned away or lost, at a
// bounded rate.
type failureLog struct {
	log      *slog.Logger
	onError  func(net.Addr, error)
	interval time.Duration

	mu      sync.Mutex
	shown   int // reported one by one in this interval
	busy    int // turned away by admission
	silent  int // closed, or said nothing in time, before a hello
	hidden  int // failures over reportBurst
	sources map[netip.Addr]int
}

// newFailureLog returns a failureLog that sums up every interval; its
// owner sets log and onError before it is used.
func newFailureLog(interval time.Duration) *failureLog {
	return &failureLog{interval: interval, sources: map[netip.Addr]int{}}
}

// run sums up every interval until ctx ends, then once more.
func (f *failureLog) run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.flush()
			return
		case <-t.C:
			f.flush()
		}
	}
}

// countLocked notes one connection from src in this interval's summary.
func (f *failureLog) countLocked(src netip.Addr) {
	if _, ok := f.sources[src]; ok || len(f.sources) < maxCountedSources {
		f.sources[src]++
	}
}

// turnedAway counts a connection closed at once by admission.
func (f *failureLog) turnedAway(src netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.busy++
	f.countLocked(src)
}

// failed reports a handshake from that failed with err; introduced says
// whether the peer's hello had arrived.
func (f *failureLog) failed(from net.Addr, err error, introduced bool) {
	f.mu.Lock()
	f.countLocked(sourceOf(from))
	show := false
	switch {
	case !introduced && quietFailure(err):
		// A connection that closed or said nothing: a port scan, an idle
		// flood, a dialer that gave up. Nobody can act on each one.
		f.silent++
	case f.shown < reportBurst:
		f.shown++
		show = true
	default:
		f.hidden++
	}
	f.mu.Unlock()
	if !show {
		return
	}
	f.log.Info("handshake failed", slog.String("from", from.String()), slog.Any("err", err))
	if f.onError != nil {
		f.onError(from, err)
	}
}

// counts returns this interval's counts (tests).
func (f *failureLog) counts() (busy, silent, hidden int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.busy, f.silent, f.hidden
}

// flush logs one line that sums up the interval, if anything was counted
// and not shown, and starts a new interval.
func (f *failureLog) flush() {
	f.mu.Lock()
	busy, silent, hidden, sources := f.busy, f.silent, f.hidden, f.sources
	var (
		top  netip.Addr
		topN int
	)
	for src, n := range sources {
		if n > topN || (n == topN && src.Less(top)) {
			top, topN = src, n
		}
	}
	f.shown, f.busy, f.silent, f.hidden = 0, 0, 0, 0
	f.sources = map[netip.Addr]int{}
	f.mu.Unlock()
	if busy+silent+hidden == 0 {
		return
	}
	f.log.Warn("incoming connections turned away or failed",
		slog.Duration("in", f.interval),
		slog.Int("busy", busy), slog.Int("silent", silent), slog.Int("failed_not_shown", hidden),
		slog.Int("sources", len(sources)), slog.String("most_from", top.String()), slog.Int("most", topN))
}

// quietFailure says whether err is a connection closing or timing out, as
// opposed to a peer saying something wrong.
func quietFailure(err error) bool {
	var ne net.Error
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errFirstFrame) ||
		(errors.As(err, &ne) && ne.Timeout()) || errors.As(err, &op)
}
