//go:build unix

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// BenchmarkUDPMux: every peer connection of a receiver on one UDP port
// (pion's ICE UDP mux, the default) against a random UDP port per
// connection (`receive --udp-port 0`), one transfer and four at once to one
// receiver, in the same run, side by side. Loopback, 256 MiB a transfer.
func BenchmarkUDPMux(b *testing.B) {
	const size = 256 << 20
	pd, _ := binaries(b)
	work := b.TempDir()
	src := filepath.Join(work, "source.bin")
	genFile(b, src, size, 3)

	type row struct{ one, four float64 }
	results := map[string]*row{"one UDP port (default)": {}, "a port per connection": {}}
	for i := 0; b.Loop(); i++ {
		for mode, r := range results {
			var extra []string
			if mode == "a port per connection" {
				extra = []string{"--udp-port", "0"}
			}
			tag := fmt.Sprintf("mux%d-%t", i, extra != nil)
			spec, _ := peerdropPair(pd, work, tag, 10*time.Minute, src)
			spec.recvArgs = append(spec.recvArgs, extra...)
			one := runPair(b, spec)
			r.one = mbps(size, one.phase)
			r.four = fourAtOnce(b, pd, work, tag, src, size, extra)
		}
	}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UDP ports of the receiver\tone transfer MB/s\tfour at once MB/s (all four)")
	for _, mode := range []string{"one UDP port (default)", "a port per connection"} {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\n", mode, results[mode].one, results[mode].four)
	}
	mux, per := results["one UDP port (default)"], results["a port per connection"]
	fmt.Fprintf(tw, "ratio (one port ÷ a port each)\t%.2f\t%.2f\n", mux.one/per.one, mux.four/per.four)
	_ = tw.Flush()
	fmt.Print(sb.String())
	b.ReportMetric(mux.one, "mux-one-MB/s")
	b.ReportMetric(per.one, "per-conn-one-MB/s")
	b.ReportMetric(mux.four, "mux-four-MB/s")
	b.ReportMetric(per.four, "per-conn-four-MB/s")
}

// fourAtOnce runs one receiver and four senders of src at once, and
// returns the MB/s of all four together, first sender's start to last
// sender's end.
func fourAtOnce(b *testing.B, bin, work, tag, src string, size int64, extra []string) float64 {
	b.Helper()
	dir := filepath.Join(work, tag+"-four")
	recvArgs := append([]string{"--config-dir", filepath.Join(work, tag+"-four-recv"), "--name", "bench-recv", "--json",
		"receive", "--dir", dir, "--yes", "--port", "0"}, extra...)
	recv := startProc(b, "receiver of four", bin, recvArgs...)
	defer recv.kill()
	var port int
	select {
	case port = <-recv.portCh:
	case <-time.After(30 * time.Second):
		b.Fatalf("the receiver did not listen\n%s", recv.report())
	}
	var senders []*proc
	for k := range 4 {
		senders = append(senders, startProc(b, fmt.Sprintf("sender %d", k), bin, "--config-dir",
			filepath.Join(work, fmt.Sprintf("%s-four-send%d", tag, k)), "--name", "bench-send", "--json",
			"send", "--to", "127.0.0.1:"+strconv.Itoa(port), src))
	}
	start, end := senders[0].start, time.Time{}
	for _, s := range senders {
		select {
		case <-s.exited:
		case <-time.After(10 * time.Minute):
			b.Fatalf("%s did not finish\n%s", s.name, s.report())
		}
		if s.waitErr != nil {
			b.Fatalf("%s failed\n%s\n%s", s.name, s.report(), recv.report())
		}
		if s.exitAt.After(end) {
			end = s.exitAt
		}
	}
	_ = recv.cmd.Process.Signal(syscall.SIGINT)
	_ = os.RemoveAll(dir)
	return mbps(4*size, end.Sub(start))
}
