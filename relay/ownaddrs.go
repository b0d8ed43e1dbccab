package relay

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ownRefreshEvery is how often the host's addresses are read again even
// without a change notification (other systems than Linux, a dropped
// netlink message).
const ownRefreshEvery = 5 * time.Second

// ownAddrs follows the addresses of this host: a relayed datagram to one of
// them would reach the server's own services (its signaling port, a local
// resolver, the TURN port itself), and an address added after the server
// started is as much its own as the first ones. Permissions read the
// interfaces afresh (refresh); every datagram checks the last reading, which
// a netlink notification (Linux) or the timer renews.
type ownAddrs struct {
	static []net.IP // the listening and relay addresses, always own
	set    atomic.Pointer[addrSet]
	mu     sync.Mutex // one interface read at a time
	log    *slog.Logger

	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newOwnAddrs(log *slog.Logger, static ...net.IP) *ownAddrs {
	o := &ownAddrs{static: static, log: log}
	o.refresh()
	return o
}

// refresh reads the host's addresses now.
func (o *ownAddrs) refresh() {
	o.mu.Lock()
	defer o.mu.Unlock()
	own := addrSet{}
	for _, ip := range o.static {
		own.add(ip)
	}
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		// Keep what was known: forgetting addresses would open them.
		o.log.Warn("relay: read the host's addresses", slog.Any("err", err))
		if old := o.set.Load(); old != nil {
			for a := range *old {
				own[a] = struct{}{}
			}
		}
	}
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok {
			own.add(n.IP)
		}
	}
	o.set.Store(&own)
}

// contains reports whether ip was one of the host's addresses at the last
// reading.
func (o *ownAddrs) contains(ip net.IP) bool { return o.set.Load().contains(ip) }

// watch keeps the set current until stop: on every address change the
// kernel reports, and every ownRefreshEvery.
func (o *ownAddrs) watch() {
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	changed := make(chan struct{}, 1)
	if stopNotify, err := notifyAddressChanges(changed, &o.done); err != nil {
		o.log.Debug("relay: no address change notifications; reading them on a timer",
			slog.Any("err", err), slog.Duration("every", ownRefreshEvery))
	} else {
		o.done.Go(func() { <-ctx.Done(); stopNotify() })
	}
	o.done.Go(func() {
		tick := time.NewTicker(ownRefreshEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-tick.C:
			}
			o.refresh()
		}
	})
}

// stop ends watch's goroutines.
func (o *ownAddrs) stop() {
	if o.cancel != nil {
		o.cancel()
	}
	o.done.Wait()
}
