package engine

import (
	"cmp"
	"fmt"

	"github.com/thepeerdrop/peerdrop/peer"
)

// closeUDP closes the Engine's shared UDP port, if any, once Run's
// connections are done (shutdown).
func (e *Engine) closeUDP() {
	e.selfMu.Lock()
	u := e.peerCfg.UDP
	e.peerCfg.UDP = nil
	e.selfMu.Unlock()
	if u != nil {
		_ = u.Close()
	}
}

// openUDP opens the one UDP port every peer connection of a receiver uses
// (peer.UDPPort): want, or by default the handshake's TCP port number, so
// that TCP and UDP on one number are all a firewall must let in. It
// returns nil with perConnection (random ports per connection, as before),
// and nil with an error to show when the port is taken: connections then
// use random ports, and the receiver still runs.
func openUDP(tcpPort, want int, perConnection bool) (*peer.UDPPort, error) {
	if perConnection {
		return nil, nil
	}
	port := cmp.Or(want, tcpPort)
	u, err := peer.OpenUDP(port)
	if err != nil {
		return nil, fmt.Errorf("UDP port %d is taken, so each connection uses a random UDP port (a firewall must then let all UDP in): %w", port, err)
	}
	return u, nil
}
