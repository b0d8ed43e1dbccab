package signaling

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// ReadTimeout bounds every read of the handshake, so a silent peer can never
// hold a connection open.
const ReadTimeout = 10 * time.Second

// Session is one side of a handshake in progress over conn.
type session struct {
	conn net.Conn
	ctx  context.Context
}

func (s *session) deadline() time.Time {
	d := time.Now().Add(ReadTimeout)
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

func (s *session) send(t FrameType, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", t, err)
	}
	if err := s.conn.SetWriteDeadline(s.deadline()); err != nil {
		return err
	}
	if err := WriteFrame(s.conn, Frame{Type: t, Payload: p}); err != nil {
		return fmt.Errorf("send %s: %w", t, err)
	}
	return nil
}

// fail tells the peer why we stop, best effort, and returns err.
func (s *session) fail(code string, err error) error {
	_ = s.send(TypeError, ErrorMessage{Code: code, Message: err.Error()})
	return err
}

// errGotProbe is what expect returns for a probe frame it was told to take.
var errGotProbe = errors.New("probe frame")

// expect reads the next frame, which must be of type want (or an error frame).
func (s *session) expect(want FrameType) ([]byte, error) { return s.expectOr(want, false) }

// expectOr is expect that also takes a probe frame when probe is set
// (errGotProbe; its payload is ignored).
func (s *session) expectOr(want FrameType, probe bool) ([]byte, error) {
	if err := s.conn.SetReadDeadline(s.deadline()); err != nil {
		return nil, err
	}
	// Unblock the read when the context ends.
	stop := context.AfterFunc(s.ctx, func() { _ = s.conn.SetReadDeadline(time.Now()) })
	defer stop()
	f, err := ReadFrame(s.conn)
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, s.ctx.Err()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if cd, ok := s.ctx.Deadline(); ok && !time.Now().Before(cd) {
				// The read deadline was the context's own, and the socket's
				// timer beat the context's: report the context ending.
				<-s.ctx.Done()
				return nil, s.ctx.Err()
			}
			return nil, fmt.Errorf("waiting for %s: peer sent nothing for %s", want, ReadTimeout)
		}
		switch {
		case errors.Is(err, ErrVersion):
			return nil, s.fail(CodeVersion, err)
		case errors.Is(err, ErrMalformed), errors.Is(err, ErrTooLarge):
			return nil, s.fail(CodeBadFrame, err)
		}
		return nil, fmt.Errorf("waiting for %s: %w", want, err)
	}
	if f.Type == TypeError {
		re, err := DecodeError(f.Payload)
		if err != nil {
			return nil, err
		}
		return nil, re
	}
	if f.Type == TypeProbe && probe {
		return nil, errGotProbe
	}
	if f.Type != want {
		return nil, s.fail(CodeUnexpected, fmt.Errorf("%w: got %s, want %s", ErrUnexpected, f.Type, want))
	}
	return f.Payload, nil
}

func (s *session) readHello() (Hello, error) {
	p, err := s.expect(TypeHello)
	if err != nil {
		return Hello{}, err
	}
	return s.decodeHello(p)
}

// readHelloOrProbe is the listener's first read: the dialer's hello, or a
// probe (ErrProbed).
func (s *session) readHelloOrProbe() (Hello, error) {
	p, err := s.expectOr(TypeHello, true)
	if errors.Is(err, errGotProbe) {
		return Hello{}, ErrProbed
	}
	if err != nil {
		return Hello{}, err
	}
	return s.decodeHello(p)
}

func (s *session) decodeHello(p []byte) (Hello, error) {
	h, err := DecodeHello(p)
	if err != nil {
		code := CodeBadHello
		if errors.Is(err, ErrVersion) {
			code = CodeVersion
		}
		return Hello{}, s.fail(code, err)
	}
	return h, nil
}

func (s *session) readSDP(t FrameType) (string, error) {
	p, err := s.expect(t)
	if err != nil {
		return "", err
	}
	sdp, err := DecodeSDP(p)
	if err != nil {
		return "", s.fail(CodeBadSDP, err)
	}
	return sdp, nil
}

// Nonces are the two nonces of a handshake (section 2.2), from which and
// the two fingerprints both sides compute the verification code
// (trust.Code). Each is NonceSize random bytes.
type Nonces struct {
	Dialer, Listener []byte
}

func newNonce() ([]byte, error) {
	n := make([]byte, NonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("make a nonce: %w", err)
	}
	return n, nil
}

// commitTo is the commitment a listener's hello carries for nonce.
func commitTo(nonce []byte) string {
	sum := sha256.Sum256(nonce)
	return hex.EncodeToString(sum[:])
}

// Offerer runs the sending (dialing) side of the handshake: the listener
// speaks first, so it reads the peer's hello, lets check refuse it, and only
// then sends anything: our hello, our offer (made by offer) and it reads the
// peer's answer. An error from check or offer is reported to the peer in an
// error frame.
//
// The listener's hello commits to its nonce, ours carries our nonce, and
// the answer reveals the listener's, which must match the commitment
// (ErrCommit otherwise, and we close without an error frame).
func Offerer(ctx context.Context, conn net.Conn, local Hello, check func(remote Hello) error, offer func(remote Hello) (string, error)) (remote Hello, answer string, nonces Nonces, err error) {
	s := &session{conn: conn, ctx: ctx}
	if remote, err = s.readHello(); err != nil {
		return Hello{}, "", Nonces{}, err
	}
	if remote.Commit == "" {
		return Hello{}, "", Nonces{}, s.fail(CodeBadHello, fmt.Errorf("%w: the listener's hello has no commit", ErrMalformed))
	}
	if check != nil {
		if err := check(remote); err != nil {
			return Hello{}, "", Nonces{}, s.fail(CodeRefused, err)
		}
	}
	if nonces.Dialer, err = newNonce(); err != nil {
		return Hello{}, "", Nonces{}, s.fail(CodeInternal, err)
	}
	local.Commit, local.Nonce = "", hex.EncodeToString(nonces.Dialer)
	if err := s.send(TypeHello, local); err != nil {
		return Hello{}, "", Nonces{}, err
	}
	sdp, err := offer(remote)
	if err != nil {
		return Hello{}, "", Nonces{}, s.fail(CodeRefused, err)
	}
	if err := s.send(TypeOffer, SDP{SDP: sdp}); err != nil {
		return Hello{}, "", Nonces{}, err
	}
	p, err := s.expect(TypeAnswer)
	if err != nil {
		return Hello{}, "", Nonces{}, err
	}
	a, err := decodeSDP(p)
	if err != nil {
		return Hello{}, "", Nonces{}, s.fail(CodeBadSDP, err)
	}
	if a.Nonce == "" || commitTo(mustHex(a.Nonce)) != remote.Commit {
		return Hello{}, "", Nonces{}, ErrCommit
	}
	nonces.Listener = mustHex(a.Nonce)
	return remote, a.SDP, nonces, nil
}

// mustHex decodes a string that hex64Re has matched.
func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// Answerer runs the listening side: it sends our hello at once (the
// listener speaks first: a dialer, or a bridge in front of one, sends
// nothing before it knows who listens), reads the peer's hello, reads the
// offer and replies with what answer returns. check may refuse the peer
// after its hello. An error from check or answer is reported to the peer in
// an error frame.
//
// Our hello commits to a fresh nonce, the dialer's hello must carry its
// nonce, and our answer reveals ours: neither side can choose its nonce
// after seeing the other's.
func Answerer(ctx context.Context, conn net.Conn, local Hello, check func(remote Hello) error, answer func(remote Hello, offer string) (string, error)) (Hello, Nonces, error) {
	s := &session{conn: conn, ctx: ctx}
	var nonces Nonces
	var err error
	if nonces.Listener, err = newNonce(); err != nil {
		return Hello{}, Nonces{}, err
	}
	local.Commit, local.Nonce = commitTo(nonces.Listener), ""
	if err := s.send(TypeHello, local); err != nil {
		return Hello{}, Nonces{}, err
	}
	remote, err := s.readHelloOrProbe()
	if err != nil {
		return Hello{}, Nonces{}, err
	}
	if remote.Nonce == "" {
		return Hello{}, Nonces{}, s.fail(CodeBadHello, fmt.Errorf("%w: the dialer's hello has no nonce", ErrMalformed))
	}
	nonces.Dialer = mustHex(remote.Nonce)
	if check != nil {
		if err := check(remote); err != nil {
			return Hello{}, Nonces{}, s.fail(CodeRefused, err)
		}
	}
	offer, err := s.readSDP(TypeOffer)
	if err != nil {
		return Hello{}, Nonces{}, err
	}
	sdp, err := answer(remote, offer)
	if err != nil {
		return Hello{}, Nonces{}, s.fail(CodeInternal, err)
	}
	if err := s.send(TypeAnswer, SDP{SDP: sdp, Nonce: hex.EncodeToString(nonces.Listener)}); err != nil {
		return Hello{}, Nonces{}, err
	}
	return remote, nonces, nil
}
