package rendezvous

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Limit is a token bucket: one token every Every, at most Burst saved up.
type Limit struct {
	Every time.Duration
	Burst int
}

// PerMinute is a limit of n events a minute with a burst of n.
func PerMinute(n int) Limit { return Limit{Every: time.Minute / time.Duration(n), Burst: n} }

// bucket is the state of one Limit. It is not safe for concurrent use; the
// server keeps its buckets under its lock.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(now time.Time, l Limit) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(l.Burst), now
		return
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+float64(el)/float64(l.Every))
		b.last = now
	}
}

// allow takes a token if there is one.
func (b *bucket) allow(now time.Time, l Limit) bool {
	b.refill(now, l)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// full reports whether the bucket is back at its burst, so that forgetting
// it changes nothing.
func (b *bucket) full(now time.Time, l Limit) bool {
	b.refill(now, l)
	return b.tokens >= float64(l.Burst)
}

// clientIP returns the keys limits are counted under for the client of r:
// its address (an IPv4 address, or the /64 of an IPv6 address: one
// subscriber usually has a whole /64, so counting single addresses would not
// limit anybody) and its network (the address's prefix of bits4 or bits6
// bits: one attacker's addresses usually share one).
func clientIP(r *http.Request, header string, bits4, bits6 int) (ip, prefix string) {
	if header != "" {
		if v := r.Header.Values(header); len(v) > 0 {
			// The proxy we trust appends the address it saw: the last one.
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				return ipKey(a), prefixKey(a, bits4, bits6)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host, host
	}
	return ipKey(a), prefixKey(a, bits4, bits6)
}

func ipKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func prefixKey(a netip.Addr, bits4, bits6 int) string {
	a = a.Unmap().WithZone("")
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	p, _ := a.Prefix(bits)
	return p.String()
}
