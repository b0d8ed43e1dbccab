package pairing

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exchange runs pake's two steps with the wire encoding Authenticate uses
// and returns both session keys.
func exchange(t *testing.T, pwI, pwR []byte) (kI, kR []byte, x, y []byte) {
	t.Helper()
	i, err := newPAKE(pwI, Initiator)
	require.NoError(t, err)
	r, err := newPAKE(pwR, Responder)
	require.NoError(t, err)
	x = encodePoint(i.Xᵤ, i.Xᵥ)
	kR, err = sessionKey(r, Initiator, x)
	require.NoError(t, err)
	y = encodePoint(r.Yᵤ, r.Yᵥ)
	kI, err = sessionKey(i, Responder, y)
	require.NoError(t, err)
	return kI, kR, x, y
}

// Property: with the same password both sides derive the same session key
// and the same confirmation keys; with different ones, never.
func TestBothSidesDeriveTheSameKey(t *testing.T) {
	seen := map[string]bool{}
	for range 16 {
		pw := password(code)
		kI, kR, x, y := exchange(t, pw, pw)
		require.Len(t, kI, 32)
		require.Equal(t, kI, kR)
		require.Equal(t, deriveKeys(kI, transcriptHash(x, y)), deriveKeys(kR, transcriptHash(x, y)))
		assert.False(t, seen[string(kI)], "every run has a fresh key")
		seen[string(kI)] = true

		kI, kR, _, _ = exchange(t, pw, password("7KQ2MXW4PDR8T3Y"))
		require.NotEqual(t, kI, kR)
	}
}

// The session key is what docs/PROTOCOL-pairing.md says, recomputed here
// with crypto/elliptic from the document's constants rather than pake's.
func TestSessionKeyMatchesTheDocument(t *testing.T) {
	c := elliptic.P256()
	point := func(s string) (*big.Int, *big.Int) {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		return new(big.Int).SetBytes(b[1:33]), new(big.Int).SetBytes(b[33:])
	}
	ux, uy := point(docU)
	vx, vy := point(docV)
	neg := func(x, y *big.Int) (*big.Int, *big.Int) { return x, new(big.Int).Sub(c.Params().P, y) }

	pw := password(code)
	i, err := newPAKE(pw, Initiator)
	require.NoError(t, err)
	r, err := newPAKE(pw, Responder)
	require.NoError(t, err)
	require.Zero(t, ux.Cmp(i.Uᵤ), "U")
	require.Zero(t, vy.Cmp(i.Vᵥ), "V")
	x := encodePoint(i.Xᵤ, i.Xᵥ)
	kR, err := sessionKey(r, Initiator, x)
	require.NoError(t, err)
	y := encodePoint(r.Yᵤ, r.Yᵥ)
	kI, err := sessionKey(i, Responder, y)
	require.NoError(t, err)

	// X = a·G + pw·U and Y = b·G + pw·V, with a and b the secret scalars.
	pux, puy := c.ScalarMult(ux, uy, pw)
	pvx, pvy := c.ScalarMult(vx, vy, pw)
	ax, ay := c.ScalarBaseMult(i.Aα)
	wx, wy := c.Add(ax, ay, pux, puy)
	require.Equal(t, x, encodePoint(wx, wy), "X")
	bx, by := c.ScalarBaseMult(r.Aα)
	wx, wy = c.Add(bx, by, pvx, pvy)
	require.Equal(t, y, encodePoint(wx, wy), "Y")

	// Z = a·(Y − pw·V) = b·(X − pw·U) = ab·G.
	zx, zy := c.Add(r.Yᵤ, r.Yᵥ, new(big.Int).Set(pvx), new(big.Int).Sub(c.Params().P, pvy))
	zx, zy = c.ScalarMult(zx, zy, i.Aα)
	nx, ny := neg(pux, puy)
	z2x, z2y := c.Add(i.Xᵤ, i.Xᵥ, nx, ny)
	z2x, z2y = c.ScalarMult(z2x, z2y, r.Aα)
	require.Zero(t, zx.Cmp(z2x))
	require.Zero(t, zy.Cmp(z2y))

	// K = SHA-256(pw ‖ X.x ‖ X.y ‖ Y.x ‖ Y.y ‖ Z.x ‖ Z.y), coordinates as
	// minimal big-endian integers (no leading zero bytes).
	h := sha256.New()
	for _, b := range [][]byte{pw, i.Xᵤ.Bytes(), i.Xᵥ.Bytes(), r.Yᵤ.Bytes(), r.Yᵥ.Bytes(), zx.Bytes(), zy.Bytes()} {
		h.Write(b)
	}
	want := h.Sum(nil)
	assert.Equal(t, want, kI)
	assert.Equal(t, want, kR)
}

// Test vectors of docs/PROTOCOL-pairing.md; checked once against an
// independent implementation of the document (Python's hashlib and hmac).
const (
	docU = "040000000000000000000000008aed73af1c28ffe0e075b724a9b5c218a86bfaac8418993c13263d05d52003d0f7214dfd5644908d43bcdfc004fb6f7ae6d91a88"
	docV = "04000000000000000000000000be58a717b83350798221be18b2c142f2598b2531143edef30edb8795f2c969fe9374317358176803c670cc8b53270594f629d8fb"
)

func TestKnownAnswers(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		return b
	}
	assert.Equal(t, "4b0ea924f00659619a8106ef8bb7d7947abf13d3bf35f81617dee13ace390823", hex.EncodeToString(password("7KQ2MXW4PDR8T3Z")))

	// X = G, Y = 2·G, K = 00 01 02 … 1f.
	x := unhex("046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
	y := unhex("047cf27b188d034f7e8a52380304b51ac3c08969e277f21b35a60b48fc4766997807775510db8ed040293d9ac69f7430dbba7dade63ce982299e04b79d227873d1")
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	th := transcriptHash(x, y)
	assert.Equal(t, "4a90c6df574a23f2b197680bf9849443deeecd930ae7b413e7c63e318d00a678", hex.EncodeToString(th))
	ks := deriveKeys(k, th)
	assert.Equal(t, "a3a4484786ad391799dcd08a71df026d05ce500df286cc5c0d51229e15452acc", hex.EncodeToString(ks.initiator))
	assert.Equal(t, "64e3778f7fa10d7b645c493325d8ef4c7a655be77c372088c8777faf8809908d", hex.EncodeToString(ks.responder))
	// The ids of the document's vectors (from before ids were derived
	// from fingerprints): the MACs take them as they come.
	a := Peer{ID: "a11ce0000000000a", Fingerprint: fp(0xA1)}
	b := Peer{ID: "b0b0000000000b0b", Fingerprint: fp(0xB0)}
	assert.Equal(t, "36e28d6eeaa739d8c53459271ef9f2ae72292e0779cb57979a0dd547741a6f8a", hex.EncodeToString(ks.responderConfirm(b)))
	assert.Equal(t, "5bca929bbe0d5baffab80fd23302ef0f8ea30c4df074209a6afac6d568f1bc39", hex.EncodeToString(ks.initiatorConfirm(a, b)))
	assert.Equal(t, "5ffe690f98e9c72a064284565c6435ba44b24aa812875995cc73a188133d975c", hex.EncodeToString(ks.responderOK(a, b)))
}

func TestSessionKeyRefusesBadPoints(t *testing.T) {
	p, err := newPAKE(password(code), Responder)
	require.NoError(t, err)
	offCurve := make([]byte, pointLen)
	offCurve[0], offCurve[64] = 4, 1
	for _, pt := range [][]byte{nil, {4}, offCurve, bytes.Repeat([]byte{0xff}, pointLen)} {
		_, err := sessionKey(p, Initiator, pt)
		assert.ErrorIs(t, err, ErrProtocol)
	}
}
