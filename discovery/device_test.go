package discovery

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

func dev(id, name string, addrs ...string) Device {
	d := Device{Info: Info{Device: device.Device{ID: id, Name: name, Type: TypeLaptop, Fingerprint: fingerprint(0x01)}, Version: int(signaling.Version)}, Port: testPort}
	for _, a := range addrs {
		d.Addrs = append(d.Addrs, netip.MustParseAddr(a))
	}
	return d
}

func TestResolveExactIDWinsOverName(t *testing.T) {
	desk := dev("abcd1234", "Desk")
	impostor := dev("ffff0000", "abcd1234") // named like desk's id
	for _, devices := range [][]Device{{desk, impostor}, {impostor, desk}} {
		got, err := Resolve(devices, "abcd1234")
		require.NoError(t, err)
		assert.Equal(t, desk, got)
	}
}

func TestResolveName(t *testing.T) {
	desk := dev("abcd1234", "Desk")
	phone := dev("ffff0000", "Phone")
	lower := dev("eeee0000", "desk")
	devices := []Device{phone, desk, lower}

	got, err := Resolve(devices, "Desk")
	require.NoError(t, err)
	assert.Equal(t, desk, got, "an exact name beats a case-insensitive one")

	got, err = Resolve(devices, "desk")
	require.NoError(t, err)
	assert.Equal(t, lower, got)

	got, err = Resolve(devices, "  Phone\t")
	require.NoError(t, err)
	assert.Equal(t, phone, got, "surrounding space is trimmed")

	got, err = Resolve(devices, "PHONE")
	require.NoError(t, err)
	assert.Equal(t, phone, got, "case-insensitive name")

	// Two names equal but for case, asked in a third spelling: ambiguous.
	_, err = Resolve(devices, "DESK")
	var amb *AmbiguousError
	require.ErrorAs(t, err, &amb)
	assert.Len(t, amb.Candidates, 2)
}

func TestResolveIDPrefix(t *testing.T) {
	desk := dev("abcd1234", "Desk")
	phone := dev("ffff0000", "Phone")
	devices := []Device{desk, phone}

	got, err := Resolve(devices, "abcd")
	require.NoError(t, err)
	assert.Equal(t, desk, got, "4-char prefix")

	got, err = Resolve(devices, "ffff0")
	require.NoError(t, err)
	assert.Equal(t, phone, got)

	_, err = Resolve(devices, "abc")
	assert.ErrorIs(t, err, ErrNotFound, "3 chars are too few for a prefix")

	_, err = Resolve(devices, "abcd9")
	assert.ErrorIs(t, err, ErrNotFound)

	// A prefix two ids share is ambiguous.
	_, err = Resolve(append(devices, dev("abcd9999", "Other")), "abcd")
	var amb *AmbiguousError
	require.ErrorAs(t, err, &amb)
	assert.Equal(t, []string{"abcd1234", "abcd9999"}, ids(amb.Candidates))
}

func ids(devices []Device) []string {
	out := make([]string, 0, len(devices))
	for _, d := range devices {
		out = append(out, d.ID)
	}
	return out
}

func TestResolveAmbiguousName(t *testing.T) {
	b := dev("bbbb2222", "Laptop", "10.0.0.3")
	a := dev("aaaa1111", "Laptop")
	other := dev("cccc3333", "Phone")
	_, err := Resolve([]Device{b, other, a}, "Laptop")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNotFound)

	var amb *AmbiguousError
	require.ErrorAs(t, err, &amb)
	assert.Equal(t, "Laptop", amb.Query)
	assert.Equal(t, []Device{a, b}, amb.Candidates, "sorted by id")

	msg := err.Error()
	assert.Contains(t, msg, `2 nearby devices are called "Laptop"`)
	assert.Contains(t, msg, "id aaaa1111")
	assert.Contains(t, msg, "id bbbb2222")
	assert.Contains(t, msg, "10.0.0.3:53318")
	assert.Contains(t, msg, "no address")
	assert.NotContains(t, msg, "cccc3333")
	assert.Less(t, strings.Index(msg, "aaaa1111"), strings.Index(msg, "bbbb2222"))
}

func TestResolveNotFound(t *testing.T) {
	devices := []Device{dev("ffff0000", "Phone"), dev("abcd1234", "Desk")}
	_, err := Resolve(devices, "Tablet")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotFound)

	var nf *NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "Tablet", nf.Query)
	assert.Equal(t, []string{"abcd1234", "ffff0000"}, ids(nf.Seen), "seen sorted by name")
	assert.Equal(t, `no device called "Tablet" nearby; seen: Desk (id abcd1234), Phone (id ffff0000)`, err.Error())

	// Seen is a copy: sorting it leaves the caller's slice alone.
	assert.Equal(t, "ffff0000", devices[0].ID)
}

func TestResolveNoDevices(t *testing.T) {
	for _, devices := range [][]Device{nil, {}} {
		_, err := Resolve(devices, "Desk")
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrNotFound)
		var nf *NotFoundError
		require.ErrorAs(t, err, &nf)
		assert.Empty(t, nf.Seen)
		assert.Equal(t, `no device called "Desk" nearby: no peerdrop device answered on this network`, err.Error())
	}
	assert.False(t, errors.Is(errors.New("other"), ErrNotFound))
}

func TestDeviceAddresses(t *testing.T) {
	d := Device{Port: testPort, Addrs: []netip.Addr{
		netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("2001:db8::2"),
		netip.MustParseAddr("fe80::1%eth0"),
	}}
	assert.Equal(t, []string{"10.0.0.2:53318", "[2001:db8::2]:53318", "[fe80::1%eth0]:53318"}, d.Addresses())
	assert.Equal(t, "10.0.0.2:53318", d.Address())

	ll := Device{Port: testPort, Addrs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}
	assert.Equal(t, "[fe80::1%eth0]:53318", ll.Address())

	none := Device{Port: testPort}
	assert.Empty(t, none.Addresses())
	assert.Equal(t, "", none.Address())
}

func TestSortAddrs(t *testing.T) {
	in := []netip.Addr{
		netip.MustParseAddr("fe80::2%eth0"),
		netip.MustParseAddr("fd00::1"),
		netip.MustParseAddr("10.0.0.9"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("192.168.1.5"),
		netip.MustParseAddr("10.0.0.2"),
	}
	sortAddrs(in)
	var got []string
	for _, a := range in {
		got = append(got, a.String())
	}
	assert.Equal(t, []string{
		"10.0.0.2", "10.0.0.9", "192.168.1.5", // IPv4
		"2001:db8::1", "fd00::1", // global and unique-local IPv6
		"fe80::1%eth0", "fe80::2%eth0", // link-local
	}, got)
}

func TestDeviceEqual(t *testing.T) {
	a := dev("abcd1234", "Desk", "10.0.0.2")
	b := dev("abcd1234", "Desk", "10.0.0.2")
	assert.True(t, a.equal(b))
	b.Addrs = append(b.Addrs, netip.MustParseAddr("10.0.0.3"))
	assert.False(t, a.equal(b))
	c := dev("abcd1234", "Desk", "10.0.0.2")
	c.Port++
	assert.False(t, a.equal(c))
	c = dev("abcd1234", "Desk 2", "10.0.0.2")
	assert.False(t, a.equal(c))
}

func TestEventKindString(t *testing.T) {
	assert.Equal(t, "appeared", Appeared.String())
	assert.Equal(t, "updated", Updated.String())
	assert.Equal(t, "gone", Gone.String())
	assert.Equal(t, "unknown", EventKind(0).String())
}
