package discovery

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
)

// selfID is identity.DeviceIDFor(fingerprint(0x5E)).
const selfID = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"

var aliceSrc = netip.MustParseAddr("10.0.0.2")

// testBrowser is a Browser fed packets by hand, without sockets.
type testBrowser struct {
	*Browser
	t      *testing.T
	events []Event
}

func newTestBrowser(t *testing.T) *testBrowser {
	tb := &testBrowser{t: t}
	tb.Browser = &Browser{Self: selfID, Expiry: 10 * time.Second, prefixes: testPrefixes}
	// As Run does.
	tb.devices = map[string]*entry{}
	tb.hosts = map[string]map[netip.Addr]cachedAddr{}
	tb.OnEvent = func(ev Event) { tb.events = append(tb.events, ev) }
	return tb
}

// testPrefixes are the networks of the test's interfaces: eth0 has
// 10.0.0.0/24 and 2001:db8::/64, eth1 192.168.1.0/24.
func testPrefixes(ifName string) []netip.Prefix {
	switch ifName {
	case "eth0":
		return []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8::/64")}
	case "eth1":
		return []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	}
	return nil
}

// feed hands data to the browser as received from src on eth0.
func (tb *testBrowser) feed(data []byte, src netip.Addr) {
	tb.handle(packet{data: data, src: src}, "eth0")
}

// take returns the events since the last call.
func (tb *testBrowser) take() []Event {
	evs := tb.events
	tb.events = nil
	return evs
}

// one returns the single event since the last take, of the given kind.
func (tb *testBrowser) one(kind EventKind) Device {
	tb.t.Helper()
	evs := tb.take()
	require.Len(tb.t, evs, 1, "events: %+v", evs)
	require.Equal(tb.t, kind, evs[0].Kind, "event: %+v", evs[0])
	return evs[0].Device
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(s))
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// aliceAnnouncement: Alice's full announcement, long TTLs, an IPv4 and a
// link-local IPv6 address.
func aliceAnnouncement(t *testing.T) []byte {
	return announcement(t, aliceInst, testInfo(), testHost, 120, "10.0.0.2", "fe80::2")
}

// goodbye is what zeroconf sends on shutdown: everything with TTL 0.
func goodbye(t *testing.T, label string, info Info, host string, addrs ...string) []byte {
	return announcement(t, label, info, host, 0, addrs...)
}

func TestBrowserAppeared(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)

	d := b.one(Appeared)
	assert.Equal(t, Device{
		Info:     testInfo(),
		Instance: "Alice Laptop",
		Host:     testHost,
		Port:     testPort,
		Addrs:    addrs("10.0.0.2", "fe80::2%eth0"),
	}, d, "the link-local address carries the zone of the interface it came on")
	assert.Equal(t, "10.0.0.2:53318", d.Address())
	assert.Equal(t, []string{"10.0.0.2:53318", "[fe80::2%eth0]:53318"}, d.Addresses())
	assert.Equal(t, []Device{d}, b.Devices())

	// The same announcement again changes nothing.
	b.feed(aliceAnnouncement(t), aliceSrc)
	assert.Empty(t, b.take())
	assert.Equal(t, []Device{d}, b.Devices())
}

func TestBrowserUpdatedName(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)

	// A TXT record alone (as zeroconf's SetText sends) with a new name.
	info := testInfo()
	info.Name = "Alice's Desk"
	b.feed(pack(t, []dns.RR{txtRR(aliceInst, EncodeTXT(info), 120)}), aliceSrc)
	d := b.one(Updated)
	assert.Equal(t, "Alice's Desk", d.Name)
	assert.Equal(t, testHost, d.Host, "host and port kept without an SRV")
	assert.Equal(t, testPort, d.Port)
	assert.Equal(t, addrs("10.0.0.2", "fe80::2%eth0"), d.Addrs)
	require.Len(t, b.Devices(), 1)
	assert.Equal(t, "Alice's Desk", b.Devices()[0].Name)
}

func TestBrowserUpdatedPort(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)

	b.feed(pack(t, []dns.RR{
		srvRR(aliceInst, testHost, testPort+1, 120),
		txtRR(aliceInst, EncodeTXT(testInfo()), 120),
	}), aliceSrc)
	d := b.one(Updated)
	assert.Equal(t, testPort+1, d.Port)
	assert.Equal(t, fingerprint(0xAB), d.Fingerprint)
}

// A TXT record whose id is not the one its fingerprint derives is not
// listed: not as a new device, and not as another certificate for a
// device already listed (someone claiming its id).
func TestBrowserIgnoresMismatchedID(t *testing.T) {
	b := newTestBrowser(t)
	mallory := testInfo()
	mallory.Fingerprint = fingerprint(0xEE)
	mallory.ID = identity.DeviceIDFor(fingerprint(0x77))
	b.feed(announcement(t, `Mallory`, mallory, "pd-mallory.local.", 120, "10.0.0.66"), netip.MustParseAddr("10.0.0.66"))
	assert.Empty(t, b.take())
	assert.Empty(t, b.Devices())

	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)
	forged := testInfo() // alice's id, another certificate
	forged.Fingerprint = fingerprint(0xCD)
	b.feed(pack(t, []dns.RR{txtRR(aliceInst, EncodeTXT(forged), 120)}), aliceSrc)
	b.feed(announcement(t, `Alice\ Again`, forged, "pd-mallory.local.", 120, "10.0.0.66"), netip.MustParseAddr("10.0.0.66"))
	assert.Empty(t, b.take(), "no update, no second device")
	require.Len(t, b.Devices(), 1)
	assert.Equal(t, fingerprint(0xAB), b.Devices()[0].Fingerprint)
}

func TestBrowserNeverListsSelf(t *testing.T) {
	b := newTestBrowser(t)
	self := testInfo()
	self.ID, self.Fingerprint = selfID, fingerprint(0x5E)
	b.feed(announcement(t, `Me`, self, "pd-5e1f5e1f5e1f5e1f.local.", 120, "10.0.0.9"), aliceSrc)
	assert.Empty(t, b.take())
	assert.Empty(t, b.Devices())
	assert.NotContains(t, b.devices, selfID)

	b.feed(goodbye(t, `Me`, self, "pd-5e1f5e1f5e1f5e1f.local.", "10.0.0.9"), aliceSrc)
	b.expire(time.Now().Add(time.Hour))
	assert.Empty(t, b.take())
}

func TestBrowserGoodbye(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	shown := b.one(Appeared)

	b.feed(goodbye(t, aliceInst, testInfo(), testHost, "10.0.0.2", "fe80::2"), aliceSrc)
	assert.Empty(t, b.take(), "RFC 6762 §10.1: a goodbye takes effect a second later")
	assert.Len(t, b.Devices(), 1)

	b.expire(time.Now().Add(500 * time.Millisecond))
	assert.Empty(t, b.take(), "still within the second")

	b.expire(time.Now().Add(1500 * time.Millisecond))
	assert.Equal(t, shown, b.one(Gone), "Gone carries the device as last reported")
	assert.Empty(t, b.Devices())

	// Once gone, it can appear again.
	b.feed(aliceAnnouncement(t), aliceSrc)
	assert.Equal(t, shown, b.one(Appeared))
}

func TestBrowserGoodbyeThenReannounce(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)

	// It re-registers at once (an interface changed): no flicker.
	b.feed(goodbye(t, aliceInst, testInfo(), testHost, "10.0.0.2", "fe80::2"), aliceSrc)
	b.feed(aliceAnnouncement(t), aliceSrc)
	assert.Empty(t, b.take(), "same device, same addresses: nothing to report")

	b.expire(time.Now().Add(1500 * time.Millisecond))
	assert.Empty(t, b.take(), "the fresh announcement cancelled the goodbye")
	assert.Len(t, b.Devices(), 1)
}

func TestBrowserGoodbyePTROnly(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)

	// A PTR goodbye from another host does not touch Alice.
	b.feed(pack(t, []dns.RR{ptrRR(aliceInst, 0)}), netip.MustParseAddr("10.0.0.66"))
	b.expire(time.Now().Add(1500 * time.Millisecond))
	assert.Empty(t, b.take())

	// From Alice's address it is her goodbye.
	b.feed(pack(t, []dns.RR{ptrRR(aliceInst, 0)}), aliceSrc)
	b.expire(time.Now().Add(1500 * time.Millisecond))
	assert.Equal(t, testID, b.one(Gone).ID)
}

func TestBrowserExpiry(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)

	b.expire(time.Now().Add(b.Expiry - time.Second))
	assert.Empty(t, b.take(), "not silent for long enough yet")
	assert.Len(t, b.Devices(), 1)

	b.expire(time.Now().Add(b.Expiry + time.Second))
	assert.Equal(t, testID, b.one(Gone).ID)
	assert.Empty(t, b.Devices())
	assert.Empty(t, b.devices, "forgotten")
}

func TestBrowserDefaultExpiry(t *testing.T) {
	b := newTestBrowser(t)
	b.Expiry = 0
	b.feed(announcement(t, aliceInst, testInfo(), testHost, 4500, "10.0.0.2"), aliceSrc)
	b.one(Appeared)
	b.expire(time.Now().Add(DefaultExpiry - time.Second))
	assert.Empty(t, b.take())
	b.expire(time.Now().Add(DefaultExpiry + time.Second))
	b.one(Gone)
}

func TestBrowserTTLExpiry(t *testing.T) {
	b := newTestBrowser(t)
	b.Expiry = time.Hour
	b.feed(announcement(t, aliceInst, testInfo(), testHost, 3, "10.0.0.2"), aliceSrc)
	b.one(Appeared)
	b.expire(time.Now().Add(2 * time.Second))
	assert.Empty(t, b.take())
	b.expire(time.Now().Add(4 * time.Second))
	b.one(Gone)
	assert.Empty(t, b.hosts, "expired addresses are dropped")
}

func TestBrowserSameNameTwoDevices(t *testing.T) {
	b := newTestBrowser(t)
	bob := testInfo()
	bob.Fingerprint = fingerprint(0xBB)
	bob.ID = identity.DeviceIDFor(bob.Fingerprint)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.feed(announcement(t, aliceInst, bob, "pd-fedcba9876543210.local.", 120, "10.0.0.3"), netip.MustParseAddr("10.0.0.3"))

	evs := b.take()
	require.Len(t, evs, 2)
	assert.Equal(t, Appeared, evs[0].Kind)
	assert.Equal(t, Appeared, evs[1].Kind)

	list := b.Devices()
	require.Len(t, list, 2, "same instance name, different ids: two devices")
	assert.Equal(t, []string{testID, bob.ID}, ids(list), "same name: sorted by id")
	assert.Equal(t, addrs("10.0.0.2", "fe80::2%eth0"), list[0].Addrs)
	assert.Equal(t, addrs("10.0.0.3"), list[1].Addrs)

	_, err := Resolve(list, "Alice's Laptop")
	var amb *AmbiguousError
	assert.ErrorAs(t, err, &amb)
}

func TestBrowserNoAddressesUntilARecord(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(announcement(t, aliceInst, testInfo(), testHost, 120), aliceSrc)
	assert.Empty(t, b.take(), "not reachable yet: not reported")
	assert.Empty(t, b.Devices())

	// An address for some other host changes nothing.
	b.feed(pack(t, nil, addrRR("other.local.", "10.0.0.7", 120, true)), aliceSrc)
	assert.Empty(t, b.take())

	b.feed(pack(t, nil, addrRR("PD-ABABABABABABABABABABABABABABABAB.local.", "10.0.0.2", 120, true)), aliceSrc)
	d := b.one(Appeared)
	assert.Equal(t, addrs("10.0.0.2"), d.Addrs)
	assert.Equal(t, testPort, d.Port)
	assert.Equal(t, []Device{d}, b.Devices())
}

func TestBrowserLinkLocalNeedsZone(t *testing.T) {
	b := newTestBrowser(t)
	// Received on an interface whose name is unknown: a link-local address
	// is useless and left out.
	b.handle(packet{data: announcement(t, aliceInst, testInfo(), testHost, 120, "fe80::2", "2001:db8::2"), src: aliceSrc}, "")
	assert.Equal(t, addrs("2001:db8::2"), b.one(Appeared).Addrs)
}

func TestBrowserCacheFlushReplacesAddrs(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(aliceAnnouncement(t), aliceSrc)
	b.one(Appeared)

	// Without the cache-flush bit an address adds to the set.
	b.feed(pack(t, nil, addrRR(testHost, "10.0.0.4", 120, false)), aliceSrc)
	assert.Equal(t, addrs("10.0.0.2", "10.0.0.4", "fe80::2%eth0"), b.one(Updated).Addrs)

	// With it, the packet's set replaces what was announced more than a
	// second before (RFC 6762 §10.2).
	later := time.Now().Add(2 * time.Second)
	b.handleAt(packet{data: pack(t, nil, addrRR(testHost, "10.0.0.3", 120, true)), src: aliceSrc}, "eth0", later)
	d := b.one(Updated)
	assert.Equal(t, addrs("10.0.0.3"), d.Addrs)
	assert.Equal(t, "10.0.0.3:53318", d.Address())
	assert.Equal(t, []Device{d}, b.Devices())

	// Within that second, a flush adds (the same set sent on another
	// interface, or A and AAAA records in two packets).
	b.handleAt(packet{data: pack(t, nil, addrRR(testHost, "10.0.0.5", 120, true)), src: aliceSrc}, "eth0", later.Add(500*time.Millisecond))
	assert.Equal(t, addrs("10.0.0.3", "10.0.0.5"), b.one(Updated).Addrs)
}

func TestBrowserDevicesSortedByName(t *testing.T) {
	b := newTestBrowser(t)
	for i, name := range []string{"charlie", "Bravo", "alpha", "Delta"} {
		info := testInfo()
		info.Fingerprint = fingerprint(byte(0x10 + i))
		info.ID = identity.DeviceIDFor(info.Fingerprint)
		info.Name = name
		host := "pd-" + info.ID + ".local."
		src := netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)})
		b.feed(announcement(t, name, info, host, 120, src.String()), src)
	}
	assert.Len(t, b.take(), 4)
	var names []string
	for _, d := range b.Devices() {
		names = append(names, d.Name)
	}
	assert.Equal(t, []string{"alpha", "Bravo", "charlie", "Delta"}, names, "sorted by name, ignoring case")
}

func TestBrowserIgnoresJunk(t *testing.T) {
	b := newTestBrowser(t)
	b.feed([]byte{1, 2, 3}, aliceSrc)
	var q dns.Msg
	q.SetQuestion(serviceFQDN, dns.TypePTR)
	data, err := q.Pack()
	require.NoError(t, err)
	b.feed(data, aliceSrc)

	bad := EncodeTXT(testInfo())
	bad[0] = "v=9"
	b.feed(pack(t, []dns.RR{ptrRR(aliceInst, 120), srvRR(aliceInst, testHost, testPort, 120), txtRR(aliceInst, bad, 120)},
		addrRR(testHost, "10.0.0.2", 120, true)), aliceSrc)
	assert.Empty(t, b.take())
	assert.Empty(t, b.Devices())
	assert.Empty(t, b.devices, "nothing is kept for a TXT that does not decode")
}

func TestBrowserRunTwice(t *testing.T) {
	b := &Browser{}
	b.running = true
	err := b.Run(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already running")
}

// Issue 11, item 2: a record heard on one network that names addresses of
// another (a host only we reach on a second interface, our own loopback)
// must not make them dialable: only the addresses on the network of the
// interface it was heard on are kept.
func TestBrowserKeepsOnlyAddressesOnTheInterfacesNetwork(t *testing.T) {
	b := newTestBrowser(t)
	b.feed(announcement(t, aliceInst, testInfo(), testHost, 120,
		"192.168.1.5", "127.0.0.1", "10.0.2.1", "fd00::1", "10.0.0.2", "2001:db8::2", "fe80::2"), aliceSrc)
	d := b.one(Appeared)
	assert.Equal(t, addrs("10.0.0.2", "2001:db8::2", "fe80::2%eth0"), d.Addrs, "heard on eth0: eth0's networks only")

	// Heard on eth1 (192.168.1.0/24) the same record gives that network's.
	b2 := newTestBrowser(t)
	b2.handle(packet{data: announcement(t, aliceInst, testInfo(), testHost, 120, "192.168.1.5", "10.0.0.2"), src: netip.MustParseAddr("192.168.1.5")}, "eth1")
	assert.Equal(t, addrs("192.168.1.5"), b2.one(Appeared).Addrs)

	// A record that names no address on the network it was heard on is
	// not listed at all (nothing to dial).
	b3 := newTestBrowser(t)
	b3.feed(announcement(t, aliceInst, testInfo(), testHost, 120, "192.168.1.5", "127.0.0.1"), aliceSrc)
	assert.Empty(t, b3.take())
	assert.Empty(t, b3.Devices())
}
