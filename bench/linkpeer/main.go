// Command linkpeer is the TCP baseline for BenchmarkLink1Gbit: what the link
// carries with no WebRTC at all.
//
//	linkpeer recv --listen ADDR (--out FILE | --untar DIR) [--cert F --key F]
//	linkpeer send --to HOST:PORT (--in FILE | --tar DIR) [--ca F]
//
// One TCP connection, io.Copy from the file to the socket and from the socket
// to the file (fsynced, as peerdrop does). With --cert/--ca the stream is TLS
// 1.3 with Go's defaults, what an HTTPS transfer tool such as LocalSend costs;
// the sender verifies the receiver's certificate against --ca. With --tar and
// --untar a folder goes as one tar stream (archive/tar), as `tar | nc` would
// send it.
//
// The receiver prints JSON lines on stdout: {"event":"listening","port":N},
// then "open" when the sender connects and "done" when everything is on disk.
// Errors go to stderr with a non-zero exit status.
package main

import (
	"archive/tar"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const ioTimeout = 5 * time.Minute // a broken run ends instead of hanging

func event(name string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["event"] = name
	b, _ := json.Marshal(fields)
	_, _ = os.Stdout.Write(append(b, '\n'))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: linkpeer recv --listen ADDR (--out FILE | --untar DIR) | send --to HOST:PORT (--in FILE | --tar DIR)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "recv":
		err = recv(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkpeer: %v\n", err)
		os.Exit(1)
	}
}

func recv(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "TCP address to listen on")
	out := fs.String("out", "", "file to write")
	untar := fs.String("untar", "", "folder to extract a tar stream into")
	cert := fs.String("cert", "", "TLS certificate (PEM); with --key, the stream is TLS")
	key := fs.String("key", "", "TLS key (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*out == "") == (*untar == "") {
		return errors.New("recv needs one of --out and --untar")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	defer ln.Close()
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("load certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13})
	}
	event("listening", map[string]any{"port": ln.Addr().(*net.TCPAddr).Port})
	conn, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
	}
	event("open", nil)
	var n int64
	if *out != "" {
		n, err = toFile(conn, *out)
	} else {
		n, err = extract(conn, *untar)
	}
	if err != nil {
		return err
	}
	event("done", map[string]any{"bytes": n})
	return nil
}

// toFile copies r into a new file at path and syncs it.
func toFile(r io.Reader, path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

// extract writes the regular files and folders of a tar stream under dir;
// names that would leave dir are refused.
func extract(r io.Reader, dir string) (int64, error) {
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read tar: %w", err)
		}
		if !filepath.IsLocal(h.Name) {
			return total, fmt.Errorf("tar entry %q leaves the folder", h.Name)
		}
		dst := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
				var n int64
				n, err = toFile(tr, dst)
				total += n
			}
		default:
			err = fmt.Errorf("tar entry %q: type %c not supported", h.Name, h.Typeflag)
		}
		if err != nil {
			return total, err
		}
	}
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	to := fs.String("to", "", "receiver HOST:PORT")
	in := fs.String("in", "", "file to send")
	tarDir := fs.String("tar", "", "folder to send as one tar stream")
	ca := fs.String("ca", "", "TLS: the receiver's certificate (PEM) to verify against")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*in == "") == (*tarDir == "") {
		return errors.New("send needs one of --in and --tar")
	}
	conn, err := dial(*to, *ca)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	if *in != "" {
		err = fromFile(conn, *in)
	} else {
		err = archive(conn, *tarDir)
	}
	if err != nil {
		return err
	}
	cw, ok := conn.(interface{ CloseWrite() error }) // *net.TCPConn, *tls.Conn
	if !ok {
		return fmt.Errorf("%T cannot half-close", conn)
	}
	if err := cw.CloseWrite(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	// Read until the receiver closes: it has everything on disk then, and
	// nothing unread (a TLS session ticket) turns our close into a reset.
	_, _ = io.Copy(io.Discard, conn)
	return nil
}

// dial connects to addr, with TLS verified against the certificate in ca
// when ca is set.
func dial(addr, ca string) (net.Conn, error) {
	if ca == "" {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		return c, nil
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", ca)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	host, _, _ := strings.Cut(addr, ":")
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS13})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

func fromFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("send %s: %w", path, err)
	}
	return nil
}

// archive writes dir's folders and regular files as a tar stream.
func archive(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		return fromFile(tw, p)
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return tw.Close()
}
