package localsend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// host is a Node on loopback whose LocalSend senders are served by a real
// transfer.Receiver writing into dir.
type host struct {
	node   *Node
	rcv    *transfer.Receiver
	dir    string
	events chan transfer.Event
	decide func(transfer.OfferReceived) ([]int, bool)
}

func startHost(t *testing.T, alias string, mod func(*Config)) *host {
	t.Helper()
	h := &host{dir: t.TempDir(), events: make(chan transfer.Event, 1024)}
	rcv := &transfer.Receiver{Dir: h.dir,
		Choose: func(ctx context.Context, o transfer.OfferReceived) ([]int, bool) {
			if h.decide != nil {
				return h.decide(o)
			}
			return nil, true
		},
		OnEvent: func(ev transfer.Event) {
			select {
			case h.events <- ev:
			default:
			}
		}}
	pins, err := OpenPins(t.TempDir())
	require.NoError(t, err)
	cfg := Config{Alias: alias, Type: "desktop", Cert: testCert(t), Port: -1, Addr: "127.0.0.1", NoDiscovery: true, Pins: pins,
		Serve: func(ctx context.Context, from transfer.Peer, link transfer.Link) { _ = rcv.Handle(ctx, from, link) }}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(cfg)
	require.NoError(t, err)
	h.node, h.rcv = n, rcv
	t.Cleanup(func() { _ = n.Close() })
	return h
}

func (h *host) device() Device {
	in := h.node.Self()
	return Device{Info: in, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(h.node.Port()))}
}

// await waits for an event of type T.
func await[T transfer.Event](t *testing.T, h *host) T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if v, ok := ev.(T); ok {
				return v
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T", zero)
			return zero
		}
	}
}

// sendFiles runs a transfer.Sender from a to b over LocalSend.
func sendFiles(t *testing.T, a, b *host, pin string, paths ...string) (transfer.Result, error) {
	t.Helper()
	offer, err := transfer.NewOffer(paths, "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, ReconnectWindow: time.Millisecond,
		Dial: func(ctx context.Context) (transfer.Link, error) { return a.node.Dial(ctx, b.device(), pin) }})
	return s.Run(ctx)
}

func writeFile(t *testing.T, dir, name string, size int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	b := make([]byte, size)
	_, _ = rand.Read(b)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func TestSendBetweenTwoNodes(t *testing.T) {
	a, b := startHost(t, "Alice", nil), startHost(t, "Bob", nil)
	src := t.TempDir()
	one := writeFile(t, src, "one.bin", 3<<20+17)
	writeFile(t, src, "Trip/a.txt", 10)
	writeFile(t, src, "Trip/sub/b.txt", 0)
	res, err := sendFiles(t, a, b, "", one, filepath.Join(src, "Trip"))
	require.NoError(t, err)
	assert.Equal(t, 3, res.Sent)
	for _, rel := range []string{"one.bin", "Trip/a.txt", "Trip/sub/b.txt"} {
		want, err := os.ReadFile(filepath.Join(src, rel))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(b.dir, rel))
		require.NoError(t, err, rel)
		assert.True(t, bytes.Equal(want, got), rel)
	}
	done := await[transfer.TransferDone](t, b)
	assert.False(t, done.Cancelled)
	assert.Empty(t, done.Failed)
}

func TestDeclineAndPIN(t *testing.T) {
	a := startHost(t, "Alice", nil)
	b := startHost(t, "Bob", func(c *Config) { c.PIN = "4711" })
	one := writeFile(t, t.TempDir(), "one.bin", 100)
	_, err := sendFiles(t, a, b, "", one)
	require.ErrorIs(t, err, transfer.ErrDeclined)
	assert.Contains(t, err.Error(), "asks for a PIN")
	_, err = sendFiles(t, a, b, "1234", one)
	require.ErrorIs(t, err, transfer.ErrDeclined)
	assert.Contains(t, err.Error(), "wrong PIN")
	res, err := sendFiles(t, a, b, "4711", one)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent)

	b.decide = func(transfer.OfferReceived) ([]int, bool) { return nil, false }
	_, err = sendFiles(t, a, b, "4711", one)
	require.ErrorIs(t, err, transfer.ErrDeclined)
	entries, err := os.ReadDir(b.dir)
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"one.bin"}, names, "the declined offer left nothing")
}

func TestIdentityChangedIsRefused(t *testing.T) {
	a, b := startHost(t, "Alice", nil), startHost(t, "Bob", nil)
	one := writeFile(t, t.TempDir(), "one.bin", 100)
	_, err := sendFiles(t, a, b, "", one)
	require.NoError(t, err)
	// Bob comes back with another certificate.
	b2 := startHost(t, "Bob", nil)
	_, err = sendFiles(t, a, b2, "", one)
	require.ErrorIs(t, err, trust.ErrIdentityChanged)
	// A device announcing another certificate than it presents is refused too.
	d := b.device()
	d.Alias, d.Fingerprint = "Mallory", b2.device().Fingerprint
	_, err = a.node.Dial(context.Background(), d, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate does not match")
}

func TestHTTPIsOffUnlessAllowed(t *testing.T) {
	b := startHost(t, "Bob", nil)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/localsend/v2/info", b.node.Port()))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	c := startHost(t, "Carol", func(c *Config) { c.AllowHTTP = true })
	resp2, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/localsend/v2/info", c.node.Port()))
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.Equal(t, http.StatusOK, resp2.StatusCode)
	var in Info
	require.NoError(t, json.NewDecoder(resp2.Body).Decode(&in))
	assert.Equal(t, "Carol", in.Alias)

	a := startHost(t, "Alice", nil)
	d := c.device()
	d.Protocol = ProtocolHTTP
	_, err = a.node.Dial(context.Background(), d, "")
	require.ErrorIs(t, err, ErrNotEncrypted)
}

// A text message goes over as LocalSend's apps send one: a text/plain
// file whose preview is the text, answered 204.
func TestTextMessage(t *testing.T) {
	a, b := startHost(t, "Alice", nil), startHost(t, "Bob", nil)
	link, err := a.node.Dial(context.Background(), b.device(), "")
	require.NoError(t, err)
	defer link.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = transfer.SendText(ctx, link, "hello there")
	require.NoError(t, err)
	got := await[transfer.TextReceived](t, b)
	assert.Equal(t, "hello there", got.Text)
	assert.Equal(t, "Alice", got.From.Name)
}

// The sender going away mid-file ends the transfer on our side as its
// cancel, with nothing left in the download folder.
func TestSenderGoneMidFile(t *testing.T) {
	a, b := startHost(t, "Alice", nil), startHost(t, "Bob", nil)
	big := writeFile(t, t.TempDir(), "big.bin", 64<<20)
	offer, err := transfer.NewOffer([]string{big}, "")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, ReconnectWindow: time.Millisecond,
		Dial: func(ctx context.Context) (transfer.Link, error) { return a.node.Dial(ctx, b.device(), "") },
		OnEvent: func(ev transfer.Event) {
			if p, ok := ev.(transfer.Progress); ok && p.Bytes > 8<<20 {
				once.Do(cancel)
			}
		}})
	_, err = s.Run(ctx)
	require.Error(t, err)
	await[transfer.TransferDone](t, b)
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(b.dir)
		for _, e := range entries {
			if e.Name() == "big.bin" {
				return false
			}
			if e.Name() == transfer.StateDir {
				sub, _ := os.ReadDir(filepath.Join(b.dir, e.Name()))
				if len(sub) > 0 {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond)
}

// The receiver's choice of some files maps onto the tokens it answers,
// and the sender sends only those.
func TestReceiverTakesSome(t *testing.T) {
	a, b := startHost(t, "Alice", nil), startHost(t, "Bob", nil)
	src := t.TempDir()
	keep := writeFile(t, src, "keep.txt", 10)
	skip := writeFile(t, src, "skip.txt", 10)
	b.decide = func(o transfer.OfferReceived) ([]int, bool) {
		for i, top := range o.Top {
			if top.Path == "keep.txt" {
				return []int{i}, true
			}
		}
		return nil, false
	}
	res, err := sendFiles(t, a, b, "", keep, skip)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent)
	assert.Equal(t, []string{"skip.txt"}, res.Skipped)
	assert.FileExists(t, filepath.Join(b.dir, "keep.txt"))
	assert.NoFileExists(t, filepath.Join(b.dir, "skip.txt"))
}

// Our receiver cancelling mid-file (the user, in the queue): the upload
// fails, the sender hears of it, and nothing is kept.
func TestReceiverCancelsMidFile(t *testing.T) {
	a, b := startHost(t, "Alice", nil), startHost(t, "Bob", nil)
	big := writeFile(t, t.TempDir(), "big.bin", 48<<20)
	offer, err := transfer.NewOffer([]string{big}, "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, ReconnectWindow: time.Millisecond,
		Dial: func(ctx context.Context) (transfer.Link, error) { return a.node.Dial(ctx, b.device(), "") }})
	errc := make(chan error, 1)
	go func() { _, err := s.Run(ctx); errc <- err }()
	// Bob's receiver cancels once data flows.
	for {
		p := await[transfer.Progress](t, b)
		if p.Bytes > 4<<20 {
			require.True(t, b.rcv.Cancel(p.ID))
			break
		}
	}
	done := await[transfer.TransferDone](t, b)
	assert.True(t, done.Cancelled)
	select {
	case err := <-errc:
		require.Error(t, err, "the sender does not report success")
	case <-ctx.Done():
		t.Fatal("the sender never ended")
	}
	nothingIn(t, b.dir)
}
