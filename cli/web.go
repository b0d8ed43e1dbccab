package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/web"
)

// serveWeb serves the web client on listen (receive --web) until ctx ends:
// pages send to this device through it and register to receive; each
// registered page is advertised nearby like a device (unless hidden).
func (e *env) serveWeb(ctx context.Context, listen string, hidden bool, handle func(context.Context, *peer.Conn)) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("web client: listen on %s: %w", listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	host, _, _ := net.SplitHostPort(listen)
	listenHost := ""
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		listenHost = host // a loopback page server keeps its pages' ports on loopback too
	}
	srv := &web.Server{
		Host: web.Info{
			DeviceID: e.cfg.Identity.DeviceID, Name: e.cfg.Name,
			Fingerprint: e.cfg.Identity.Fingerprint, Type: e.deviceType,
		},
		ListenHost: listenHost,
		Connect: func(ctx context.Context, conn net.Conn) {
			c, err := peer.AnswerConn(ctx, conn, e.cfg, e.checkPeer)
			_ = conn.Close() // its job ends with the handshake
			if err != nil {
				e.reportError(fmt.Errorf("connection from a web page failed: %w", err))
				return
			}
			handle(ctx, c)
		},
		OnPage: func(ctx context.Context, p web.Page) {
			if e.out.json {
				e.out.jsonEvent("web-page", map[string]any{
					"name": p.Hello.Name, "device_id": p.Hello.DeviceID, "fingerprint": p.Hello.Fingerprint,
					"type": p.Type, "port": p.Port,
				})
			} else {
				e.out.say("A web page joined: %s (reachable on port %d)", p.Hello.Name, p.Port)
			}
			if hidden {
				return
			}
			info := discovery.Info{
				ID: p.Hello.DeviceID, Name: p.Hello.Name, Type: p.Type,
				Version: int(signaling.Version), Fingerprint: p.Hello.Fingerprint,
			}
			adv := &discovery.Advertiser{Info: info, Port: p.Port, OnError: e.reportError}
			if err := adv.Run(ctx); err != nil && ctx.Err() == nil {
				e.reportError(fmt.Errorf("advertise web page %s: %w", p.Hello.Name, err))
			}
		},
		OnError: e.reportError,
	}
	url := "http://" + net.JoinHostPort(webHost(host), strconv.Itoa(addr.Port)) + "/"
	if e.out.json {
		e.out.jsonEvent("web", map[string]any{"url": url, "address": addr.String()})
	} else {
		if e.out.tty {
			e.out.say("%s", qrText(url))
		}
		e.out.say("Phones and tablets on this network: open %s", url)
	}
	return srv.Serve(ctx, ln)
}

// webHost is the host a phone should use for a server listening on host:
// the host itself if one was given, else this machine's first LAN address.
func webHost(host string) string {
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host
	}
	if ip := lanIP(); ip != nil {
		return ip.String()
	}
	return "127.0.0.1"
}

// lanIP is the first private (else global) unicast IPv4 address of an
// interface that is up, or nil.
func lanIP() net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var global net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.To4() == nil || !n.IP.IsGlobalUnicast() {
				continue
			}
			if n.IP.IsPrivate() {
				return n.IP
			}
			if global == nil {
				global = n.IP
			}
		}
	}
	return global
}
