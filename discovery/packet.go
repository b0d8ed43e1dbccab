package discovery

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// serviceFQDN is the name browsers ask for: "_peerdrop._tcp.local.".
var serviceFQDN = Service + "." + Domain

// cacheFlush is the top bit of an mDNS record's class (RFC 6762 §10.2): the
// record replaces every cached record of that name and type.
const cacheFlush = 1 << 15

// Limits on what one packet may make us keep.
const (
	maxInstancesPerPacket = 64
	maxAddrsPerHost       = 32
)

// sighting is what one mDNS response says about one service instance.
type sighting struct {
	instance string // the instance label, unescaped
	info     Info   // valid when hasInfo
	hasInfo  bool   // a TXT record that decodes
	goodbye  bool   // TTL 0 on its TXT (or on its PTR when there is no TXT)
	host     string // SRV target, lower case; "" without SRV
	port     int
	ttl      time.Duration // the smallest TTL of its PTR, SRV and TXT
}

// hostAddrs is what one response says about one host's addresses.
type hostAddrs struct {
	addrs []netip.Addr
	ttl   time.Duration
	flush bool // the records carry the cache-flush bit
}

// response is the part of an mDNS response that concerns peerdrop.
type response struct {
	sightings []sighting
	hosts     map[string]hostAddrs // by lower-case host name
}

// parseResponse decodes an mDNS packet. Queries and packets that say
// nothing about _peerdrop._tcp give an empty response; malformed packets an
// error. Bad TXT records do not fail the packet: that instance is just not
// a valid sighting.
func parseResponse(b []byte) (response, error) {
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		return response{}, err
	}
	if !m.Response || m.Opcode != dns.OpcodeQuery {
		return response{}, nil
	}
	c := newCollector()
	all := make([]dns.RR, 0, len(m.Answer)+len(m.Ns)+len(m.Extra))
	all = append(append(append(all, m.Answer...), m.Ns...), m.Extra...)
	for _, rr := range all {
		c.add(rr)
	}
	var resp response
	for _, fqdn := range c.order {
		resp.sightings = append(resp.sightings, c.insts[strings.ToLower(fqdn)].sighting(fqdn))
	}
	if len(c.hosts) > 0 {
		resp.hosts = c.hosts
	}
	return resp, nil
}

// inst is what one packet says about one service instance.
type inst struct {
	ptrTTL, srvTTL, txtTTL int64 // -1: absent
	host                   string
	port                   int
	txt                    []string
}

// collector gathers a packet's records by instance and by host.
type collector struct {
	insts map[string]*inst // by lower-case instance name
	order []string         // instance names in packet order, for stable output
	hosts map[string]hostAddrs
}

func newCollector() *collector {
	return &collector{insts: map[string]*inst{}, hosts: map[string]hostAddrs{}}
}

// get is the instance fqdn, noted in packet order; nil past
// maxInstancesPerPacket.
func (c *collector) get(fqdn string) *inst {
	key := strings.ToLower(fqdn)
	if i, ok := c.insts[key]; ok {
		return i
	}
	if len(c.insts) >= maxInstancesPerPacket {
		return nil
	}
	i := &inst{ptrTTL: -1, srvTTL: -1, txtTTL: -1}
	c.insts[key] = i
	c.order = append(c.order, fqdn)
	return i
}

// add takes one record.
func (c *collector) add(rr dns.RR) {
	h := rr.Header()
	switch rr := rr.(type) {
	case *dns.PTR:
		if !strings.EqualFold(h.Name, serviceFQDN) || instanceLabel(rr.Ptr) == "" {
			return
		}
		if i := c.get(rr.Ptr); i != nil {
			i.ptrTTL = int64(h.Ttl)
		}
	case *dns.SRV:
		if instanceLabel(h.Name) == "" {
			return
		}
		if i := c.get(h.Name); i != nil {
			i.srvTTL, i.host, i.port = int64(h.Ttl), strings.ToLower(rr.Target), int(rr.Port)
		}
	case *dns.TXT:
		if instanceLabel(h.Name) == "" {
			return
		}
		if i := c.get(h.Name); i != nil {
			i.txtTTL, i.txt = int64(h.Ttl), rr.Txt
		}
	case *dns.A:
		addHostAddr(c.hosts, h, rr.A.To4())
	case *dns.AAAA:
		addHostAddr(c.hosts, h, rr.AAAA.To16())
	}
}

// sighting is what the packet says of the instance named fqdn.
func (i *inst) sighting(fqdn string) sighting {
	s := sighting{instance: instanceLabel(fqdn), host: i.host, port: i.port}
	ttl := int64(-1)
	for _, t := range []int64{i.ptrTTL, i.srvTTL, i.txtTTL} {
		if t >= 0 && (ttl < 0 || t < ttl) {
			ttl = t
		}
	}
	s.ttl = time.Duration(ttl) * time.Second
	if i.txtTTL >= 0 {
		s.goodbye = i.txtTTL == 0
		if info, err := DecodeTXT(wireTXT(i.txt), s.instance); err == nil {
			s.info, s.hasInfo = info, true
		}
	} else {
		s.goodbye = i.ptrTTL == 0
	}
	if i.port <= 0 {
		s.host, s.port = "", 0
	}
	return s
}

func addHostAddr(hosts map[string]hostAddrs, h *dns.RR_Header, ip []byte) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return
	}
	key := strings.ToLower(h.Name)
	ha, known := hosts[key]
	if !known && len(hosts) >= maxInstancesPerPacket {
		return
	}
	if len(ha.addrs) >= maxAddrsPerHost {
		return
	}
	ttl := time.Duration(h.Ttl) * time.Second
	if !known || ttl < ha.ttl {
		ha.ttl = ttl
	}
	ha.flush = ha.flush || h.Class&cacheFlush != 0
	for _, x := range ha.addrs {
		if x == a {
			hosts[key] = ha
			return
		}
	}
	ha.addrs = append(ha.addrs, a)
	hosts[key] = ha
}

// instanceLabel returns the unescaped instance label of a service instance
// name "<instance>._peerdrop._tcp.local.", or "" for any other name.
//
// zeroconf v1.0.0's own client returns this label still escaped
// ("My\ Laptop"), one of the reasons discovery reads responses itself.
func instanceLabel(fqdn string) string {
	suffix := "." + serviceFQDN
	if len(fqdn) <= len(suffix) || !strings.EqualFold(fqdn[len(fqdn)-len(suffix):], suffix) {
		return ""
	}
	label, ok := unescapeLabel(fqdn[:len(fqdn)-len(suffix)])
	if !ok {
		return ""
	}
	return label
}

// unescapeLabel undoes the presentation-format escapes miekg/dns writes:
// "\." and "\ " (a backslash before any character) and "\DDD" (a decimal
// byte). An unescaped dot means more than one label: not an instance.
func unescapeLabel(s string) (string, bool) {
	return unescape(s, true)
}

// wireTXT returns the bytes on the wire of TXT strings as miekg/dns unpacks
// them: it writes `"` and `\` as `\"` and `\\`, and every byte outside
// printable ASCII (UTF-8 included) as \DDD, so a name "Zoë" arrives as
// `Zo\195\171`. Records with too many strings are left as they are:
// DecodeTXT refuses them anyway.
func wireTXT(txt []string) []string {
	if len(txt) > maxTXTStrings {
		return txt
	}
	out := make([]string, len(txt))
	for k, s := range txt {
		if u, ok := unescape(s, false); ok {
			s = u
		}
		out[k] = s
	}
	return out
}

// unescape undoes presentation-format escapes; in a label (label true) an
// unescaped dot is an error.
func unescape(s string, label bool) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, !label || !strings.Contains(s, ".")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && label:
			return "", false
		case c != '\\':
			b.WriteByte(c)
		case i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]):
			v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if v > 255 {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 3
		case i+1 < len(s):
			b.WriteByte(s[i+1])
			i++
		default:
			return "", false
		}
	}
	return b.String(), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
