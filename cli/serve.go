package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/relay"
	"github.com/thepeerdrop/peerdrop/rendezvous"
	"github.com/thepeerdrop/peerdrop/web"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// serve runs the rendezvous server: WebSocket signaling plus STUN/TURN (the
// embedded relay, or an external coturn that shares the secret).
func (e *env) serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	listen := fs.String("listen", ":8080", "address for WebSocket signaling, /healthz and the web client at /")
	metricsListen := fs.String("metrics-listen", defaultMetricsListen, `address for Prometheus /metrics ("": none); keep it off the public network`)
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve wss:// and https://")
	tlsKey := fs.String("tls-key", "", "TLS key file (PEM)")
	turnListen := fs.String("turn-listen", ":3478", `UDP address of the embedded STUN/TURN server ("off": none)`)
	publicIP := fs.String("public-ip", "", "the relay address clients are told (the server's public IP behind a 1:1 NAT)")
	realm := fs.String("realm", relay.DefaultRealm, "TURN realm")
	secretFile := fs.String("turn-secret-file", "", "file holding the TURN secret shared with coturn's static-auth-secret (default: a random secret for this run)")
	prefix4 := fs.Int("net4-prefix", 24, "IPv4 addresses sharing this many leading bits are one network for the connection limit per network")
	prefix6 := fs.Int("net6-prefix", 56, "the same for IPv6")
	var external listFlag
	fs.Var(&external, "external-turn", "a STUN/TURN URL of an external server (coturn with use-auth-secret) to hand out instead of the embedded one; repeatable")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))}
	}
	if *prefix4 < 1 || *prefix4 > 32 || *prefix6 < 1 || *prefix6 > 128 {
		return &exitError{code: 2, err: errors.New("--net4-prefix takes 1 to 32 bits, --net6-prefix 1 to 128")}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return &exitError{code: 2, err: errors.New("give both --tls-cert and --tls-key, or neither")}
	}
	var ip net.IP
	if *publicIP != "" {
		if ip = net.ParseIP(*publicIP); ip == nil {
			return &exitError{code: 2, err: fmt.Errorf("--public-ip %q is not an IP address", *publicIP)}
		}
	}
	if len(external) > 0 && *secretFile == "" {
		return &exitError{code: 2, err: errors.New("--external-turn needs --turn-secret-file: the external server must share the secret")}
	}
	secret, err := turnSecret(*secretFile)
	if err != nil {
		return err
	}

	// The STUN/TURN entries every client gets on connecting, with fresh
	// credentials of its own.
	var iceFor func(id string) ([]webrtc.ICEServer, error)
	turnDesc := "none"
	switch {
	case len(external) > 0:
		if _, err := relay.External(external, secret, "check", 0); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--external-turn: %w", err)}
		}
		iceFor = func(id string) ([]webrtc.ICEServer, error) { return relay.External(external, secret, id, 0) }
		turnDesc = strings.Join(external, " ")
	case *turnListen != "off" && *turnListen != "":
		rs, err := relay.New(relay.Config{ListenUDP: *turnListen, PublicIP: ip, Realm: *realm, Secret: secret})
		if err != nil {
			return fmt.Errorf("start STUN/TURN on %s: %w", *turnListen, err)
		}
		defer rs.Close()
		iceFor = func(id string) ([]webrtc.ICEServer, error) { return rs.ICEServers(id), nil }
		_, port, _ := net.SplitHostPort(rs.Addr().String())
		turnDesc = net.JoinHostPort(rs.RelayIP().String(), port)
	}

	srv, err := rendezvous.New(rendezvous.Config{
		// The web client at /: a phone anywhere pairs with a code there.
		Site:        web.ServerSite(),
		PrefixBits4: *prefix4,
		PrefixBits6: *prefix6,
		ICEServers: func(clientID string) []rendezvous.ICEServer {
			if iceFor == nil {
				return nil
			}
			servers, err := iceFor(clientID)
			if err != nil {
				e.reportError(fmt.Errorf("ICE servers for a client: %w", err))
				return nil
			}
			out := make([]rendezvous.ICEServer, 0, len(servers))
			for _, s := range servers {
				cred, _ := s.Credential.(string)
				out = append(out, rendezvous.ICEServer{URLs: s.URLs, Username: s.Username, Credential: cred})
			}
			return out
		},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	var metricsAddr string
	if *metricsListen != "" {
		mln, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen for /metrics on %s (choose another with --metrics-listen, or \"\" for none): %w", *metricsListen, err)
		}
		metricsAddr = mln.Addr().String()
		stop := serveMetrics(mln, srv.Metrics())
		defer stop()
	}
	scheme := "ws"
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("load the TLS certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "wss"
	}
	addr := ln.Addr().String()
	if e.out.json {
		ev := map[string]any{"address": addr, "url": scheme + "://" + addr + "/ws",
			"web": webScheme(scheme) + "://" + addr + "/", "turn": turnDesc}
		if metricsAddr != "" {
			ev["metrics"] = "http://" + metricsAddr + "/metrics"
		}
		e.out.jsonEvent("serving", ev)
	} else {
		e.out.say("Serving signaling on %s://%s/ws (health: /healthz); STUN/TURN: %s", scheme, addr, turnDesc)
		if metricsAddr != "" {
			e.out.say("Metrics: http://%s/metrics", metricsAddr)
		}
		e.out.say("The web client for phones anywhere: %s://%s/", webScheme(scheme), addr)
	}
	err = srv.Serve(ctx, ln)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if !e.out.json {
		e.out.say("Stopped.")
	}
	return nil
}

// defaultMetricsListen keeps the counters on loopback: they say how busy the
// server is and what it refuses, which is nobody else's business.
const defaultMetricsListen = "127.0.0.1:9090"

// serveMetrics serves h at /metrics on ln until stop is called.
func serveMetrics(ln net.Listener, h http.Handler) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln) // ends with Close
	}()
	return func() {
		_ = hs.Close()
		<-done
	}
}

// webScheme is the page's scheme for a WebSocket scheme.
func webScheme(ws string) string {
	if ws == "wss" {
		return "https"
	}
	return "http"
}

// turnSecret reads the shared TURN secret, or makes one for this run.
func turnSecret(path string) ([]byte, error) {
	if path == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("make a TURN secret: %w", err)
		}
		return b, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the TURN secret: %w", err)
	}
	defer f.Close()
	// Like ssh with a private key: a secret others can read is no secret,
	// and saying so beats using it.
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("read the TURN secret: %w", err)
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: the TURN secret file can be read by others (mode %04o); make it private with: chmod 600 %s",
			path, perm, path)}
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read the TURN secret: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) < 16 {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: the TURN secret must be at least 16 characters", path)}
	}
	return secret, nil
}
