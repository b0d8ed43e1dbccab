//go:build unix

package bench

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// Bars for peerdrop against the bare pion transfer.
const (
	minThroughputRatio = 0.9 // peerdrop MB/s ÷ bare pion MB/s, transfer phase
	maxRSSMiB          = 100 // peak RSS of each peerdrop process
)

// peerdropPair runs `peerdrop receive --yes --once` and `peerdrop send` of paths.
func peerdropPair(bin, work, tag string, timeout time.Duration, paths ...string) (pairSpec, string) {
	return peerdropPairTo("127.0.0.1", bin, work, tag, timeout, paths...)
}

// peerdropPairTo is peerdropPair with the sender dialling host.
func peerdropPairTo(host, bin, work, tag string, timeout time.Duration, paths ...string) (pairSpec, string) {
	recvDir := filepath.Join(work, tag+"-received")
	return pairSpec{
		impl: "peerdrop",
		bin:  bin,
		recvArgs: []string{"--config-dir", filepath.Join(work, tag+"-cfg-recv"), "--name", "bench-recv", "--json",
			"receive", "--dir", recvDir, "--yes", "--once", "--port", "0"},
		sendArgs: func(port int) []string {
			return append([]string{"--config-dir", filepath.Join(work, tag+"-cfg-send"), "--name", "bench-send", "--json",
				"send", "--to", net.JoinHostPort(host, strconv.Itoa(port))}, paths...)
		},
		startEvent: "accepted",
		endEvent:   "transfer-done",
		timeout:    timeout,
	}, recvDir
}

// mean averages the runs of one case: durations and CPU times are means,
// peak RSS the largest seen.
func mean(rs []pairResult) pairResult {
	if len(rs) == 0 {
		return pairResult{}
	}
	m := pairResult{impl: rs[0].impl}
	n := time.Duration(len(rs))
	for _, r := range rs {
		m.connect += r.connect / n
		m.phase += r.phase / n
		m.total += r.total / n
		for _, p := range []struct{ dst, src *usage }{{&m.send, &r.send}, {&m.recv, &r.recv}} {
			p.dst.maxRSSKiB = max(p.dst.maxRSSKiB, p.src.maxRSSKiB)
			p.dst.floorKiB = max(p.dst.floorKiB, p.src.floorKiB)
			p.dst.hwmKiB = max(p.dst.hwmKiB, p.src.hwmKiB)
			p.dst.user += p.src.user / n
			p.dst.sys += p.src.sys / n
			p.dst.nvcsw += p.src.nvcsw / int64(len(rs))
			p.dst.nivcsw += p.src.nivcsw / int64(len(rs))
		}
	}
	return m
}

func BenchmarkTransfer1GiB(b *testing.B) {
	const size = 1 << 30
	pd, bare := binaries(b)
	work := b.TempDir()
	src := filepath.Join(work, "source.bin")
	sum := genFile(b, src, size, 1)

	var bareRuns, pdRuns []pairResult
	for i := 0; b.Loop(); i++ {
		// (a) bare pion, default settings, two processes.
		out := filepath.Join(work, fmt.Sprintf("bare-%d.bin", i))
		r := runPair(b, pairSpec{
			impl:     "bare pion",
			bin:      bare,
			recvArgs: []string{"recv", "--out", out},
			sendArgs: func(port int) []string {
				return []string{"send", "--to", "127.0.0.1:" + strconv.Itoa(port), "--in", src}
			},
			startEvent: "open",
			endEvent:   "done",
			timeout:    10 * time.Minute,
		})
		b.StopTimer()
		verifyFile(b, out, size, sum)
		_ = os.Remove(out)
		bareRuns = append(bareRuns, r)
		b.StartTimer()

		// (b) peerdrop, the same file.
		spec, recvDir := peerdropPair(pd, work, fmt.Sprintf("pd-%d", i), 10*time.Minute, src)
		spec.fileEvents = 1
		r = runPair(b, spec)
		b.StopTimer()
		verifyFile(b, filepath.Join(recvDir, "source.bin"), size, sum)
		_ = os.RemoveAll(recvDir)
		pdRuns = append(pdRuns, r)
		b.StartTimer()
	}

	br, pr := mean(bareRuns), mean(pdRuns)
	bareMBps, pdMBps := mbps(size, br.phase), mbps(size, pr.phase)
	ratio := pdMBps / bareMBps
	totalRatio := mbps(size, pr.total) / mbps(size, br.total)

	var sb strings.Builder
	fmt.Fprintf(&sb, "\n=== BenchmarkTransfer1GiB: %d bytes (1 GiB, random) over loopback, two processes per side, %d run(s); MB/s = 1e6 bytes/s\n", int64(size), len(pdRuns))
	fmt.Fprintf(&sb, "    phase = receiver's data channel open (bare: \"open\", peerdrop: \"accepted\") -> file complete on disk (\"done\" / \"transfer-done\")\n")
	fmt.Fprintf(&sb, "    total = sender process start -> both processes exited; connect = sender start -> phase start\n")
	fmt.Fprintf(&sb, "    CPU = user+sys seconds; ctxsw = voluntary/involuntary context switches\n\n")
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "implementation\tphase s\tMB/s\tratio\ttotal s\ttotal MB/s\tconnect s\tRSS send MiB\tRSS recv MiB\tCPU send s\tCPU recv s\tctxsw send\tctxsw recv\t")
	for _, x := range []struct {
		r     pairResult
		ratio string
	}{{br, "1.00"}, {pr, fmt.Sprintf("%.2f", ratio)}} {
		r := x.r
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%s\t%.2f\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.impl, r.phase.Seconds(), mbps(size, r.phase), x.ratio, r.total.Seconds(), mbps(size, r.total), r.connect.Seconds(),
			r.send.rssString(), r.recv.rssString(), r.send.cpuString(), r.recv.cpuString(), r.send.switchesString(), r.recv.switchesString())
	}
	_ = tw.Flush()
	sb.WriteString(rssNote(br, pr))
	fmt.Fprintf(&sb, "\n    bar: throughput ratio peerdrop/bare %.2f >= %.2f   %s   (total-time ratio %.2f)\n", ratio, minThroughputRatio, passFail(ratio >= minThroughputRatio), totalRatio)
	fmt.Fprintf(&sb, "    bar: peerdrop sender peak RSS   %6.1f MiB < %d MiB   %s\n", pr.send.rssMiB(), maxRSSMiB, passFail(pr.send.rssMiB() < maxRSSMiB))
	fmt.Fprintf(&sb, "    bar: peerdrop receiver peak RSS %6.1f MiB < %d MiB   %s\n", pr.recv.rssMiB(), maxRSSMiB, passFail(pr.recv.rssMiB() < maxRSSMiB))
	bareCPU, pdCPU := (br.send.cpu() + br.recv.cpu()).Seconds(), (pr.send.cpu() + pr.recv.cpu()).Seconds()
	cpuRatio := bareCPU / pdCPU
	fmt.Fprintf(&sb, "    CPU per GB moved (send+recv): bare %.2f s, peerdrop %.2f s; CPU ratio bare/peerdrop %.2f\n",
		bareCPU/(size/1e9), pdCPU/(size/1e9), cpuRatio)
	fmt.Fprintf(&sb, "    (both sides are CPU-bound here: on a shared machine the CPU ratio is a steadier estimate of the\n")
	fmt.Fprintf(&sb, "     throughput ratio than wall time, which depends on what else ran during each phase)\n")
	fmt.Print(sb.String())

	b.ReportMetric(bareMBps, "bare-MB/s")
	b.ReportMetric(pdMBps, "peerdrop-MB/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(cpuRatio, "cpu-ratio")
	b.ReportMetric(br.send.rssMiB(), "bare-send-rss-MiB")
	b.ReportMetric(br.recv.rssMiB(), "bare-recv-rss-MiB")
	b.ReportMetric(pr.send.rssMiB(), "peerdrop-send-rss-MiB")
	b.ReportMetric(pr.recv.rssMiB(), "peerdrop-recv-rss-MiB")
	b.ReportMetric(pr.send.cpu().Seconds(), "peerdrop-send-cpu-s")
	b.ReportMetric(pr.recv.cpu().Seconds(), "peerdrop-recv-cpu-s")
}

// rssNote explains the RSS columns and gives the raw figures.
func rssNote(rs ...pairResult) string {
	var sb strings.Builder
	sb.WriteString("\n    RSS = the process's own peak RSS in MiB: rusage Maxrss; * = Maxrss was only the benchmark process's peak\n")
	sb.WriteString("    inherited at exec (Linux), so the child's /proc VmHWM sampled every 50 ms is shown. Raw Maxrss / floor / VmHWM MiB:\n")
	f := func(k int64) float64 { return float64(k) / 1024 }
	for _, r := range rs {
		fmt.Fprintf(&sb, "      %-24s send %.1f / %.1f / %.1f   recv %.1f / %.1f / %.1f\n", r.impl,
			f(r.send.maxRSSKiB), f(r.send.floorKiB), f(r.send.hwmKiB), f(r.recv.maxRSSKiB), f(r.recv.floorKiB), f(r.recv.hwmKiB))
	}
	return sb.String()
}

// rate formats n per second over d.
func rate(n int, d time.Duration) string {
	v := float64(n) / d.Seconds()
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func BenchmarkManySmallFiles(b *testing.B) {
	const (
		folders  = 100
		perDir   = 100
		fileSize = 4 << 10
		files    = folders * perDir
		total    = files * fileSize // 40,960,000 bytes
	)
	pd, _ := binaries(b)
	work := b.TempDir()
	srcDir := filepath.Join(work, "src")
	tree := filepath.Join(srcDir, "tree")
	single := filepath.Join(srcDir, "single.bin")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		b.Fatal(err)
	}
	// The same bytes twice: one 40 MB file, and cut into 10,000 files of 4 KiB.
	// Streamed, not held in memory: this process's peak RSS is a floor under
	// its children's rusage Maxrss (see usage).
	sum := genFile(b, single, total, 2)
	name := func(k int) string {
		return filepath.Join(fmt.Sprintf("d%03d", k/perDir), fmt.Sprintf("f%03d.bin", k%perDir))
	}
	for d := range folders {
		if err := os.MkdirAll(filepath.Join(tree, fmt.Sprintf("d%03d", d)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	sf, err := os.Open(single)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, fileSize)
	for k := range files {
		if _, err := io.ReadFull(sf, buf); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, name(k)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	sf.Close()

	verifyTree := func(root string) {
		b.Helper()
		n := 0
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			b.Fatalf("received tree: %v", err)
		}
		if n != files {
			b.Fatalf("received tree has %d files, want %d", n, files)
		}
		for k := range files {
			got, err := os.ReadFile(filepath.Join(root, name(k)))
			if err != nil {
				b.Fatalf("received tree: %v", err)
			}
			want, err := os.ReadFile(filepath.Join(tree, name(k)))
			if err != nil {
				b.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				b.Fatalf("received %s differs from the source", name(k))
			}
		}
	}

	var treeRuns, singleRuns []pairResult
	for i := 0; b.Loop(); i++ {
		spec, recvDir := peerdropPair(pd, work, fmt.Sprintf("tree-%d", i), 10*time.Minute, tree)
		spec.impl = "peerdrop 10,000 x 4 KiB"
		spec.fileEvents = files
		r := runPair(b, spec)
		b.StopTimer()
		verifyTree(filepath.Join(recvDir, "tree"))
		_ = os.RemoveAll(recvDir)
		treeRuns = append(treeRuns, r)
		b.StartTimer()

		spec, recvDir = peerdropPair(pd, work, fmt.Sprintf("single-%d", i), 5*time.Minute, single)
		spec.impl = "peerdrop 1 x 40 MB"
		spec.fileEvents = 1
		r = runPair(b, spec)
		b.StopTimer()
		verifyFile(b, filepath.Join(recvDir, "single.bin"), total, sum)
		_ = os.RemoveAll(recvDir)
		singleRuns = append(singleRuns, r)
		b.StartTimer()
	}

	tr, sr := mean(treeRuns), mean(singleRuns)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n=== BenchmarkManySmallFiles: %d files of %d bytes in %d folders vs the same %d bytes as one file, peerdrop over loopback, %d run(s)\n",
		files, fileSize, folders, int64(total), len(treeRuns))
	fmt.Fprintf(&sb, "    phase = receiver \"accepted\" -> \"transfer-done\"; total = sender start -> both exited; CPU = user+sys s\n\n")
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tfiles\tphase s\tfiles/s\tMB/s\ttotal s\ttotal files/s\tconnect s\tRSS send MiB\tRSS recv MiB\tCPU send s\tCPU recv s\tctxsw send\tctxsw recv\t")
	for _, x := range []struct {
		r pairResult
		n int
	}{{tr, files}, {sr, 1}} {
		r := x.r
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%.1f\t%.2f\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.impl, x.n, r.phase.Seconds(), rate(x.n, r.phase), mbps(total, r.phase), r.total.Seconds(),
			rate(x.n, r.total), r.connect.Seconds(), r.send.rssString(), r.recv.rssString(),
			r.send.cpuString(), r.recv.cpuString(), r.send.switchesString(), r.recv.switchesString())
	}
	_ = tw.Flush()
	sb.WriteString(rssNote(tr, sr))
	perFile := (tr.phase - sr.phase) / files
	fmt.Fprintf(&sb, "\n    per-file overhead: %.3f ms wall, %.3f ms CPU (send+recv) per file; small files reach %.0f%% of the single file's MB/s\n",
		float64(perFile)/float64(time.Millisecond),
		float64((tr.send.cpu()+tr.recv.cpu())-(sr.send.cpu()+sr.recv.cpu()))/files/float64(time.Millisecond),
		100*mbps(total, tr.phase)/mbps(total, sr.phase))
	fmt.Print(sb.String())

	b.ReportMetric(float64(files)/tr.phase.Seconds(), "files/s")
	b.ReportMetric(mbps(total, tr.phase), "MB/s")
	b.ReportMetric(mbps(total, sr.phase), "single-file-MB/s")
	b.ReportMetric(float64(perFile)/float64(time.Millisecond), "per-file-ms")
	b.ReportMetric(tr.send.rssMiB(), "send-rss-MiB")
	b.ReportMetric(tr.recv.rssMiB(), "recv-rss-MiB")
}
