package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

func (e *env) deviceFields(d engine.Device) map[string]any {
	return map[string]any{
		"name": d.Name, "type": d.Type, "id": d.ID, "address": d.Address(), "addresses": d.Addresses(),
		"fingerprint": d.Fingerprint, "trust": engine.TrustMark(d), "protocol": protocolOf(d),
	}
}

// devices lists nearby devices: after --wait, or live with --watch.
func (e *env) devices(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	wait := fs.Duration("wait", 3*time.Second, "how long to listen before listing")
	watch := fs.Bool("watch", false, "keep going and report devices as they appear, change and go")
	checkLS := localSendFlags(fs, false)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("devices takes no arguments, got %q", fs.Arg(0))}
	}
	if *wait <= 0 || *wait > time.Hour {
		return &exitError{code: 2, err: fmt.Errorf("--wait %s: want a duration between 1ms and 1h", *wait)}
	}
	if err := checkLS(); err != nil {
		return err
	}
	e.applyLocalSend(fs)
	if *watch {
		if e.out.json {
			e.out.jsonEvent("browsing", map[string]any{"device_id": e.eng.Self().ID})
		}
		return e.eng.WatchDevices(ctx, func(ev engine.DeviceChange) {
			if e.out.json {
				e.out.jsonEvent(ev.Kind, e.deviceFields(ev.Device))
				return
			}
			e.out.say("%-8s %s (%s, id %s) at %s", ev.Kind, visible.Name(ev.Device.Name), visible.Escape(ev.Device.Type), ev.Device.ID,
				ev.Device.Address())
		})
	}
	list, err := e.eng.Devices(ctx, *wait)
	if err != nil {
		return err
	}
	e.printDevices(list)
	return nil
}

func (e *env) printDevices(list []engine.Device) {
	if e.out.json {
		for _, d := range list {
			e.out.jsonEvent("device", e.deviceFields(d))
		}
		e.out.jsonEvent("devices-done", map[string]any{"count": len(list)})
		return
	}
	if len(list) == 0 {
		e.out.say("No devices found. Is peerdrop receiving on another device on this network?")
		return
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	// No code column: a verification code belongs to one connection (its
	// handshake's nonces), so it is only known once connected.
	fmt.Fprintln(tw, "NAME\tTYPE\tID\tADDRESS\tTRUST\tPROTOCOL")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", visible.Name(d.Name), visible.Escape(d.Type), d.ID, d.Address(), engine.TrustMark(d), protocolOf(d))
	}
	_ = tw.Flush()
}

// trustCmd manages pinned and trusted devices.
func (e *env) trustCmd(args []string) error {
	const trustUsage = `Usage:
  peerdrop trust list             pinned devices, and which are trusted
  peerdrop trust add DEVICE       trust a pinned device (receive --trusted accepts it without asking)
  peerdrop trust remove DEVICE    stop trusting it (it stays pinned)
  peerdrop trust forget DEVICE    forget its identity: the next connection pins it again (re-pair)
  peerdrop trust forget-localsend NAME
                                  forget the certificate pinned for a LocalSend device (it was reinstalled)
DEVICE is a device id, or a name when only one pinned device has it.`
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, trustUsage)
		return &exitError{code: 2, err: errors.New("trust: missing subcommand")}
	}
	sub, rest := args[0], args[1:]
	if sub == "list" {
		if len(rest) > 0 {
			return &exitError{code: 2, err: errors.New("trust list takes no arguments")}
		}
		list := e.eng.Pinned()
		if e.out.json {
			for _, d := range list {
				e.out.jsonEvent("pinned", map[string]any{"id": d.ID, "name": d.Name, "fingerprint": d.Fingerprint, "trusted": d.Trusted})
			}
			return nil
		}
		if len(list) == 0 {
			e.out.say("No pinned devices yet: a device is pinned the first time you exchange files with it.")
			return nil
		}
		e.out.mu.Lock()
		defer e.out.mu.Unlock()
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tTRUSTED")
		for _, d := range list {
			fmt.Fprintf(tw, "%s\t%s\t%v\n", visible.Name(d.Name), d.ID, d.Trusted)
		}
		return tw.Flush()
	}
	if len(rest) != 1 {
		fmt.Fprintln(e.stderr, trustUsage)
		return &exitError{code: 2, err: fmt.Errorf("trust %s: give one device", sub)}
	}
	if sub == "forget-localsend" {
		if err := e.eng.ForgetLocalSend(rest[0]); err != nil {
			return err
		}
		e.out.say("Forgotten: LocalSend device %s (the next send pins its certificate again)", visible.Escape(rest[0]))
		return nil
	}
	if sub != "add" && sub != "remove" && sub != "forget" {
		fmt.Fprintln(e.stderr, trustUsage)
		return &exitError{code: 2, err: fmt.Errorf("trust: unknown subcommand %q", sub)}
	}
	d, err := e.eng.FindPinned(rest[0])
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		err = e.eng.SetTrustedPinned(d.ID, true)
	case "remove":
		err = e.eng.SetTrustedPinned(d.ID, false)
	case "forget":
		err = e.eng.Forget(d.ID)
	}
	if err != nil {
		return err
	}
	if e.out.json {
		e.out.jsonEvent("trust-"+sub, map[string]any{"id": d.ID, "name": d.Name})
	} else {
		e.out.say("%s: %s (id %s)", map[string]string{"add": "Trusted", "remove": "No longer trusted", "forget": "Forgotten"}[sub], visible.Escape(d.Name), d.ID)
	}
	return nil
}
