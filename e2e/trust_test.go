//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	pd "github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// randomFingerprint is a made-up certificate fingerprint.
func randomFingerprint(t testing.TB) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return "sha-256 " + strings.Join(parts, ":")
}

// sendHello connects to addr from the local address from (nil: any), reads
// the receiver's hello (the listener speaks first), sends h (with a nonce)
// and an empty offer, and returns the receiver's next frame: an error frame,
// "bad-hello" or "refused" for a hello it refused, "bad-sdp" for one it
// took (the empty offer). No DTLS handshake can follow.
func sendHello(ctx context.Context, from net.Addr, addr string, h signaling.Hello) (signaling.Frame, error) {
	d := net.Dialer{LocalAddr: from, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return signaling.Frame{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if f, err := signaling.ReadFrame(c); err != nil || f.Type != signaling.TypeHello {
		return f, fmt.Errorf("the receiver's hello: %v (%v)", err, f.Type)
	}
	if h.Nonce == "" {
		h.Nonce = strings.Repeat("ab", 32)
	}
	p, err := json.Marshal(h)
	if err != nil {
		return signaling.Frame{}, err
	}
	if err := signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeHello, Payload: p}); err != nil {
		return signaling.Frame{}, err
	}
	// Refused at the hello, the receiver may close before it reads the offer.
	_ = signaling.WriteFrame(c, signaling.Frame{Type: signaling.TypeOffer, Payload: []byte(`{"sdp":""}`)})
	return signaling.ReadFrame(c)
}

// pins reads the receiver's peers.json: the pinned fingerprint by id.
func pins(t *testing.T, configDir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(configDir, "peers.json"))
	if os.IsNotExist(err) {
		return map[string]string{}
	}
	require.NoError(t, err)
	var list []struct{ ID, Fingerprint string }
	require.NoError(t, json.Unmarshal(data, &list))
	out := map[string]string{}
	for _, d := range list {
		out[d.ID] = d.Fingerprint
	}
	return out
}

// Issue 11, item 3: one hello carrying a known device's id and a made-up
// fingerprint, sent to a receiver that has not met that device yet, used to
// pin the fake, and the real device was then refused as "identity changed".
// Now the hello is refused (its id is not its fingerprint's) and pins
// nothing; the real device then connects fine.
func TestForgedHelloPinsNothing(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	file := writeFile(t, src, "note.txt", "hello")
	senderDir, receiverDir := t.TempDir(), t.TempDir()
	victim, err := identity.Load(senderDir)
	require.NoError(t, err)
	assert.Equal(t, identity.DeviceIDFor(victim.Fingerprint), victim.DeviceID, "the id derives from the certificate")

	dl := t.TempDir()
	r := startReceiver(t, ctx, receiverOpts{configDir: receiverDir, dir: dl, yes: true, once: true})

	forged := signaling.Hello{Device: pd.Device{ID: victim.DeviceID, Name: senderName, Fingerprint: randomFingerprint(t)}, Version: int(signaling.Version)}
	f, err := sendHello(ctx, nil, r.addr(), forged)
	require.NoError(t, err)
	require.Equal(t, signaling.TypeError, f.Type, "the forged hello is refused")
	re, err := signaling.DecodeError(f.Payload)
	require.NoError(t, err)
	assert.Equal(t, signaling.CodeBadHello, re.Code)
	assert.Contains(t, re.Message, "does not match its certificate")
	time.Sleep(time.Second) // longer than the store's write delay
	assert.Empty(t, pins(t, receiverDir), "nothing pinned")

	// The real device connects fine, and is pinned with its real key.
	s := runPeerdrop(t, ctx, "sender", "--config-dir", senderDir, "--name", senderName, "--json", "send", "--to", r.addr(), file)
	require.Equal(t, 0, s.wait(), "stderr: %s", strings.Join(s.stderrLines(), "\n"))
	require.Equal(t, 0, r.wait())
	code := s.await("connected", nil).str("code")
	assert.Regexp(t, regexp.MustCompile(`^\d{3} \d{3}$`), code)
	assert.Equal(t, code, r.await("offer", nil).str("code"), "the same code on both screens")
	assert.Equal(t, sha256File(t, file), sha256File(t, filepath.Join(dl, "note.txt")))
	assert.Equal(t, map[string]string{victim.DeviceID: victim.Fingerprint}, pins(t, receiverDir))
}

// Issue 11, item 3: 10,000 fake hellos used to fill peers.json (each one
// rewrote and fsynced the whole file) and then evict the real pin. Now a
// hello whose id is not its fingerprint's is refused, and one whose id is
// (a certificate the sender may well hold) is not pinned either, since no
// DTLS handshake proves it: peers.json is not written at all, and the real
// device's pin stays.
func TestHelloFloodPinsNothing(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	file := writeFile(t, src, "note.txt", "hello")
	senderDir, receiverDir := t.TempDir(), t.TempDir()
	dev, err := identity.Load(senderDir)
	require.NoError(t, err)

	r := startReceiver(t, ctx, receiverOpts{configDir: receiverDir, dir: t.TempDir(), yes: true})
	send := func(label string) {
		s := runPeerdrop(t, ctx, label, "--config-dir", senderDir, "--name", senderName, "--json", "send", "--to", r.addr(), file)
		require.Equal(t, 0, s.wait(), "stderr: %s", strings.Join(s.stderrLines(), "\n"))
	}
	send("sender")
	require.Eventually(t, func() bool { return len(pins(t, receiverDir)) == 1 }, 10*time.Second, 50*time.Millisecond,
		"the real device is pinned once its connection proved its key")
	before, err := os.ReadFile(filepath.Join(receiverDir, "peers.json"))
	require.NoError(t, err)

	const total, workers = 10_000, 8
	var next, refused, unproven, dropped, answeredForged atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for w := range workers {
		// One loopback source address per worker, as hosts of a LAN.
		from := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+w))}
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > total {
					return
				}
				fp := randomFingerprint(t)
				id := identity.DeviceIDFor(fp)
				forged := i%2 == 0
				if forged {
					id = identity.DeviceIDFor(randomFingerprint(t)) // another certificate's id
				}
				f, err := sendHello(ctx, from, r.addr(), signaling.Hello{Device: pd.Device{ID: id, Name: fmt.Sprintf("fake %d", i), Fingerprint: fp}, Version: int(signaling.Version)})
				switch {
				case err != nil:
					dropped.Add(1) // closed unanswered: the listener's admission
					continue
				case f.Type != signaling.TypeError:
					assert.Failf(t, "no error frame", "hello %d: got a %s frame", i, f.Type)
					return
				}
				if re, err := signaling.DecodeError(f.Payload); err == nil && re.Code == signaling.CodeBadSDP {
					if forged {
						answeredForged.Add(1)
					} else {
						unproven.Add(1) // it took the hello, and an offer never comes
					}
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	t.Logf("%d fake hellos from %d addresses took %s (%.0f/s): %d refused at the hello, %d never proven, %d dropped unanswered",
		total, workers, took.Round(time.Millisecond), total/took.Seconds(), refused.Load(), unproven.Load(), dropped.Load())
	assert.Zero(t, answeredForged.Load(), "a hello with another certificate's id is never answered")
	assert.GreaterOrEqual(t, refused.Load(), int64(total/2)*9/10, "ids of other certificates are refused")

	time.Sleep(time.Second) // longer than the store's write delay
	after, err := os.ReadFile(filepath.Join(receiverDir, "peers.json"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(before, after), "peers.json untouched: %d bytes before, %d after", len(before), len(after))

	// The real device still connects, under its pin.
	send("sender-2")
	got := pins(t, receiverDir)
	assert.Equal(t, map[string]string{dev.DeviceID: dev.Fingerprint}, got)
	r.signal(os.Interrupt)
	r.wait()
}
