package engine

// Finding devices where multicast does not pass: the browser both faces
// run, with the unicast fallbacks wired to the handshake's probe and to the
// addresses where pinned devices were last reached.

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// maxKnown bounds the pinned devices probed at their last addresses: the
// most recently seen ones.
const maxKnown = 32

// newBrowser is the nearby-device browser: mDNS, plus probes of pinned
// devices at their last addresses and a scan of the local subnets when
// mDNS finds nobody (discovery.Browser.Probe).
func newBrowser(self string, pins *trust.Store, onEvent func(discovery.Event)) *discovery.Browser {
	return &discovery.Browser{Self: self, OnEvent: onEvent, Probe: probeDevice, Known: knownDevices(pins)}
}

// probeDevice asks who listens at addr (peer.Probe).
func probeDevice(ctx context.Context, addr string) (discovery.Info, error) {
	h, err := peer.Probe(ctx, addr)
	if err != nil {
		return discovery.Info{}, err
	}
	info := discovery.Info{Device: h.Device, Version: h.Version}
	if !discovery.ValidType(info.Type) {
		info.Type = discovery.TypeDesktop // a hello's type is optional
	}
	return info, nil
}

// knownDevices lists the pinned devices with the addresses where they were
// last reached, the most recently seen first.
func knownDevices(pins *trust.Store) func() []discovery.Known {
	return func() []discovery.Known {
		list := pins.List()
		slices.SortFunc(list, func(a, b trust.Device) int { return b.LastSeen.Compare(a.LastSeen) })
		var out []discovery.Known
		for _, d := range list {
			k := discovery.Known{ID: d.ID}
			for _, a := range d.Addrs {
				if ap, err := netip.ParseAddrPort(a); err == nil {
					k.Addrs = append(k.Addrs, ap)
				}
			}
			if len(k.Addrs) > 0 && len(out) < maxKnown {
				out = append(out, k)
			}
		}
		return out
	}
}

// rememberAddr records, for a connection we opened on the LAN, the address
// it reached: DTLS has proven the device, which trust pinned.
func rememberAddr(pins *trust.Store, c *peer.Conn, addr string) {
	if strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "[::1]") {
		return // this machine: nothing to look for elsewhere
	}
	if err := pins.SeenAt(c.Remote.ID, c.Remote.Fingerprint, addr); err != nil {
		slog.Debug("engine: remember where a device was", slog.String("addr", addr), slog.Any("err", err))
	}
}
