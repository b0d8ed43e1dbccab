package cli

import (
	"context"
	"fmt"
	"sync"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/web"
)

// serveWeb serves the web client on listen (receive --web) until ctx ends:
// pages send to this device through it and register to receive; each
// registered page is advertised nearby like a device (unless hidden). Unless
// hidden, it also looks for nearby devices, which pages may send to through
// it (/ws/dial); hidden, it sends and answers no mDNS at all, and pages see
// only this device. The wiring is web.LAN's, which the desktop app's engine
// shares.
func (e *env) serveWeb(ctx context.Context, listen string, hidden bool, handle func(context.Context, *peer.Conn)) error {
	ln, err := web.Listen(listen)
	if err != nil {
		return err
	}
	lan := &web.LAN{
		Peer:   e.cfg,
		Type:   e.deviceType,
		Check:  e.checkPeer,
		Handle: handle,
		Hidden: hidden,
		OnPage: func(p web.Page) func() {
			if e.out.json {
				e.out.jsonEvent("web-page", map[string]any{
					"name": p.Hello.Name, "device_id": p.Hello.ID, "fingerprint": p.Hello.Fingerprint,
					"type": p.Type, "port": p.Port,
				})
			} else {
				e.out.say("A web page joined: %s (reachable on port %d)", p.Hello.Name, p.Port)
			}
			return nil
		},
		OnError: e.reportError,
	}
	var browsing sync.WaitGroup
	defer browsing.Wait()
	if !hidden {
		b := &discovery.Browser{Self: e.cfg.Identity.DeviceID}
		lan.Devices = b.Devices
		bctx, cancel := context.WithCancel(ctx)
		defer cancel() // before browsing.Wait: deferred calls run last first
		browsing.Go(func() {
			if err := b.Run(bctx); err != nil && bctx.Err() == nil {
				e.reportError(fmt.Errorf("web client: look for nearby devices: %w", err))
			}
		})
	}
	url := web.URL(ln.Addr())
	if e.out.json {
		e.out.jsonEvent("web", map[string]any{"url": url, "address": ln.Addr().String()})
	} else {
		if e.out.tty {
			e.out.say("%s", qrText(url))
		}
		e.out.say("Phones and tablets on this network: open %s", url)
	}
	return lan.Serve(ctx, ln)
}
