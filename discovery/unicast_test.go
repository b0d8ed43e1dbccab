package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeAt answers a probe at addr with info.
func (tb *testBrowser) probeAt(addr string, info Info, now time.Time) {
	tb.mu.Lock()
	evs := tb.applyProbe(probeResult{addr: netip.MustParseAddrPort(addr), info: info}, now)
	tb.mu.Unlock()
	for _, ev := range evs {
		tb.emit(ev)
	}
}

// A device a probe found is listed like one mDNS found, and goes when
// probes stop answering.
func TestProbedDeviceAppearsAndGoes(t *testing.T) {
	b := newTestBrowser(t)
	now := time.Now()
	b.probeAt("10.0.0.2:53318", testInfo(), now)
	d := b.one(Appeared)
	assert.Equal(t, testInfo(), d.Info)
	assert.Equal(t, "10.0.0.2:53318", d.Address())

	b.probeAt("10.0.0.2:53318", testInfo(), now.Add(5*time.Second))
	assert.Empty(t, b.take(), "the same answer changes nothing")
	b.expire(now.Add(14 * time.Second))
	assert.Empty(t, b.take())
	b.expire(now.Add(16 * time.Second))
	assert.Equal(t, testInfo().ID, b.one(Gone).ID)
	assert.Empty(t, b.Devices())
}

// A device found both ways is one device: mDNS's description wins, and
// when mDNS loses it while probes still find it, it stays.
func TestFoundBothWaysIsOneDevice(t *testing.T) {
	b := newTestBrowser(t)
	now := time.Now()
	b.probeAt("10.0.0.2:53318", testInfo(), now)
	b.one(Appeared)

	b.feed(aliceAnnouncement(t), aliceSrc)
	d := b.one(Updated)
	assert.Equal(t, "Alice Laptop", d.Instance, "what mDNS says wins")
	require.Len(t, b.Devices(), 1)
	assert.Equal(t, 1, b.heardCount())
	assert.Empty(t, b.unicastTargets(), "a device mDNS lists is not probed")

	// mDNS goes quiet (multicast filtered from now on); probes still answer.
	later := time.Now().Add(11 * time.Second)
	b.probeAt("10.0.0.2:53318", testInfo(), later)
	b.take()
	b.expire(later.Add(time.Second))
	evs := b.take()
	for _, ev := range evs {
		assert.NotEqual(t, Gone, ev.Kind, "still found by probes")
	}
	require.Len(t, b.Devices(), 1)
	assert.Equal(t, "10.0.0.2:53318", b.Devices()[0].Address())
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:53318")}, b.unicastTargets())
}

func TestProbeOfSelfIgnored(t *testing.T) {
	b := newTestBrowser(t)
	self := testInfo()
	self.ID = selfID
	b.probeAt("10.0.0.9:53318", self, time.Now())
	assert.Empty(t, b.take())
}

func TestKnownDevicesAreTargets(t *testing.T) {
	b := newTestBrowser(t)
	b.Known = func() []Known {
		return []Known{
			{ID: testInfo().ID, Addrs: []netip.AddrPort{
				netip.MustParseAddrPort("10.0.0.2:53318"), netip.MustParseAddrPort("10.0.0.3:53318"),
				netip.MustParseAddrPort("10.0.0.4:53318"), netip.MustParseAddrPort("10.0.0.5:53318"),
				netip.MustParseAddrPort("10.0.0.6:53318")}},
			{ID: selfID, Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.9:53318")}},
		}
	}
	got := b.unicastTargets()
	assert.Len(t, got, maxKnownAddrs, "a few addresses per device, never our own")
	b.feed(aliceAnnouncement(t), aliceSrc)
	assert.Empty(t, b.unicastTargets(), "listed by mDNS: not probed")
}

func TestScanNetOf(t *testing.T) {
	for _, tc := range []struct {
		addr string
		bits int
		want string
	}{
		{"192.168.1.20", 24, "192.168.1.0/24"},
		{"10.1.2.3", 8, "10.1.0.0/22"},
		{"172.16.5.1", 16, "172.16.4.0/22"},
		{"10.0.0.5", 30, "10.0.0.4/30"},
		{"10.0.0.5", 31, ""},
		{"169.254.3.4", 16, ""},
		{"fd00::1", 64, ""},
		{"127.0.0.1", 8, ""},
	} {
		n, ok := scanNetOf(netip.MustParseAddr(tc.addr), tc.bits)
		if tc.want == "" {
			assert.False(t, ok, tc.addr)
			continue
		}
		require.True(t, ok, tc.addr)
		assert.Equal(t, tc.want, n.prefix.String(), tc.addr)
	}
}

func TestHostsOfAScan(t *testing.T) {
	n, _ := scanNetOf(netip.MustParseAddr("10.0.0.1"), 22)
	var all []netip.Addr
	for a := range hosts(n) {
		all = append(all, a)
	}
	assert.Len(t, all, 1021, "a /22 less network, broadcast and our own address")
	assert.Equal(t, "10.0.0.2", all[0].String())
	assert.Equal(t, "10.0.3.254", all[len(all)-1].String())
}

// The scan probes every address of the subnets, at most scanInFlight at
// once, and hands what answered to the browser.
func TestScanFindsAndBoundsProbes(t *testing.T) {
	var mu sync.Mutex
	open, most, probed := 0, 0, 0
	bob := netip.MustParseAddrPort("10.5.0.77:53318")
	b := &Browser{Self: selfID, scanNets: func() []scanNet {
		n, _ := scanNetOf(netip.MustParseAddr("10.5.0.1"), 24)
		return []scanNet{n}
	}}
	b.Probe = func(ctx context.Context, addr string) (Info, error) {
		mu.Lock()
		open++
		probed++
		most = max(most, open)
		mu.Unlock()
		defer func() { mu.Lock(); open--; mu.Unlock() }()
		if addr == bob.String() {
			return testInfo(), nil
		}
		<-ctx.Done() // nobody there: the probe runs to its timeout
		return Info{}, errors.New("no answer")
	}
	found := make(chan probeResult, 4)
	u := &unicast{b: b, found: found, inFlight: map[netip.AddrPort]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u.scan(ctx)
	require.Len(t, found, 1)
	r := <-found
	assert.Equal(t, bob, r.addr)
	assert.Equal(t, testInfo().ID, r.info.ID)
	assert.Equal(t, 253, probed, "every address of the /24 but ours")
	assert.LessOrEqual(t, most, scanInFlight)
}

func TestScanIface(t *testing.T) {
	up := net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	for _, tc := range []struct {
		name  string
		flags net.Flags
		want  bool
	}{
		{"eth0", up, true},
		{"wlp3s0", up, true},
		{"enp0s31f6", up, true},
		{"eth1", net.FlagBroadcast, false},
		{"lo", up | net.FlagLoopback, false},
		{"ppp0", net.FlagUp | net.FlagPointToPoint, false},
		{"tun0", up, false},
		{"wg0", up, false},
		{"tailscale0", up, false},
		{"docker0", up, false},
		{"veth1234", up, false},
		{"virbr0", up, false},
		{"br-5f2c", up, false},
	} {
		assert.Equal(t, tc.want, scanIface(net.Interface{Name: tc.name, Flags: tc.flags}), tc.name)
	}
}
