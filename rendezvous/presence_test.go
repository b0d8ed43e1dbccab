package rendezvous

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// newCert returns a self-signed certificate (DER) for key, as a device
// makes its DTLS certificate.
func newCert(t testing.TB, key *ecdsa.PrivateKey) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	return der
}

// signedDevice is a signedDevice with a real key and certificate: its hello's
// fingerprint names the certificate and its id derives from it.
type signedDevice struct {
	hello Hello
	key   *ecdsa.PrivateKey
	cert  []byte
}

func newDevice(t testing.TB, name string) signedDevice {
	key := newKey(t)
	cert := newCert(t, key)
	fp := fingerprintOf(cert)
	return signedDevice{
		hello: Hello{ID: identity.DeviceIDFor(fp), Name: name, Type: "laptop", Fingerprint: fp},
		key:   key, cert: cert,
	}
}

// announceEnv builds an announce of cert signed by key over nonce.
func announceEnv(t testing.TB, key *ecdsa.PrivateKey, cert []byte, nonce, deviceID string) *Envelope {
	sig, err := ecdsa.SignASN1(rand.Reader, key, AnnounceDigest(nonce, deviceID))
	require.NoError(t, err)
	return &Envelope{
		Type: TypeAnnounce, Req: 9, DeviceID: deviceID,
		Certificate: base64.StdEncoding.EncodeToString(cert),
		Sig:         base64.StdEncoding.EncodeToString(sig),
	}
}

func TestPresence(t *testing.T) {
	h := newHarness(t, nil)
	laptopDev := newDevice(t, "laptop")
	laptopHello := laptopDev.hello
	laptop := h.dial("192.0.2.1", laptopHello)
	phone := h.dial("198.51.100.2", testHello("phone"))

	_, err := phone.Find(ctxT(t), laptopHello.ID)
	assert.ErrorIs(t, err, ErrNotFound, "not announced yet")

	require.NoError(t, laptop.Announce(ctxT(t), laptopDev.key, laptopDev.cert))
	peer, err := phone.Find(ctxT(t), laptopHello.ID)
	require.NoError(t, err)
	assert.Equal(t, Peer{ClientID: laptop.ClientID(), Hello: laptopHello}, peer)
	pj := expectType[PeerJoined](t, laptop)
	assert.Equal(t, phone.ClientID(), pj.Peer.ClientID)
	assert.Empty(t, pj.Code)
	assert.Equal(t, 1, h.srv.Stats().Links)

	// Finding again changes nothing.
	_, err = phone.Find(ctxT(t), laptopHello.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, h.srv.Stats().Links)

	require.NoError(t, phone.Signal(laptop.ClientID(), "offer"))
	assert.Equal(t, phone.ClientID(), expectType[Signal](t, laptop).From)
	require.NoError(t, laptop.Signal(phone.ClientID(), "answer"))
	assert.Equal(t, laptop.ClientID(), expectType[Signal](t, phone).From)

	// Nobody finds itself.
	_, err = laptop.Find(ctxT(t), laptopHello.ID)
	assert.ErrorIs(t, err, ErrNotFound)

	// The link ends with either side.
	require.NoError(t, phone.Close())
	assert.Equal(t, PeerLeft{ClientID: phone.ClientID()}, expectType[PeerLeft](t, laptop))
	assert.Equal(t, Stats{Conns: 1, Announced: 1}, h.srv.Stats())

	// The device comes back on a new connection with the same key: fine.
	require.NoError(t, laptop.Close())
	laptop2 := h.dial("192.0.2.9", laptopHello)
	require.NoError(t, laptop2.Announce(ctxT(t), laptopDev.key, laptopDev.cert))
	tablet := h.dial("198.51.100.3", testHello("tablet"))
	peer, err = tablet.Find(ctxT(t), laptopHello.ID)
	require.NoError(t, err)
	assert.Equal(t, laptop2.ClientID(), peer.ClientID)
}

// Presence squatting (issue 11, item 7): nobody announces a device id but
// the holder of the certificate it derives from, whoever comes first.
func TestPresenceRefusesForgeries(t *testing.T) {
	h := newHarness(t, nil)
	victim := newDevice(t, "victim")
	mallory := newDevice(t, "mallory")

	// First come: a hello claiming the victim's id with mallory's own
	// certificate is refused before anything is stored.
	squat := mallory.hello
	squat.ID = victim.hello.ID
	squatter := h.raw("203.0.113.4", nil)
	squatter.send(&Envelope{Type: TypeHello, Req: 1, Device: &squat})
	assert.Equal(t, CodeBadHello, squatter.read().Code)

	// Another device id's hello cannot announce the victim.
	other := h.raw("203.0.113.5", &mallory.hello)
	other.send(announceEnv(t, mallory.key, mallory.cert, other.welcome.Nonce, victim.hello.ID))
	assert.Equal(t, CodeBadMessage, other.read().Code)

	// A connection claiming the victim's hello (its id and fingerprint are
	// public)...
	claim := h.raw("203.0.113.6", &victim.hello)
	// ...announcing with its own certificate and key,
	claim.send(announceEnv(t, mallory.key, mallory.cert, claim.welcome.Nonce, victim.hello.ID))
	assert.Equal(t, CodeBadSignature, claim.read().Code)
	// ...with the victim's certificate but a signature by another key,
	claim.send(announceEnv(t, mallory.key, victim.cert, claim.welcome.Nonce, victim.hello.ID))
	assert.Equal(t, CodeBadSignature, claim.read().Code)
	// ...or with garbage,
	garbage := announceEnv(t, mallory.key, victim.cert, claim.welcome.Nonce, victim.hello.ID)
	garbage.Certificate = base64.StdEncoding.EncodeToString([]byte("not a certificate"))
	claim.send(garbage)
	assert.Equal(t, CodeBadSignature, claim.read().Code)
	assert.Equal(t, 0, h.srv.Stats().Announced, "nothing announced")

	// The real device announces fine, though the squatters came first.
	real := h.dial("192.0.2.1", victim.hello)
	require.NoError(t, real.Announce(ctxT(t), victim.key, victim.cert))
	// A signature replayed from its connection (another nonce) is refused.
	claim.send(announceEnv(t, victim.key, victim.cert, real.nonce, victim.hello.ID))
	assert.Equal(t, CodeBadSignature, claim.read().Code)

	finder := h.dial("198.51.100.1", testHello("finder"))
	peer, err := finder.Find(ctxT(t), victim.hello.ID)
	require.NoError(t, err)
	assert.Equal(t, real.ClientID(), peer.ClientID)

	// And it comes back on a new connection with the same certificate.
	require.NoError(t, real.Close())
	again := h.dial("192.0.2.9", victim.hello)
	require.NoError(t, again.Announce(ctxT(t), victim.key, victim.cert))
}

func TestAnnounceNeedsP256(t *testing.T) {
	h := newHarness(t, nil)
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	cert := newCert(t, k)
	fp := fingerprintOf(cert)
	c := h.dial("192.0.2.1", Hello{ID: identity.DeviceIDFor(fp), Name: "a", Type: "laptop", Fingerprint: fp})
	assert.Error(t, c.Announce(ctxT(t), k, cert))

	// Nor does the server take one.
	r := h.raw("192.0.2.2", &Hello{ID: identity.DeviceIDFor(fp), Name: "b", Type: "laptop", Fingerprint: fp})
	r.send(announceEnv(t, k, cert, r.welcome.Nonce, identity.DeviceIDFor(fp)))
	assert.Equal(t, CodeBadSignature, r.read().Code)
}

// A client ignores a peer whose id is not its certificate's: only a lying
// server sends one.
func TestClientIgnoresMismatchedPeer(t *testing.T) {
	good := testHello("good")
	bad := good
	bad.ID = testHello("other").ID
	assert.Equal(t, PeerJoined{Peer: Peer{ClientID: "0123456789abcdef", Hello: good}},
		eventOf(&Envelope{Type: TypePeerJoined, Peer: &Peer{ClientID: "0123456789abcdef", Hello: good}}))
	assert.Nil(t, eventOf(&Envelope{Type: TypePeerJoined, Peer: &Peer{ClientID: "0123456789abcdef", Hello: bad}}))
}
