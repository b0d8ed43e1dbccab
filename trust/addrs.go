package trust

import (
	"errors"
	"net/netip"
	"slices"
)

// SeenAt records that a connection we opened to addr (HOST:PORT, an IP
// address) reached the device id, whose certificate DTLS has proven to be
// fingerprint: the address moves to the front of its Addrs. Only a pinned
// device with that fingerprint is updated; anything else is ignored, so
// nothing is stored about a key not proven.
func (s *Store) SeenAt(id, fingerprint, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return errors.New("not an IP address and port")
	}
	addr = ap.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync()
	d := s.devices[id]
	if d == nil || d.Fingerprint != fingerprint {
		return nil
	}
	if len(d.Addrs) > 0 && d.Addrs[0] == addr {
		return nil
	}
	addrs := append([]string{addr}, slices.DeleteFunc(slices.Clone(d.Addrs), func(a string) bool { return a == addr })...)
	d.Addrs = addrs[:min(len(addrs), MaxAddrs)]
	s.pending[id] = *d
	s.scheduleLocked()
	return nil
}

// validAddrs keeps the well-formed addresses of a store file, at most
// MaxAddrs.
func validAddrs(in []string) []string {
	var out []string
	for _, a := range in {
		if _, err := netip.ParseAddrPort(a); err == nil && len(out) < MaxAddrs {
			out = append(out, a)
		}
	}
	return out
}
