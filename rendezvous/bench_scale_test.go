package rendezvous

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/redistest"
)

// BenchmarkScaleOut: N idle clients over the instances of a deployment,
// each instance a child process: two instances on one private Redis, and
// as the baseline one instance in memory (the default deployment) holding
// as many clients as each of the two (a process may hold 20,000 open files
// here, and cannot be given more). Clients pair up (one creates a code,
// the other joins it); in "same" both ends of a pair sit on one instance,
// in "cross" on different ones. The idle clients live in child processes
// (the crowd), ACTIVE pairs in this one (RENDEZVOUS_BENCH_ACTIVE, 64 by
// default), which play signal ping-pongs while all N are connected. It
// reports the one-way delivery of a signal (client to client, through the
// instances and Redis) at p50 and p99, the signals per second, and what
// the instances hold per idle connection (resident memory, and heap plus
// goroutine stacks after a GC), summed over instances and divided by the
// clients.
//
//	RENDEZVOUS_BENCH_CLIENTS=20000 go test -run '^$' -bench ScaleOut -benchtime 1x ./rendezvous
func BenchmarkScaleOut(b *testing.B) {
	sizes := benchSizes(b)
	raiseFileLimit(b, 20000)
	active := 64
	if v, err := strconv.Atoi(os.Getenv("RENDEZVOUS_BENCH_ACTIVE")); err == nil && v > 0 {
		active = v
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("memory/1-instance/clients=%d", n/2), func(b *testing.B) { benchScale(b, n/2, 1, false, active) })
		b.Run(fmt.Sprintf("redis/2-instances/same/clients=%d", n), func(b *testing.B) { benchScale(b, n, 2, false, active) })
		b.Run(fmt.Sprintf("redis/2-instances/cross/clients=%d", n), func(b *testing.B) { benchScale(b, n, 2, true, active) })
	}
}

const (
	benchCrowdEnv = "RENDEZVOUS_BENCH_CROWD" // crowd child: "URL,URL;cross;first;count"
	crowdSize     = 9000                     // clients per crowd process
)

// onInstance is the instance of client i: a pair's ends apart (cross) or
// together.
func onInstance(i, instances int, cross bool) int {
	if cross {
		return i % instances
	}
	return (i / 2) % instances
}

func benchScale(b *testing.B, n, instances int, cross bool, active int) {
	n &^= 1
	active = min(active, n/2)
	var env []string
	if instances > 1 {
		env = append(env, benchRedisEnv+"="+redistest.Start(b).URL())
	}
	srvs := make([]*benchServer, instances)
	urls := make([]string, instances)
	rss0 := make([]int64, instances)
	mem0 := make([]int64, instances)
	for i := range srvs {
		srvs[i] = startBenchServer(b, "relay", env...)
		urls[i] = srvs[i].url
		rss0[i] = srvs[i].rss()
		var err error
		if mem0[i], _, err = srvs[i].mem(); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	// The crowd: clients 2*active..n-1, idle once paired.
	for first := 2 * active; first < n; first += crowdSize {
		startCrowd(b, urls, cross, first, min(crowdSize, n-first))
	}
	// The active pairs, here.
	ends := make([]benchEnd, 2*active)
	if err := parallel(len(ends), dialParallel, func(i int) (err error) {
		ends[i], err = dialRelayEnd(urls[onInstance(i, instances, cross)], i)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = parallel(len(ends), dialParallel, func(i int) error { ends[i].close(); return nil })
	}()
	if err := pairRelayEnds(ends); err != nil {
		b.Fatal(err)
	}
	setup := time.Since(start)
	time.Sleep(500 * time.Millisecond) // the last replies settle
	var rss, mem int64
	for i, s := range srvs {
		m, _, err := s.mem()
		if err != nil {
			b.Fatal(err)
		}
		rss += s.rss() - rss0[i]
		mem += m - mem0[i]
	}

	all := pingPong(b, ends, active, active, 5*benchRounds)
	pct := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "signals/s")
	b.ReportMetric(float64(rss)/float64(n)/1024, "RSS-KiB/conn")
	b.ReportMetric(float64(mem)/float64(n)/1024, "heap+stack-KiB/conn")
	b.Logf("%d clients on %d instance(s) connected and paired in %v; %d pairs signalling", n, instances, setup.Round(time.Millisecond), active)
}

// startCrowd runs a child process holding count paired, idle clients
// (indices first...), until the benchmark ends.
func startCrowd(b *testing.B, urls []string, cross bool, first, count int) {
	_, out, _ := startChild(b, fmt.Sprintf("%s=%s;%t;%d;%d", benchCrowdEnv, strings.Join(urls, ","), cross, first, count))
	line, err := out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("crowd of %d from %d: %q %v", count, first, line, err)
	}
}

// runCrowd is a crowd child's main.
func runCrowd(spec string) int {
	f := strings.Split(spec, ";")
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "crowd: bad spec", spec)
		return 1
	}
	urls := strings.Split(f[0], ",")
	cross := f[1] == "true"
	first, _ := strconv.Atoi(f[2])
	count, _ := strconv.Atoi(f[3])
	ends := make([]benchEnd, count&^1)
	err := parallel(len(ends), dialParallel, func(i int) (err error) {
		ends[i], err = dialRelayEnd(urls[onInstance(first+i, len(urls), cross)], first+i)
		return err
	})
	if err == nil {
		err = pairRelayEnds(ends)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crowd:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = parallel(len(ends), dialParallel, func(i int) error { ends[i].close(); return nil })
	return 0
}
