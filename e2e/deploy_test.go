//go:build linux

package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// deploy/nginx/peerdrop.conf, run as shipped with Debian's nginx (started
// privately: its own prefix, pid, logs and temp folders in the test's
// folder) in front of two real `peerdrop serve` instances: the config is
// valid (nginx -t), plain HTTP is redirected to HTTPS, WebSockets pass
// through TLS to both instances (each instance's
// peerdrop_rendezvous_connections counts its share) and carry messages
// both ways, /healthz answers through the proxy, and once one instance has
// stopped, new connections all reach the other.
func TestDeployNginx(t *testing.T) {
	nginx := nginxBinary(t)
	ctx := testContext(t)

	// Two instances as the systemd unit runs them (without Redis: this
	// test is about the proxy).
	type instance struct {
		p            *proc
		addr, metric string
	}
	var inst [2]instance
	for i := range inst {
		p := start(t, ctx, fmt.Sprintf("serve%d", i+1), false, "--config-dir", t.TempDir(), "--json",
			"serve", "--listen", "127.0.0.1:0", "--turn-listen", "off", "--metrics-listen", "127.0.0.1:0")
		ev := p.await("serving", nil)
		inst[i] = instance{p: p, addr: ev.str("address"), metric: ev.str("metrics")}
		require.NotEmpty(t, inst[i].metric)
	}

	dir := t.TempDir()
	certFile, keyFile, roots := selfSignedCert(t, dir)
	httpPort, httpsPort := freePort(t), freePort(t)
	site := nginxSite(t, httpPort, httpsPort, inst[0].addr, inst[1].addr, certFile, keyFile)
	conf := nginxMainConf(t, dir, site)

	out, err := exec.CommandContext(ctx, nginx, "-t", "-p", dir+"/", "-e", "stderr", "-c", conf).CombinedOutput()
	require.NoError(t, err, "nginx -t: %s", out)
	require.Contains(t, string(out), "test is successful")

	startNginx(t, ctx, nginx, dir, conf, httpsPort)
	base := "https://127.0.0.1:" + strconv.Itoa(httpsPort)
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		// The redirect is checked, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	resp, _ := get(fmt.Sprintf("http://127.0.0.1:%d/some/page?x=1", httpPort))
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "https://127.0.0.1/some/page?x=1", resp.Header.Get("Location"))

	resp, body := get(base + "/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", body)
	resp, body = get(base + "/")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the web client through the proxy")
	assert.Contains(t, strings.ToLower(body), "<html")

	// dial opens connection i through the proxy and has its hello
	// answered by the instance it reached. Odd ones say they come from the
	// page's own origin, as a browser on https://127.0.0.1/ would: the
	// server lets them in only if nginx passes the Host on. The context it
	// returns ends when the connection does; until then the connection is
	// read (answering pings and the server's close).
	dial := func(i int) context.Context {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		opts := &websocket.DialOptions{Subprotocols: []string{rendezvous.Subprotocol}, HTTPClient: client}
		if i%2 == 1 {
			opts.HTTPHeader = http.Header{"Origin": {"https://127.0.0.1"}}
		}
		ws, _, err := websocket.Dial(dctx, "wss://127.0.0.1:"+strconv.Itoa(httpsPort)+"/ws", opts)
		require.NoError(t, err, "WebSocket %d through nginx", i)
		t.Cleanup(func() { _ = ws.CloseNow() })
		require.Equal(t, rendezvous.Subprotocol, ws.Subprotocol())
		read := func() rendezvous.Envelope {
			_, data, err := ws.Read(dctx)
			require.NoError(t, err, "WebSocket %d", i)
			var e rendezvous.Envelope
			require.NoError(t, json.Unmarshal(data, &e))
			return e
		}
		require.Equal(t, rendezvous.TypeWelcome, read().Type)
		h := rendezvousHello(t, fmt.Sprintf("Device %d", i))
		data, err := json.Marshal(rendezvous.Envelope{Type: rendezvous.TypeHello, Req: 1, Device: &h})
		require.NoError(t, err)
		require.NoError(t, ws.Write(dctx, websocket.MessageText, data))
		reply := read()
		require.Equal(t, rendezvous.TypeOK, reply.Type, "hello answered: %+v", reply)
		return ws.CloseRead(ctx)
	}
	conns := func(i int) int {
		t.Helper()
		resp, body := get(inst[i].metric)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "peerdrop_rendezvous_connections "); ok {
				n, err := strconv.Atoi(v)
				require.NoError(t, err)
				return n
			}
		}
		require.FailNow(t, "no peerdrop_rendezvous_connections", "instance %d's metrics:\n%s", i+1, body)
		return 0
	}

	const n = 6
	var open [n]context.Context
	for i := range n {
		open[i] = dial(i)
	}
	a, b := conns(0), conns(1)
	assert.Equal(t, n, a+b, "every connection is open on one instance")
	assert.Positive(t, a, "instance 1 got connections (%d and %d)", a, b)
	assert.Positive(t, b, "instance 2 got connections (%d and %d)", a, b)

	// One instance stops: its clients' connections end through the proxy
	// (the server closes them with "going away"; they would reconnect
	// through the same URL), the others stay, new connections reach the
	// other instance, and /healthz still says ok.
	inst[0].p.signal(syscall.SIGTERM)
	require.Equal(t, 0, inst[0].p.wait(), "instance 1 stops cleanly")
	ended := func() int {
		k := 0
		for _, c := range open {
			if c.Err() != nil {
				k++
			}
		}
		return k
	}
	require.Eventually(t, func() bool { return ended() >= a }, 10*time.Second, 20*time.Millisecond,
		"instance 1's %d connections end", a)
	assert.Equal(t, a, ended(), "instance 2's connections stay open")
	for i := n; i < n+4; i++ {
		dial(i)
	}
	assert.Equal(t, b+4, conns(1), "the new connections all went to instance 2")
	resp, body = get(base + "/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", body)
}

// nginxBinary is Debian's nginx, or skips the test.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	// /usr/sbin is not on every user's PATH.
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Skip("skipped: needs nginx (Debian package nginx; make test installs it)")
	return ""
}

// nginxSite is deploy/nginx/peerdrop.conf for this test, written to dir:
// the spellings its header names rewritten (outside comments) to loopback
// ports, the two instances and the test's certificate. A spelling that is
// not on exactly one line fails the test: the file changed, and the test
// must change with it.
func nginxSite(t *testing.T, httpPort, httpsPort int, upstream1, upstream2, certFile, keyFile string) string {
	t.Helper()
	root, err := moduleRoot()
	require.NoError(t, err)
	src := filepath.Join(root, "deploy", "nginx", "peerdrop.conf")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	for _, r := range []struct{ old, new string }{
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort)},
		{"listen [::]:80;", ""},
		{"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", httpsPort)},
		{"listen [::]:443 ssl;", ""},
		{"server 127.0.0.1:8081 ", "server " + upstream1 + " "},
		{"server 127.0.0.1:8082 ", "server " + upstream2 + " "},
		{"/etc/letsencrypt/live/peerdrop.example.org/fullchain.pem", certFile},
		{"/etc/letsencrypt/live/peerdrop.example.org/privkey.pem", keyFile},
	} {
		found := 0
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "#") || !strings.Contains(l, r.old) {
				continue
			}
			found++
			lines[i] = strings.Replace(l, r.old, r.new, 1)
		}
		require.Equal(t, 1, found, "%s should hold %q on one line outside comments (the test rewrites it)", src, r.old)
	}
	site := filepath.Join(t.TempDir(), "peerdrop.conf")
	require.NoError(t, os.WriteFile(site, []byte(strings.Join(lines, "\n")), 0o644))
	return site
}

// nginxMainConf writes the main config that includes site in its http
// block, as Debian's /etc/nginx/nginx.conf includes sites-enabled/. Every
// path nginx would write is in dir: run as root, it must not touch
// /var/log/nginx, /var/lib/nginx or /run.
func nginxMainConf(t *testing.T, dir, site string) string {
	t.Helper()
	conf := filepath.Join(dir, "nginx.conf")
	// One process, no master: when the test ends, killing it leaves no
	// worker behind.
	text := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;

events {
    worker_connections 256;
}

http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s;
}
`, dir, site)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o644))
	return conf
}

// startNginx runs nginx in the foreground until the test ends, and waits
// until it accepts on port.
func startNginx(t *testing.T, ctx context.Context, nginx, dir, conf string, port int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, nginx, "-p", dir+"/", "-e", "stderr", "-c", conf)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // fast shutdown
	cmd.WaitDelay = 10 * time.Second
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() || os.Getenv("PEERDROP_E2E_DUMP") != "" {
			t.Logf("nginx:\n%s", out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return true // reported below
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 10*time.Second, 50*time.Millisecond, "nginx listens on %s", addr)
	select {
	case <-done:
		require.FailNow(t, "nginx exited", "%s", out.String())
	default:
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key (PEM) to
// dir, and returns them with a pool that trusts the certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "peerdrop.example.org"},
		DNSNames:              []string{"peerdrop.example.org"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
