//go:build linux

package bench

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// The small-files case: 100 folders of 100 files of 4 KiB.
const (
	smallDirs  = 100
	smallPer   = 100
	smallSize  = 4 << 10
	smallCount = smallDirs * smallPer
)

// makeSmallTree writes the small files under dir/tree once.
func makeSmallTree(b *testing.B, dir string) string {
	b.Helper()
	tree := filepath.Join(dir, "tree")
	if _, err := os.Stat(tree); err == nil {
		return tree
	}
	for d := range smallDirs {
		sub := filepath.Join(tree, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range smallPer {
			w, err := os.Create(filepath.Join(sub, fmt.Sprintf("f%03d.bin", f)))
			if err != nil {
				b.Fatal(err)
			}
			_, err = randomWriter(w, smallSize, byte(d*smallPer+f))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return tree
}

// treeDigest is the number of regular files under root and a SHA-256 over
// their relative names and contents, in lexical order.
func treeDigest(root string) (int, [32]byte, error) {
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n++
		_, err = io.Copy(h, f)
		return err
	})
	return n, [32]byte(h.Sum(nil)), err
}

// linkSmallFiles moves the small tree over the link with peerdrop and as one tar
// stream over TCP, and checks what arrived.
func linkSmallFiles(b *testing.B, pl place, pd, lp, work string, i int) []linkRow {
	b.Helper()
	tree := makeSmallTree(b, work)
	n, want, err := treeDigest(tree)
	if err != nil || n != smallCount {
		b.Fatalf("source tree: %d files, %v", n, err)
	}
	tag := fmt.Sprintf("small%d", i)
	untar := filepath.Join(work, tag+"-untar")
	if err := os.MkdirAll(untar, 0o755); err != nil {
		b.Fatal(err)
	}
	tarSpec := pairSpec{impl: "tar stream over TCP", bin: lp, startEvent: "open", endEvent: "done", timeout: 5 * time.Minute,
		recvArgs: []string{"recv", "--listen", net.JoinHostPort(pl.recv.addr, "0"), "--untar", untar},
		sendArgs: func(port int) []string {
			return []string{"send", "--to", net.JoinHostPort(pl.recv.addr, strconv.Itoa(port)), "--tar", tree}
		}}
	pdSpec, recvDir := peerdropPairTo(pl.recv.addr, pd, work, tag, 10*time.Minute, tree)
	pdSpec.fileEvents = smallCount
	var rows []linkRow
	for _, c := range []struct {
		name      string
		spec      pairSpec
		got, drop string
	}{
		{"tar stream over TCP (as tar | nc)", tarSpec, untar, untar},
		{"peerdrop send", pdSpec, filepath.Join(recvDir, "tree"), recvDir},
	} {
		before := drops(b, pl)
		r := runPair(b, wrapNS(c.spec, pl, nil, -1, -1))
		rows = append(rows, linkRow{place: pl.name, subject: c.name, r: r, size: smallCount * smallSize,
			files: smallCount, phased: true, drops: drops(b, pl) - before})
		b.StopTimer()
		if n, got, err := treeDigest(c.got); err != nil || n != smallCount || got != want {
			b.Fatalf("%s: received %d files (%v), digest match %v", c.name, n, err, got == want)
		}
		_ = os.RemoveAll(c.drop)
		b.StartTimer()
	}
	return rows
}

// perGiB is CPU seconds per GiB moved.
func perGiB(d time.Duration, size int64) float64 { return d.Seconds() / (float64(size) / (1 << 30)) }

// find returns the row for subject at place, if it ran.
func find(rows []linkRow, place, prefix string) (linkRow, bool) {
	for _, r := range rows {
		if r.place == place && strings.HasPrefix(r.subject, prefix) && r.note == "" && r.files == 0 {
			return r, true
		}
	}
	return linkRow{}, false
}

// rowMBps is the row's MB/s: over the transfer phase when it is timed, over
// the whole run (sender start to both exited) when not.
func rowMBps(r linkRow) float64 {
	if r.phased {
		return mbps(r.size, r.r.phase)
	}
	return mbps(r.size, r.r.total)
}

func printLink(b *testing.B, rows []linkRow) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n=== BenchmarkLink1Gbit: %d MiB of random data per subject, once each; both ends share this machine's %d CPUs\n", linkSize>>20, runtime.NumCPU())
	fmt.Fprintf(&sb, "    1 Gbit link = a veth pair between two network namespaces, tbf rate %s burst 256kb on both ends; loopback = lo in one namespace\n", linkRate)
	fmt.Fprintf(&sb, "    MB/s = 1e6 bytes/s over the receiver's transfer phase (first byte expected -> file on disk); total = sender start -> both exited\n")
	fmt.Fprintf(&sb, "    net.core.rmem_max here: %s bytes (peerdrop asks for 4 MiB, forced as root; the 208 KiB row simulates an unprivileged receiver)\n", sysctl("net/core/rmem_max"))
	fmt.Fprintf(&sb, "    x TCP = MB/s / the same place's TCP MB/s (croc prints no events: its total against TCP's total); drops = UDP RcvbufErrors, both hosts\n\n")
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "place\tsubject\tMB/s\ttotal MB/s\tx TCP\tCPU s/GiB send\tCPU s/GiB recv\tRSS send MiB\tRSS recv MiB\tUDP drops\t")
	for _, r := range rows {
		if r.files > 0 {
			continue
		}
		if r.note != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\t\t\t\n", r.place, r.subject, r.note)
			continue
		}
		tcp, _ := find(rows, r.place, "TCP (")
		mb, ratio := "-", mbps(r.size, r.r.total)/mbps(tcp.size, tcp.r.total)
		if r.phased {
			mb, ratio = fmt.Sprintf("%.1f", rowMBps(r)), rowMBps(r)/rowMBps(tcp)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.2f\t%.1f\t%.1f\t%s\t%s\t%d\t\n", r.place, r.subject, mb, mbps(r.size, r.r.total), ratio,
			perGiB(r.r.send.cpu(), r.size), perGiB(r.r.recv.cpu(), r.size), r.r.send.rssString(), r.r.recv.rssString(), r.drops)
	}
	_ = tw.Flush()
	sb.WriteString("\n")
	tw = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%d files of %d KiB\tfiles/s\tMB/s\ttotal s\tCPU s send\tCPU s recv\tRSS send MiB\tRSS recv MiB\t\n", smallCount, smallSize>>10)
	for _, r := range rows {
		if r.files > 0 {
			fmt.Fprintf(tw, "%s, %s\t%s\t%.1f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", r.subject, r.place, rate(r.files, r.r.phase), mbps(r.size, r.r.phase),
				r.r.total.Seconds(), r.r.send.cpu().Seconds(), r.r.recv.cpu().Seconds(), r.r.send.rssString(), r.r.recv.rssString())
		}
	}
	_ = tw.Flush()
	sb.WriteString(linkBars(b, rows))
	fmt.Print(sb.String())
}

// linkBars prints the goals for peerdrop on the link and reports the
// figures as metrics.
func linkBars(b *testing.B, rows []linkRow) string {
	const at = "1 Gbit link"
	pd, ok1 := find(rows, at, "peerdrop send")
	tcp, ok2 := find(rows, at, "TCP (")
	if !ok1 || !ok2 {
		return "\n    bars: no peerdrop or TCP row on the link\n"
	}
	var sb strings.Builder
	ratio := rowMBps(pd) / rowMBps(tcp)
	send, recv := perGiB(pd.r.send.cpu(), pd.size), perGiB(pd.r.recv.cpu(), pd.size)
	fmt.Fprintf(&sb, "\n    bar: peerdrop on the link %.1f MB/s = %.2f x TCP >= %.1f   %s\n", rowMBps(pd), ratio, linkMinTCPRatio, passFail(ratio >= linkMinTCPRatio))
	fmt.Fprintf(&sb, "    bar: CPU s per GiB send %.1f, recv %.1f <= %d   %s\n", send, recv, linkMaxCPUPerGB, passFail(send <= linkMaxCPUPerGB && recv <= linkMaxCPUPerGB))
	fmt.Fprintf(&sb, "    bar: peak RSS send %.1f, recv %.1f MiB <= %d   %s\n", pd.r.send.rssMiB(), pd.r.recv.rssMiB(), maxRSSMiB,
		passFail(pd.r.send.rssMiB() <= maxRSSMiB && pd.r.recv.rssMiB() <= maxRSSMiB))
	if croc, ok := find(rows, at, "croc"); ok {
		pdTotal, crocTotal := mbps(pd.size, pd.r.total), mbps(croc.size, croc.r.total)
		fmt.Fprintf(&sb, "    bar: ahead of croc, total MB/s %.1f vs %.1f   %s\n", pdTotal, crocTotal, passFail(pdTotal > crocTotal))
		b.ReportMetric(crocTotal, "croc-total-MB/s")
	} else {
		sb.WriteString("    bar: ahead of croc: croc did not run (see its row)\n")
	}
	b.ReportMetric(rowMBps(pd), "peerdrop-link-MB/s")
	b.ReportMetric(rowMBps(tcp), "tcp-link-MB/s")
	b.ReportMetric(ratio, "tcp-ratio")
	b.ReportMetric(send, "send-cpu-s/GiB")
	b.ReportMetric(recv, "recv-cpu-s/GiB")
	b.ReportMetric(float64(pd.drops), "udp-drops")
	return sb.String()
}

// sysctl reads /proc/sys/NAME, or says it could not.
func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
