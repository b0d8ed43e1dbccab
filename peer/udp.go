package peer

import (
	"errors"
	"fmt"
	"net"

	"github.com/pion/ice/v4"
)

// UDPPort is one UDP socket that every peer connection of a process
// shares (pion's ICE UDP mux; docs/PROTOCOL.md section 3): each host
// candidate carries its port, so a firewall needs to let in only this UDP
// port and the handshake's TCP port. Set it in Config.UDP; without it,
// every connection opens sockets on random ports, as pion does by default.
//
// The socket listens on every address (IPv6 and IPv4 on one socket where
// the system allows it), and the addresses it offers as candidates are read
// from the interfaces at each connection, so an address that appears later
// (a laptop joining Wi-Fi) is offered from the next connection on, with
// nothing to reopen. Server-reflexive and relay candidates (off the LAN)
// still use sockets of their own.
type UDPPort struct {
	conn *net.UDPConn
	mux  *ice.UDPMuxDefault
}

// OpenUDP opens the shared UDP port (0: any free port).
func OpenUDP(port int) (*UDPPort, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
	if err != nil {
		// No IPv6 on this machine: IPv4 alone.
		var err4 error
		if conn, err4 = net.ListenUDP("udp4", &net.UDPAddr{Port: port}); err4 != nil {
			return nil, fmt.Errorf("open UDP port %d: %w", port, errors.Join(err, err4))
		}
	}
	growBuffers(conn)
	return &UDPPort{conn: conn, mux: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})}, nil
}

// Port is the UDP port number.
func (u *UDPPort) Port() int { return u.conn.LocalAddr().(*net.UDPAddr).Port }

// Close closes the port; connections that use it fail.
func (u *UDPPort) Close() error { return u.mux.Close() }
