package rendezvous

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/redistest"
)

// BenchmarkScaleOut: N idle clients over the instances of a deployment,
// each instance a child process: one instance in memory (the baseline, the
// default deployment), then two instances on one private Redis. Clients
// pair up (one creates a code, the other joins it); in "same" every pair
// sits on one instance, in "cross" its two ends on different ones. Then,
// with all N connected, ACTIVE pairs at a time (RENDEZVOUS_BENCH_ACTIVE,
// 256 by default: a busy hour's share of a large deployment) play signal
// ping-pongs. It reports the one-way delivery of a signal (client to
// client through the instances and Redis) at p50 and p99, and what the
// instances hold per idle connection (resident memory and heap+stacks,
// summed over instances, divided by N).
//
//	RENDEZVOUS_BENCH_CLIENTS=20000 go test -run '^$' -bench ScaleOut -benchtime 1x ./rendezvous
func BenchmarkScaleOut(b *testing.B) {
	sizes := benchSizes(b)
	raiseFileLimit(b, slices.Max(sizes)+1024)
	active := 256
	if v, err := strconv.Atoi(os.Getenv("RENDEZVOUS_BENCH_ACTIVE")); err == nil && v > 0 {
		active = v
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("memory/1-instance/clients=%d", n), func(b *testing.B) { benchScale(b, n, 1, false, active) })
		b.Run(fmt.Sprintf("redis/2-instances/same/clients=%d", n), func(b *testing.B) { benchScale(b, n, 2, false, active) })
		b.Run(fmt.Sprintf("redis/2-instances/cross/clients=%d", n), func(b *testing.B) { benchScale(b, n, 2, true, active) })
	}
}

func benchScale(b *testing.B, n, instances int, cross bool, active int) {
	var env []string
	if instances > 1 {
		env = append(env, benchRedisEnv+"="+redistest.Start(b).URL())
	}
	srvs := make([]*benchServer, instances)
	rss0 := make([]int64, instances)
	mem0 := make([]int64, instances)
	for i := range srvs {
		srvs[i] = startBenchServer(b, "relay", env...)
		rss0[i] = srvs[i].rss()
		var err error
		if mem0[i], _, err = srvs[i].mem(); err != nil {
			b.Fatal(err)
		}
	}
	// Client i's instance: a pair's ends apart (cross) or together.
	on := func(i int) *benchServer {
		if cross {
			return srvs[i%instances]
		}
		return srvs[(i/2)%instances]
	}
	ends := make([]benchEnd, n)
	start := time.Now()
	if err := parallel(n, dialParallel, func(i int) (err error) { ends[i], err = dialRelayEnd(on(i).url, i); return err }); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = parallel(n, dialParallel, func(i int) error { ends[i].close(); return nil })
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

	pairs := n / 2
	active = min(active, pairs)
	lat := make([][]time.Duration, pairs)
	b.ResetTimer()
	for range b.N {
		err := parallel(pairs, active, func(p int) error {
			x, y := ends[2*p], ends[2*p+1]
			for range benchRounds {
				for _, dir := range [2][2]benchEnd{{x, y}, {y, x}} {
					if err := dir[0].send(time.Now().UnixNano()); err != nil {
						return err
					}
					t, err := dir[1].recv()
					if err != nil {
						return err
					}
					lat[p] = append(lat[p], time.Duration(time.Now().UnixNano()-t))
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "signals/s")
	b.ReportMetric(float64(rss)/float64(n)/1024, "RSS-KiB/conn")
	b.ReportMetric(float64(mem)/float64(n)/1024, "heap+stack-KiB/conn")
	b.Logf("%d clients on %d instance(s) connected and paired in %v", n, instances, setup.Round(time.Millisecond))
}
