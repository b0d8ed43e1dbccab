package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/remote"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
)

func (e *env) receive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dir := fs.String("dir", engine.DefaultDownloadDir(), "download folder")
	yes := fs.Bool("yes", false, "accept every offer without asking")
	trusted := fs.Bool("trusted", false, "accept offers from trusted devices without asking (see peerdrop trust); ask about others")
	hidden := fs.Bool("hidden", false, "do not advertise on the local network: senders need HOST:PORT")
	once := fs.Bool("once", false, "exit after one offer or message")
	port := fs.Int("port", signaling.DefaultPort, "TCP port for the LAN handshake (0: any free port)")
	server := fs.String("server", "", "rendezvous server URL (peerdrop serve): also show a pairing code for a device on another network, and be reachable there by paired devices")
	relayOnly := fs.Bool("relay-only", false, "with --server: connect only through the server's TURN relay (the sender never learns your addresses)")
	webOn := fs.Bool("web", false, "also serve the web client for phones and tablets on this network (its address is shown as a QR code)")
	webListen := fs.String("web-listen", ":53319", "with --web: the web client's HTTP address")
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
	if *relayOnly && *server == "" {
		return &exitError{code: 2, err: errors.New("--relay-only needs --server")}
	}
	if flagGiven(fs, "web-listen") && !*webOn {
		return &exitError{code: 2, err: errors.New("--web-listen needs --web")}
	}
	webAddr := ""
	if *webOn {
		webAddr = *webListen
	}
	var wsURL string
	if *server != "" {
		u, err := serverURL(*server)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		wsURL = u
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("download folder: %w", err)
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("download folder: %w", err)
	}
	transfer.CleanStale(absDir, transfer.StaleAfter)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// With --once, the first offer or message that ends decides the exit status.
	var (
		resultMu sync.Mutex
		result   error
		finished bool
	)
	finish := func(err error) {
		resultMu.Lock()
		defer resultMu.Unlock()
		if finished || !*once {
			return
		}
		finished, result = true, err
		// Give the sender a moment to read our last message and close; then go.
		time.AfterFunc(5*time.Second, cancel)
	}

	var promptMu sync.Mutex
	// One reader owns stdin for the whole run, so an unanswered prompt
	// (the sender went away) does not swallow the answer to the next one.
	var lines chan string
	if !*yes {
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
	rcv := &transfer.Receiver{
		Dir: absDir,
		Decide: func(ctx context.Context, o transfer.OfferReceived) bool {
			if *yes {
				return true
			}
			if *trusted && e.trust.IsTrusted(o.From.ID, o.From.Fingerprint) {
				e.out.say("Accepting from trusted device %s.", visible.Escape(o.From.Name))
				return true
			}
			promptMu.Lock()
			defer promptMu.Unlock()
			return e.prompt(ctx, lines, o)
		},
		OnEvent: func(ev transfer.Event) {
			e.out.event(ev)
			switch ev := ev.(type) {
			case transfer.TransferDone:
				switch {
				case ev.Cancelled:
					finish(errors.New("the transfer was cancelled"))
				case len(ev.Failed) > 0:
					finish(fmt.Errorf("%d files did not arrive: %s", len(ev.Failed), strings.Join(ev.Failed, ", ")))
				default:
					finish(nil)
				}
			case transfer.Declined:
				if ev.Reason != "" && ev.Reason != "declined by the receiver" {
					finish(fmt.Errorf("the offer was declined: %s", ev.Reason))
				} else {
					finish(errors.New("you declined the offer"))
				}
			case transfer.TextReceived:
				finish(nil)
			}
		},
	}
	handle := func(ctx context.Context, c *peer.Conn) {
		defer c.Close()
		p := peerOf(c)
		err := rcv.Handle(ctx, p, c)
		var pe *transfer.ProtocolError
		switch {
		case errors.As(err, &pe):
			e.reportError(fmt.Errorf("%s: %w", visible.Escape(p.Name), err))
			finish(err)
		case errors.Is(err, transfer.ErrClosed), errors.Is(err, context.Canceled), err == nil:
		default:
			e.reportError(fmt.Errorf("%s: %w", visible.Escape(p.Name), err))
		}
		resultMu.Lock()
		done := finished
		resultMu.Unlock()
		if done {
			cancel() // the sender has closed: no need to wait
		}
	}
	if wsURL != "" {
		// The LAN first: devices nearby reach us directly, as without
		// --server (on any free port unless --port says otherwise); the
		// server is for the others. Not being able to listen on the LAN
		// is no reason to stop.
		lanPort := *port
		if !flagGiven(fs, "port") {
			lanPort = 0
		}
		var lan sync.WaitGroup
		lan.Go(func() {
			if err := e.receiveLAN(ctx, lanPort, *hidden, webAddr, absDir, handle); err != nil && ctx.Err() == nil {
				e.reportError(fmt.Errorf("not receiving on the local network, only through the server: %w", err))
			}
		})
		err = e.receiveRemote(ctx, wsURL, *relayOnly, absDir, handle, func(err error) {
			if *once && (errors.Is(err, pairing.ErrMismatch) || errors.Is(err, pairing.ErrProtocol)) {
				// With --once, a failed pairing ends the run, at once:
				// there is no sender to wait for.
				finish(err)
				cancel()
			}
		})
		cancel()
		lan.Wait()
	} else {
		err = e.receiveLAN(ctx, *port, *hidden, webAddr, absDir, handle)
	}
	if err != nil {
		return err
	}
	resultMu.Lock()
	defer resultMu.Unlock()
	if *once && !finished {
		return errors.New("stopped before anything arrived")
	}
	return result
}

// receiveLAN listens for the LAN handshake (and advertises, unless hidden)
// until ctx ends; with webAddr, it also serves the web client there.
func (e *env) receiveLAN(ctx context.Context, port int, hidden bool, webAddr, absDir string, handle func(context.Context, *peer.Conn)) error {
	ln, err := peer.Listen(fmt.Sprintf(":%d", port), e.cfg)
	if err != nil {
		return err
	}
	ln.Check = e.checkPeer
	ln.OnError = func(from net.Addr, err error) {
		e.reportError(fmt.Errorf("connection from %s failed: %w", from, err))
	}
	addr := ln.Addr().(*net.TCPAddr)
	var advertising sync.WaitGroup
	defer advertising.Wait() // the goodbye goes out before we exit
	if !hidden {
		adv := &discovery.Advertiser{Info: e.selfInfo(), Port: addr.Port, OnError: e.reportError}
		advertising.Add(1)
		go func() {
			defer advertising.Done()
			if err := adv.Run(ctx); err != nil {
				e.reportError(err)
			}
		}()
	}
	if e.out.json {
		e.out.jsonEvent("listening", map[string]any{
			"port": addr.Port, "address": addr.String(), "dir": absDir,
			"device_id": e.cfg.Identity.DeviceID, "name": e.cfg.Name, "fingerprint": e.cfg.Identity.Fingerprint,
			"type": e.deviceType, "discoverable": !hidden,
		})
	} else {
		visible := "nearby devices can see it"
		if hidden {
			visible = "hidden from nearby devices"
		}
		e.out.say("%s is ready to receive on port %d (%s); files go to %s", e.cfg.Name, addr.Port, visible, absDir)
	}
	if webAddr == "" {
		return ln.Serve(ctx, handle)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	webErr := make(chan error, 1)
	go func() {
		err := e.serveWeb(ctx, webAddr, hidden, handle)
		cancel() // without its web server, --web stops altogether
		webErr <- err
	}()
	err = ln.Serve(ctx, handle)
	cancel()
	return errors.Join(err, <-webErr)
}

// receiveRemote shows a pairing code from the rendezvous server at wsURL
// and takes the devices that join with it, or that find us by our device id,
// until ctx ends. When the server connection drops it connects again, with
// backoff, and shows a new code; only a first connection that fails is an
// error. pairingFailed hears about failed pairings (a wrong code), after
// they are reported.
func (e *env) receiveRemote(ctx context.Context, wsURL string, relayOnly bool, absDir string, handle func(context.Context, *peer.Conn), pairingFailed func(error)) error {
	cfg := e.cfg
	cfg.RelayOnly = relayOnly
	first, again := true, false // again: the first code after connecting again
	h := &remote.Host{
		Config: cfg,
		Check:  e.checkPeer,
		Known:  e.trust.IsPinned,
		OnCode: func(c remote.Code) {
			if !e.out.json {
				switch {
				case first:
					e.out.say("%s is ready to receive through %s; files go to %s", e.cfg.Name, wsURL, absDir)
				case again:
					e.out.say("Connected to the server again; the old code is gone, here is a new one.")
				default:
					e.out.say("The previous code expired, or a pairing with it failed; here is a new one.")
				}
			}
			first, again = false, false
			e.showCode(c.Code, c.Expires, wsURL)
		},
		OnError: func(err error) {
			e.reportError(err)
			pairingFailed(err)
		},
	}
	defer h.Wait() // connections that outlived a lost server
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		start := time.Now()
		served, err := e.serveRemote(ctx, wsURL, h, handle)
		if ctx.Err() != nil {
			return nil // stopping: the connection ended with us
		}
		if attempt == 0 && !served {
			return err
		}
		if served && time.Since(start) > stableServer {
			backoff = time.Second // it worked for a while: a new outage
		}
		again = true
		if e.out.json {
			e.out.jsonEvent("server-reconnecting", map[string]any{"server": wsURL, "error": errString(err), "in_ms": backoff.Milliseconds()})
		} else {
			e.out.say("Lost the server %s (%v); connecting again in %s.", wsURL, oneLine(err), backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxServerBackoff)
	}
}

// stableServer is how long a server connection must have served for the
// next outage to start the backoff afresh.
const stableServer = 10 * time.Second

// maxServerBackoff caps the wait between attempts to reach the server again.
const maxServerBackoff = 30 * time.Second

// serveRemote connects to the server once, announces this device and serves
// h until the connection ends. served says whether it got that far.
func (e *env) serveRemote(ctx context.Context, wsURL string, h *remote.Host, handle func(context.Context, *peer.Conn)) (served bool, err error) {
	client, err := e.dialServer(ctx, wsURL)
	if err != nil {
		return false, err
	}
	defer client.Close()
	// Paired devices may find us by our device id (send --server --to).
	err = remote.Announce(ctx, client, e.cfg.Identity.Signer(), e.cfg.Identity.CertificateDER())
	switch {
	case errors.Is(err, remote.ErrIDBound):
		e.reportError(fmt.Errorf("the server %s has this device's id bound to another certificate, so paired devices cannot reach it there by name; pairing with a code still works", wsURL))
	case err != nil:
		return false, fmt.Errorf("announce this device on the server %s: %w", wsURL, err)
	}
	err = h.Serve(ctx, client, handle)
	if err == nil {
		err = errors.New("the server closed the connection")
	}
	return true, err
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
func (e *env) prompt(ctx context.Context, lines <-chan string, o transfer.OfferReceived) bool {
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
	fmt.Fprintf(&b, "\nVerification code: %s (the same on both screens means no one is in the middle)", e.out.code(o.From))
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
