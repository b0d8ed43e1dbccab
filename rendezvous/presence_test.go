package rendezvous

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// announceEnv builds an announce signed by key over nonce.
func announceEnv(t testing.TB, key *ecdsa.PrivateKey, nonce, deviceID string) *Envelope {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	sig, err := ecdsa.SignASN1(rand.Reader, key, AnnounceDigest(nonce, deviceID))
	require.NoError(t, err)
	return &Envelope{
		Type: TypeAnnounce, Req: 9, DeviceID: deviceID,
		PublicKey: base64.StdEncoding.EncodeToString(der),
		Sig:       base64.StdEncoding.EncodeToString(sig),
	}
}

func TestPresence(t *testing.T) {
	h := newHarness(t, nil)
	laptopHello := testHello("laptop")
	laptopKey := newKey(t)
	laptop := h.dial("192.0.2.1", laptopHello)
	phone := h.dial("198.51.100.2", testHello("phone"))

	_, err := phone.Find(ctxT(t), laptopHello.DeviceID)
	assert.ErrorIs(t, err, ErrNotFound, "not announced yet")

	require.NoError(t, laptop.Announce(ctxT(t), laptopKey))
	peer, err := phone.Find(ctxT(t), laptopHello.DeviceID)
	require.NoError(t, err)
	assert.Equal(t, Peer{ClientID: laptop.ClientID(), Hello: laptopHello}, peer)
	pj := expectType[PeerJoined](t, laptop)
	assert.Equal(t, phone.ClientID(), pj.Peer.ClientID)
	assert.Empty(t, pj.Code)
	assert.Equal(t, 1, h.srv.Stats().Links)

	// Finding again changes nothing.
	_, err = phone.Find(ctxT(t), laptopHello.DeviceID)
	require.NoError(t, err)
	assert.Equal(t, 1, h.srv.Stats().Links)

	require.NoError(t, phone.Signal(laptop.ClientID(), "offer"))
	assert.Equal(t, phone.ClientID(), expectType[Signal](t, laptop).From)
	require.NoError(t, laptop.Signal(phone.ClientID(), "answer"))
	assert.Equal(t, laptop.ClientID(), expectType[Signal](t, phone).From)

	// Nobody finds itself.
	_, err = laptop.Find(ctxT(t), laptopHello.DeviceID)
	assert.ErrorIs(t, err, ErrNotFound)

	// The link ends with either side.
	require.NoError(t, phone.Close())
	assert.Equal(t, PeerLeft{ClientID: phone.ClientID()}, expectType[PeerLeft](t, laptop))
	assert.Equal(t, Stats{Conns: 1, Announced: 1}, h.srv.Stats())

	// The device comes back on a new connection with the same key: fine.
	require.NoError(t, laptop.Close())
	laptop2 := h.dial("192.0.2.9", laptopHello)
	require.NoError(t, laptop2.Announce(ctxT(t), laptopKey))
	tablet := h.dial("198.51.100.3", testHello("tablet"))
	peer, err = tablet.Find(ctxT(t), laptopHello.DeviceID)
	require.NoError(t, err)
	assert.Equal(t, laptop2.ClientID(), peer.ClientID)
}

func TestPresenceRefusesForgeries(t *testing.T) {
	h := newHarness(t, nil)
	victimHello := testHello("victim")
	victimKey := newKey(t)
	victim := h.dial("192.0.2.1", victimHello)
	require.NoError(t, victim.Announce(ctxT(t), victimKey))

	// Another device id's hello cannot announce the victim.
	other := h.raw("203.0.113.5", new(testHello("mallory")))
	other.send(announceEnv(t, newKey(t), other.welcome.Nonce, victimHello.DeviceID))
	assert.Equal(t, CodeBadMessage, other.read().Code)

	// A connection claiming the victim's device id...
	mallory := h.raw("203.0.113.6", &victimHello)
	// ...with a signature by another key than the one it presents,
	forged := announceEnv(t, victimKey, mallory.welcome.Nonce, victimHello.DeviceID)
	forged.Sig = announceEnv(t, newKey(t), mallory.welcome.Nonce, victimHello.DeviceID).Sig
	mallory.send(forged)
	assert.Equal(t, CodeBadSignature, mallory.read().Code)
	// ...with a signature replayed from another connection (another nonce),
	mallory.send(announceEnv(t, victimKey, victim.nonce, victimHello.DeviceID))
	assert.Equal(t, CodeBadSignature, mallory.read().Code)
	// ...with garbage,
	garbage := announceEnv(t, victimKey, mallory.welcome.Nonce, victimHello.DeviceID)
	garbage.PublicKey = base64.StdEncoding.EncodeToString([]byte("not a key"))
	mallory.send(garbage)
	assert.Equal(t, CodeBadSignature, mallory.read().Code)
	// ...or validly signed with its own key: the id is pinned to the first key.
	mallory.send(announceEnv(t, newKey(t), mallory.welcome.Nonce, victimHello.DeviceID))
	got := mallory.read()
	assert.Equal(t, CodeKeyMismatch, got.Code)

	// Still the victim is the one found.
	finder := h.dial("198.51.100.1", testHello("finder"))
	peer, err := finder.Find(ctxT(t), victimHello.DeviceID)
	require.NoError(t, err)
	assert.Equal(t, victim.ClientID(), peer.ClientID)

	// The pin outlives the victim's connection (within PinTTL).
	require.NoError(t, victim.Close())
	mallory2 := h.dial("203.0.113.7", victimHello)
	assert.ErrorIs(t, mallory2.Announce(ctxT(t), newKey(t)), ErrKeyMismatch)
	h.clock.Advance(31 * 24 * time.Hour)
	require.NoError(t, mallory2.Close())
	require.Eventually(t, func() bool { return h.srv.Stats().Announced == 0 }, waitFor, 10*time.Millisecond)
	// After PinTTL without an announce, the id is free again (the next sweep).
	h.dial("203.0.113.8", testHello("sweeper")) // a connection triggers the sweep
	mallory3 := h.dial("203.0.113.9", victimHello)
	assert.NoError(t, mallory3.Announce(ctxT(t), newKey(t)))
}

func TestAnnounceNeedsP256(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial("192.0.2.1", testHello("a"))
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	assert.Error(t, c.Announce(ctxT(t), k))
}
