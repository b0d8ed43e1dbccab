package relay

import "net"

// OwnsAddress reports whether the default policy counts ip as one of the
// host's addresses at its last reading (no fresh read).
func OwnsAddress(s *Server, ip net.IP) bool { return s.own != nil && s.own.contains(ip) }
