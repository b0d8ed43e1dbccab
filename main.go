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
	flag.Parse()

	a := fyneapp.NewWithID("org.thepeerdrop.app")
	a.SetIcon(fyne.NewStaticResource("icon.png", icon))
	settings := app.LoadSettings(a.Preferences())
	// Flags win over Settings; --port 0 (the default port) is a choice too.
	lanPort := settings.Port
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "port" {
			lanPort = *port
		}
	})

	// The engine needs the UI's callback and the UI needs the engine: the UI
	// starts without one and gets it once it exists.
	ui := app.New(a, nil, app.Options{WebListen: *webListen})
	webAddr := *webListen
	if settings.WebOff {
		webAddr = ""
	}

	eng, err := newEngine(*configDir, engine.Config{
		Name:              cmp.Or(*name, settings.Name),
		Type:              cmp.Or(*deviceType, settings.Type),
		Port:              lanPort,
		DownloadDir:       cmp.Or(*downloadDir, settings.DownloadDir),
		AutoAcceptTrusted: settings.AutoAcceptTrusted,
		QuickSave:         settings.QuickSave,
		WebListen:         webAddr,
		OnEvent:           ui.HandleEvent,
	})
	if err != nil {
		slog.Error("engine", slog.Any("err", err))
		ui.ShowError(fmt.Errorf("ThePeerDrop could not start: %w", err))
	} else {
		// Set here, not in Config: a stored server that is not valid (any
		// text an older version kept) is shown, and the app runs LAN only.
		if err := eng.SetServer(settings.SignalingURL); err != nil {
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

	stop, err := ui.StartTestHooks(os.Getenv)
	if err != nil {
		ui.ShowError(err)
	}
	defer stop()
	defer ui.StartNotifications()()
	ui.ShowAndRun()
}

// newEngine creates the engine with its config dir: the flag, else the
// same default as the CLI's.
func newEngine(dir string, cfg engine.Config) (*engine.Engine, error) {
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("no config folder: %w (use --config-dir)", err)
		}
		dir = filepath.Join(base, "peerdrop")
	}
	cfg.ConfigDir = dir
	return engine.New(cfg)
}
