// Command barepion is the baseline for BenchmarkTransfer1GiB: the simplest
// file transfer over a pion data channel, with pion's default settings.
//
//	barepion recv --out FILE      listen for one sender, write what it sends to FILE
//	barepion send --to HOST:PORT --in FILE
//
// It is written the way a typical pion program is: webrtc.NewPeerConnection
// with an empty Configuration, one reliable ordered data channel, the
// BufferedAmount / OnBufferedAmountLow flow control, the receiver writing each
// message to the file from OnMessage. The SDP offer and answer (non-trickle:
// GatheringCompletePromise) go over a TCP socket, one JSON line each way.
//
// The only setting that may be changed is pion's loopback candidate: when a
// default peer connection gathers no candidate at all (a machine with nothing
// but a loopback interface), it tries again with SetIncludeLoopbackCandidate
// (true), which two processes on one machine need to find each other.
//
// Both processes print JSON lines on stdout: the receiver {"event":"listening",
// "port":N} first, then "open" when the data channel opens and "done" when
// every byte is on disk (written, fsynced and closed, as peerdrop does for
// each file). Errors go to stderr with a non-zero exit status.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Flow control. pion's examples/data-channels-flow-control uses a 512 KiB low
// threshold, a 1 MiB ceiling and 1 KiB messages on an unordered, unreliable
// channel (it measures raw throughput, not a file transfer). A file needs a
// reliable ordered channel, and the values below (1 MiB low threshold, 4 MiB
// ceiling, 64 KiB messages, pion's default maximum message size being 64 KiB)
// are the usual ones in pion file-transfer code. They are also peerdrop's own
// transfer constants, so the comparison measures peerdrop's pion settings,
// protocol and bookkeeping, not different flow-control numbers.
const (
	lowThreshold = 1 << 20  // SetBufferedAmountLowThreshold
	maxBuffered  = 4 << 20  // stop sending above this BufferedAmount
	messageSize  = 64 << 10 // bytes of file per data channel message
)

// Timeouts so a broken run ends instead of hanging the benchmark.
const (
	connectTimeout = 30 * time.Second
	idleTimeout    = 60 * time.Second // no byte moved for this long: give up
	closeTimeout   = 5 * time.Second
)

var stdoutMu sync.Mutex

func event(name string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["event"] = name
	fields["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(fields)
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_, _ = os.Stdout.Write(append(b, '\n'))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "barepion: %v\n", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: barepion recv --out FILE [--listen ADDR] | send --to HOST:PORT --in FILE")
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
		fail(err)
	}
}

// newPC returns a peer connection with pion's defaults, or with loopback
// candidates included when loopback is set (the only change we allow).
func newPC(loopback bool) (*webrtc.PeerConnection, error) {
	if !loopback {
		return webrtc.NewPeerConnection(webrtc.Configuration{})
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
}

// gather sets desc as local description and waits until every candidate is in it.
func gather(pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return desc, fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-done:
	case <-time.After(connectTimeout):
		return desc, errors.New("ICE gathering did not complete")
	}
	return *pc.LocalDescription(), nil
}

func hasCandidate(sdp string) bool { return strings.Contains(sdp, "a=candidate:") }

// watchState reports a failed or closed connection on the returned channel.
func watchState(pc *webrtc.PeerConnection) <-chan struct{} {
	gone := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			once.Do(func() { close(gone) })
		}
	})
	return gone
}

func recv(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	out := fs.String("out", "", "file to write")
	listen := fs.String("listen", "127.0.0.1:0", "TCP address for the SDP exchange")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("recv: --out is required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	conn, offer, err := acceptOffer(*listen)
	if err != nil {
		return err
	}
	r := &receiver{f: f, size: -1, lastMove: time.Now(), finished: make(chan result, 1), opened: make(chan *webrtc.DataChannel, 1)}
	pc, answer, err := r.answer(offer)
	if err != nil {
		conn.Close()
		return err
	}
	defer pc.Close()
	gone := watchState(pc)
	b, _ := json.Marshal(answer)
	_, err = conn.Write(append(b, '\n'))
	conn.Close()
	if err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	var dc *webrtc.DataChannel
	select {
	case dc = <-r.opened:
	case <-gone:
		return errors.New("peer connection failed before the data channel opened")
	case <-time.After(connectTimeout):
		return errors.New("data channel did not open")
	}
	return r.wait(dc, gone)
}

// acceptOffer takes one TCP connection on listen and reads the sender's offer.
func acceptOffer(listen string) (net.Conn, webrtc.SessionDescription, error) {
	var offer webrtc.SessionDescription
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, offer, err
	}
	event("listening", map[string]any{"port": ln.Addr().(*net.TCPAddr).Port})
	if tl, ok := ln.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	conn, err := ln.Accept()
	ln.Close()
	if err != nil {
		return nil, offer, fmt.Errorf("accept: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(connectTimeout))
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		conn.Close()
		return nil, offer, fmt.Errorf("read offer: %w", err)
	}
	if err := json.Unmarshal(line, &offer); err != nil {
		conn.Close()
		return nil, offer, fmt.Errorf("decode offer: %w", err)
	}
	return conn, offer, nil
}

// result is how a receive ended.
type result struct {
	size    int64
	written int64
	err     error
}

// receiver writes what arrives to f.
type receiver struct {
	f        *os.File
	mu       sync.Mutex
	size     int64 // -1 until the header came
	written  int64
	lastMove time.Time
	finished chan result
	finOnce  sync.Once
	opened   chan *webrtc.DataChannel
	loopback bool
}

func (r *receiver) finish(res result) { r.finOnce.Do(func() { r.finished <- res }) }

// answer answers offer, with loopback candidates only when there is no
// other candidate.
func (r *receiver) answer(offer webrtc.SessionDescription) (*webrtc.PeerConnection, webrtc.SessionDescription, error) {
	var answer webrtc.SessionDescription
	for _, lb := range []bool{false, true} {
		r.loopback = lb
		pc, err := newPC(lb)
		if err != nil {
			return nil, answer, fmt.Errorf("new peer connection: %w", err)
		}
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			dc.OnOpen(func() {
				event("open", map[string]any{"loopback_candidates": r.loopback})
				r.opened <- dc
			})
			// pion calls OnMessage from its read loop, one message at a time:
			// writing here is the back pressure (SCTP's receive window fills).
			dc.OnMessage(r.onMessage)
		})
		if err := pc.SetRemoteDescription(offer); err != nil {
			return nil, answer, fmt.Errorf("set remote description: %w", err)
		}
		a, err := pc.CreateAnswer(nil)
		if err != nil {
			return nil, answer, fmt.Errorf("create answer: %w", err)
		}
		if answer, err = gather(pc, a); err != nil {
			return nil, answer, err
		}
		if hasCandidate(answer.SDP) || lb {
			return pc, answer, nil
		}
		_ = pc.Close() // no candidate at all: try again with loopback candidates
	}
	panic("unreachable")
}

// onMessage takes the size header, then the file's bytes.
func (r *receiver) onMessage(m webrtc.DataChannelMessage) {
	if m.IsString {
		var hdr struct {
			Size int64 `json:"size"`
		}
		if err := json.Unmarshal(m.Data, &hdr); err != nil || hdr.Size < 0 {
			r.finish(result{err: fmt.Errorf("bad header %q", m.Data)})
			return
		}
		r.mu.Lock()
		r.size = hdr.Size
		r.mu.Unlock()
		if hdr.Size == 0 {
			r.finish(result{})
		}
		return
	}
	r.mu.Lock()
	sz := r.size
	r.mu.Unlock()
	if sz < 0 {
		r.finish(result{err: errors.New("data before the size header")})
		return
	}
	if _, err := r.f.Write(m.Data); err != nil {
		r.finish(result{err: err})
		return
	}
	r.mu.Lock()
	r.written += int64(len(m.Data))
	w := r.written
	r.lastMove = time.Now()
	r.mu.Unlock()
	if w >= sz {
		r.finish(result{size: sz, written: w})
	}
}

// wait waits for the whole file, then confirms it to the sender.
func (r *receiver) wait(dc *webrtc.DataChannel, gone <-chan struct{}) error {
	dcClosed := make(chan struct{})
	var closeOnce sync.Once
	dc.OnClose(func() { closeOnce.Do(func() { close(dcClosed) }) })
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var res result
wait:
	for {
		select {
		case res = <-r.finished:
			break wait
		case <-gone:
			return errors.New("connection lost during the transfer")
		case <-dcClosed:
			return errors.New("data channel closed during the transfer")
		case <-tick.C:
			r.mu.Lock()
			idle := time.Since(r.lastMove)
			r.mu.Unlock()
			if idle > idleTimeout {
				return fmt.Errorf("no data for %s", idleTimeout)
			}
		}
	}
	if err := r.done(res); err != nil {
		return err
	}
	if err := dc.SendText("done"); err != nil {
		return fmt.Errorf("send done: %w", err)
	}
	// Let the sender read "done" and close first.
	select {
	case <-dcClosed:
	case <-gone:
	case <-time.After(closeTimeout):
	}
	return nil
}

// done checks and saves the file.
func (r *receiver) done(res result) error {
	if res.err != nil {
		return res.err
	}
	if res.written != res.size {
		return fmt.Errorf("got %d bytes, want %d", res.written, res.size)
	}
	if err := r.f.Sync(); err != nil {
		return err
	}
	if err := r.f.Close(); err != nil {
		return err
	}
	event("done", map[string]any{"bytes": res.written})
	return nil
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	to := fs.String("to", "", "receiver HOST:PORT")
	in := fs.String("in", "", "file to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" || *in == "" {
		return errors.New("send: --to and --in are required")
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	s, err := newSendConn()
	if err != nil {
		return err
	}
	defer s.pc.Close()
	if err := s.connect(*to); err != nil {
		return err
	}
	sent, err := s.stream(f, st.Size())
	if err != nil {
		return err
	}
	select {
	case <-s.doneMsg:
	case <-s.gone:
		return errors.New("connection lost before the receiver confirmed")
	case <-time.After(idleTimeout):
		return errors.New("the receiver did not confirm")
	}
	event("done", map[string]any{"bytes": sent})
	return s.pc.Close()
}

// sendConn is the sender's peer connection and data channel.
type sendConn struct {
	pc       *webrtc.PeerConnection
	dc       *webrtc.DataChannel
	offer    webrtc.SessionDescription
	loopback bool
	gone     <-chan struct{}
	opened   chan struct{}
	sendMore chan struct{}
	doneMsg  chan struct{}
}

// newSendConn makes the offer, with loopback candidates only when there is
// no other candidate.
func newSendConn() (*sendConn, error) {
	s := &sendConn{opened: make(chan struct{}), sendMore: make(chan struct{}, 1), doneMsg: make(chan struct{})}
	for _, lb := range []bool{false, true} {
		s.loopback = lb
		pc, err := newPC(lb)
		if err != nil {
			return nil, fmt.Errorf("new peer connection: %w", err)
		}
		s.pc = pc
		if s.dc, err = pc.CreateDataChannel("data", nil); err != nil { // reliable, ordered
			return nil, fmt.Errorf("create data channel: %w", err)
		}
		o, err := pc.CreateOffer(nil)
		if err != nil {
			return nil, fmt.Errorf("create offer: %w", err)
		}
		if s.offer, err = gather(pc, o); err != nil {
			return nil, err
		}
		if hasCandidate(s.offer.SDP) || lb {
			break
		}
		_ = pc.Close()
	}
	s.gone = watchState(s.pc)
	s.dc.OnOpen(func() { close(s.opened) })
	s.dc.SetBufferedAmountLowThreshold(lowThreshold)
	s.dc.OnBufferedAmountLow(func() {
		select {
		case s.sendMore <- struct{}{}:
		default:
		}
	})
	var doneOnce sync.Once
	s.dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if m.IsString && string(m.Data) == "done" {
			doneOnce.Do(func() { close(s.doneMsg) })
		}
	})
	return s, nil
}

// connect exchanges offer and answer with the receiver at to, over TCP,
// and waits for the data channel.
func (s *sendConn) connect(to string) error {
	conn, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(connectTimeout))
	b, _ := json.Marshal(s.offer)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return fmt.Errorf("write offer: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	conn.Close()
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	var answer webrtc.SessionDescription
	if err := json.Unmarshal(line, &answer); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if err := s.pc.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("set remote description: %w", err)
	}
	select {
	case <-s.opened:
	case <-s.gone:
		return errors.New("peer connection failed before the data channel opened")
	case <-time.After(connectTimeout):
		return errors.New("data channel did not open")
	}
	event("open", map[string]any{"loopback_candidates": s.loopback})
	return nil
}

// stream sends the size header, then f's bytes, with backpressure.
func (s *sendConn) stream(f *os.File, size int64) (int64, error) {
	if err := s.dc.SendText(fmt.Sprintf(`{"size":%d}`, size)); err != nil {
		return 0, err
	}
	buf := make([]byte, messageSize)
	var sent int64
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			// pion copies the payload into its SCTP chunks, so buf can be reused.
			if err := s.dc.Send(buf[:n]); err != nil {
				return sent, fmt.Errorf("send: %w", err)
			}
			sent += int64(n)
			if err := s.waitForRoom(); err != nil {
				return sent, err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return sent, err
		}
	}
	if sent != size {
		return sent, fmt.Errorf("read %d bytes, the file has %d", sent, size)
	}
	return sent, nil
}

// waitForRoom waits while more than maxBuffered is buffered.
func (s *sendConn) waitForRoom() error {
	if s.dc.BufferedAmount() <= maxBuffered {
		return nil
	}
	select {
	case <-s.sendMore:
		return nil
	case <-s.gone:
		return errors.New("connection lost during the transfer")
	case <-time.After(idleTimeout):
		return fmt.Errorf("buffered amount stuck above %d for %s", maxBuffered, idleTimeout)
	}
}
