package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/web"
)

// lan listens for the LAN handshake on port (and advertises, unless
// hidden) until ctx ends; with WebListen, it also serves the web client.
func (r *receiveRun) lan(ctx context.Context, port int) error {
	h := r.h
	ln, err := peer.Listen(fmt.Sprintf(":%d", port), h.cfg)
	if err != nil {
		return err
	}
	ln.Check = h.checkPeer
	ln.AnswerProbes = !r.o.Hidden
	ln.OnError = func(from net.Addr, err error) {
		h.warn(fmt.Errorf("connection from %s failed: %w", from, err))
	}
	addr := ln.Addr().(*net.TCPAddr)
	u, err := openUDP(addr.Port, r.o.UDPPort, r.o.PerConnectionUDP)
	if err != nil {
		h.warn(err)
	}
	if u != nil {
		defer u.Close() // after Serve, which waits for every connection
		ln.SetUDP(u)
		r.udp = u
	}
	var advertising sync.WaitGroup
	defer advertising.Wait() // the goodbye goes out before we exit
	if !r.o.Hidden {
		self := h.Self()
		adv := &discovery.Advertiser{Info: discovery.Info{Device: self, Version: int(signaling.Version)}, Port: addr.Port, OnError: h.warn}
		advertising.Go(func() {
			if err := adv.Run(ctx); err != nil {
				h.warn(err)
			}
		})
	}
	ev := Listening{Port: addr.Port, Address: addr.String(), Dir: r.dir, Discoverable: !r.o.Hidden}
	if u != nil {
		ev.UDPPort = u.Port()
	}
	h.report(ev)
	if r.o.WebListen == "" {
		return ln.Serve(ctx, r.handle)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	webErr := make(chan error, 1)
	go func() {
		err := r.web(ctx)
		cancel() // without its web server, the web client stops the run
		webErr <- err
	}()
	err = ln.Serve(ctx, r.handle)
	cancel()
	return errors.Join(err, <-webErr)
}

// peerConfig is the run's peer settings: the device's, with the shared UDP
// port of its LAN listener.
func (r *receiveRun) peerConfig() peer.Config {
	cfg := r.h.cfg
	cfg.UDP = r.udp
	return cfg
}

// web serves the web client until ctx ends: pages send to this device
// through it and register to receive; each registered page is advertised
// nearby like a device (unless hidden). Unless hidden, it also looks for
// nearby devices, which pages may send to through it; hidden, it sends and
// answers no mDNS at all, and pages see only this device.
func (r *receiveRun) web(ctx context.Context) error {
	h := r.h
	ln, err := web.Listen(r.o.WebListen)
	if err != nil {
		return err
	}
	lan := &web.LAN{
		Peer: r.peerConfig(), Type: h.typ, Check: h.checkPeer, Handle: r.handle, Hidden: r.o.Hidden,
		OnPage: func(p web.Page) func() {
			h.report(PageJoined{Name: p.Hello.Name, ID: p.Hello.ID, Fingerprint: p.Hello.Fingerprint, Type: p.Type, Port: p.Port})
			return nil
		},
		OnError: h.warn,
	}
	var browsing sync.WaitGroup
	defer browsing.Wait()
	if !r.o.Hidden {
		b := newBrowser(h.cfg.Identity.DeviceID, h.trust, nil)
		lan.Devices = b.Devices
		bctx, cancel := context.WithCancel(ctx)
		defer cancel() // before browsing.Wait: deferred calls run last first
		browsing.Go(func() {
			if err := b.Run(bctx); err != nil && bctx.Err() == nil {
				h.warn(fmt.Errorf("web client: look for nearby devices: %w", err))
			}
		})
	}
	h.report(WebServing{URL: web.URL(ln.Addr()), Address: ln.Addr().String()})
	return lan.Serve(ctx, ln)
}

// remote shows a pairing code from the rendezvous server and takes the
// devices that join with it, or that find us by our device id, until ctx
// ends. When the server connection drops it connects again, with the
// engine's backoff, and shows a new code; only a first connection that
// fails is an error.
func (r *receiveRun) remote(ctx context.Context) error {
	h, u := r.h, r.o.Server
	cfg := h.cfg
	cfg.RelayOnly = r.o.RelayOnly
	first, again := true, false // again: the first code after connecting again
	host := &remote.Host{
		Config: cfg,
		Check:  h.checkPeer,
		Known:  h.trust.IsPinned,
		OnCode: func(c remote.Code) {
			h.report(CodeShown{Code: c.Code, Expires: c.Expires, Server: u, Link: remote.PairingLink(u, c.Code), Dir: r.dir, First: first, Again: again})
			first, again = false, false
		},
		OnError: func(err error) {
			h.warn(err)
			if r.o.Once && (errors.Is(err, pairing.ErrMismatch) || errors.Is(err, pairing.ErrProtocol)) {
				// With Once, a failed pairing ends the run, at once:
				// there is no sender to wait for.
				r.finish(err)
				r.cancel()
			}
		},
	}
	defer host.Wait() // connections that outlived a lost server
	var b backoff
	for attempt := 0; ; attempt++ {
		start := time.Now()
		served, err := r.serveRemote(ctx, host)
		if ctx.Err() != nil {
			return nil // stopping: the connection ended with us
		}
		if attempt == 0 && !served {
			return err
		}
		again = true
		wait := b.next(start, served)
		h.report(ServerReconnecting{Server: u, Err: err, In: wait})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// serveRemote connects to the server once, announces this device and serves
// host until the connection ends. served says whether it got that far.
func (r *receiveRun) serveRemote(ctx context.Context, host *remote.Host) (served bool, err error) {
	h, u := r.h, r.o.Server
	client, err := h.dialServer(ctx, u)
	if err != nil {
		return false, err
	}
	defer client.Close()
	// Paired devices may find us by our device id (send --server --to).
	err = remote.Announce(ctx, client, h.cfg.Identity.Signer(), h.cfg.Identity.CertificateDER())
	switch {
	case errors.Is(err, remote.ErrIDBound):
		h.warn(fmt.Errorf("the server %s has this device's id bound to another certificate, so paired devices cannot reach it there by name; pairing with a code still works", u))
	case err != nil:
		return false, fmt.Errorf("announce this device on the server %s: %w", u, err)
	}
	err = host.Serve(ctx, client, r.handle)
	if err == nil {
		err = errors.New("the server closed the connection")
	}
	return true, err
}
