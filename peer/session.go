package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// Trickle sessions (docs/PROTOCOL.md section 2.4). When the handshake stream
// outlives the handshake (a pipe through a rendezvous server) and both hellos
// say "trickle", the SDP goes out at once and candidates follow one frame
// each as they are gathered: over the server, STUN and TURN answers take
// round trips that full gathering would wait for. The stream then stays open
// for ICE restarts: when the path breaks (ICE fails: a router lost its
// uplink, a laptop changed networks), the offerer sends a new offer with
// fresh ICE credentials, the answerer answers, ICE finds a new path and the
// data channel carries on where it stopped, DTLS and SCTP untouched.

// RestartEvery is how soon the offerer sends another ICE restart when ICE
// fails again (the previous one may have gathered during the outage); a
// restart that is still checking gets twice as long.
const RestartEvery = 5 * time.Second

// RestartWindow is how long a broken path may take to come back through ICE
// restarts before the connection is given up (Done closes), so a transfer
// reconnects from scratch.
const RestartWindow = 30 * time.Second

// MaxRemoteCandidates bounds the candidates a peer may trickle per ICE
// generation: each one costs connectivity checks to an address it names.
const MaxRemoteCandidates = 64

// ErrPathLost means ICE restarts did not bring a broken path back in time.
var ErrPathLost = errors.New("the network path broke and ICE restarts did not restore it")

// refusal is an end that a new connection would not mend.
type refusal struct{ error }

func (r *refusal) Unwrap() error   { return r.error }
func (r *refusal) Permanent() bool { return true }

// PathEvent reports what happened to a trickle session's network path.
type PathEvent struct {
	// Restored is false when the path broke and an ICE restart begins (or
	// is awaited, on the answering side), true when it works again.
	Restored bool
	// Restarts counts the ICE restarts of this connection so far.
	Restarts int
	// Local and Remote are the candidate types of the new path (Restored).
	Local, Remote string
}

// session is the signaling that continues after a trickle handshake.
type session struct {
	conn    net.Conn
	pc      *webrtc.PeerConnection
	c       *Conn
	cfg     Config
	offerer bool
	wantFP  string // the peer's fingerprint: every SDP must name it

	mu          sync.Mutex
	ready       bool              // the handshake is over: frames go out at once
	pending     []signaling.Frame // frames held until then
	sawRelay    bool              // a relay candidate was gathered (relay-only check)
	restarts    int               // ICE restarts sent or taken
	remoteCands int               // candidates the peer sent in this ICE generation
	broken      time.Time         // when the path broke; zero while it works
	offered     bool              // a restart offer awaits its answer
	writeMu     sync.Mutex        // one frame at a time on conn
	kick        chan struct{}     // the ICE state changed
	gathered    chan struct{}     // closed when the first gathering ended
	gathOnce    sync.Once
	ended       chan struct{} // the reader stopped: no more signaling
	wg          sync.WaitGroup
}

func newSession(conn net.Conn, pc *webrtc.PeerConnection, c *Conn, cfg Config, offerer bool) *session {
	s := &session{conn: conn, pc: pc, c: c, cfg: cfg, offerer: offerer,
		kick: make(chan struct{}, 1), gathered: make(chan struct{}), ended: make(chan struct{})}
	pc.OnICECandidate(s.candidate)
	pc.OnICEConnectionStateChange(func(webrtc.ICEConnectionState) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	})
	return s
}

// candidate sends one gathered candidate, or the end of them (nil).
func (s *session) candidate(cand *webrtc.ICECandidate) {
	var msg signaling.Candidate
	if cand != nil {
		init := cand.ToJSON()
		msg.Candidate = init.Candidate
		if init.SDPMid != nil {
			msg.Mid = *init.SDPMid
		}
		if cand.Typ == webrtc.ICECandidateTypeRelay {
			s.mu.Lock()
			s.sawRelay = true
			s.mu.Unlock()
		}
	}
	s.send(signaling.TypeCandidate, msg)
	if cand == nil {
		s.gathOnce.Do(func() { close(s.gathered) })
	}
}

// send writes a frame now, or holds it while an SDP is being made (the
// handshake, an ICE restart): candidates of a new ICE generation must not
// reach the peer before the SDP that carries their credentials.
func (s *session) send(t signaling.FrameType, v any) {
	f, err := encodeFrame(t, v)
	if err != nil {
		slog.Warn("encode signaling frame", slog.Any("err", err))
		return
	}
	s.mu.Lock()
	if !s.ready {
		s.pending = append(s.pending, f)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.writeLocked(f)
}

func encodeFrame(t signaling.FrameType, v any) (signaling.Frame, error) {
	p, err := json.Marshal(v)
	return signaling.Frame{Type: t, Payload: p}, err
}

// hold makes send hold frames until the next flush.
func (s *session) hold() {
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
}

// flush writes first (an SDP), if any, then every held frame in order, and
// lets send write at once again.
func (s *session) flush(first *signaling.Frame) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if first != nil {
		s.writeLocked(*first)
	}
	for {
		s.mu.Lock()
		held := s.pending
		s.pending = nil
		if len(held) == 0 {
			s.ready = true
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, f := range held {
			s.writeLocked(f)
		}
	}
}

// write writes one frame now (an error frame on the way out).
func (s *session) write(f signaling.Frame) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.writeLocked(f)
}

func (s *session) writeLocked(f signaling.Frame) {
	if err := signaling.WriteFrame(s.conn, f); err != nil {
		slog.Debug("signaling write failed", slog.String("frame", f.Type.String()), slog.Any("err", err))
	}
}

// start sends what was held and runs the reader, which ends when the Conn
// closes (it closes the stream).
func (s *session) start() {
	_ = s.conn.SetDeadline(time.Time{})
	// Read first: on a stream without buffers (net.Pipe) both ends writing
	// their held candidates at once would wait for each other for ever.
	s.wg.Go(s.read)
	s.flush(nil)
}

// opened starts the watch over the path, once the data channel is open.
func (s *session) opened() {
	s.c.restartable.Store(true)
	s.wg.Go(s.watch)
}

// stop closes the stream and waits for the goroutines.
func (s *session) stop() {
	_ = s.conn.Close()
	s.wg.Wait()
}

// relayCheck is the relay-only rule for trickled candidates: once gathering
// ended without a relay candidate, the connection can never open.
func (s *session) relayCheck(ctx context.Context) <-chan error {
	out := make(chan error, 1)
	if !s.cfg.RelayOnly {
		return out
	}
	s.wg.Go(func() {
		select {
		case <-s.gathered:
		case <-s.c.done:
			return
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		ok := s.sawRelay
		s.mu.Unlock()
		if !ok {
			out <- s.cfg.noRelay(ctx)
		}
	})
	return out
}

// read handles the frames that follow the handshake until the stream ends.
func (s *session) read() {
	defer close(s.ended)
	defer s.nudge()
	for {
		f, err := signaling.ReadFrame(s.conn)
		if err != nil {
			slog.Debug("signaling stream ended", slog.Any("err", err))
			return
		}
		if err := s.handle(f); err != nil {
			slog.Warn("signaling after the handshake failed", slog.Any("err", err))
			if errors.Is(err, ErrFingerprint) {
				s.write(errorFrame(signaling.CodeRefused, err))
				s.c.fail(&refusal{fmt.Errorf("an ICE restart named another certificate (someone in the middle?): %w", err)})
			}
			// Nothing more is read: say so by closing, so the peer stops
			// counting on restarts too.
			_ = s.conn.Close()
			return
		}
	}
}

func errorFrame(code string, err error) signaling.Frame {
	p, _ := json.Marshal(signaling.ErrorMessage{Code: code, Message: err.Error()})
	return signaling.Frame{Type: signaling.TypeError, Payload: p}
}

func (s *session) handle(f signaling.Frame) error {
	switch f.Type {
	case signaling.TypeCandidate:
		cand, err := signaling.DecodeCandidate(f.Payload)
		if err != nil {
			return err
		}
		if cand.Candidate == "" {
			return nil // end of candidates: nothing for pion to do
		}
		s.mu.Lock()
		s.remoteCands++
		n := s.remoteCands
		s.mu.Unlock()
		if n > MaxRemoteCandidates {
			return fmt.Errorf("%w: more than %d candidates", signaling.ErrMalformed, MaxRemoteCandidates)
		}
		mid := cand.Mid
		if err := s.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: cand.Candidate, SDPMid: &mid}); err != nil {
			// A candidate of an earlier ICE generation, after a restart.
			slog.Debug("ignoring a remote candidate", slog.String("candidate", cand.Candidate), slog.Any("err", err))
		}
		return nil
	case signaling.TypeOffer:
		if s.offerer {
			return fmt.Errorf("%w: an offer to the offerer", signaling.ErrUnexpected)
		}
		return s.answerRestart(f.Payload)
	case signaling.TypeAnswer:
		s.mu.Lock()
		expected := s.offerer && s.offered
		s.offered = false
		s.mu.Unlock()
		if !expected {
			return fmt.Errorf("%w: an answer nobody asked for", signaling.ErrUnexpected)
		}
		sdp, err := signaling.DecodeSDP(f.Payload)
		if err != nil {
			return err
		}
		if err := checkFingerprint(sdp, s.wantFP); err != nil {
			return err
		}
		if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
			return fmt.Errorf("apply the restart answer: %w", err)
		}
		return nil
	case signaling.TypeError:
		re, err := signaling.DecodeError(f.Payload)
		if err != nil {
			return err
		}
		return re
	}
	return fmt.Errorf("%w: %s after the handshake", signaling.ErrUnexpected, f.Type)
}

// answerRestart applies the peer's ICE restart offer and answers it. The
// candidates it gathers wait for the answer.
func (s *session) answerRestart(payload []byte) error {
	sdp, err := signaling.DecodeSDP(payload)
	if err != nil {
		return err
	}
	if err := checkFingerprint(sdp, s.wantFP); err != nil {
		return err
	}
	s.hold()
	defer s.flushIfHeld()
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("apply the restart offer: %w", err)
	}
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("answer the restart offer: %w", err)
	}
	if err := s.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("answer the restart offer: %w", err)
	}
	s.mu.Lock()
	s.restarts++
	s.remoteCands = 0
	s.mu.Unlock()
	slog.Info("ICE restart answered")
	f, err := encodeFrame(signaling.TypeAnswer, signaling.SDP{SDP: s.pc.LocalDescription().SDP})
	if err != nil {
		return err
	}
	s.flush(&f)
	return nil
}

// flushIfHeld ends a hold that no SDP ended (an error on the way).
func (s *session) flushIfHeld() {
	s.mu.Lock()
	held := !s.ready
	s.mu.Unlock()
	if held {
		s.flush(nil)
	}
}

// restart sends an ICE restart offer (offerer only). An offer whose answer
// never came (lost, or refused) is rolled back first.
func (s *session) restart() {
	if s.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if err := s.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			slog.Warn("roll back the unanswered ICE restart", slog.Any("err", err))
			return
		}
		s.mu.Lock()
		s.offered = false
		s.mu.Unlock()
	}
	s.hold()
	defer s.flushIfHeld()
	offer, err := s.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		slog.Warn("ICE restart offer", slog.Any("err", err))
		return
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		slog.Warn("ICE restart offer", slog.Any("err", err))
		return
	}
	s.mu.Lock()
	s.restarts++
	s.offered = true
	s.remoteCands = 0
	n := s.restarts
	s.mu.Unlock()
	slog.Info("ICE restart", slog.Int("restart", n))
	f, err := encodeFrame(signaling.TypeOffer, signaling.SDP{SDP: s.pc.LocalDescription().SDP})
	if err != nil {
		return
	}
	s.flush(&f)
}

func (s *session) nudge() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// watch follows the ICE state: when the path breaks it restarts ICE (the
// offerer, every RestartEvery) and reports it; when it works again it
// reports that; when it stays broken past the window, or breaks with no
// signaling left to mend it, the connection is given up.
func (s *session) watch() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastRestart time.Time
	window := RestartWindow
	if !s.offerer {
		window += RestartEvery // the offerer gives up first
	}
	for {
		select {
		case <-s.c.done:
			return
		case <-s.kick:
		case <-tick.C:
		}
		state := s.pc.ICEConnectionState()
		s.mu.Lock()
		broken := s.broken
		s.mu.Unlock()
		now := time.Now()
		switch state {
		case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
			if !broken.IsZero() {
				s.mu.Lock()
				s.broken = time.Time{}
				n := s.restarts
				s.mu.Unlock()
				local, remote := s.c.Route()
				slog.Info("network path restored", slog.Int("restarts", n), slog.String("local", local), slog.String("remote", remote))
				s.report(PathEvent{Restored: true, Restarts: n, Local: local, Remote: remote})
			}
			continue
		case webrtc.ICEConnectionStateFailed:
			if broken.IsZero() {
				// Disconnected may mend itself (a short outage, SCTP
				// resends); a restart is for a path that failed.
				s.mu.Lock()
				s.broken = now
				n := s.restarts
				s.mu.Unlock()
				broken = now
				slog.Info("network path failed", slog.Bool("restarting", s.offerer))
				s.report(PathEvent{Restarts: n})
			}
		}
		if broken.IsZero() {
			continue
		}
		select {
		case <-s.ended:
			s.c.fail(fmt.Errorf("%w: the signaling stream is gone", ErrPathLost))
			return
		default:
		}
		if now.Sub(broken) > window {
			s.c.fail(ErrPathLost)
			return
		}
		// Again when ICE failed again, or made no progress for a while: a
		// restart throws away the checks in progress, and those of the last
		// one may still be about to succeed (a TURN allocation takes time).
		if since := now.Sub(lastRestart); s.offerer &&
			(state == webrtc.ICEConnectionStateFailed && since >= RestartEvery || since >= 2*RestartEvery) {
			lastRestart = now
			s.restart()
		}
	}
}

func (s *session) report(ev PathEvent) {
	if s.cfg.OnPath != nil {
		s.cfg.OnPath(ev)
	}
}
