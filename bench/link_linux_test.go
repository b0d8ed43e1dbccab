//go:build linux

package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// linkSize is what each subject moves in BenchmarkLink1Gbit.
const linkSize = 512 << 20

// Bars from the issue, for peerdrop on the 1 Gbit link.
const (
	linkMinTCPRatio = 0.6 // peerdrop MB/s ÷ TCP MB/s
	linkMaxCPUPerGB = 10  // CPU seconds per GiB, each side
)

// linkRow is one subject measured at one place.
type linkRow struct {
	place, subject string
	r              pairResult
	size           int64
	files          int   // files moved (0: one file, a MB/s row)
	phased         bool  // r.phase is timed (the subject prints events)
	drops          int64 // UDP datagrams dropped for a full receive buffer, both hosts
	note           string
}

// subject is one way of moving the file: the pair to run at a place, the
// file the receiver writes and what to remove after checking it.
type subject struct {
	name string
	pair func(pl place, tag string) (spec pairSpec, got, remove string)
}

// wrapNS runs both processes of spec in their namespaces, with env and
// pinned to one CPU each when sendCPU, recvCPU >= 0.
func wrapNS(spec pairSpec, pl place, env []string, sendCPU, recvCPU int) pairSpec {
	bin, recvArgs, sendArgs := spec.bin, spec.recvArgs, spec.sendArgs
	spec.bin = "ip"
	spec.recvArgs = inNS(pl.recv.ns, env, recvCPU, bin, recvArgs...)
	spec.sendArgs = func(port int) []string { return inNS(pl.send.ns, env, sendCPU, bin, sendArgs(port)...) }
	return spec
}

// tlsFiles are the receiver's certificate and key for the TLS baseline.
type tlsFiles struct{ cert, key string }

// linkSubjects lists the subjects for a src file of linkSize bytes.
func linkSubjects(pd, bare, lp, work, src string, tf tlsFiles) []subject {
	tcp := func(name string, tls bool) subject {
		return subject{name, func(pl place, tag string) (pairSpec, string, string) {
			out := filepath.Join(work, tag+".bin")
			recv := []string{"recv", "--listen", net.JoinHostPort(pl.recv.addr, "0"), "--out", out}
			send := []string{"send", "--in", src}
			if tls {
				recv = append(recv, "--cert", tf.cert, "--key", tf.key)
				send = append(send, "--ca", tf.cert)
			}
			spec := pairSpec{impl: name, bin: lp, recvArgs: recv, startEvent: "open", endEvent: "done", timeout: 5 * time.Minute,
				sendArgs: func(port int) []string {
					return append(send, "--to", net.JoinHostPort(pl.recv.addr, strconv.Itoa(port)))
				}}
			return wrapNS(spec, pl, nil, -1, -1), out, out
		}}
	}
	barePion := subject{"bare pion, defaults", func(pl place, tag string) (pairSpec, string, string) {
		out := filepath.Join(work, tag+".bin")
		spec := pairSpec{impl: "bare pion", bin: bare, startEvent: "open", endEvent: "done", timeout: 5 * time.Minute,
			recvArgs: []string{"recv", "--out", out, "--listen", net.JoinHostPort(pl.recv.addr, "0")},
			sendArgs: func(port int) []string {
				return []string{"send", "--to", net.JoinHostPort(pl.recv.addr, strconv.Itoa(port)), "--in", src}
			}}
		return wrapNS(spec, pl, nil, -1, -1), out, out
	}}
	peerdropWith := func(bin, name string, env []string, cpus bool, flags ...string) subject {
		return subject{name, func(pl place, tag string) (pairSpec, string, string) {
			spec, recvDir := peerdropPairTo(pl.recv.addr, bin, work, tag, 5*time.Minute, append(flags, src)...)
			spec.fileEvents = 1
			sendCPU, recvCPU := -1, -1
			if cpus {
				sendCPU, recvCPU = 0, 1
			}
			return wrapNS(spec, pl, env, sendCPU, recvCPU), filepath.Join(recvDir, filepath.Base(src)), recvDir
		}}
	}
	peerdrop := func(name string, env []string, cpus bool, flags ...string) subject {
		return peerdropWith(pd, name, env, cpus, flags...)
	}
	out := []subject{
		tcp("TCP (io.Copy)", false),
		tcp("TCP + TLS 1.3", true),
		barePion,
		peerdrop("peerdrop send", nil, false),
		peerdrop("peerdrop send --lanes 1", nil, false, "--lanes", "1"),
		peerdrop("peerdrop, each side on 1 core (taskset)", nil, true),
		peerdrop("peerdrop, 208 KiB UDP buffers", []string{"PEERDROP_UDP_BUFFER=212992"}, false),
	}
	if old := os.Getenv(baselineEnv); old != "" {
		// An earlier build, measured in the same run.
		out = append(out, peerdropWith(old, "peerdrop baseline ($"+baselineEnv+")", nil, false))
	}
	return out
}

// baselineEnv names an earlier peerdrop binary to measure beside this one,
// for a before/after table: PEERDROP_BENCH_BASELINE=/path/to/old/peerdrop.
const baselineEnv = "PEERDROP_BENCH_BASELINE"

// drops reads the UDP drop counters of a place's namespaces.
func drops(b *testing.B, pl place) int64 {
	n := udpDrops(b, pl.send.ns)
	if pl.recv.ns != pl.send.ns {
		n += udpDrops(b, pl.recv.ns)
	}
	return n
}

// measure runs one subject at one place and checks the file that arrived.
func measure(b *testing.B, pl place, s subject, tag, src string, sum [32]byte) linkRow {
	b.Helper()
	spec, got, remove := s.pair(pl, tag)
	before := drops(b, pl)
	r := runPair(b, spec)
	row := linkRow{place: pl.name, subject: s.name, r: r, size: linkSize, phased: true, drops: drops(b, pl) - before}
	b.StopTimer()
	verifyFile(b, got, linkSize, sum)
	_ = os.RemoveAll(remove)
	b.StartTimer()
	return row
}

// measureCroc runs croc at one place, or says why it could not.
func measureCroc(b *testing.B, pl place, croc string, crocErr error, work, src string, sum [32]byte) linkRow {
	b.Helper()
	row := linkRow{place: pl.name, subject: "croc " + crocVersion + ", own relay on the sender", size: linkSize}
	if crocErr != nil {
		row.note = "not available: " + crocErr.Error()
		return row
	}
	out := filepath.Join(work, "croc-out")
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		b.Fatal(err)
	}
	before := drops(b, pl)
	r, err := runCroc(b, croc, pl, work, src, out)
	if err != nil {
		row.note = "not available: " + err.Error()
		return row
	}
	row.r, row.drops = r, drops(b, pl)-before
	b.StopTimer()
	verifyFile(b, filepath.Join(out, filepath.Base(src)), linkSize, sum)
	_ = os.RemoveAll(out)
	b.StartTimer()
	return row
}

// writeCert writes a self-signed ECDSA certificate for the given IP
// addresses, the TLS baseline's receiver identity (its own CA).
func writeCert(b *testing.B, dir string, ips ...string) tlsFiles {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "peerdrop bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	tf := tlsFiles{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{tf.cert, "CERTIFICATE", der}, {tf.key, "EC PRIVATE KEY", kder}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return tf
}

// BenchmarkLink1Gbit is the table: every subject moves 512 MiB of
// random data once on a veth pair between two namespaces shaped to 1 Gbit/s,
// and once on loopback; then 10,000 files of 4 KiB on the link. It needs
// root (namespaces) and skips without it.
func BenchmarkLink1Gbit(b *testing.B) {
	link, loop := newLink(b)
	pd, bare := binaries(b)
	work := b.TempDir()
	src := filepath.Join(work, "source.bin")
	sum := genFile(b, src, linkSize, 3)
	tf := writeCert(b, work, link.recv.addr, "127.0.0.1")
	croc, crocErr := buildCroc(b)
	subjects := linkSubjects(pd, bare, binPaths.linkpeer, work, src, tf)

	var rows []linkRow
	for i := 0; b.Loop(); i++ {
		rows = rows[:0]
		for _, pl := range []place{link, loop} {
			for k, s := range subjects {
				rows = append(rows, measure(b, pl, s, fmt.Sprintf("r%d-%s-%d", i, pl.send.ns, k), src, sum))
				if k == 2 { // croc after bare pion: the table's order
					rows = append(rows, measureCroc(b, pl, croc, crocErr, work, src, sum))
				}
			}
		}
		rows = append(rows, linkSmallFiles(b, link, pd, binPaths.linkpeer, work, i)...)
	}
	printLink(b, rows)
}
