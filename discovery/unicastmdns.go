package discovery

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Unicast mDNS answers (RFC 6762 §5.4, §6.7). zeroconf's responder answers
// multicast queries by multicast; the Advertiser answers, through its
// browser's sockets, the two kinds of query whose asker listens for a
// unicast reply:
//   - a question with the QU bit (the top bit of its class): the asker
//     wants the answer sent to it directly, as a device does when multicast
//     answers do not reach it; and
//   - a legacy query, from a port other than 5353 (a plain DNS resolver,
//     `dig -p 5353 @224.0.0.251`): the reply goes to that port, repeats the
//     question and the query's id, with TTLs of at most 10 s and no
//     cache-flush bit, as §6.7 says.
// zeroconf answers QU questions about the service and instance names too;
// a second answer is harmless, and ours also covers the host's addresses.

// legacyTTL is the longest TTL of a legacy unicast answer (§6.7).
const legacyTTL = 10

// Record TTLs, as zeroconf's responder gives them.
const (
	serviceTTL = 3200
	hostTTL    = 120
)

// answerer answers unicast queries for one advertised device.
type answerer struct {
	info     Info
	port     int
	instance func() string // the instance name advertised now
	// addrs lists the addresses of an interface by index (nil: the
	// system's).
	addrs func(ifIndex int) []netip.Addr
}

// reply returns the unicast answer to p, or nil when p is not a query for
// us that asks for one.
func (a *answerer) reply(p packet) []byte {
	var q dns.Msg
	if err := q.Unpack(p.data); err != nil || q.Response || q.Opcode != dns.OpcodeQuery || len(q.Question) == 0 {
		return nil
	}
	legacy := p.srcPort != mdnsPort
	var resp dns.Msg
	resp.Id, resp.Response, resp.Authoritative = q.Id, true, true
	for _, question := range q.Question {
		if !legacy && question.Qclass&cacheFlush == 0 {
			continue // a multicast question: zeroconf answers it
		}
		answers, extra := a.answer(question, p.ifIndex)
		resp.Answer = append(resp.Answer, answers...)
		resp.Extra = append(resp.Extra, extra...)
	}
	if len(resp.Answer) == 0 {
		return nil
	}
	if legacy {
		resp.Question = q.Question
		for _, rr := range append(resp.Answer, resp.Extra...) {
			h := rr.Header()
			h.Ttl = min(h.Ttl, legacyTTL)
			h.Class &^= cacheFlush
		}
	}
	resp.Compress = true
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}

// answer lists the records that answer one question, and the additional
// ones that go with them.
func (a *answerer) answer(q dns.Question, ifIndex int) (answers, extra []dns.RR) {
	instanceFQDN := escapeLabel(a.instance()) + "." + serviceFQDN
	host := hostName(a.info.ID) + "." + Domain
	wants := func(t uint16) bool { return q.Qtype == t || q.Qtype == dns.TypeANY }
	switch {
	case strings.EqualFold(q.Name, serviceFQDN) && wants(dns.TypePTR):
		answers = append(answers, &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, serviceTTL, false), Ptr: instanceFQDN})
		extra = append(append(extra, a.srvTXT(instanceFQDN, host)...), a.addrRecords(host, ifIndex)...)
	case instanceLabel(q.Name) != "" && strings.EqualFold(instanceLabel(q.Name), a.instance()):
		for _, rr := range a.srvTXT(instanceFQDN, host) {
			if wants(rr.Header().Rrtype) {
				answers = append(answers, rr)
			}
		}
		if len(answers) > 0 {
			extra = a.addrRecords(host, ifIndex)
		}
	case strings.EqualFold(q.Name, host):
		for _, rr := range a.addrRecords(host, ifIndex) {
			if wants(rr.Header().Rrtype) {
				answers = append(answers, rr)
			}
		}
	}
	return answers, extra
}

func (a *answerer) srvTXT(instanceFQDN, host string) []dns.RR {
	return []dns.RR{
		&dns.SRV{Hdr: hdr(instanceFQDN, dns.TypeSRV, serviceTTL, true), Port: uint16(a.port), Target: host},
		&dns.TXT{Hdr: hdr(instanceFQDN, dns.TypeTXT, serviceTTL, true), Txt: escapeTXT(EncodeTXT(a.info))},
	}
}

// addrRecords are the A and AAAA records of the interface the query came in
// on.
func (a *answerer) addrRecords(host string, ifIndex int) []dns.RR {
	lookup := a.addrs
	if lookup == nil {
		lookup = ifaceAddrs
	}
	var out []dns.RR
	for _, ip := range lookup(ifIndex) {
		if ip.Is4() {
			out = append(out, &dns.A{Hdr: hdr(host, dns.TypeA, hostTTL, true), A: ip.AsSlice()})
		} else {
			out = append(out, &dns.AAAA{Hdr: hdr(host, dns.TypeAAAA, hostTTL, true), AAAA: ip.AsSlice()})
		}
	}
	return out
}

func hdr(name string, t uint16, ttl uint32, flush bool) dns.RR_Header {
	class := uint16(dns.ClassINET)
	if flush {
		class |= cacheFlush
	}
	return dns.RR_Header{Name: name, Rrtype: t, Class: class, Ttl: ttl}
}

// ifaceAddrs lists the unicast addresses of interface index (none when it
// is gone).
func ifaceAddrs(index int) []netip.Addr {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.IsLoopback() && !ip.IsMulticast() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
