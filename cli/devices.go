package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/internal/visible"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/trust"
)

// selfInfo is what this device advertises.
func (e *env) selfInfo() discovery.Info {
	return discovery.Info{
		Device:  device.Device{ID: e.cfg.Identity.DeviceID, Name: e.cfg.Name, Type: e.deviceType, Fingerprint: e.cfg.Identity.Fingerprint},
		Version: int(signaling.Version),
	}
}

// trustMark says how we know a device: "trusted", "known" (pinned),
// "identity changed" or "new".
func (e *env) trustMark(d discovery.Device) string {
	for _, k := range e.trust.List() {
		if k.ID != d.ID {
			continue
		}
		switch {
		case k.Fingerprint != d.Fingerprint:
			return "identity changed"
		case k.Trusted:
			return "trusted"
		default:
			return "known"
		}
	}
	return "new"
}

func (e *env) deviceFields(d discovery.Device) map[string]any {
	return map[string]any{
		"name": d.Name, "type": d.Type, "id": d.ID, "address": d.Address(), "addresses": d.Addresses(),
		"fingerprint": d.Fingerprint, "trust": e.trustMark(d),
	}
}

// devices lists nearby devices: after --wait, or live with --watch.
func (e *env) devices(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	wait := fs.Duration("wait", 3*time.Second, "how long to listen before listing")
	watch := fs.Bool("watch", false, "keep going and report devices as they appear, change and go")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("devices takes no arguments, got %q", fs.Arg(0))}
	}
	if *wait <= 0 || *wait > time.Hour {
		return &exitError{code: 2, err: fmt.Errorf("--wait %s: want a duration between 1ms and 1h", *wait)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := &discovery.Browser{Self: e.cfg.Identity.DeviceID}
	if *watch {
		b.OnEvent = func(ev discovery.Event) {
			if e.out.json {
				e.out.jsonEvent(ev.Kind.String(), e.deviceFields(ev.Device))
				return
			}
			e.out.say("%-8s %s (%s, id %s) at %s", ev.Kind, visible.Name(ev.Device.Name), visible.Escape(ev.Device.Type), ev.Device.ID,
				ev.Device.Address())
		}
		if e.out.json {
			e.out.jsonEvent("browsing", map[string]any{"device_id": e.cfg.Identity.DeviceID})
		}
		if err := b.Run(ctx); err != nil {
			return fmt.Errorf("look for nearby devices: %w", err)
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("look for nearby devices: %w", err)
		}
		return ctx.Err()
	case <-time.After(*wait):
	case <-ctx.Done():
	}
	list := b.Devices()
	cancel()
	<-errc
	e.printDevices(list)
	return nil
}

func (e *env) printDevices(list []discovery.Device) {
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
	fmt.Fprintln(tw, "NAME\tTYPE\tID\tADDRESS\tTRUST")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", visible.Name(d.Name), visible.Escape(d.Type), d.ID, d.Address(), e.trustMark(d))
	}
	_ = tw.Flush()
}

// resolveSettle: after the first device that matches appears, how long to
// keep listening for another one with the same name.
const resolveSettle = 500 * time.Millisecond

// findDevice browses until query names a device, or until wait is over.
func (e *env) findDevice(ctx context.Context, query string, wait time.Duration) (discovery.Device, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan struct{}, 1)
	b := &discovery.Browser{Self: e.cfg.Identity.DeviceID}
	b.OnEvent = func(ev discovery.Event) {
		if ev.Kind == discovery.Gone {
			return
		}
		if _, err := discovery.Resolve([]discovery.Device{ev.Device}, query); err == nil {
			select {
			case found <- struct{}{}:
			default:
			}
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case err := <-errc:
		if err != nil {
			return discovery.Device{}, fmt.Errorf("look for %q nearby: %w", query, err)
		}
	case <-found:
		select {
		case <-time.After(resolveSettle):
		case <-ctx.Done():
		}
	case <-deadline.C:
	case <-ctx.Done():
	}
	list := b.Devices()
	cancel()
	<-errc
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return discovery.Device{}, err
	}
	return discovery.Resolve(list, query)
}

// trustCmd manages pinned and trusted devices.
func (e *env) trustCmd(args []string) error {
	const trustUsage = `Usage:
  peerdrop trust list             pinned devices, and which are trusted
  peerdrop trust add DEVICE       trust a pinned device (receive --trusted accepts it without asking)
  peerdrop trust remove DEVICE    stop trusting it (it stays pinned)
  peerdrop trust forget DEVICE    forget its identity: the next connection pins it again (re-pair)
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
		list := e.trust.List()
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
	if sub != "add" && sub != "remove" && sub != "forget" {
		fmt.Fprintln(e.stderr, trustUsage)
		return &exitError{code: 2, err: fmt.Errorf("trust: unknown subcommand %q", sub)}
	}
	d, err := e.pinned(rest[0])
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		err = e.trust.SetTrusted(d.ID, true)
	case "remove":
		err = e.trust.SetTrusted(d.ID, false)
	case "forget":
		err = e.trust.Forget(d.ID)
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

// pinned finds a pinned device by id, unique id prefix or name.
func (e *env) pinned(query string) (trust.Device, error) {
	list := e.trust.List()
	devs := make([]discovery.Device, 0, len(list))
	for _, k := range list {
		devs = append(devs, discovery.Device{Info: discovery.Info{Device: k.Device}})
	}
	d, err := discovery.Resolve(devs, query)
	if err != nil {
		var nf *discovery.NotFoundError
		if errors.As(err, &nf) {
			names := make([]string, 0, len(list))
			for _, k := range list {
				names = append(names, fmt.Sprintf("%s (id %s)", k.Name, k.ID))
			}
			return trust.Device{}, fmt.Errorf("no pinned device %q; pinned: %s", query, strings.Join(names, ", "))
		}
		return trust.Device{}, err
	}
	for _, k := range list {
		if k.ID == d.ID {
			return k, nil
		}
	}
	return trust.Device{}, fmt.Errorf("no pinned device %q", query)
}
