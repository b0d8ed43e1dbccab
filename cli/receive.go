package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

func (e *env) receive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dir := fs.String("dir", engine.DefaultDownloadDir(), "download folder")
	yes := fs.Bool("yes", false, "accept every offer without asking")
	trusted := fs.Bool("trusted", false, "accept offers from trusted devices without asking (see peerdrop trust); ask about others")
	hidden := fs.Bool("hidden", false, "do not advertise on the local network: senders need HOST:PORT")
	once := fs.Bool("once", false, "exit after one offer or message")
	port := fs.Int("port", engine.DefaultPort, "TCP port for the LAN handshake (0: any free port)")
	udpPort := fs.Int("udp-port", 0, "the one UDP port every transfer uses (default: the --port number; with 0 given, a random port per transfer)")
	server := fs.String("server", "", "rendezvous server URL (peerdrop serve): also show a pairing code for a device on another network, and be reachable there by paired devices")
	relayOnly := fs.Bool("relay-only", false, "with --server: connect only through the server's TURN relay (the sender never learns your addresses)")
	webOn := fs.Bool("web", false, "also serve the web client for phones and tablets on this network (its address is shown as a QR code)")
	webListen := fs.String("web-listen", ":53319", "with --web: the web client's HTTP address")
	checkLS := localSendFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("receive takes no arguments, got %q", fs.Arg(0))}
	}
	if *yes && *trusted {
		return &exitError{code: 2, err: errors.New("--yes accepts everything; give --yes or --trusted, not both")}
	}
	if *port < 0 || *port > 65535 {
		return &exitError{code: 2, err: fmt.Errorf("--port %d out of range", *port)}
	}
	if *udpPort < 0 || *udpPort > 65535 {
		return &exitError{code: 2, err: fmt.Errorf("--udp-port %d out of range", *udpPort)}
	}
	if *relayOnly && *server == "" {
		return &exitError{code: 2, err: errors.New("--relay-only needs --server")}
	}
	if flagGiven(fs, "web-listen") && !*webOn {
		return &exitError{code: 2, err: errors.New("--web-listen needs --web")}
	}
	if err := checkLS(); err != nil {
		return err
	}
	e.applyLocalSend(fs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the reader of the prompts' answers
	o := engine.ReceiveOptions{
		Dir: *dir, Once: *once, Hidden: *hidden, Port: *port, PortGiven: flagGiven(fs, "port"),
		RelayOnly: *relayOnly, Ask: e.prompter(ctx),
		UDPPort: *udpPort, PerConnectionUDP: flagGiven(fs, "udp-port") && *udpPort == 0,
	}
	if *webOn {
		o.WebListen = *webListen
	}
	switch {
	case *yes:
		o.Accept = engine.AcceptAll
	case *trusted:
		o.Accept = engine.AcceptTrusted
	}
	if *server != "" {
		u, err := serverURL(*server)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		o.Server = u
	}
	return e.eng.Receive(ctx, o)
}

// prompter asks the person at the terminal about offers. One reader owns
// stdin for the whole run, so an unanswered prompt (the sender went away)
// does not swallow the answer to the next one.
func (e *env) prompter(ctx context.Context) func(context.Context, engine.IncomingOffer) bool {
	var (
		once  sync.Once
		lines chan string
	)
	start := func() {
		lines = make(chan string)
		go func() {
			sc := bufio.NewScanner(e.stdin)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
			close(lines)
		}()
	}
	return func(offerCtx context.Context, o engine.IncomingOffer) bool {
		once.Do(start)
		return e.prompt(offerCtx, lines, o)
	}
}

// flagGiven reports whether the command line set flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// reportError tells the user about a problem that does not stop receiving.
func (e *env) reportError(err error) {
	if e.out.json {
		e.out.jsonEvent("error", map[string]any{"message": err.Error()})
		return
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	fmt.Fprintf(e.stderr, "peerdrop: %s\n", visible.Escape(oneLine(err)))
}

// prompt asks the person at the terminal about an offer.
func (e *env) prompt(ctx context.Context, lines <-chan string, o engine.IncomingOffer) bool {
	var b strings.Builder
	// Names and text come from the network: what prints nothing or moves
	// the cursor is shown escaped, a name that mixes scripts is marked.
	fmt.Fprintf(&b, "%s wants to send you ", visible.Name(o.From.Name))
	switch {
	case o.Files == 0 && o.Folders == 0:
		b.WriteString("a message")
	default:
		fmt.Fprintf(&b, "%d files", o.Files)
		if o.Folders > 0 {
			fmt.Fprintf(&b, " in %d folders", o.Folders)
		}
		names := make([]string, len(o.First))
		for i, n := range o.First {
			names[i] = visible.Name(n)
		}
		fmt.Fprintf(&b, " (%s): %s", humanBytes(o.Size), strings.Join(names, ", "))
	}
	if o.Text != "" {
		fmt.Fprintf(&b, "\n  %q", o.Text)
	}
	fmt.Fprintf(&b, "\nVerification code: %s (the same on both screens means no one is in the middle)", o.From.Code)
	fmt.Fprintf(e.stderr, "%s\nAccept? [y/N] ", b.String())
	select {
	case line, ok := <-lines:
		if !ok {
			fmt.Fprintln(e.stderr, "(no answer: standard input is closed; use --yes to accept without asking)")
			return false
		}
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes"
	case <-ctx.Done():
		fmt.Fprintln(e.stderr, "(the sender went away)")
		return false
	}
}
