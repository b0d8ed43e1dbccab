package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// laneDialer opens the extra associations of one send (lanes,
// docs/PROTOCOL.md 4.3; transfer.SendOptions.DialLane), for the GUI's
// sends and the CLI's alike: only on the LAN, to the address and the
// device that the send's latest connection reached, with the same checks
// as that connection. A send through the server gets none: its one
// association is what the relay or the NAT allows.
type laneDialer struct {
	cfg   func() peer.Config
	check func(signaling.Hello) error

	mu   sync.Mutex
	addr string // "" when the latest connection was not on the LAN
	id   string
}

// errNoLane says why a send has no extra lane.
var errNoLane = errors.New("extra lanes are only opened on the local network")

func newLaneDialer(cfg func() peer.Config, check func(signaling.Hello) error) *laneDialer {
	return &laneDialer{cfg: cfg, check: check}
}

// reached records the send's latest connection: c at addr on the LAN, or
// any other way (lan false).
func (l *laneDialer) reached(c *peer.Conn, addr string, lan bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addr, l.id = "", ""
	if lan {
		l.addr, l.id = addr, c.Remote.ID
	}
}

// dial opens one more association to the same device.
func (l *laneDialer) dial(ctx context.Context) (transfer.Link, error) {
	l.mu.Lock()
	addr, id := l.addr, l.id
	l.mu.Unlock()
	if addr == "" {
		return nil, errNoLane
	}
	c, err := peer.Dial(ctx, addr, l.cfg(), checkWanted(id, l.check))
	if err != nil {
		return nil, fmt.Errorf("open another lane to %s: %w", addr, err)
	}
	return c, nil
}

// onLAN says whether the send's latest connection was made on the LAN.
func (l *laneDialer) onLAN() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addr != ""
}

// laneOptions fills a send's lane options from l.
func laneOptions(o *transfer.SendOptions, l *laneDialer) {
	o.DialLane, o.LanesOK, o.Lanes = l.dial, l.onLAN, transfer.DefaultLanes()
}
