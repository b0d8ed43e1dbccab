// Package rendezvous is the off-LAN meeting point of ThePeerDrop: a small
// WebSocket server that pairs devices with short single-use codes (or finds a
// paired device by its id, proven with its device key) and relays their
// signaling messages (SDP, ICE candidates, PAKE messages) between exactly the
// devices of one room, plus the client that devices use to talk to it.
//
// The server never sees a file byte and cannot read what it relays in any
// useful way: payloads are opaque JSON that the peers authenticate end to end
// (package pairing). It hands every client the ICE servers (STUN/TURN) that
// its Config provides (package relay mints the TURN credentials).
//
// The wire protocol is specified in docs/PROTOCOL-rendezvous.md; this package
// follows that document.
package rendezvous
