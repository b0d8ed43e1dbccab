package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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

// serveOptions are serve's flags.
type serveOptions struct {
	listen, metricsListen, tlsCert, tlsKey string
	turnListen, realm, secretFile          string
	redis, redisPasswordFile, clientIPHdr  string
	publicIP                               net.IP
	prefix4, prefix6, maxConns             int
	external                               listFlag
}

// serve runs the rendezvous server: WebSocket signaling plus STUN/TURN (the
// embedded relay, or an external coturn that shares the secret).
func (e *env) serve(ctx context.Context, args []string) error {
	o, err := e.serveFlags(args)
	if err != nil {
		return err
	}
	secret, err := turnSecret(o.secretFile)
	if err != nil {
		return err
	}
	iceFor, turnDesc, stopTURN, err := o.turn(secret)
	if err != nil {
		return err
	}
	defer stopTURN()
	store, err := o.store(os.Getenv)
	if err != nil {
		return err
	}
	srv, err := rendezvous.New(rendezvous.Config{
		// The web client at /: a phone anywhere pairs with a code there.
		Site:           web.ServerSite(),
		PrefixBits4:    o.prefix4,
		PrefixBits6:    o.prefix6,
		ICEServers:     e.iceServers(iceFor),
		Store:          store,
		ClientIPHeader: o.clientIPHdr,
		MaxConns:       o.maxConns,
		Logger:         slog.Default(),
	})
	if err != nil {
		return err
	}
	ln, scheme, metricsAddr, stopMetrics, err := o.listenAll(srv)
	if err != nil {
		return err
	}
	defer stopMetrics()
	e.serving(ln.Addr().String(), scheme, turnDesc, metricsAddr)
	err = srv.Serve(ctx, ln)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if !e.out.json {
		e.out.say("Stopped.")
	}
	return nil
}

// serveFlags reads serve's command line.
func (e *env) serveFlags(args []string) (*serveOptions, error) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&o.listen, "listen", ":8080", "address for WebSocket signaling, /healthz and the web client at /")
	fs.StringVar(&o.metricsListen, "metrics-listen", defaultMetricsListen, `address for Prometheus /metrics ("": none); keep it off the public network`)
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve wss:// and https://")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&o.turnListen, "turn-listen", ":3478", `UDP address of the embedded STUN/TURN server ("off": none)`)
	publicIP := fs.String("public-ip", "", "the relay address clients are told (the server's public IP behind a 1:1 NAT)")
	fs.StringVar(&o.realm, "realm", relay.DefaultRealm, "TURN realm")
	fs.StringVar(&o.secretFile, "turn-secret-file", "", "file holding the TURN secret shared with coturn's static-auth-secret (default: a random secret for this run)")
	fs.IntVar(&o.prefix4, "net4-prefix", 24, "IPv4 addresses sharing this many leading bits are one network for the connection limit per network")
	fs.IntVar(&o.prefix6, "net6-prefix", 56, "the same for IPv6")
	fs.IntVar(&o.maxConns, "max-connections", 10000, "open WebSocket connections this instance holds at most (about 16 KiB of memory each, and one open file)")
	fs.Var(&o.external, "external-turn", "a STUN/TURN URL of an external server (coturn with use-auth-secret) to hand out instead of the embedded one; repeatable")
	fs.StringVar(&o.redis, "redis", "", "share codes, presence, pins and rate limits with other instances through this Redis (redis://HOST:6379/0, or rediss:// for TLS); the password comes from --redis-password-file or $"+redisPasswordEnv+", never the command line")
	fs.StringVar(&o.redisPasswordFile, "redis-password-file", "", "file holding the Redis password (mode 600)")
	fs.StringVar(&o.clientIPHdr, "client-ip-header", "", `behind a reverse proxy: the header holding the client's address ("X-Forwarded-For": its last entry), for the per-address limits; set it only when the proxy overwrites that header, or clients choose their own address`)
	if err := fs.Parse(args); err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	switch {
	case fs.NArg() > 0:
		return nil, &exitError{code: 2, err: fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))}
	case o.redis != "" && !strings.HasPrefix(o.redis, "redis://") && !strings.HasPrefix(o.redis, "rediss://"):
		return nil, &exitError{code: 2, err: fmt.Errorf("--redis %q: give a redis:// or rediss:// URL", o.redis)}
	case redisURLHasPassword(o.redis):
		return nil, &exitError{code: 2, err: errors.New("--redis: the URL holds a password, which every user of this machine can read in the process list; put it in --redis-password-file or $" + redisPasswordEnv)}
	case o.redisPasswordFile != "" && o.redis == "":
		return nil, &exitError{code: 2, err: errors.New("--redis-password-file needs --redis")}
	case o.prefix4 < 1 || o.prefix4 > 32 || o.prefix6 < 1 || o.prefix6 > 128:
		return nil, &exitError{code: 2, err: errors.New("--net4-prefix takes 1 to 32 bits, --net6-prefix 1 to 128")}
	case o.maxConns < 1:
		return nil, &exitError{code: 2, err: errors.New("--max-connections must be at least 1")}
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return nil, &exitError{code: 2, err: errors.New("give both --tls-cert and --tls-key, or neither")}
	}
	if *publicIP != "" {
		if o.publicIP = net.ParseIP(*publicIP); o.publicIP == nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("--public-ip %q is not an IP address", *publicIP)}
		}
	}
	if len(o.external) > 0 && o.secretFile == "" {
		return nil, &exitError{code: 2, err: errors.New("--external-turn needs --turn-secret-file: the external server must share the secret")}
	}
	return o, nil
}

// turn sets up the STUN/TURN entries every client gets on connecting, with
// fresh credentials of its own: the external servers', or the embedded
// relay's (started here; stop stops it), or none.
func (o *serveOptions) turn(secret []byte) (iceFor func(id string) ([]webrtc.ICEServer, error), desc string, stop func(), err error) {
	switch {
	case len(o.external) > 0:
		if _, err := relay.External(o.external, secret, "check", 0); err != nil {
			return nil, "", nil, &exitError{code: 2, err: fmt.Errorf("--external-turn: %w", err)}
		}
		iceFor = func(id string) ([]webrtc.ICEServer, error) { return relay.External(o.external, secret, id, 0) }
		return iceFor, strings.Join(o.external, " "), func() {}, nil
	case o.turnListen != "off" && o.turnListen != "":
		rs, err := relay.New(relay.Config{ListenUDP: o.turnListen, PublicIP: o.publicIP, Realm: o.realm, Secret: secret})
		if err != nil {
			return nil, "", nil, fmt.Errorf("start STUN/TURN on %s: %w", o.turnListen, err)
		}
		iceFor = func(id string) ([]webrtc.ICEServer, error) { return rs.ICEServers(id), nil }
		_, port, _ := net.SplitHostPort(rs.Addr().String())
		return iceFor, net.JoinHostPort(rs.RelayIP().String(), port), func() { _ = rs.Close() }, nil
	}
	return nil, "none", func() {}, nil
}

// iceServers turns iceFor into the server's hook.
func (e *env) iceServers(iceFor func(id string) ([]webrtc.ICEServer, error)) func(string) []rendezvous.ICEServer {
	return func(clientID string) []rendezvous.ICEServer {
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
	}
}

// listenAll opens the server's listener (with TLS when asked) and the
// metrics listener (when asked; stop ends it).
func (o *serveOptions) listenAll(srv *rendezvous.Server) (ln net.Listener, scheme, metricsAddr string, stop func(), err error) {
	stop = func() {}
	ln, err = net.Listen("tcp", o.listen)
	if err != nil {
		return nil, "", "", nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	scheme = "ws"
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			_ = ln.Close()
			return nil, "", "", nil, fmt.Errorf("load the TLS certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "wss"
	}
	if o.metricsListen != "" {
		mln, err := net.Listen("tcp", o.metricsListen)
		if err != nil {
			_ = ln.Close()
			return nil, "", "", nil, fmt.Errorf("listen for /metrics on %s (choose another with --metrics-listen, or \"\" for none): %w", o.metricsListen, err)
		}
		metricsAddr = mln.Addr().String()
		stop = serveMetrics(mln, srv.Metrics())
	}
	return ln, scheme, metricsAddr, stop, nil
}

// serving says where the server is.
func (e *env) serving(addr, scheme, turnDesc, metricsAddr string) {
	if e.out.json {
		ev := map[string]any{"address": addr, "url": scheme + "://" + addr + "/ws",
			"web": webScheme(scheme) + "://" + addr + "/", "turn": turnDesc}
		if metricsAddr != "" {
			ev["metrics"] = "http://" + metricsAddr + "/metrics"
		}
		e.out.jsonEvent("serving", ev)
		return
	}
	e.out.say("Serving signaling on %s://%s/ws (health: /healthz); STUN/TURN: %s", scheme, addr, turnDesc)
	if metricsAddr != "" {
		e.out.say("Metrics: http://%s/metrics", metricsAddr)
	}
	e.out.say("The web client for phones anywhere: %s://%s/", webScheme(scheme), addr)
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
	b, err := readSecretFile(path, "the TURN secret")
	if err != nil {
		return nil, err
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) < 16 {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: the TURN secret must be at least 16 characters", path)}
	}
	return secret, nil
}

// readSecretFile reads a file holding a secret (what names it in errors),
// refusing one that others can read.
func readSecretFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer f.Close()
	// Like ssh with a private key: a secret others can read is no secret,
	// and saying so beats using it.
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: the file of %s can be read by others (mode %04o); make it private with: chmod 600 %s",
			path, what, perm, path)}
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}

// redisPasswordEnv holds the Redis password when no file does: never the
// command line, which every user of the machine can read.
const redisPasswordEnv = "PEERDROP_REDIS_PASSWORD"

// redisURLHasPassword reports a redis:// URL with a password in it.
func redisURLHasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}

// store is the rendezvous store of the options: in memory, or the Redis of
// --redis shared with other instances.
func (o *serveOptions) store(getenv func(string) string) (rendezvous.Store, error) {
	if o.redis == "" {
		return nil, nil
	}
	password := getenv(redisPasswordEnv)
	if o.redisPasswordFile != "" {
		b, err := readSecretFile(o.redisPasswordFile, "the Redis password")
		if err != nil {
			return nil, err
		}
		password = strings.TrimSpace(string(b))
	}
	st, err := rendezvous.NewRedisStore(rendezvous.RedisOptions{URL: o.redis, Password: password})
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--redis: %w", err)}
	}
	return st, nil
}
