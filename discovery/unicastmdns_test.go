package discovery

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

func testAnswerer() *answerer {
	return &answerer{info: testInfo(), port: 53318, instance: func() string { return "Alice Laptop" },
		addrs: func(int) []netip.Addr { return addrs("10.0.0.2", "fe80::2") }}
}

// query packs a query for name and type t; qu sets the QU bit.
func query(t *testing.T, id uint16, name string, qt uint16, qu bool) []byte {
	t.Helper()
	var m dns.Msg
	m.SetQuestion(name, qt)
	m.Id = id
	if qu {
		m.Question[0].Qclass |= cacheFlush
	}
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

func unpack(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	require.NotNil(t, b, "an answer")
	var m dns.Msg
	require.NoError(t, m.Unpack(b))
	return &m
}

// A legacy query (not from port 5353) gets the answer RFC 6762 §6.7 asks
// for: its id, its question, TTLs of at most 10 s, no cache-flush bit.
func TestLegacyUnicastAnswer(t *testing.T) {
	a := testAnswerer()
	m := unpack(t, a.reply(packet{data: query(t, 4242, serviceFQDN, dns.TypePTR, false), srcPort: 40000}))
	assert.True(t, m.Response)
	assert.Equal(t, uint16(4242), m.Id)
	require.Len(t, m.Question, 1)
	assert.Equal(t, serviceFQDN, m.Question[0].Name)
	require.Len(t, m.Answer, 1)
	assert.Equal(t, `Alice\ Laptop.`+serviceFQDN, m.Answer[0].(*dns.PTR).Ptr)
	var types []uint16
	for _, rr := range append(m.Answer, m.Extra...) {
		assert.LessOrEqual(t, rr.Header().Ttl, uint32(legacyTTL))
		assert.Zero(t, rr.Header().Class&cacheFlush, "no cache-flush bit in a legacy answer")
		types = append(types, rr.Header().Rrtype)
	}
	assert.ElementsMatch(t, []uint16{dns.TypePTR, dns.TypeSRV, dns.TypeTXT, dns.TypeA, dns.TypeAAAA}, types)

	// The answer decodes as a device, like any announcement.
	resp, err := parseResponse(a.reply(packet{data: query(t, 1, serviceFQDN, dns.TypePTR, false), srcPort: 40000}))
	require.NoError(t, err)
	require.Len(t, resp.sightings, 1)
	assert.Equal(t, testInfo(), resp.sightings[0].info)

	// The host's address, asked by name.
	m = unpack(t, a.reply(packet{data: query(t, 7, "PD-"+testInfo().ID+".local.", dns.TypeA, false), srcPort: 40000}))
	require.Len(t, m.Answer, 1)
	assert.Equal(t, "10.0.0.2", m.Answer[0].(*dns.A).A.String())
}

// A question with the QU bit, from port 5353, gets a unicast answer without
// the question; a plain multicast question is zeroconf's to answer.
func TestQUAnswer(t *testing.T) {
	a := testAnswerer()
	m := unpack(t, a.reply(packet{data: query(t, 0, `Alice\ Laptop.`+serviceFQDN, dns.TypeSRV, true), srcPort: mdnsPort}))
	assert.Empty(t, m.Question, "mDNS responses carry no question")
	require.Len(t, m.Answer, 1)
	assert.Equal(t, uint16(53318), m.Answer[0].(*dns.SRV).Port)
	assert.NotEmpty(t, m.Extra, "the addresses go with it")

	assert.Nil(t, a.reply(packet{data: query(t, 0, serviceFQDN, dns.TypePTR, false), srcPort: mdnsPort}), "a multicast question")
	assert.Nil(t, a.reply(packet{data: query(t, 0, "_other._tcp.local.", dns.TypePTR, true), srcPort: mdnsPort}), "not about us")
	assert.Nil(t, a.reply(packet{data: query(t, 0, `Bob.`+serviceFQDN, dns.TypeSRV, true), srcPort: mdnsPort}), "another instance")
	assert.Nil(t, a.reply(packet{data: []byte("garbage"), srcPort: 40000}))
}

// A real advertiser answers a legacy query sent to the mDNS group from an
// ordinary socket, with a unicast reply to that socket.
func TestLiveLegacyQuery(t *testing.T) {
	if !liveNetns(t) {
		return
	}
	testkit.VerifyNoLeaks(t, testkit.IgnoreZeroconfProbe)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adv := &Advertiser{Info: liveInfo(0x01, "Legacy"), Port: 53318}
	actx, stopAdv := context.WithCancel(ctx)
	advertised := make(chan error, 1)
	go func() { advertised <- adv.Run(actx) }()
	defer func() { stopAdv(); require.NoError(t, <-advertised) }()

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.78.1.1")})
	require.NoError(t, err)
	defer conn.Close()
	var (
		m   *dns.Msg
		raw []byte
	)
	buf := make([]byte, 9000)
	for m == nil && ctx.Err() == nil {
		_, err := conn.WriteTo(query(t, 777, serviceFQDN, dns.TypePTR, false), &net.UDPAddr{IP: net.ParseIP("224.0.0.251"), Port: mdnsPort})
		require.NoError(t, err)
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			continue // the advertiser is still starting
		}
		assert.Equal(t, mdnsPort, from.(*net.UDPAddr).Port, "the answer comes from port 5353")
		raw = buf[:n]
		m = unpack(t, raw)
	}
	require.NotNil(t, m, "no unicast answer")
	assert.Equal(t, uint16(777), m.Id)
	require.Len(t, m.Question, 1)
	resp, err := parseResponse(raw)
	require.NoError(t, err)
	require.NotEmpty(t, resp.sightings)
	assert.Equal(t, adv.Info, resp.sightings[0].info)
}
