package cli

import (
	"flag"
	"fmt"

	"github.com/thepeerdrop/peerdrop/engine"
)

// localSendFlags adds the LocalSend flags of a command (receive adds its
// port) and returns what applies them to the run once parsed.
func localSendFlags(fs *flag.FlagSet, receiving bool) func() error {
	on := fs.Bool("localsend", false, "also speak LocalSend protocol v2: LocalSend's apps (phones, desktops) see this device and exchange files with it")
	http := fs.Bool("localsend-http", false, "with --localsend: also let in LocalSend devices that speak it unencrypted (HTTP)")
	pinHelp := "with --localsend: the PIN a LocalSend receiver asks for"
	port := new(int)
	if receiving {
		pinHelp = "with --localsend: ask every LocalSend sender for this PIN"
		port = fs.Int("localsend-port", 0, "with --localsend: its TCP port (default 53317)")
	}
	pin := fs.String("pin", "", pinHelp)
	return func() error {
		if !*on && (*http || *pin != "" || *port != 0) {
			return &exitError{code: 2, err: fmt.Errorf("--localsend-http, --localsend-port and --pin need --localsend")}
		}
		if *port < 0 || *port > 65535 {
			return &exitError{code: 2, err: fmt.Errorf("--localsend-port %d out of range", *port)}
		}
		if len(*pin) > 64 {
			return &exitError{code: 2, err: fmt.Errorf("--pin: at most 64 characters")}
		}
		return nil
	}
}

// applyLocalSend reads the parsed LocalSend flags of fs into the run.
func (e *env) applyLocalSend(fs *flag.FlagSet) {
	get := func(name string) flag.Getter {
		if f := fs.Lookup(name); f != nil {
			return f.Value.(flag.Getter)
		}
		return nil
	}
	o := engine.LocalSendOptions{}
	if g := get("localsend"); g != nil {
		o.On = g.Get().(bool)
	}
	if g := get("localsend-http"); g != nil {
		o.HTTP = g.Get().(bool)
	}
	if g := get("localsend-port"); g != nil {
		o.Port = g.Get().(int)
	}
	if g := get("pin"); g != nil {
		o.PIN = g.Get().(string)
	}
	e.eng.SetLocalSend(o)
}

// protocolOf names the protocol a listed device speaks.
func protocolOf(d engine.Device) string {
	switch {
	case d.LocalSend && d.Unencrypted:
		return "localsend (not encrypted)"
	case d.LocalSend:
		return "localsend"
	case d.Web:
		return "web"
	}
	return "peerdrop"
}

func (e *env) localSendListening(ev engine.LocalSendListening) {
	if e.out.json {
		e.out.jsonEvent("localsend-listening", map[string]any{"port": ev.Port, "http": ev.HTTP, "pin": ev.PIN})
		return
	}
	how := "HTTPS"
	if ev.HTTP {
		how = "HTTPS and unencrypted HTTP"
	}
	pin := ""
	if ev.PIN {
		pin = "; senders need the PIN"
	}
	e.out.say("Also receiving from LocalSend apps on port %d (%s%s).", ev.Port, how, pin)
}
