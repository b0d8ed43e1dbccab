package signaling

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

// tcpPair returns both ends of a real TCP connection on 127.0.0.1.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, ok := <-accepted
	require.True(t, ok, "accept failed")
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	return client, server
}

// helloFor is a valid hello of a device named by seed: a fingerprint made
// from seed and the id it derives.
func helloFor(seed, name string) Hello {
	fp := fingerprintOf(seed)
	return Hello{Device: device.Device{ID: identity.DeviceIDFor(fp), Name: name, Fingerprint: fp}, Version: int(Version)}
}

type answerResult struct {
	remote Hello
	nonces Nonces
	err    error
}

// runAnswerer runs Answerer on conn in a goroutine and, like a listener
// does, closes conn as soon as it returns.
func runAnswerer(ctx context.Context, conn net.Conn, check func(Hello) error, answer func(Hello, string) (string, error)) <-chan answerResult {
	ch := make(chan answerResult, 1)
	go func() {
		remote, nonces, err := Answerer(ctx, conn, helloFor("answerer", "Receiver"), check, answer)
		_ = conn.Close()
		ch <- answerResult{remote, nonces, err}
	}()
	return ch
}

func waitAnswer(t *testing.T, ch <-chan answerResult) answerResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Answerer did not return")
		return answerResult{}
	}
}

func echoAnswer(remote Hello, offer string) (string, error) {
	return "answer to " + offer, nil
}

// readErrorFrame reads frames from conn until an error frame and returns it.
func readErrorFrame(t *testing.T, conn net.Conn) ErrorMessage {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		f, err := ReadFrame(conn)
		require.NoError(t, err, "expected an error frame")
		if f.Type != TypeError {
			continue
		}
		var em ErrorMessage
		require.NoError(t, json.Unmarshal(f.Payload, &em))
		assert.NotEmpty(t, em.Message)
		// The sender closes after an error frame. When our own bytes were left
		// unread, closing makes the kernel answer with a reset, not a FIN.
		_, err = ReadFrame(conn)
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection must be closed after the error frame, got %v", err)
		}
		return em
	}
}

func writeRaw(t *testing.T, conn net.Conn, b []byte) {
	t.Helper()
	require.NoError(t, conn.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := conn.Write(b)
	require.NoError(t, err)
}

func writeJSONFrame(t *testing.T, conn net.Conn, ft FrameType, v any) {
	t.Helper()
	p, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, WriteFrame(conn, Frame{Type: ft, Payload: p}))
}

func TestHandshakeFullExchange(t *testing.T) {
	client, server := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const offerSDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 00\r\n"
	const answerSDP = "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"
	offererHello := helloFor("offerer", "Sender ☺")

	var checked Hello
	res := runAnswerer(ctx, server, func(h Hello) error {
		checked = h
		return nil
	}, func(remote Hello, offer string) (string, error) {
		if remote.ID != offererHello.ID || remote.Fingerprint != offererHello.Fingerprint || offer != offerSDP {
			return "", errors.New("answer got the wrong hello or offer")
		}
		return answerSDP, nil
	})

	var offeredTo Hello
	remote, answer, nonces, err := Offerer(ctx, client, offererHello, nil, func(h Hello) (string, error) {
		offeredTo = h
		return offerSDP, nil
	})
	require.NoError(t, err)
	want := helloFor("answerer", "Receiver")
	require.Len(t, remote.Commit, 64, "the listener's hello commits to its nonce")
	assert.Empty(t, remote.Nonce)
	want.Commit = remote.Commit
	assert.Equal(t, want, remote)
	assert.Equal(t, remote, offeredTo, "offer callback sees the answerer's hello")
	assert.Equal(t, answerSDP, answer)

	r := waitAnswer(t, res)
	require.NoError(t, r.err)
	require.Len(t, r.remote.Nonce, 64, "the dialer's hello carries its nonce")
	assert.Empty(t, r.remote.Commit)
	sent := offererHello
	sent.Nonce = r.remote.Nonce
	assert.Equal(t, sent, r.remote)
	assert.Equal(t, sent, checked, "check sees the offerer's hello")
	assert.Equal(t, nonces, r.nonces, "both sides end with the same two nonces")
	assert.Len(t, nonces.Dialer, NonceSize)
	assert.Len(t, nonces.Listener, NonceSize)
	assert.Equal(t, remote.Commit, commitTo(nonces.Listener))
}

func TestHandshakeNilCheck(t *testing.T) {
	client, server := tcpPair(t)
	ctx := t.Context()
	res := runAnswerer(ctx, server, nil, echoAnswer)
	_, answer, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
	require.NoError(t, err)
	assert.Equal(t, "answer to sdp", answer)
	require.NoError(t, waitAnswer(t, res).err)
}

func TestHandshakeCheckRefuses(t *testing.T) {
	client, server := tcpPair(t)
	ctx := t.Context()
	refusal := errors.New("device is not paired")
	answerCalled := false
	res := runAnswerer(ctx, server, func(Hello) error { return refusal }, func(h Hello, o string) (string, error) {
		answerCalled = true
		return echoAnswer(h, o)
	})

	_, _, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
	require.Error(t, err)
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeRefused, re.Code)
	assert.True(t, re.RemoteRefused())
	assert.Contains(t, re.Message, "device is not paired")

	r := waitAnswer(t, res)
	assert.ErrorIs(t, r.err, refusal)
	assert.False(t, answerCalled)
}

func TestHandshakeOfferRefused(t *testing.T) {
	client, server := tcpPair(t)
	ctx := t.Context()
	res := runAnswerer(ctx, server, nil, echoAnswer)
	_, _, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) {
		return "", errors.New("wrong peer")
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wrong peer")

	r := waitAnswer(t, res)
	var re *RemoteError
	require.ErrorAs(t, r.err, &re)
	assert.Equal(t, CodeRefused, re.Code)
	assert.Contains(t, re.Message, "wrong peer")
}

func TestHandshakeAnswerFails(t *testing.T) {
	client, server := tcpPair(t)
	ctx := t.Context()
	res := runAnswerer(ctx, server, nil, func(Hello, string) (string, error) {
		return "", errors.New("cannot parse your offer")
	})
	_, _, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeInternal, re.Code, "a failing answer is the answerer's own trouble")
	assert.False(t, re.RemoteRefused())
	assert.Contains(t, re.Message, "cannot parse your offer")
	require.Error(t, waitAnswer(t, res).err)
}

// TestAnswererRejects sends a bad first message to a real Answerer and checks
// that it gives up at once, says why in an error frame, and closes.
func TestAnswererRejects(t *testing.T) {
	dialerHello := helloFor("o", "O")
	dialerHello.Nonce = strings.Repeat("ab", 32)
	validHelloJSON, err := json.Marshal(dialerHello)
	require.NoError(t, err)
	noNonceHello, err := json.Marshal(helloFor("o", "O"))
	require.NoError(t, err)
	badHello, err := json.Marshal(Hello{Device: device.Device{ID: "bad id!", Name: "O", Fingerprint: testFingerprint}, Version: int(Version)})
	require.NoError(t, err)
	v1Hello, err := json.Marshal(Hello{Device: device.Device{ID: testID, Name: "O", Fingerprint: testFingerprint}, Version: 1})
	require.NoError(t, err)
	v3Hello, err := json.Marshal(Hello{Device: device.Device{ID: testID, Name: "O", Fingerprint: testFingerprint}, Version: int(Version) + 1})
	require.NoError(t, err)
	frame := func(v byte, ft FrameType, p []byte) []byte {
		return append(header(v, ft, uint32(len(p))), p...)
	}

	cases := []struct {
		name     string
		send     [][]byte // written in turn
		wantCode string
		wantErr  error
	}{
		{
			name:     "garbage with the version as first byte",
			send:     [][]byte{{Version, 0x63, 0x7a, 0x01, 0x00, 0xff}},
			wantCode: CodeBadFrame,
			wantErr:  ErrMalformed,
		},
		{
			name:     "http request",
			send:     [][]byte{[]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")},
			wantCode: CodeVersion,
			wantErr:  ErrVersion,
		},
		{
			name:     "wrong version frame",
			send:     [][]byte{frame(Version+1, TypeHello, validHelloJSON)},
			wantCode: CodeVersion,
			wantErr:  ErrVersion,
		},
		{
			name:     "version 1 frame (before the listener spoke first)",
			send:     [][]byte{frame(1, TypeHello, validHelloJSON)},
			wantCode: CodeVersion,
			wantErr:  ErrVersion,
		},
		{
			name:     "hello claiming version 1",
			send:     [][]byte{frame(Version, TypeHello, v1Hello)},
			wantCode: CodeVersion,
			wantErr:  ErrVersion,
		},
		{
			name:     "hello claiming a later version",
			send:     [][]byte{frame(Version, TypeHello, v3Hello)},
			wantCode: CodeVersion,
			wantErr:  ErrVersion,
		},
		{
			name:     "answer first",
			send:     [][]byte{frame(Version, TypeAnswer, []byte(`{"sdp":"x"}`))},
			wantCode: CodeUnexpected,
			wantErr:  ErrUnexpected,
		},
		{
			name:     "offer first",
			send:     [][]byte{frame(Version, TypeOffer, []byte(`{"sdp":"x"}`))},
			wantCode: CodeUnexpected,
			wantErr:  ErrUnexpected,
		},
		{
			name:     "oversized length header",
			send:     [][]byte{header(Version, TypeHello, MaxPayload+1)},
			wantCode: CodeBadFrame,
			wantErr:  ErrTooLarge,
		},
		{
			name:     "4 GiB length header",
			send:     [][]byte{header(Version, TypeHello, 0xFFFFFFFF)},
			wantCode: CodeBadFrame,
			wantErr:  ErrTooLarge,
		},
		{
			name:     "hello not json",
			send:     [][]byte{frame(Version, TypeHello, []byte("hello!"))},
			wantCode: CodeBadHello,
			wantErr:  ErrMalformed,
		},
		{
			name:     "hello without a nonce",
			send:     [][]byte{frame(Version, TypeHello, noNonceHello)},
			wantCode: CodeBadHello,
			wantErr:  ErrMalformed,
		},
		{
			name:     "invalid hello",
			send:     [][]byte{frame(Version, TypeHello, badHello)},
			wantCode: CodeBadHello,
			wantErr:  ErrMalformed,
		},
		{
			name:     "empty offer after hello",
			send:     [][]byte{frame(Version, TypeHello, validHelloJSON), frame(Version, TypeOffer, []byte(`{"sdp":""}`))},
			wantCode: CodeBadSDP,
			wantErr:  ErrMalformed,
		},
		{
			name:     "second hello instead of offer",
			send:     [][]byte{frame(Version, TypeHello, validHelloJSON), frame(Version, TypeHello, validHelloJSON)},
			wantCode: CodeUnexpected,
			wantErr:  ErrUnexpected,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			// A generous context: the Answerer must not need it to give up.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			answerCalled := make(chan struct{}, 1)
			start := time.Now()
			res := runAnswerer(ctx, server, nil, func(h Hello, o string) (string, error) {
				answerCalled <- struct{}{}
				return echoAnswer(h, o)
			})
			for _, b := range tc.send {
				writeRaw(t, client, b)
			}
			em := readErrorFrame(t, client)
			assert.Equal(t, tc.wantCode, em.Code)

			r := waitAnswer(t, res)
			require.Error(t, r.err)
			assert.ErrorIs(t, r.err, tc.wantErr)
			assert.Less(t, time.Since(start), 3*time.Second, "Answerer must give up without waiting for a timeout")
			assert.Empty(t, answerCalled, "answer must not be called")
		})
	}
}

func TestOffererRejectsBadAnswerer(t *testing.T) {
	cases := []struct {
		name     string
		reply    func(t *testing.T, server net.Conn)
		wantCode string // "" when no error frame is expected
		wantErr  error
	}{
		{
			name: "answerer sends offer instead of hello",
			reply: func(t *testing.T, server net.Conn) {
				writeJSONFrame(t, server, TypeOffer, SDP{SDP: "x"})
			},
			wantCode: CodeUnexpected,
			wantErr:  ErrUnexpected,
		},
		{
			name: "answerer hello invalid",
			reply: func(t *testing.T, server net.Conn) {
				writeJSONFrame(t, server, TypeHello, Hello{Device: device.Device{ID: testID, Name: "", Fingerprint: testFingerprint}, Version: int(Version)})
			},
			wantCode: CodeBadHello,
			wantErr:  ErrMalformed,
		},
		{
			name: "answerer hello without a commit",
			reply: func(t *testing.T, server net.Conn) {
				writeJSONFrame(t, server, TypeHello, helloFor("answerer", "Receiver"))
			},
			wantCode: CodeBadHello,
			wantErr:  ErrMalformed,
		},
		{
			name: "answerer closes",
			reply: func(t *testing.T, server net.Conn) {
				_ = server.Close()
			},
			wantErr: io.EOF,
		},
		{
			name: "answerer sends malformed error frame",
			reply: func(t *testing.T, server net.Conn) {
				require.NoError(t, WriteFrame(server, Frame{Type: TypeError, Payload: []byte("{")}))
			},
			wantErr: ErrMalformed,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			type result struct{ err error }
			done := make(chan result, 1)
			go func() {
				_, _, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
				_ = client.Close()
				done <- result{err}
			}()
			// The listener speaks first: the offerer sends nothing of its
			// own (an error frame at most) to one that did not.
			tc.reply(t, server)
			var r result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Offerer did not return")
			}
			require.Error(t, r.err)
			assert.ErrorIs(t, r.err, tc.wantErr)
			if tc.wantCode != "" {
				require.NoError(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
				f, err := ReadFrame(server)
				require.NoError(t, err)
				require.Equal(t, TypeError, f.Type, "the offerer's first frame to a bad listener is its error frame, never its hello")
				em, err := DecodeError(f.Payload)
				require.NoError(t, err)
				assert.Equal(t, tc.wantCode, em.Code)
			}
		})
	}
}

func TestAnswererSilentPeerContextDeadline(t *testing.T) {
	client, server := tcpPair(t)
	_ = client // connected, says nothing
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := runAnswerer(ctx, server, nil, echoAnswer)
	select {
	case r := <-res:
		require.Error(t, r.err)
		assert.ErrorIs(t, r.err, context.DeadlineExceeded)
	case <-time.After(2 * time.Second):
		t.Fatal("Answerer ignored its context deadline")
	}
}

func TestAnswererSilentPeerContextCancel(t *testing.T) {
	_, server := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := runAnswerer(ctx, server, nil, echoAnswer)
	time.Sleep(50 * time.Millisecond) // let it block in the read
	cancel()
	select {
	case r := <-res:
		assert.ErrorIs(t, r.err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Answerer ignored its context being cancelled")
	}
}

func TestAnswererStallsMidFrame(t *testing.T) {
	// A peer that sends a header and then only part of the payload must not
	// hold the Answerer beyond its deadline either.
	client, server := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := runAnswerer(ctx, server, nil, echoAnswer)
	writeRaw(t, client, append(header(Version, TypeHello, 100), `{"device_id":`...))
	select {
	case r := <-res:
		assert.ErrorIs(t, r.err, context.DeadlineExceeded)
	case <-time.After(2 * time.Second):
		t.Fatal("Answerer hung on a partial frame")
	}
}

func TestOffererSilentPeerContextDeadline(t *testing.T) {
	client, _ := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(2 * time.Second):
		t.Fatal("Offerer ignored its context deadline")
	}
}

// TestListenerSpeaksFirst checks the order of docs/PROTOCOL.md section 2.2
// on real sockets: the answerer's hello goes out before it hears anything,
// and the offerer sends nothing before it has the listener's hello.
func TestListenerSpeaksFirst(t *testing.T) {
	t.Run("answerer", func(t *testing.T) {
		client, server := tcpPair(t)
		res := runAnswerer(t.Context(), server, nil, echoAnswer)
		require.NoError(t, client.SetReadDeadline(time.Now().Add(5*time.Second)))
		f, err := ReadFrame(client)
		require.NoError(t, err, "the answerer's hello comes without a word from the dialer")
		require.Equal(t, TypeHello, f.Type)
		h, err := DecodeHello(f.Payload)
		require.NoError(t, err)
		assert.Equal(t, helloFor("answerer", "Receiver").ID, h.ID)
		assert.Len(t, h.Commit, 64)
		_ = client.Close()
		require.Error(t, waitAnswer(t, res).err)
	})
	t.Run("offerer", func(t *testing.T) {
		client, server := tcpPair(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, _, _, err := Offerer(ctx, client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
			done <- err
		}()
		require.NoError(t, server.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		_, err := ReadFrame(server)
		var ne net.Error
		require.ErrorAs(t, err, &ne, "the offerer must send nothing before the listener's hello")
		assert.True(t, ne.Timeout())
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
	t.Run("offerer check refuses", func(t *testing.T) {
		client, server := tcpPair(t)
		done := make(chan error, 1)
		go func() {
			_, _, _, err := Offerer(t.Context(), client, helloFor("o", "O"), func(Hello) error { return errors.New("not the device dialed") },
				func(Hello) (string, error) { return "sdp", nil })
			_ = client.Close()
			done <- err
		}()
		listenerHello := helloFor("answerer", "Receiver")
		listenerHello.Commit = strings.Repeat("cd", 32)
		writeJSONFrame(t, server, TypeHello, listenerHello)
		require.NoError(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
		f, err := ReadFrame(server)
		require.NoError(t, err)
		require.Equal(t, TypeError, f.Type, "a refused listener gets an error frame, not the dialer's hello")
		em, err := DecodeError(f.Payload)
		require.NoError(t, err)
		assert.Equal(t, CodeRefused, em.Code)
		assert.ErrorContains(t, <-done, "not the device dialed")
	})
}

// TestOffererChecksTheReveal plays a listener that chooses its nonce after
// seeing the dialer's (so it could steer the code): its answer reveals a
// nonce other than the one its hello committed to. The offerer refuses
// with ErrCommit and closes without an error frame; the true nonce passes.
func TestOffererChecksTheReveal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reveal func(committed, dialer []byte) string
		ok     bool
	}{
		{"the committed nonce", func(c, _ []byte) string { return hex.EncodeToString(c) }, true},
		{"another nonce", func(_, d []byte) string { return hex.EncodeToString(d) }, false},
		{"no nonce", func([]byte, []byte) string { return "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			type result struct {
				nonces Nonces
				err    error
			}
			done := make(chan result, 1)
			go func() {
				_, _, n, err := Offerer(t.Context(), client, helloFor("o", "O"), nil, func(Hello) (string, error) { return "sdp", nil })
				_ = client.Close()
				done <- result{n, err}
			}()
			committed := bytes.Repeat([]byte{7}, NonceSize)
			h := helloFor("answerer", "Receiver")
			h.Commit = commitTo(committed)
			writeJSONFrame(t, server, TypeHello, h)
			require.NoError(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
			f, err := ReadFrame(server)
			require.NoError(t, err)
			dh, err := DecodeHello(f.Payload)
			require.NoError(t, err)
			dialerNonce := mustHex(dh.Nonce)
			f, err = ReadFrame(server)
			require.NoError(t, err)
			require.Equal(t, TypeOffer, f.Type)
			writeJSONFrame(t, server, TypeAnswer, SDP{SDP: "answer", Nonce: tc.reveal(committed, dialerNonce)})
			r := <-done
			if tc.ok {
				require.NoError(t, r.err)
				assert.Equal(t, Nonces{Dialer: dialerNonce, Listener: committed}, r.nonces)
				return
			}
			require.ErrorIs(t, r.err, ErrCommit)
			_, err = ReadFrame(server)
			assert.ErrorIs(t, err, io.EOF, "closed without an error frame")
		})
	}
}
