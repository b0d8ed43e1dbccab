package discovery

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/netnstest"
	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// liveNetns re-runs the calling test in a namespace of its own where real
// mDNS flows between two interfaces (netnstest.InVethPair); true in the
// inner run, which does the work.
func liveNetns(t *testing.T) bool {
	t.Helper()
	return netnstest.InVethPair(t, "pddisc", 78)
}

// liveInfo is a valid Info whose fingerprint is 32 bytes b.
func liveInfo(b byte, name string) Info {
	fp := fingerprint(b)
	return Info{Device: device.Device{ID: identity.DeviceIDFor(fp), Name: name, Type: TypeLaptop, Fingerprint: fp}, Version: int(signaling.Version)}
}

// An advertised device appears in a Browser with everything it said, and a
// standard DNS-SD client (zeroconf's own Resolver, another implementation)
// sees a well-formed _peerdrop._tcp service; when the advertiser stops, its
// goodbye makes the device go at once.
func TestLiveAdvertiseAndBrowse(t *testing.T) {
	if !liveNetns(t) {
		return
	}
	testkit.VerifyNoLeaks(t, testkit.IgnoreZeroconfProbe)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	events := make(chan Event, 16)
	b := &Browser{Self: identity.DeviceIDFor(fingerprint(0x5E)), OnEvent: func(ev Event) { events <- ev }}
	bctx, stopBrowse := context.WithCancel(ctx)
	browsed := make(chan error, 1)
	go func() { browsed <- b.Run(bctx) }()
	defer func() { stopBrowse(); require.NoError(t, <-browsed) }()

	// A name with the characters DNS makes special: dots, a backslash,
	// spaces, non-ASCII.
	const name = `Zoë's Laptop v1.2 \ "home"`
	adv := &Advertiser{Info: liveInfo(0x01, name), Port: 53318}
	actx, stopAdv := context.WithCancel(ctx)
	advertised := make(chan error, 1)
	go func() { advertised <- adv.Run(actx) }()
	// We advertise too, under Self: we must never see ourselves.
	self := &Advertiser{Info: liveInfo(0x5E, "Me"), Port: 53319}
	sctx, stopSelf := context.WithCancel(ctx)
	selfDone := make(chan error, 1)
	go func() { selfDone <- self.Run(sctx) }()
	defer func() { stopSelf(); require.NoError(t, <-selfDone) }()

	// waitFor skips other events (Updated, as addresses on the second
	// interface arrive) until kind comes for id.
	waitFor := func(kind EventKind, id string, within time.Duration) Event {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev := <-events:
				require.NotEqual(t, self.Info.ID, ev.Device.ID, "never ourselves")
				if ev.Kind == kind && ev.Device.ID == id {
					return ev
				}
			case <-deadline:
				require.FailNowf(t, "no event", "no %s for %s within %s", kind, id, within)
			}
		}
	}
	ev := waitFor(Appeared, adv.Info.ID, 5*time.Second)
	assert.Equal(t, adv.Info, ev.Device.Info, "name, id, type, version and fingerprint arrive intact")
	assert.Equal(t, 53318, ev.Device.Port)
	assert.Equal(t, "pd-"+adv.Info.ID+".local.", ev.Device.Host)
	assert.NotEmpty(t, ev.Device.Addrs)
	// Each interface's address comes with the record heard on it (an
	// address off the network a record was heard on is dropped), so the
	// second may come in an update.
	both := func(d Device) bool {
		return slices.Contains(d.Addresses(), "10.78.0.1:53318") && slices.Contains(d.Addresses(), "10.78.1.1:53318")
	}
	for !both(ev.Device) {
		ev = waitFor(Updated, adv.Info.ID, 5*time.Second)
	}
	assert.Contains(t, ev.Device.Addresses(), "10.78.0.1:53318")
	assert.Contains(t, ev.Device.Addresses(), "10.78.1.1:53318", "addresses of every interface")

	// A standard DNS-SD client sees the service and its TXT record.
	r, err := zeroconf.NewResolver(zeroconf.SelectIPTraffic(zeroconf.IPv4))
	require.NoError(t, err)
	entries := make(chan *zeroconf.ServiceEntry, 4)
	zctx, stopZ := context.WithTimeout(ctx, 5*time.Second)
	require.NoError(t, r.Browse(zctx, Service, "local.", entries))
	var found *zeroconf.ServiceEntry
	for e := range entries {
		if e.Port == 53318 {
			found = e
			stopZ()
		}
	}
	stopZ()
	require.NotNil(t, found, "zeroconf's Resolver saw no _peerdrop._tcp service on port 53318")
	label, ok := unescapeLabel(found.Instance) // it leaves escapes in (see Browser)
	require.True(t, ok, "instance %q", found.Instance)
	assert.Equal(t, name, label, "the instance name is the display name")
	assert.Equal(t, "pd-"+adv.Info.ID+".local.", found.HostName)
	assert.NotEmpty(t, found.AddrIPv4)
	info, err := DecodeTXT(wireTXT(found.Text), label)
	require.NoError(t, err, "TXT %q", found.Text)
	assert.Equal(t, adv.Info, info)

	// Goodbye: gone within the 1 s grace, not after an expiry.
	stopAdv()
	require.NoError(t, <-advertised)
	start := time.Now()
	waitFor(Gone, adv.Info.ID, 5*time.Second)
	t.Logf("gone %v after the advertiser stopped", time.Since(start))
	assert.Empty(t, b.Devices(), "and never ourselves")
}

// Two devices with one name: DNS-SD instance names must be unique, so the
// one with the larger id moves to "Laptop (2)"; both keep "Laptop" as their
// display name.
func TestLiveDuplicateNamesGetDistinctInstances(t *testing.T) {
	if !liveNetns(t) {
		return
	}
	testkit.VerifyNoLeaks(t, testkit.IgnoreZeroconfProbe)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := &Browser{Self: identity.DeviceIDFor(fingerprint(0x5E))}
	var runs []chan error
	run := func(f func(context.Context) error) {
		done := make(chan error, 1)
		runs = append(runs, done)
		go func() { done <- f(ctx) }()
	}
	run(b.Run)
	first := &Advertiser{Info: liveInfo(0xAA, "Laptop"), Port: 53318}
	second := &Advertiser{Info: liveInfo(0xBB, "Laptop"), Port: 53319}
	run(first.Run)
	run(second.Run)
	defer func() {
		cancel()
		for _, done := range runs {
			require.NoError(t, <-done)
		}
	}()

	require.Eventually(t, func() bool {
		instances := map[string]string{}
		for _, d := range b.Devices() {
			instances[d.ID] = d.Instance
			assert.Equal(t, "Laptop", d.Name, "the display name stays")
		}
		return instances[first.Info.ID] == "Laptop" && instances[second.Info.ID] == "Laptop (2)"
	}, 15*time.Second, 100*time.Millisecond, "devices: %+v", b.Devices())
}
