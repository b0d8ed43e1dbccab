// Package cli is the headless face of the engine: the peerdrop command's
// flags, prompts, progress bars and JSON events. cmd/peerdrop only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/version"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

const usage = `peerdrop: send files and messages directly to other devices, nearby or across networks.

Usage:
  peerdrop [--config-dir DIR] [--name NAME] [--type TYPE] [--json] [--verbose] <command>
  peerdrop --version

Commands:
  receive [--dir DIR] [--yes | --trusted] [--once] [--port N] [--udp-port N] [--hidden]
                            wait for offers, visible to nearby devices (unless --hidden);
                            prompt, or accept all (--yes) or those from trusted devices (--trusted)
  receive --web [--web-listen :53319] [other receive flags]
                            also serve the web client: phones and tablets open the address
                            shown (QR code), send here or to nearby devices (unless --hidden)
                            through this process, and receive from them
  receive --server URL [--relay-only] [--dir DIR] [--yes | --trusted] [--once]
                            show a pairing code for a device on another network
                            (through peerdrop serve; nothing listens on the LAN)
  send --to NAME|ID|HOST:PORT [--wait 3s] [--text MSG] [PATH...]
                            send files, folders and/or a message; NAME and ID are looked up nearby
  send --server URL --code CODE [--relay-only] [--text MSG] [PATH...]
                            send to the device on another network that shows CODE
  send --server URL --to NAME|ID [--relay-only] [--text MSG] [PATH...]
                            send to a paired (pinned) device through the server, no code
  devices [--wait 3s] [--watch]
                            list nearby devices: name, type, id, address, verification code
  doctor [--to NAME|ID|HOST:PORT] [--wait 3s] [--port 53318]
                            check the network: interfaces, multicast, this device's ports and,
                            with --to, each step of a connection to a device; says what to fix
  trust list | add DEVICE | remove DEVICE | forget DEVICE
                            pinned devices; trust one, or forget it to pair again
  serve [--listen :8080] [--tls-cert F --tls-key F] [--turn-listen :3478] [--public-ip IP]
        [--realm NAME] [--turn-secret-file F] [--external-turn URL...]
        [--metrics-listen 127.0.0.1:9090] [--net4-prefix 24] [--net6-prefix 56]
        [--redis URL [--redis-password-file F]] [--client-ip-header NAME] [--max-connections 10000]
                            run the rendezvous server for devices on different networks:
                            WebSocket signaling, STUN/TURN, and the web client at /

TYPE is desktop, laptop, phone, tablet or server (default: guessed).
`

// exitError carries an exit status and a one-line reason.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// env is what every command gets.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	out    *output
	eng    *engine.Headless
}

// Run executes the command line args (without the program name) and returns
// the process exit status.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, args, stdin, stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "peerdrop: %s\n", visible.Escape(oneLine(err)))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// tuneGC trades a little memory for speed. pion copies every incoming
// message and the live heap stays small (a few MiB), so with the default
// GOGC=100 the collector runs every few megabytes and costs a quarter of a
// transfer's CPU time. A higher GOGC with a soft limit keeps the peak RSS
// well under 100 MiB (measured: ~55 MiB a side, 30% faster on a 300 MB
// file). GOGC or GOMEMLIMIT in the environment still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peerdrop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configDir := fs.String("config-dir", "", "folder for identity and state (default: the user config dir)")
	name := fs.String("name", "", "display name (default: the host name)")
	jsonOut := fs.Bool("json", false, "write one JSON event per line to stdout")
	verbose := fs.Bool("verbose", false, "log details to stderr")
	devType := fs.String("type", engine.DetectType(), "device type shown to others: desktop, laptop, phone, tablet or server")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if *showVersion {
		fmt.Fprintln(stdout, "peerdrop "+version.Get().String())
		return nil
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	if fs.NArg() == 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	if *configDir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("no config dir (use --config-dir): %w", err)
		}
		*configDir = filepath.Join(base, "peerdrop")
	}
	if *name == "" {
		h, _ := os.Hostname()
		*name = engine.DefaultName(h)
	}
	eng, err := engine.OpenHeadless(*configDir, *name, *devType)
	if err != nil {
		return usageError(err)
	}
	defer eng.Close()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, out: newOutput(stdout, stderr, *jsonOut), eng: eng}
	eng.OnEvent = e.report
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd != "serve" {
		// serve keeps Go's defaults: its heap is its connections (16 KiB
		// each), which a 48 MiB limit would make the collector chase.
		tuneGC()
	}
	switch cmd {
	case "receive":
		return e.receive(ctx, rest)
	case "send":
		return e.send(ctx, rest)
	case "devices":
		return e.devices(ctx, rest)
	case "trust":
		return e.trustCmd(rest)
	case "doctor":
		return e.doctor(ctx, rest)
	case "serve":
		return e.serve(ctx, rest)
	case "help":
		fs.Usage()
		return nil
	}
	fs.Usage()
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
}

// usageError gives a mistake on the command line (engine.BadInputError)
// exit status 2.
func usageError(err error) error {
	var bad *engine.BadInputError
	if errors.As(err, &bad) {
		return &exitError{code: 2, err: err}
	}
	return err
}
