package cli

import (
	"fmt"
	"time"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// serverURL reads a --server value (see engine.ServerURL).
func serverURL(s string) (string, error) {
	u, err := engine.ServerURL(s)
	if err != nil {
		return "", fmt.Errorf("--server: %w", err)
	}
	return u, nil
}

// report prints one event of the engine's run: the transfer's own, and the
// run's (face_events.go in the engine).
func (e *env) report(ev any) {
	switch ev := ev.(type) {
	case engine.TransferEvent:
		e.out.event(ev)
	case engine.Warning:
		e.reportError(ev.Err)
	case engine.Listening:
		e.listening(ev)
	case engine.LocalSendListening:
		e.localSendListening(ev)
	case engine.CodeShown:
		e.showCode(ev)
	case engine.ServerReconnecting:
		if e.out.json {
			e.out.jsonEvent("server-reconnecting", map[string]any{"server": ev.Server, "error": errString(ev.Err), "in_ms": ev.In.Milliseconds()})
		} else {
			e.out.say("Lost the server %s (%v); connecting again in %s.", ev.Server, oneLine(ev.Err), ev.In)
		}
	case engine.ServerLost:
		if !e.out.json {
			e.out.say("Lost the server %s; connecting again.", ev.Server)
		}
	case engine.WebServing:
		e.webServing(ev)
	case engine.PageJoined:
		if e.out.json {
			e.out.jsonEvent("web-page", map[string]any{"name": ev.Name, "device_id": ev.ID, "fingerprint": ev.Fingerprint, "type": ev.Type, "port": ev.Port})
		} else {
			e.out.say("A web page joined: %s (reachable on port %d)", ev.Name, ev.Port)
		}
	case engine.Connected:
		e.connected(ev)
	case engine.PathChanged:
		e.pathChanged(ev)
	case engine.Resolved:
		if e.out.json {
			e.out.jsonEvent("resolved", e.deviceFields(ev.Device))
		}
	case engine.Offering:
		if !e.out.json {
			e.out.say("Offering %d files (%s) to %s, waiting for them to accept...", ev.Files, humanBytes(ev.Size), visible.Escape(ev.To))
		}
	case engine.TrustedAccepted:
		e.out.say("Accepting from trusted device %s.", visible.Escape(ev.Name))
	}
}

// listening reports that receive takes handshakes on the LAN.
func (e *env) listening(ev engine.Listening) {
	self := e.eng.Self()
	if e.out.json {
		e.out.jsonEvent("listening", map[string]any{
			"port": ev.Port, "udp_port": ev.UDPPort, "address": ev.Address, "dir": ev.Dir,
			"device_id": self.ID, "name": self.Name, "fingerprint": self.Fingerprint,
			"type": self.Type, "discoverable": ev.Discoverable,
		})
		return
	}
	how := "nearby devices can see it"
	if !ev.Discoverable {
		how = "hidden from nearby devices"
	}
	ports := fmt.Sprintf("TCP port %d, UDP port %d", ev.Port, ev.UDPPort)
	if ev.UDPPort == 0 {
		ports = fmt.Sprintf("TCP port %d, random UDP ports", ev.Port)
	} else if ev.UDPPort == ev.Port {
		ports = fmt.Sprintf("port %d, TCP and UDP", ev.Port)
	}
	e.out.say("%s is ready to receive on %s (%s); files go to %s", self.Name, ports, how, ev.Dir)
}

// webServing tells people where the web client is.
func (e *env) webServing(ev engine.WebServing) {
	if e.out.json {
		e.out.jsonEvent("web", map[string]any{"url": ev.URL, "address": ev.Address})
		return
	}
	if e.out.tty {
		e.out.say("%s", qrText(ev.URL))
	}
	e.out.say("Phones and tablets on this network: open %s", ev.URL)
}

// connected reports a connection the sender opened.
func (e *env) connected(ev engine.Connected) {
	if e.out.json {
		fields := map[string]any{"peer": ev.Name, "peer_id": ev.ID, "code": ev.Code,
			"via": ev.Via, "route_local": ev.RouteLocal, "route_remote": ev.RouteRemote}
		if ev.Via == "server" {
			fields["server"] = ev.Address
		} else {
			fields["address"] = ev.Address
		}
		e.out.jsonEvent("connected", fields)
		return
	}
	if ev.Via == engine.ViaLocalSend {
		e.out.say("Connected to %s at %s with LocalSend (%s).", visible.Escape(ev.Name), ev.Address, ev.Security)
		return
	}
	how := "on the local network"
	if ev.Via == "server" {
		how = "through the server"
	}
	path := "directly"
	if ev.RouteLocal == "relay" || ev.RouteRemote == "relay" {
		path = "through the TURN relay"
	}
	e.out.say("Connected to %s %s, %s (verification code %s).", ev.Name, how, path, ev.Code)
}

// pathChanged reports a connection through the server whose network path
// broke (ICE restarts begin) or came back.
func (e *env) pathChanged(ev engine.PathChanged) {
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
func (e *env) showCode(ev engine.CodeShown) {
	if e.out.json {
		e.out.jsonEvent("pairing-code", map[string]any{"code": ev.Code, "expires": ev.Expires.UTC().Format(time.RFC3339), "url": ev.Server,
			"link": ev.Link})
		return
	}
	switch {
	case ev.First:
		e.out.say("%s is ready to receive through %s; files go to %s", e.eng.Self().Name, ev.Server, ev.Dir)
	case ev.Again:
		e.out.say("Connected to the server again; the old code is gone, here is a new one.")
	default:
		e.out.say("The previous code expired, or a pairing with it failed; here is a new one.")
	}
	minutes := max(int(time.Until(ev.Expires).Round(time.Minute)/time.Minute), 1)
	if e.out.tty {
		// Light modules are full blocks: scanners read it on dark terminals.
		e.out.say("%s", qrText(ev.Link))
	}
	e.out.say("Pairing code: %s (valid %d minutes)", ev.Code, minutes)
	e.out.say("On the other device: peerdrop send --server %s --code %s PATH...", ev.Server, ev.Code)
}
