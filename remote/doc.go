// Package remote connects two devices that are not on one LAN: they meet in
// a room of the rendezvous server (package rendezvous) under a pairing code,
// authenticate each other's certificate fingerprints with the code's PAKE
// (package pairing), and then run the LAN handshake of package peer over a
// Pipe, a byte stream carried in the server's signal messages. The file
// bytes then flow over WebRTC, directly or through the server's TURN relay,
// never through the rendezvous server.
//
// The creator of a code (Host, the receiver) adds a secret group that the
// server never sees, so the server cannot run the PAKE itself: a server
// that swaps the fingerprints in the SDP it relays is caught and refused.
//
// The wire format (the pipe's framing, and the order: PAKE, then the LAN
// handshake frames) is specified in docs/PROTOCOL.md section 13.
package remote
