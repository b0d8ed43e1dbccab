package engine

// LocalSend in a Headless run (`receive --localsend`, `devices
// --localsend`, `send --localsend`): the same localsend.Node the desktop
// app runs, started for the run.

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/localsend"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// LocalSendOptions say whether and how a Headless run speaks LocalSend.
type LocalSendOptions struct {
	On   bool
	HTTP bool   // unencrypted LocalSend devices allowed
	Port int    // the server's port: 0 = 53317 to receive, any free one otherwise
	PIN  string // receive: asked of every sender; send: given to a receiver that asks
}

// SetLocalSend says how the next runs speak LocalSend.
func (h *Headless) SetLocalSend(o LocalSendOptions) { h.ls = o }

// startLocalSend starts a node for a run; receiving, it takes the
// protocol's port unless told otherwise. Hidden: it serves, but announces
// and scans nothing (receive --hidden).
func (h *Headless) startLocalSend(receiving, hidden bool, serve func(context.Context, transfer.Peer, transfer.Link), onDevices func([]localsend.Device)) (*localsend.Node, error) {
	port := h.ls.Port
	if port == 0 && !receiving {
		port = -1
	}
	pin := ""
	if receiving {
		pin = h.ls.PIN
	}
	if serve == nil {
		serve = func(context.Context, transfer.Peer, transfer.Link) {} // the link closes: the sender is told no
	}
	n, err := localsend.Start(localsend.Config{
		Alias: h.cfg.Name, Type: h.typ, Model: runtime.GOOS,
		Cert:        tls.Certificate{Certificate: [][]byte{h.cfg.Identity.CertificateDER()}, PrivateKey: h.cfg.Identity.Signer()},
		Port:        port,
		AllowHTTP:   h.ls.HTTP,
		PIN:         pin,
		Pins:        h.lsPins,
		NoDiscovery: hidden,
		Serve:       serve,
		OnDevices:   onDevices,
	})
	if err != nil {
		return nil, fmt.Errorf("LocalSend: %w", err)
	}
	return n, nil
}

// ForgetLocalSend forgets the certificate pinned for the LocalSend device
// called alias (it was reinstalled): the next send pins it again.
func (h *Headless) ForgetLocalSend(alias string) error {
	if _, ok := h.lsPins.Lookup(alias); !ok {
		return badInput(fmt.Errorf("no LocalSend device called %s is pinned", alias))
	}
	return h.lsPins.Forget(alias)
}

// lsDevice is how the device list shows a LocalSend device.
func lsDevice(d localsend.Device, pins *localsend.Pins) Device {
	fp, known := pins.Lookup(d.Alias)
	return Device{
		Device: discovery.Device{
			Info:     discovery.Info{Device: d.Peer()},
			Instance: d.Alias, Port: int(d.Addr.Port()), Addrs: []netip.Addr{d.Addr.Addr()},
		},
		Known:       known && fp == d.Fingerprint,
		Changed:     known && fp != d.Fingerprint,
		LocalSend:   true,
		Unencrypted: !d.Encrypted(),
	}
}

// ours reports whether a LocalSend device is one of ours that speaks
// LocalSend too (it announces the certificate of a device in nearby): it
// is listed once, as ours, and sends to it use our protocol.
func ours(d localsend.Device, nearby map[string]discovery.Device) bool {
	for _, n := range nearby {
		if d.SameCertificate(n.Fingerprint) {
			return true
		}
	}
	return false
}

// localSendDevices lists the LocalSend devices found within wait.
func (h *Headless) localSendDevices(ctx context.Context, wait time.Duration) ([]Device, error) {
	n, err := h.startLocalSend(false, false, nil, nil)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	var out []Device
	for _, d := range n.Devices() {
		out = append(out, lsDevice(d, h.lsPins))
	}
	return out, nil
}

// localSendDialer finds the LocalSend device `to` names (an address, or a
// name or id looked for up to wait) and returns how to send to it.
func (h *Headless) localSendDialer(ctx context.Context, to string, wait time.Duration) (dialer, func(), string, error) {
	n, err := h.startLocalSend(false, false, nil, nil)
	if err != nil {
		return nil, nil, "", err
	}
	d, err := h.findLocalSend(ctx, n, to, wait)
	if err != nil {
		n.Close()
		return nil, nil, "", err
	}
	dial := func(ctx context.Context) (transfer.Link, error) {
		link, err := n.Dial(ctx, d, h.ls.PIN)
		if err != nil {
			return nil, &lsError{fmt.Errorf("LocalSend %s: %w", d.Alias, err)}
		}
		sec := "HTTPS, its certificate checked"
		if !d.Encrypted() {
			sec = "not encrypted"
		}
		h.report(Connected{Name: d.Alias, ID: d.ID(), Via: ViaLocalSend, Address: d.Addr.String(), Security: sec})
		return link, nil
	}
	return dial, func() { _ = n.Close() }, d.Alias, nil
}

func (h *Headless) findLocalSend(ctx context.Context, n *localsend.Node, to string, wait time.Duration) (localsend.Device, error) {
	if ap, err := netip.ParseAddrPort(to); err == nil {
		return n.Probe(ctx, ap)
	}
	if ip, err := netip.ParseAddr(to); err == nil {
		return n.Probe(ctx, netip.AddrPortFrom(ip, localsend.DefaultPort))
	}
	if to == "" {
		return localsend.Device{}, badInput(fmt.Errorf("--to: name the LocalSend device (its name, or its address)"))
	}
	deadline := time.Now().Add(cmp.Or(wait, 5*time.Second))
	for {
		var found []localsend.Device
		for _, d := range n.Devices() {
			if strings.EqualFold(d.Alias, to) || d.ID() == to {
				found = append(found, d)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			names := make([]string, 0, len(found))
			for _, d := range found {
				names = append(names, d.Alias+" at "+d.Addr.String())
			}
			slices.Sort(names)
			return localsend.Device{}, fmt.Errorf("%d LocalSend devices are called %s (%s): give its address instead", len(found), to, strings.Join(names, ", "))
		}
		if time.Now().After(deadline) {
			return localsend.Device{}, fmt.Errorf("no LocalSend device called %s found within %s", to, cmp.Or(wait, 5*time.Second))
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return localsend.Device{}, ctx.Err()
		}
	}
}
