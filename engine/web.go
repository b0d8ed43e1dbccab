package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/web"
)

// The web client for phones and tablets (PROTOCOL.md §14): while
// Config.WebListen (or SetWebListen) names an address, Run serves the page
// there with web.LAN, the wiring `peerdrop receive --web` uses too. A page
// that sends comes in through serveConn like a LAN connection (the user
// accepts or declines; what it leaves unfinished is not kept); a page
// registered to receive is advertised over mDNS and listed among the
// devices, reached on the port the bridge listens on for it in this process.

// DefaultWebListen is where the desktop app serves the web client.
const DefaultWebListen = web.DefaultListen

// webState is the web client's part of the engine; e.mu guards it.
type webState struct {
	listen  string        // "" = off
	changed chan struct{} // closed (and replaced) when listen changes
	url     string        // while served
	err     error         // why it is not served, if it failed
	pages   map[string]discovery.Device
	// urlFor is the URL a phone opens for a server on addr (web.URL);
	// urlEvery how often it is asked again: on every interface, the URL
	// names this machine's LAN address, which comes and goes with the
	// network. Tests replace both.
	urlFor   func(net.Addr) string
	urlEvery time.Duration
}

// webURLEvery is how often the web client's URL is checked against the
// network: the address shows within that time after Wi-Fi connects.
const webURLEvery = 3 * time.Second

func newWebState(listen string) webState {
	return webState{
		listen: listen, changed: make(chan struct{}), pages: map[string]discovery.Device{},
		urlFor: web.URL, urlEvery: webURLEvery,
	}
}

// checkWebListen validates an address for the web client ("" = off).
func checkWebListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("web client address %q: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("web client address %q: bad port", addr)
	}
	return nil
}

// SetWebListen serves the web client on addr from now on ("" = not at
// all), ending the previous server and the connections through it.
func (e *Engine) SetWebListen(addr string) error {
	if err := checkWebListen(addr); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.web.listen == addr {
		return nil
	}
	e.web.listen = addr
	close(e.web.changed)
	e.web.changed = make(chan struct{})
	return nil
}

// WebURL is the address phones and tablets open for the web client, or ""
// while it is not served.
func (e *Engine) WebURL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.web.url
}

// runWeb serves the web client on the current address, and again on a new
// one when it changes, until ctx ends.
func (e *Engine) runWeb(ctx context.Context) {
	e.serveLatest(ctx, func() (string, <-chan struct{}) { return e.web.listen, e.web.changed }, e.serveWeb)
}

// serveWeb serves the web client on listen until ctx ends. When the port is
// taken (another peerdrop serves one), it takes any free port: the URL
// shown says which.
func (e *Engine) serveWeb(ctx context.Context, listen string) {
	ln, err := web.Listen(listen)
	if host, port, serr := net.SplitHostPort(listen); err != nil && serr == nil && port != "0" {
		// Taken, most likely (another peerdrop serves one); the error for
		// that differs between systems (WSAEADDRINUSE on Windows), so any
		// failure on a fixed port gets a free one. The URL says which.
		slog.Warn("engine: web client port unavailable, using another one", slog.Any("err", err))
		if ln2, err2 := web.Listen(net.JoinHostPort(host, "0")); err2 == nil {
			ln, err = ln2, nil
		}
	}
	if err != nil {
		e.setWebStatus("", plainf(err, "The page for phones and tablets cannot be offered: no network port could be opened for it."))
		<-ctx.Done()
		return
	}
	// Sends to a page dial the port its bridge listens on, in this process.
	pageAddr := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			pageAddr = ip.Unmap()
		}
	}
	lan := &web.LAN{
		Peer:    e.peerConfig(),
		Type:    e.deviceType(),
		Check:   e.checkPeer,
		Handle:  e.serveConn,
		Hidden:  e.cfg.Hidden,
		OnPage:  func(p web.Page) func() { return e.addPage(p, pageAddr) },
		Devices: e.lanDevices,
		OnError: e.onWebError,
	}
	e.mu.Lock()
	urlFor, every := e.web.urlFor, e.web.urlEvery
	e.mu.Unlock()
	url := urlFor(ln.Addr())
	slog.Info("engine: serving the web client", slog.String("url", url))
	e.setWebStatus(url, nil)
	var watch sync.WaitGroup
	wctx, stopWatch := context.WithCancel(ctx)
	watch.Go(func() { e.followWebURL(wctx, url, every, func() string { return urlFor(ln.Addr()) }) })
	err = lan.Serve(ctx, ln)
	stopWatch()
	watch.Wait()
	if err != nil && ctx.Err() == nil {
		e.setWebStatus("", plainf(err, "The page for phones and tablets stopped being served."))
		return
	}
	e.setWebStatus("", nil)
}

// followWebURL reports the web client's URL again whenever it changes
// (from the loopback address to a LAN one when the network comes up, from
// one network's to another's), until ctx ends.
func (e *Engine) followWebURL(ctx context.Context, last string, every time.Duration, url func() string) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if u := url(); u != last {
			slog.Info("engine: the web client's address changed", slog.String("url", u))
			last = u
			e.setWebStatus(u, nil)
		}
	}
}

func (e *Engine) setWebStatus(url string, err error) {
	if err != nil {
		slog.Warn("engine: web client", slog.Any("err", err))
	}
	defer e.lock()()
	e.web.url, e.web.err = url, err
	e.emit(WebStatus{URL: url, Err: err})
}

// addPage lists a page registered to receive as a device, until the
// function it returns is called (the page went).
func (e *Engine) addPage(p web.Page, addr netip.Addr) func() {
	d := discovery.Device{Info: web.PageInfo(p), Instance: p.Hello.Name, Port: p.Port, Addrs: []netip.Addr{addr}}
	func() {
		defer e.lock()()
		e.web.pages[d.ID] = d
		e.emit(DevicesChanged{Devices: e.devicesLocked()})
	}()
	return func() {
		defer e.lock()()
		// A page that registered again (a phone that slept) is another
		// registration: only its own end removes it.
		if cur, ok := e.web.pages[d.ID]; ok && cur.Port == d.Port {
			delete(e.web.pages, d.ID)
			e.emit(DevicesChanged{Devices: e.devicesLocked()})
		}
	}
}

// onWebError hears about pages' failed handshakes and advertisements.
func (e *Engine) onWebError(err error) { e.handshakeFailed("a web page", err) }

// lanDevices is what pages may send to through the bridge: the devices
// discovered on the LAN (not the paired ones away, which the bridge cannot
// dial).
func (e *Engine) lanDevices() []discovery.Device {
	defer e.lock()()
	out := make([]discovery.Device, 0, len(e.nearby))
	for _, d := range e.nearby {
		out = append(out, d)
	}
	return out
}
