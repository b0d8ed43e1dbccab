package signaling

import (
	"context"
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

// expect reads the next frame, which must be of type want (or an error frame).
func (s *session) expect(want FrameType) ([]byte, error) {
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

// Offerer runs the sending (dialing) side of the handshake: the listener
// speaks first, so it reads the peer's hello, lets check refuse it, and only
// then sends anything: our hello, our offer (made by offer) and it reads the
// peer's answer. An error from check or offer is reported to the peer in an
// error frame.
func Offerer(ctx context.Context, conn net.Conn, local Hello, check func(remote Hello) error, offer func(remote Hello) (string, error)) (remote Hello, answer string, err error) {
	s := &session{conn: conn, ctx: ctx}
	if remote, err = s.readHello(); err != nil {
		return Hello{}, "", err
	}
	if check != nil {
		if err := check(remote); err != nil {
			return Hello{}, "", s.fail(CodeRefused, err)
		}
	}
	if err := s.send(TypeHello, local); err != nil {
		return Hello{}, "", err
	}
	sdp, err := offer(remote)
	if err != nil {
		return Hello{}, "", s.fail(CodeRefused, err)
	}
	if err := s.send(TypeOffer, SDP{SDP: sdp}); err != nil {
		return Hello{}, "", err
	}
	if answer, err = s.readSDP(TypeAnswer); err != nil {
		return Hello{}, "", err
	}
	return remote, answer, nil
}

// Answerer runs the listening side: it sends our hello at once (the
// listener speaks first: a dialer, or a bridge in front of one, sends
// nothing before it knows who listens), reads the peer's hello, reads the
// offer and replies with what answer returns. check may refuse the peer
// after its hello. An error from check or answer is reported to the peer in
// an error frame.
func Answerer(ctx context.Context, conn net.Conn, local Hello, check func(remote Hello) error, answer func(remote Hello, offer string) (string, error)) (Hello, error) {
	s := &session{conn: conn, ctx: ctx}
	if err := s.send(TypeHello, local); err != nil {
		return Hello{}, err
	}
	remote, err := s.readHello()
	if err != nil {
		return Hello{}, err
	}
	if check != nil {
		if err := check(remote); err != nil {
			return Hello{}, s.fail(CodeRefused, err)
		}
	}
	offer, err := s.readSDP(TypeOffer)
	if err != nil {
		return Hello{}, err
	}
	sdp, err := answer(remote, offer)
	if err != nil {
		return Hello{}, s.fail(CodeInternal, err)
	}
	if err := s.send(TypeAnswer, SDP{SDP: sdp}); err != nil {
		return Hello{}, err
	}
	return remote, nil
}
