package rendezvous

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkRelay: N clients on loopback connect to one server (run in a
// child process, so that its memory is its own), pair up (one creates a
// code, the other joins), and every pair plays `rounds` signal ping-pongs
// per iteration. It reports the one-way relay latency (send to receive,
// client libraries included) at p50 and p99, the server's resident memory
// and its growth per connection. The baseline sub-benchmarks run the same
// exchange through a bare WebSocket forwarder (no JSON, no rooms, no
// limits), the floor any relay on this machine pays.
//
//	go test -run '^$' -bench Relay -benchtime 1x ./rendezvous
//	RENDEZVOUS_BENCH_CLIENTS=2000 go test -run '^$' -bench Relay -benchtime 1x ./rendezvous
//	RENDEZVOUS_BENCH_CLIENTS=2000 RENDEZVOUS_BENCH_ACTIVE=64 go test -run '^$' -bench Relay -benchtime 1x ./rendezvous
func BenchmarkRelay(b *testing.B) {
	sizes := benchSizes(b)
	raiseFileLimit(b, 2*slices.Max(sizes)+256)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchRelay(b, n, "relay") })
		b.Run(fmt.Sprintf("baseline/clients=%d", n), func(b *testing.B) { benchRelay(b, n, "baseline") })
	}
}

// BenchmarkIdle: N clients connect to one server (a child process), say
// hello and then say nothing, as devices waiting for a transfer do. It
// reports what the server holds per idle connection: heap and goroutine
// stacks in use after a GC, resident memory, and goroutines, each the
// growth from before the clients came divided by N. The baseline holds the
// same number of bare coder/websocket connections (one goroutine blocked in
// Read each, nothing else): the floor of any WebSocket server built on it.
//
//	go test -run '^$' -bench Idle -benchtime 1x ./rendezvous
//	RENDEZVOUS_BENCH_CLIENTS=10000 go test -run '^$' -bench Idle -benchtime 1x ./rendezvous
func BenchmarkIdle(b *testing.B) {
	sizes := benchSizes(b)
	raiseFileLimit(b, 2*slices.Max(sizes)+256)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchIdle(b, n, "relay") })
		b.Run(fmt.Sprintf("baseline/clients=%d", n), func(b *testing.B) { benchIdle(b, n, "baseline") })
	}
}

func benchIdle(b *testing.B, n int, mode string) {
	for range b.N {
		srv := startBenchServer(b, mode)
		rss0 := srv.rss()
		mem0, g0, err := srv.mem()
		if err != nil {
			b.Fatal(err)
		}
		ends := make([]benchEnd, n)
		connect := func(i int) (benchEnd, error) { return dialBaselineEnd(srv.url, i) }
		if mode == "relay" {
			connect = func(i int) (benchEnd, error) { return dialRelayEnd(srv.url, i) }
		}
		if err := parallel(n, dialParallel, func(i int) (err error) { ends[i], err = connect(i); return err }); err != nil {
			b.Fatal(err)
		}
		// Let the last replies and handshakes settle.
		time.Sleep(500 * time.Millisecond)
		mem1, g1, err := srv.mem()
		if err != nil {
			b.Fatal(err)
		}
		rss1 := srv.rss()
		_ = parallel(n, dialParallel, func(i int) error { ends[i].close(); return nil })
		b.ReportMetric(float64(mem1-mem0)/float64(n)/1024, "heap+stack-KiB/conn")
		b.ReportMetric(float64(rss1-rss0)/float64(n)/1024, "RSS-KiB/conn")
		b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/conn")
		b.ReportMetric(float64(rss1)/(1<<20), "server-RSS-MiB")
	}
}

// benchSizes is the client counts: RENDEZVOUS_BENCH_CLIENTS, else 100
// and 2000.
func benchSizes(b *testing.B) []int {
	sizes := []int{100, 2000}
	if v := os.Getenv("RENDEZVOUS_BENCH_CLIENTS"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				b.Fatalf("RENDEZVOUS_BENCH_CLIENTS: %q is not a client count", f)
			}
			sizes = append(sizes, n&^1)
		}
	}
	return sizes
}

const (
	benchServerEnv = "RENDEZVOUS_BENCH_SERVER" // child process mode: "relay" or "baseline"
	benchRedisEnv  = "RENDEZVOUS_BENCH_REDIS"  // the relay child's Redis URL (none: in memory)
	benchRounds    = 10                        // ping-pongs per pair per iteration
	dialParallel   = 64
)

// benchPair is one pair of endpoints: send to the other side, receive the
// next payload.
type benchEnd interface {
	send(t int64) error
	recv() (int64, error)
	close()
}

func benchRelay(b *testing.B, n int, mode string) {
	srv := startBenchServer(b, mode)
	rssBefore := srv.rss()
	ends := make([]benchEnd, n)
	start := time.Now()
	var connect func(i int) (benchEnd, error)
	if mode == "relay" {
		connect = func(i int) (benchEnd, error) { return dialRelayEnd(srv.url, i) }
	} else {
		connect = func(i int) (benchEnd, error) { return dialBaselineEnd(srv.url, i) }
	}
	if err := parallel(n, dialParallel, func(i int) (err error) { ends[i], err = connect(i); return err }); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = parallel(n, dialParallel, func(i int) error { ends[i].close(); return nil })
	}()
	if mode == "relay" {
		if err := pairRelayEnds(ends); err != nil {
			b.Fatal(err)
		}
	}
	setup := time.Since(start)

	pairs := n / 2
	// By default every pair at once: the server sees N clients talking
	// together. RENDEZVOUS_BENCH_ACTIVE=k keeps only k pairs busy at a
	// time (latency below saturation, all N still connected).
	active := pairs
	if v, err := strconv.Atoi(os.Getenv("RENDEZVOUS_BENCH_ACTIVE")); err == nil && v > 0 {
		active = min(v, pairs)
	}
	all := pingPong(b, ends, pairs, active, benchRounds)
	pct := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))]) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "msgs/s")
	if rssAfter := srv.rss(); rssAfter > 0 {
		b.ReportMetric(float64(rssAfter)/(1<<20), "server-RSS-MiB")
		b.ReportMetric(float64(rssAfter-rssBefore)/float64(n)/1024, "server-KiB/conn")
	}
	b.Logf("%s: %d clients connected and paired in %v", mode, n, setup.Round(time.Millisecond))
}

// pingPong times b.N rounds of ping-pongs between the ends of each pair
// (ends 2p and 2p+1), active pairs at a time, and returns every one-way
// latency, sorted.
func pingPong(b *testing.B, ends []benchEnd, pairs, active, rounds int) []time.Duration {
	lat := make([][]time.Duration, pairs)
	b.ResetTimer()
	for range b.N {
		err := parallel(pairs, active, func(p int) error {
			x, y := ends[2*p], ends[2*p+1]
			for range rounds {
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
	return all
}

// parallel runs f(0..n-1) with at most limit at once; first error wins.
func parallel(n, limit int, f func(i int) error) error {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		})
	}
	wg.Wait()
	return first
}

// relay ends: the real Client.

type relayEnd struct {
	c    *Client
	peer string
}

func benchIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

func dialRelayEnd(url string, i int) (benchEnd, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, testHello(fmt.Sprintf("bench %d", i)), xff(benchIP(i)))
	if err != nil {
		return nil, fmt.Errorf("client %d: %w", i, err)
	}
	return &relayEnd{c: c}, nil
}

func pairRelayEnds(ends []benchEnd) error {
	return parallel(len(ends)/2, dialParallel, func(p int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		x, y := ends[2*p].(*relayEnd), ends[2*p+1].(*relayEnd)
		room, err := x.c.Create(ctx)
		if err != nil {
			return err
		}
		if _, err := y.c.Join(ctx, room.Code); err != nil {
			return err
		}
		for _, e := range []*relayEnd{x, y} {
			ev, ok := <-e.c.Events()
			pj, isPJ := ev.(PeerJoined)
			if !ok || !isPJ {
				return fmt.Errorf("pairing: got %#v", ev)
			}
			e.peer = pj.Peer.ClientID
		}
		return nil
	})
}

type stamp struct {
	T int64 `json:"t"`
}

func (e *relayEnd) send(t int64) error { return e.c.Signal(e.peer, stamp{T: t}) }

func (e *relayEnd) recv() (int64, error) {
	ev, ok := <-e.c.Events()
	if !ok {
		return 0, e.c.Err()
	}
	s, isSignal := ev.(Signal)
	if !isSignal {
		return 0, fmt.Errorf("got %#v", ev)
	}
	var st stamp
	err := json.Unmarshal(s.Payload, &st)
	return st.T, err
}

func (e *relayEnd) close() { _ = e.c.Close() }

// baseline ends: a bare WebSocket per client, the same JSON bytes on the
// wire, decoded the same way on receipt.

type baselineEnd struct {
	ws *websocket.Conn
}

func dialBaselineEnd(url string, i int) (benchEnd, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("%s?pair=%d", url, i/2), nil)
	if err != nil {
		return nil, fmt.Errorf("client %d: %w", i, err)
	}
	if _, _, err := ws.Read(ctx); err != nil { // "ready": both ends are there
		return nil, fmt.Errorf("client %d: %w", i, err)
	}
	return &baselineEnd{ws: ws}, nil
}

func (e *baselineEnd) send(t int64) error {
	b, err := jsonMarshal(&Envelope{Type: TypeSignal, To: "0123456789abcdef", Payload: json.RawMessage(`{"t":` + strconv.FormatInt(t, 10) + `}`)})
	if err != nil {
		return err
	}
	return e.ws.Write(context.Background(), websocket.MessageText, b)
}

func (e *baselineEnd) recv() (int64, error) {
	_, data, err := e.ws.Read(context.Background())
	if err != nil {
		return 0, err
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return 0, err
	}
	var st stamp
	err = json.Unmarshal(env.Payload, &st)
	return st.T, err
}

func (e *baselineEnd) close() { _ = e.ws.CloseNow() }

// The child process.

type benchServer struct {
	url string
	pid int
	in  io.Writer
	out *bufio.Reader
}

// mem is the child's heap and goroutine stacks in use after a GC, and its
// goroutine count.
func (s *benchServer) mem() (int64, int, error) {
	if _, err := io.WriteString(s.in, "mem\n"); err != nil {
		return 0, 0, err
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		return 0, 0, err
	}
	var bytes int64
	var goroutines int
	_, err = fmt.Sscan(line, &bytes, &goroutines)
	return bytes, goroutines, err
}

// rss is the child's resident set size in bytes, 0 where /proc is missing.
func (s *benchServer) rss() int64 {
	runtime.Gosched()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func startBenchServer(b *testing.B, mode string, env ...string) *benchServer {
	stdin, out, pid := startChild(b, append(env, benchServerEnv+"="+mode)...)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	// The child waits for a warm-up GC to settle before it prints.
	return &benchServer{url: "ws://" + strings.TrimSpace(line) + "/ws", pid: pid, in: stdin, out: out}
}

// startChild runs this test binary again with env added, as a child that
// ends when its stdin closes (at the end of the benchmark).
func startChild(b *testing.B, env ...string) (stdin io.Writer, stdout *bufio.Reader, pid int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	return in, bufio.NewReader(out), cmd.Process.Pid
}

// runBenchServer is the child's main: serve until stdin closes.
func runBenchServer(mode string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	switch mode {
	case "relay":
		cfg := Config{
			ClientIPHeader: "X-Forwarded-For",
			// The benchmark measures the relay, not the limits.
			MessageRate: Limit{Every: time.Microsecond, Burst: 1 << 20},
			MaxConns:    1 << 20,
		}
		if url := os.Getenv(benchRedisEnv); url != "" {
			if cfg.Store, err = NewRedisStore(RedisOptions{URL: url}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		srv, err := New(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() { done <- srv.Serve(ctx, ln) }()
	default:
		hs := &http.Server{Handler: newForwarder()}
		go func() { done <- hs.Serve(ln) }()
		go func() { <-ctx.Done(); _ = hs.Close() }()
	}
	runtime.GC()
	fmt.Println(ln.Addr())
	// "mem" asks for the memory in use; the end of stdin ends the child.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "mem" {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Println(ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine())
		}
	}
	cancel()
	<-done
	return 0
}

// forwarder pairs WebSockets by ?pair= and copies each one's messages to
// the other: the least a relay can do.
type forwarder struct {
	mu    sync.Mutex
	pairs map[string][]*websocket.Conn
}

func newForwarder() *forwarder { return &forwarder{pairs: make(map[string][]*websocket.Conn)} }

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	key := r.URL.Query().Get("pair")
	f.mu.Lock()
	f.pairs[key] = append(f.pairs[key], ws)
	both := f.pairs[key]
	f.mu.Unlock()
	ctx := context.Background()
	if len(both) == 2 {
		for _, c := range both {
			_ = c.Write(ctx, websocket.MessageText, []byte(`"ready"`))
		}
	}
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		f.mu.Lock()
		var other *websocket.Conn
		for _, c := range f.pairs[key] {
			if c != ws {
				other = c
			}
		}
		f.mu.Unlock()
		if other != nil {
			_ = other.Write(ctx, typ, data)
		}
	}
}
