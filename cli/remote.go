package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// serverURL reads a --server value (see remote.ServerURL).
func serverURL(s string) (string, error) {
	u, err := remote.ServerURL(s)
	if err != nil {
		return "", fmt.Errorf("--server: %w", err)
	}
	return u, nil
}

// dialServer connects this device to the rendezvous server at url.
func (e *env) dialServer(ctx context.Context, url string) (*rendezvous.Client, error) {
	return remote.DialServer(ctx, url, e.cfg, e.deviceType)
}

// connected reports a connection the sender opened: via is "lan" (address
// is the peer's) or "server" (address is the server's URL); the route is
// the candidate types of the selected ICE pair, ours and the peer's.
func (e *env) connected(c *peer.Conn, via, address string) {
	local, remote := c.Route()
	code := c.Code
	if e.out.json {
		fields := map[string]any{"peer": c.Remote.Name, "peer_id": c.Remote.ID, "code": code,
			"via": via, "route_local": local, "route_remote": remote}
		if via == "server" {
			fields["server"] = address
		} else {
			fields["address"] = address
		}
		e.out.jsonEvent("connected", fields)
		return
	}
	how := "on the local network"
	if via == "server" {
		how = "through the server"
	}
	path := "directly"
	if local == "relay" || remote == "relay" {
		path = "through the TURN relay"
	}
	e.out.say("Connected to %s %s, %s (verification code %s).", c.Remote.Name, how, path, code)
}

// pathChanged reports a connection through the server whose network path
// broke (ICE restarts begin) or came back.
func (e *env) pathChanged(ev peer.PathEvent) {
	if e.out.json {
		if ev.Restored {
			e.out.jsonEvent("path-restored", map[string]any{"restarts": ev.Restarts, "route_local": ev.Local, "route_remote": ev.Remote})
		} else {
			e.out.jsonEvent("path-lost", map[string]any{"restarts": ev.Restarts})
		}
		return
	}
	if ev.Restored {
		e.out.say("Network path restored (ICE restarts: %d).", ev.Restarts)
		return
	}
	e.out.say("Network path lost; looking for a new one (ICE restart)...")
}

// showCode tells the person at the receiver the pairing code to pass on.
func (e *env) showCode(code string, expires time.Time, server string) {
	if e.out.json {
		e.out.jsonEvent("pairing-code", map[string]any{"code": code, "expires": expires.UTC().Format(time.RFC3339), "url": server,
			"link": remote.PairingLink(server, code)})
		return
	}
	minutes := max(int(time.Until(expires).Round(time.Minute)/time.Minute), 1)
	if e.out.tty {
		// Light modules are full blocks: scanners read it on dark terminals.
		e.out.say("%s", qrText(remote.PairingLink(server, code)))
	}
	e.out.say("Pairing code: %s (valid %d minutes)", code, minutes)
	e.out.say("On the other device: peerdrop send --server %s --code %s PATH...", server, code)
}
