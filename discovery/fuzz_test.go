package discovery

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func FuzzParseResponse(f *testing.F) {
	info := testInfo()
	f.Add(announcement(f, aliceInst, info, testHost, 120, "10.0.0.2", "fe80::2"))
	f.Add(announcement(f, aliceInst, info, testHost, 0, "10.0.0.2", "fe80::2"))
	f.Add(pack(f, []dns.RR{ptrRR(aliceInst, 0)}))
	f.Add(pack(f, []dns.RR{ptrRR(`a\.b`, 120), txtRR(`a\.b`, withoutKey(EncodeTXT(info), keyName), 120)}))
	nonASCII := info
	nonASCII.Name = `Zoë’s "Mac" \ Book`
	f.Add(pack(f, []dns.RR{ptrRR(`Zo\195\171`, 120), srvRR(`Zo\195\171`, testHost, testPort, 120), txtRR(`Zo\195\171`, escapeTXT(EncodeTXT(nonASCII)), 120)},
		addrRR(testHost, "2001:db8::1", 120, true), addrRR(testHost, "127.0.0.1", 120, true)))
	f.Add(pack(f, nil, addrRR(testHost, "10.0.0.3", 120, true)))
	var q dns.Msg
	q.SetQuestion(serviceFQDN, dns.TypePTR)
	if b, err := q.Pack(); err == nil {
		f.Add(b)
	}
	f.Add([]byte{1, 2, 3})

	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := parseResponse(data)
		if err != nil {
			return
		}
		if len(resp.sightings) > maxInstancesPerPacket {
			t.Fatalf("%d sightings", len(resp.sightings))
		}
		for _, s := range resp.sightings {
			if s.instance == "" {
				t.Errorf("sighting without an instance: %+v", s)
			}
			if s.hasInfo {
				if err := s.info.Validate(); err != nil {
					t.Errorf("sighting with invalid info %+v: %v", s.info, err)
				}
			} else if s.info != (Info{}) {
				t.Errorf("info without hasInfo: %+v", s)
			}
			if s.ttl < 0 || s.port < 0 || s.port > 65535 || (s.port == 0) != (s.host == "") {
				t.Errorf("bad sighting %+v", s)
			}
			if s.host != strings.ToLower(s.host) {
				t.Errorf("host not lower-cased: %q", s.host)
			}
		}
		if len(resp.hosts) > maxInstancesPerPacket {
			t.Fatalf("%d hosts", len(resp.hosts))
		}
		for host, ha := range resp.hosts {
			if host != strings.ToLower(host) {
				t.Errorf("host key not lower-cased: %q", host)
			}
			if len(ha.addrs) == 0 || len(ha.addrs) > maxAddrsPerHost {
				t.Errorf("host %q: %d addresses", host, len(ha.addrs))
			}
			seen := map[netip.Addr]bool{}
			for _, a := range ha.addrs {
				if !a.IsValid() || a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() || seen[a] {
					t.Errorf("host %q: address %v kept", host, a)
				}
				seen[a] = true
			}
		}

		// The browser takes the packet without trouble, and lists only
		// reachable, valid devices other than itself.
		b := &Browser{Self: testID}
		b.devices = map[string]*entry{}
		b.hosts = map[string]map[netip.Addr]cachedAddr{}
		b.handle(packet{data: data, src: netip.MustParseAddr("10.0.0.2")}, "eth0")
		for _, d := range b.Devices() {
			if d.ID == testID {
				t.Errorf("browser lists itself")
			}
			if err := d.Validate(); err != nil || d.Port == 0 || len(d.Addrs) == 0 {
				t.Errorf("browser lists %+v (%v)", d, err)
			}
		}
	})
}

func FuzzDecodeTXT(f *testing.F) {
	// The input is the instance name, then the TXT strings, each after a NUL.
	join := func(instance string, txt []string) string {
		return strings.Join(append([]string{instance}, txt...), "\x00")
	}
	info := testInfo()
	f.Add(join("Alice Laptop", EncodeTXT(info)))
	f.Add(join("Alice Laptop", withoutKey(EncodeTXT(info), keyName)))
	f.Add(join("x", []string{"V=1", "ID=ab", "name=a=b", "Type=phone", "FP=" + info.Fingerprint, "name=second", "junk"}))
	f.Add(join("", []string{"v=2", "id=a/b", "type=toaster", "fp=sha-256 ab"}))
	f.Add(join("Zoë", []string{"v=+1", "id=" + info.ID, "name=Zoë’s \\ \"Mac\"", "type=server", "fp=" + info.Fingerprint}))

	f.Fuzz(func(t *testing.T, data string) {
		parts := strings.Split(data, "\x00")
		instance, txt := parts[0], parts[1:]
		got, err := DecodeTXT(txt, instance)
		if err != nil {
			return
		}
		if len(txt) > maxTXTStrings {
			t.Fatalf("decoded %d strings", len(txt))
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("decoded invalid info %+v: %v", got, err)
		}
		again, err := DecodeTXT(EncodeTXT(got), instance)
		if err != nil || again != got {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", got, again, err)
		}
		// Over the wire as the Advertiser sends it, as the Browser reads it.
		m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Answer: []dns.RR{
			&dns.TXT{Hdr: rrHdr(instFQDN(aliceInst), dns.TypeTXT, 120, true), Txt: escapeTXT(EncodeTXT(got))},
		}}
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("pack %+v: %v", got, err)
		}
		resp, err := parseResponse(wire)
		if err != nil || len(resp.sightings) != 1 || !resp.sightings[0].hasInfo || resp.sightings[0].info != got {
			t.Fatalf("%+v over the wire: %+v, %v", got, resp, err)
		}
	})
}

// FuzzAnswerQuery: any packet to port 5353 is handed to the unicast
// answerer; it never panics, answers only queries, and what it says always
// parses as an mDNS response about this device alone.
func FuzzAnswerQuery(f *testing.F) {
	for _, qt := range []uint16{dns.TypePTR, dns.TypeSRV, dns.TypeANY, dns.TypeA} {
		var m dns.Msg
		m.SetQuestion(serviceFQDN, qt)
		if b, err := m.Pack(); err == nil {
			f.Add(b, true)
		}
	}
	f.Add([]byte{0, 0, 0x84, 0}, false)
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		a := &answerer{info: testInfo(), port: 53318, instance: func() string { return "Alice Laptop" },
			addrs: func(int) []netip.Addr { return []netip.Addr{netip.MustParseAddr("10.0.0.2")} }}
		port := mdnsPort
		if legacy {
			port = 40000
		}
		out := a.reply(packet{data: data, srcPort: port})
		if out == nil {
			return
		}
		var q dns.Msg
		if err := q.Unpack(data); err != nil || q.Response {
			t.Fatalf("answered a packet that is no query")
		}
		resp, err := parseResponse(out)
		if err != nil {
			t.Fatalf("the answer does not parse: %v", err)
		}
		for _, s := range resp.sightings {
			if s.hasInfo && s.info.ID != testInfo().ID {
				t.Errorf("the answer speaks of another device: %+v", s.info)
			}
		}
	})
}
