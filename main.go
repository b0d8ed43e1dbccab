// Command thepeerdrop is the ThePeerDrop desktop app.
//
// This file only wires things together: the Fyne app, the window (package
// app, which adapts engine events to widgets) and the engine (package
// engine, which owns discovery, trust and transfers). The headless command
// line is cmd/peerdrop.
package main

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/thepeerdrop/peerdrop/app"
	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/single"
	"github.com/thepeerdrop/peerdrop/internal/version"
)

//go:embed assets/icon.png
var icon []byte

func main() {
	configDir := flag.String("config-dir", "", "identity, pinned devices and history (default: the user config dir/peerdrop, as the CLI)")
	downloadDir := flag.String("download-dir", "", "where received files go (default: the one chosen in Settings, else ~/Downloads)")
	name := flag.String("name", "", "this device's name (default: the one saved in Settings, else the host name)")
	port := flag.Int("port", 0, "TCP port for the LAN handshake (default: the one saved in Settings, else 53318; -1: any free port)")
	deviceType := flag.String("type", "", "this device's type: desktop, laptop, phone, tablet or server (default: the one saved in Settings, else detected)")
	webListen := flag.String("web-listen", engine.DefaultWebListen, "where the web client for phones and tablets is served, unless turned off in Settings")
	minimised := flag.Bool("minimised", false, "start with the window hidden in the tray (where there is one)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("thepeerdrop " + version.Get().String())
		return
	}

	// One app per config dir, before anything else: a second engine with
	// the same identity must never start. A second launch shows the
	// running app's window instead.
	dir, dirErr := resolveConfigDir(*configDir)
	var inst *single.Instance
	if dirErr == nil {
		inst = acquire(dir)
	}
	if inst != nil {
		defer inst.Close()
	}

	a := fyneapp.NewWithID("org.thepeerdrop.app")
	a.SetIcon(fyne.NewStaticResource("icon.png", icon))
	settings := app.LoadSettings(a.Preferences())
	// Flags win over Settings; --port 0 (the default port) is a choice too.
	// A saved port another program holds falls back to a free one (with a
	// message); a port given on the command line is meant exactly.
	lanPort, portFallback := settings.Port, true
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "port" {
			lanPort, portFallback = *port, false
		}
	})

	// The engine needs the UI's callback and the UI needs the engine: the UI
	// starts without one and gets it once it exists.
	ui := app.New(a, nil, app.Options{WebListen: *webListen, StartMinimised: *minimised, ConfigDir: *configDir})
	webAddr := *webListen
	if settings.WebOff {
		webAddr = ""
	}

	eng, err := newEngine(dir, dirErr, engine.Config{
		Name:              cmp.Or(*name, settings.Name),
		Type:              cmp.Or(*deviceType, settings.Type),
		Port:              lanPort,
		PortFallback:      portFallback,
		DownloadDir:       cmp.Or(*downloadDir, settings.DownloadDir),
		AutoAcceptTrusted: settings.AutoAcceptTrusted,
		QuickSave:         settings.QuickSave,
		WebListen:         webAddr,
		LocalSend:         !settings.LocalSendOff,
		LocalSendHTTP:     settings.LocalSendHTTP,
		OnEvent:           ui.HandleEvent,
	})
	if err != nil {
		slog.Error("engine", slog.Any("err", err))
		ui.ShowError(fmt.Errorf("ThePeerDrop could not start: %w", err))
	} else {
		run(a, ui, eng, settings.SignalingURL)
	}

	stop, err := ui.StartTestHooks(os.Getenv)
	if err != nil {
		ui.ShowError(err)
	}
	defer stop()
	defer ui.StartNotifications()()
	if inst != nil {
		defer raiseOnSecondLaunch(inst, ui)()
	}
	ui.ShowAndRun()
}

// acquire makes this the one app for the config dir, or exits: a second
// launch shows the running app's window instead. nil: not enforced.
func acquire(dir string) *single.Instance {
	inst, err := single.Acquire(dir, single.Options{})
	switch {
	case err == single.ErrRunning: // it answered
		fmt.Fprintf(os.Stderr, "thepeerdrop: %v: its window is brought to the front.\n", err)
		os.Exit(0)
	case errors.Is(err, single.ErrRunning):
		fmt.Fprintf(os.Stderr, "thepeerdrop: %v\n", err)
		os.Exit(1)
	case err != nil:
		slog.Warn("one instance per config folder is not enforced", slog.Any("err", err))
		return nil
	}
	return inst
}

// run starts the engine for the app's life: it stops when the app does.
func run(a fyne.App, ui *app.UI, eng *engine.Engine, server string) {
	// Set here, not in Config: a stored server that is not valid (any
	// text an older version kept) is shown, and the app runs LAN only.
	if err := eng.SetServer(server); err != nil {
		ui.ShowError(fmt.Errorf("the server in Settings is not used: %w", err))
	}
	ui.SetEngine(eng)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := eng.Run(ctx); err != nil && ctx.Err() == nil {
			ui.HandleEvent(engine.Problem{Err: fmt.Errorf("ThePeerDrop stopped working: %w", err)})
		}
	}()
	a.Lifecycle().SetOnStopped(func() {
		cancel()
		select { // running transfers are interrupted; the receiver keeps what it has
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
}

// raiseOnSecondLaunch brings the window to the front when the app is
// launched again, until the returned func is called.
func raiseOnSecondLaunch(inst *single.Instance, ui *app.UI) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := inst.Serve(ctx, func() { fyne.Do(ui.Raise) }); err != nil {
			slog.Warn("a second launch cannot show this window", slog.Any("err", err))
		}
	}()
	return func() { cancel(); <-served }
}

// resolveConfigDir is the config dir: the flag, else the same default as
// the CLI's.
func resolveConfigDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config folder: %w (use --config-dir)", err)
	}
	return filepath.Join(base, "peerdrop"), nil
}

// newEngine creates the engine with its config dir (or the reason there is
// none).
func newEngine(dir string, dirErr error, cfg engine.Config) (*engine.Engine, error) {
	if dirErr != nil {
		return nil, dirErr
	}
	cfg.ConfigDir = dir
	return engine.New(cfg)
}
