package web

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/netif"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// DefaultListen is where a receiving device serves the web client unless
// told otherwise (`receive --web`, the desktop app).
const DefaultListen = ":53319"

// LAN is the web client served on the LAN by a device that receives: the
// one wiring of Server that `peerdrop receive --web` and the desktop app's
// engine share. Pages that send are answered as Peer (with Check) and handed
// to Handle like any incoming connection; pages that register to receive are
// reported to OnPage and advertised over mDNS as devices of their own.
type LAN struct {
	Peer  peer.Config
	Type  string // this device's type, as /api/info shows it
	Check func(signaling.Hello) error
	// Handle serves a connection from a page that sends to this device,
	// after the handshake; it returns when the connection is done.
	Handle func(context.Context, *peer.Conn)
	// Devices, when set, lists the devices discovered on the LAN: pages
	// may send to them through this bridge (Server.Devices).
	Devices func() []discovery.Device
	// Hidden: do not advertise registered pages over mDNS.
	Hidden bool
	// OnPage, when set, hears of a page registered to receive; the
	// function it returns (if any) runs when the page has gone.
	OnPage func(p Page) (gone func())
	// OnError hears about what failed on the way: a page's handshake, an
	// advertisement. It does not stop serving.
	OnError func(error)
}

// Listen opens the web client's HTTP port on addr ("" = DefaultListen).
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web client: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves the web client on ln until ctx ends, and returns once every
// handler and page has gone (see Server.Serve).
func (l *LAN) Serve(ctx context.Context, ln net.Listener) error {
	listenHost := ""
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		// A page server on loopback keeps its pages' ports on loopback too.
		listenHost = a.IP.String()
	}
	srv := &Server{
		Host: Info{
			DeviceID: l.Peer.Identity.DeviceID, Name: l.Peer.Name,
			Fingerprint: l.Peer.Identity.Fingerprint, Type: l.Type,
		},
		ListenHost:     listenHost,
		Connect:        l.connect,
		OnPage:         l.page,
		Devices:        l.Devices,
		OnError:        l.report,
		HideFromProbes: l.Hidden,
	}
	return srv.Serve(ctx, ln)
}

func (l *LAN) report(err error) {
	if l.OnError != nil {
		l.OnError(err)
	}
}

// connect answers a page that sends to this device: the WebSocket carries
// the handshake, then only the data channel is left.
func (l *LAN) connect(ctx context.Context, conn net.Conn) func() {
	c, err := peer.AnswerConn(ctx, conn, l.Peer, l.Check)
	_ = conn.Close() // its job ends with the handshake
	if err != nil {
		l.report(fmt.Errorf("connection from a web page failed: %w", err))
		return nil
	}
	if l.Handle == nil {
		_ = c.Close()
		return nil
	}
	return func() { l.Handle(ctx, c) }
}

// page runs while a page is registered: OnPage, and its advertisement.
func (l *LAN) page(ctx context.Context, p Page) {
	if l.OnPage != nil {
		if gone := l.OnPage(p); gone != nil {
			defer gone()
		}
	}
	if l.Hidden {
		<-ctx.Done()
		return
	}
	adv := &discovery.Advertiser{Info: PageInfo(p), Port: p.Port, OnError: l.OnError}
	if err := adv.Run(ctx); err != nil && ctx.Err() == nil {
		l.report(fmt.Errorf("advertise web page %s: %w", p.Hello.Name, err))
		<-ctx.Done() // still registered: it stays listed until it goes
	}
}

// PageInfo is how a registered page is advertised: as a device of its own,
// with the identity it registered with.
func PageInfo(p Page) discovery.Info {
	return discovery.Info{
		Device:  device.Device{ID: p.Hello.ID, Name: p.Hello.Name, Type: p.Type, Fingerprint: p.Hello.Fingerprint},
		Version: int(signaling.Version),
	}
}

// URL is what a phone opens for a web client listening on addr: its host,
// or this machine's LAN address when it listens on every interface.
func URL(addr net.Addr) string {
	host, port := "127.0.0.1", 0
	if a, ok := addr.(*net.TCPAddr); ok {
		port = a.Port
		host = PageHost(a.IP)
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
}

// PageHost is the host a phone should use for a server listening on ip:
// ip itself if it is one, else this machine's first LAN address.
func PageHost(ip net.IP) string {
	if ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	if lan := lanIP(); lan != nil {
		return lan.String()
	}
	return "127.0.0.1"
}

// lanIP is the IPv4 address this machine reaches the rest of the network
// from (the default route's), if it is one of its LAN addresses; else the
// first private (else global) unicast IPv4 address of an interface that is
// up; or nil. The default route's comes first: a container or VM bridge
// (docker0, virbr0) also has a private address, and no phone behind it.
func lanIP() net.IP {
	if ip := routeIP(); ip != nil {
		return ip
	}
	var global net.IP
	for _, a := range netif.Up() {
		if !a.IP.Is4() || !a.IP.IsGlobalUnicast() {
			continue
		}
		ip := net.IP(a.IP.AsSlice())
		if a.IP.IsPrivate() {
			return ip
		}
		if global == nil {
			global = ip
		}
	}
	return global
}

// routeIP is the source address of the default route: connecting a UDP
// socket picks it without sending anything (192.0.2.1 is a documentation
// address; no packet leaves).
func routeIP() net.IP {
	c, err := net.Dial("udp4", "192.0.2.1:9")
	if err != nil {
		return nil
	}
	defer c.Close()
	a, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || a.IP.IsLoopback() || !a.IP.IsGlobalUnicast() {
		return nil
	}
	return a.IP
}
