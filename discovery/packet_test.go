package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// --- helpers shared by the package's tests ---

const (
	// testID is identity.DeviceIDFor(fingerprint(0xAB)).
	testID   = "abababababababababababababababab"
	testHost = "pd-" + testID + ".local."
	testPort = 53318
	// aliceInst is the instance label "Alice Laptop" in miekg/dns
	// presentation format (a space is escaped).
	aliceInst = `Alice\ Laptop`
)

// fingerprint is a valid fingerprint made of 32 copies of the byte b.
func fingerprint(b byte) string {
	parts := make([]string, 32)
	for i := range parts {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return "sha-256 " + strings.Join(parts, ":")
}

// testInfo is a valid Info.
func testInfo() Info {
	return Info{Device: device.Device{ID: testID, Name: "Alice's Laptop", Type: TypeLaptop, Fingerprint: fingerprint(0xAB)}, Version: int(signaling.Version)}
}

// instFQDN is the service instance name of a presentation-format label.
func instFQDN(label string) string { return label + "." + serviceFQDN }

func rrHdr(name string, rrtype uint16, ttl uint32, flush bool) dns.RR_Header {
	class := uint16(dns.ClassINET)
	if flush {
		class |= cacheFlush
	}
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: class, Ttl: ttl}
}

func ptrRR(label string, ttl uint32) dns.RR {
	return &dns.PTR{Hdr: rrHdr(serviceFQDN, dns.TypePTR, ttl, false), Ptr: instFQDN(label)}
}

func srvRR(label, target string, port uint16, ttl uint32) dns.RR {
	return &dns.SRV{Hdr: rrHdr(instFQDN(label), dns.TypeSRV, ttl, true), Target: target, Port: port}
}

func txtRR(label string, txt []string, ttl uint32) dns.RR {
	return &dns.TXT{Hdr: rrHdr(instFQDN(label), dns.TypeTXT, ttl, true), Txt: txt}
}

// addrRR is an A or AAAA record, as the address says.
func addrRR(host, addr string, ttl uint32, flush bool) dns.RR {
	a := netip.MustParseAddr(addr)
	if a.Is4() {
		return &dns.A{Hdr: rrHdr(host, dns.TypeA, ttl, flush), A: net.IP(a.AsSlice())}
	}
	return &dns.AAAA{Hdr: rrHdr(host, dns.TypeAAAA, ttl, flush), AAAA: net.IP(a.AsSlice())}
}

// pack builds an mDNS response: answers, then additional records.
func pack(tb testing.TB, answers []dns.RR, extra ...dns.RR) []byte {
	tb.Helper()
	m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: answers, Extra: extra}
	b, err := m.Pack()
	require.NoError(tb, err)
	return b
}

// announcement is what a responder sends for info: PTR, SRV and TXT with
// ttl, and the addresses (with the cache-flush bit) as additional records.
func announcement(tb testing.TB, label string, info Info, host string, ttl uint32, addrs ...string) []byte {
	tb.Helper()
	var extra []dns.RR
	for _, a := range addrs {
		extra = append(extra, addrRR(host, a, ttl, true))
	}
	return pack(tb, []dns.RR{
		ptrRR(label, ttl),
		srvRR(label, host, testPort, ttl),
		txtRR(label, EncodeTXT(info), ttl),
	}, extra...)
}

// withoutKey returns txt without the strings for key.
func withoutKey(txt []string, key string) []string {
	var out []string
	for _, s := range txt {
		if !strings.HasPrefix(s, key+"=") {
			out = append(out, s)
		}
	}
	return out
}

// --- parseResponse ---

func TestParseResponseAnnouncement(t *testing.T) {
	info := testInfo()
	data := pack(t, []dns.RR{
		ptrRR(aliceInst, 4500),
		srvRR(aliceInst, "PD-ABABABABABABABABABABABABABABABAB.Local.", testPort, 120),
		txtRR(aliceInst, EncodeTXT(info), 4500),
	},
		addrRR(testHost, "10.0.0.2", 120, true),
		addrRR(testHost, "fe80::2", 60, false),
	)

	resp, err := parseResponse(data)
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1)
	s := resp.sightings[0]
	assert.Equal(t, "Alice Laptop", s.instance, "instance label is unescaped")
	assert.True(t, s.hasInfo)
	assert.Equal(t, info, s.info)
	assert.False(t, s.goodbye)
	assert.Equal(t, testHost, s.host, "host is lower-cased")
	assert.Equal(t, testPort, s.port)
	assert.Equal(t, 120*time.Second, s.ttl, "ttl is the smallest of PTR, SRV and TXT")

	require.Len(t, resp.hosts, 1)
	ha, ok := resp.hosts[testHost]
	require.True(t, ok, "hosts are keyed by lower-case name: %v", resp.hosts)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fe80::2")}, ha.addrs)
	assert.True(t, ha.flush, "one record with the cache-flush bit flags the set")
	assert.Equal(t, 60*time.Second, ha.ttl, "smallest address ttl")
}

func TestParseResponseNoFlushBit(t *testing.T) {
	data := pack(t, nil, addrRR(testHost, "10.0.0.2", 120, false), addrRR(testHost, "10.0.0.3", 120, false))
	resp, err := parseResponse(data)
	require.NoError(t, err)
	assert.Empty(t, resp.sightings)
	require.Contains(t, resp.hosts, testHost)
	assert.False(t, resp.hosts[testHost].flush)
	assert.Len(t, resp.hosts[testHost].addrs, 2)
}

func TestParseResponseGoodbye(t *testing.T) {
	info := testInfo()
	resp, err := parseResponse(announcement(t, aliceInst, info, testHost, 0, "10.0.0.2", "fe80::2"))
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1)
	s := resp.sightings[0]
	assert.True(t, s.goodbye)
	assert.True(t, s.hasInfo, "a goodbye still says who leaves")
	assert.Equal(t, info, s.info)
	assert.Equal(t, time.Duration(0), s.ttl)
	assert.Equal(t, time.Duration(0), resp.hosts[testHost].ttl)

	// A PTR alone with TTL 0 is a goodbye too, without info.
	resp, err = parseResponse(pack(t, []dns.RR{ptrRR(aliceInst, 0)}))
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1)
	assert.True(t, resp.sightings[0].goodbye)
	assert.False(t, resp.sightings[0].hasInfo)
	assert.Equal(t, "Alice Laptop", resp.sightings[0].instance)

	// A live TXT with a PTR at TTL 0: the TXT decides.
	resp, err = parseResponse(pack(t, []dns.RR{ptrRR(aliceInst, 0), txtRR(aliceInst, EncodeTXT(info), 120)}))
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1)
	assert.False(t, resp.sightings[0].goodbye)
}

func TestParseResponseQueryIsEmpty(t *testing.T) {
	var q dns.Msg
	q.SetQuestion(serviceFQDN, dns.TypePTR)
	// Known answers in a query are not announcements.
	q.Answer = []dns.RR{ptrRR(aliceInst, 120), txtRR(aliceInst, EncodeTXT(testInfo()), 120)}
	data, err := q.Pack()
	require.NoError(t, err)

	resp, err := parseResponse(data)
	require.NoError(t, err)
	assert.Empty(t, resp.sightings)
	assert.Empty(t, resp.hosts)

	// Another opcode is ignored too.
	m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Opcode: dns.OpcodeUpdate}, Answer: q.Answer}
	data, err = m.Pack()
	require.NoError(t, err)
	resp, err = parseResponse(data)
	require.NoError(t, err)
	assert.Empty(t, resp.sightings)
}

func TestParseResponseGarbage(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     nil,
		"3 bytes":   {1, 2, 3},
		"truncated": announcement(t, aliceInst, testInfo(), testHost, 120, "10.0.0.2")[:60],
		"bad count": append([]byte{0, 0, 0x84, 0, 0, 0, 0, 9, 0, 0, 0, 0}, 0xff, 0xff),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseResponse(data)
			assert.Error(t, err)
		})
	}
}

func TestParseResponseBadTXT(t *testing.T) {
	bad := EncodeTXT(testInfo())
	bad[0] = "v=3"
	data := pack(t, []dns.RR{ptrRR(aliceInst, 120), srvRR(aliceInst, testHost, testPort, 120), txtRR(aliceInst, bad, 120)})
	resp, err := parseResponse(data)
	require.NoError(t, err, "a bad TXT does not fail the packet")
	require.Len(t, resp.sightings, 1)
	s := resp.sightings[0]
	assert.False(t, s.hasInfo)
	assert.Equal(t, Info{}, s.info)
	assert.Equal(t, "Alice Laptop", s.instance)
	assert.Equal(t, testPort, s.port)
}

func TestParseResponseOtherServiceIgnored(t *testing.T) {
	const web = "Web._http._tcp.local."
	data := pack(t, []dns.RR{
		&dns.PTR{Hdr: rrHdr("_http._tcp.local.", dns.TypePTR, 120, false), Ptr: web},
		&dns.SRV{Hdr: rrHdr(web, dns.TypeSRV, 120, true), Target: testHost, Port: 80},
		&dns.TXT{Hdr: rrHdr(web, dns.TypeTXT, 120, true), Txt: EncodeTXT(testInfo())},
		// Our service type pointing at another service's instance.
		&dns.PTR{Hdr: rrHdr(serviceFQDN, dns.TypePTR, 120, false), Ptr: web},
		// A name that only ends like ours.
		&dns.TXT{Hdr: rrHdr("x.y_peerdrop._tcp.local.", dns.TypeTXT, 120, true), Txt: EncodeTXT(testInfo())},
		// The service name itself, without an instance label.
		&dns.TXT{Hdr: rrHdr(serviceFQDN, dns.TypeTXT, 120, true), Txt: EncodeTXT(testInfo())},
	})
	resp, err := parseResponse(data)
	require.NoError(t, err)
	assert.Empty(t, resp.sightings)
}

func TestParseResponseMultiLabelInstanceIgnored(t *testing.T) {
	// "a.b" unescaped is two labels: not one of our instances.
	data := pack(t, []dns.RR{txtRR("a.b", EncodeTXT(testInfo()), 120)})
	resp, err := parseResponse(data)
	require.NoError(t, err)
	assert.Empty(t, resp.sightings)
}

func TestParseResponseEscapedInstanceLabels(t *testing.T) {
	for label, want := range map[string]string{
		`a\.b`:         "a.b",
		`\065lice`:     "Alice",
		`back\\slash`:  `back\slash`,
		`Zo\195\171`:   "Zoë",
		`Bob's\ Phone`: "Bob's Phone",
	} {
		t.Run(want, func(t *testing.T) {
			txt := withoutKey(EncodeTXT(testInfo()), keyName) // fall back to the instance name
			resp, err := parseResponse(pack(t, []dns.RR{ptrRR(label, 120), txtRR(label, txt, 120)}))
			require.NoError(t, err)
			require.Len(t, resp.sightings, 1)
			assert.Equal(t, want, resp.sightings[0].instance)
			require.True(t, resp.sightings[0].hasInfo)
			assert.Equal(t, want, resp.sightings[0].info.Name, "name falls back to the unescaped instance")
		})
	}
}

func TestParseResponseInstanceCaseInsensitive(t *testing.T) {
	data := pack(t, []dns.RR{
		&dns.PTR{Hdr: rrHdr(strings.ToUpper(serviceFQDN), dns.TypePTR, 4500, false), Ptr: "Alice._PeerDrop._TCP.Local."},
		srvRR("alice", testHost, testPort, 120),
		txtRR("ALICE", EncodeTXT(testInfo()), 4500),
	})
	resp, err := parseResponse(data)
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1, "one instance, whatever the case of its name")
	s := resp.sightings[0]
	assert.Equal(t, "Alice", s.instance, "the first spelling seen")
	assert.True(t, s.hasInfo)
	assert.Equal(t, testPort, s.port)
	assert.Equal(t, 120*time.Second, s.ttl)
}

func TestParseResponseNonASCIITXT(t *testing.T) {
	// miekg/dns unpacks TXT strings in presentation format ("é" as
	// \195\169); parseResponse must hand DecodeTXT the bytes on the wire.
	for _, name := range []string{"Zoë’s MacBook", `quote"d`, `back\slash`, strings.Repeat("é", 32)} {
		t.Run(name, func(t *testing.T) {
			info := testInfo()
			info.Name = name
			require.NoError(t, info.Validate())
			resp, err := parseResponse(pack(t, []dns.RR{txtRR(aliceInst, escapeTXT(EncodeTXT(info)), 120)}))
			require.NoError(t, err)
			require.Len(t, resp.sightings, 1)
			require.True(t, resp.sightings[0].hasInfo)
			assert.Equal(t, name, resp.sightings[0].info.Name)
		})
	}
}

// TestZeroconfNamesRoundTrip builds the records the way zeroconf does from
// what Advertiser.Run gives it (instance name and TXT strings in
// presentation format, the instance trimmed of dots), and checks the
// browser reads back the very name and info.
func TestZeroconfNamesRoundTrip(t *testing.T) {
	for _, name := range []string{
		"Alice's Laptop", "Zoë’s MacBook", "J. Smith", "v1.2", "trailing.", ".leading", "...",
		`back\slash`, `trailing\`, `\065`, `quote"d`, "semi;colon (x) @home",
		strings.Repeat("é", 32),
		strings.Repeat(".", 64),
	} {
		t.Run(name, func(t *testing.T) {
			info := testInfo()
			info.Name = name
			require.NoError(t, info.Validate())
			// zeroconf: fmt.Sprintf("%s.%s", trimDot(instance), "_peerdrop._tcp.local.")
			inst := strings.Trim(escapeLabel(instanceName(name)), ".")
			data := pack(t, []dns.RR{
				&dns.PTR{Hdr: rrHdr(serviceFQDN, dns.TypePTR, 4500, false), Ptr: instFQDN(inst)},
				&dns.SRV{Hdr: rrHdr(instFQDN(inst), dns.TypeSRV, 120, true), Target: hostName(info.ID) + ".local.", Port: testPort},
				&dns.TXT{Hdr: rrHdr(instFQDN(inst), dns.TypeTXT, 4500, true), Txt: escapeTXT(EncodeTXT(info))},
			})
			resp, err := parseResponse(data)
			require.NoError(t, err)
			require.Len(t, resp.sightings, 1)
			s := resp.sightings[0]
			assert.Equal(t, instanceName(name), s.instance)
			require.True(t, s.hasInfo)
			assert.Equal(t, info, s.info)
			assert.Equal(t, testHost, s.host)
		})
	}
}

func TestParseResponseDropsUnusableAddrs(t *testing.T) {
	var extra []dns.RR
	for _, a := range []string{"127.0.0.1", "224.0.0.251", "0.0.0.0", "::1", "ff02::fb", "::", "10.0.0.2", "10.0.0.2"} {
		extra = append(extra, addrRR(testHost, a, 120, false))
	}
	resp, err := parseResponse(pack(t, nil, extra...))
	require.NoError(t, err)
	require.Contains(t, resp.hosts, testHost)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.2")}, resp.hosts[testHost].addrs, "unusable addresses dropped, duplicates merged")

	resp, err = parseResponse(pack(t, nil, addrRR("lo.local.", "127.0.0.1", 120, false), addrRR("lo.local.", "::1", 120, false)))
	require.NoError(t, err)
	assert.Empty(t, resp.hosts, "a host with only unusable addresses is not kept")
}

func TestParseResponseLimits(t *testing.T) {
	var answers []dns.RR
	for i := range maxInstancesPerPacket + 6 {
		answers = append(answers, ptrRR(fmt.Sprintf("dev%d", i), 120))
	}
	var extra []dns.RR
	for i := range maxAddrsPerHost + 8 {
		extra = append(extra, addrRR(testHost, fmt.Sprintf("10.0.1.%d", i+1), 120, false))
	}
	for i := range maxInstancesPerPacket + 6 {
		extra = append(extra, addrRR(fmt.Sprintf("h%d.local.", i), "10.0.2.1", 120, false))
	}
	resp, err := parseResponse(pack(t, answers, extra...))
	require.NoError(t, err)
	assert.Len(t, resp.sightings, maxInstancesPerPacket)
	assert.Equal(t, "dev0", resp.sightings[0].instance, "sightings keep packet order")
	assert.Len(t, resp.hosts[testHost].addrs, maxAddrsPerHost)
	assert.Len(t, resp.hosts, maxInstancesPerPacket)
}

func TestParseResponseSRVWithoutPort(t *testing.T) {
	data := pack(t, []dns.RR{srvRR(aliceInst, testHost, 0, 120), txtRR(aliceInst, EncodeTXT(testInfo()), 120)})
	resp, err := parseResponse(data)
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1)
	assert.Empty(t, resp.sightings[0].host, "no port, no usable host")
	assert.Zero(t, resp.sightings[0].port)
}

// --- escapes ---

func TestUnescapeLabel(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		`Alice\ Laptop`:  "Alice Laptop",
		`a\.b`:           "a.b",
		`\065`:           "A",
		`\065BC`:         "ABC",
		`\\`:             `\`,
		`caf\195\169`:    "café",
		`\255`:           "\xff",
		`\000x`:          "\x00x",
		`Bob\'s\ \"PC\"`: `Bob's "PC"`,
	} {
		got, ok := unescapeLabel(in)
		assert.True(t, ok, "%q", in)
		assert.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{`\999`, `\256`, `trailing\`, `a.b`, `a\.b.c`, "."} {
		_, ok := unescapeLabel(in)
		assert.False(t, ok, "%q", in)
	}
}

func TestInstanceLabel(t *testing.T) {
	assert.Equal(t, "Alice Laptop", instanceLabel(`Alice\ Laptop._peerdrop._tcp.local.`))
	assert.Equal(t, "x", instanceLabel("x._PEERDROP._tcp.LOCAL."))
	assert.Empty(t, instanceLabel("_peerdrop._tcp.local."))
	assert.Empty(t, instanceLabel("._peerdrop._tcp.local."))
	assert.Empty(t, instanceLabel("x._http._tcp.local."))
	assert.Empty(t, instanceLabel("a.b._peerdrop._tcp.local."))
	// `x\` + "._peerdrop...": the escaped dot makes it another name.
	assert.Empty(t, instanceLabel(`x\._peerdrop._tcp.local.`))
}

func TestWireTXT(t *testing.T) {
	assert.Equal(t,
		[]string{"name=Zoë", `name=quote"d`, `name=back\slash`, "name=a.b", "plain", `bad\999`},
		wireTXT([]string{`name=Zo\195\171`, `name=quote\"d`, `name=back\\slash`, "name=a.b", "plain", `bad\999`}))
	many := make([]string, maxTXTStrings+1)
	for i := range many {
		many[i] = `\065`
	}
	assert.Equal(t, many, wireTXT(many), "too many strings: left alone")
}

func TestEscapeForZeroconf(t *testing.T) {
	assert.Equal(t, `J\046 Smith\\x`, escapeLabel(`J. Smith\x`))
	assert.Equal(t, "Alice's Laptop", escapeLabel("Alice's Laptop"))
	assert.Equal(t, []string{`name=a\\b`, "v=1"}, escapeTXT([]string{`name=a\b`, "v=1"}))
}
