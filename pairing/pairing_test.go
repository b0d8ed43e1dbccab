package pairing

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// code is a rendezvous code (nameplate) followed by a secret group that the
// server never sees (docs/PROTOCOL-pairing.md, P.2).
const code = "7KQ2M-XW4PD-R8T3Z"

func TestAuthenticateSuccess(t *testing.T) {
	r := newRelay(nil)
	// The two sides may type the code differently.
	ra, rb := pair(t, r, code, " 7kq2m xw4pd r8t3z ")
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	assert.Equal(t, peerOf(bob), ra.peer)
	assert.Equal(t, peerOf(alice), rb.peer)
	assert.Len(t, r.sent(sideA), 2, "pake, confirm")
	assert.Len(t, r.sent(sideB), 2, "pake+confirm, ok")
}

func TestAuthenticateCanonicalisesOwnFingerprint(t *testing.T) {
	lower := alice
	lower.Fingerprint = "SHA-256 " + "a1" + alice.Fingerprint[10:]
	r := newRelay(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, rb := run(t, ctx, r.end(sideA), r.end(sideB), code, code, Initiator, Responder, lower, bob)
	require.NoError(t, rb.err)
	assert.Equal(t, alice.Fingerprint, rb.peer.Fingerprint)
}

func TestWrongCodeFailsOnBothSides(t *testing.T) {
	ra, rb := pair(t, newRelay(nil), code, "7KQ2M-XW4PD-R8T3Y")
	requireErr(t, ra.err, ErrMismatch, "initiator")
	requireErr(t, rb.err, ErrMismatch, "responder")
	assert.Empty(t, ra.peer)
	assert.Empty(t, rb.peer)
}

// rewrite returns a hook that applies change to the n-th message from from.
func rewrite(from side, n int, changes ...func(m map[string]any)) hook {
	return func(s side, i int, msg []byte) [][]byte {
		if s != from || i != n {
			return [][]byte{msg}
		}
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			panic(err)
		}
		for _, change := range changes {
			change(m)
		}
		out, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return [][]byte{out}
	}
}

func set(field string, v any) func(map[string]any) {
	return func(m map[string]any) { m[field] = v }
}

func flipMAC(m map[string]any) {
	var b []byte
	if err := json.Unmarshal([]byte(`"`+m["mac"].(string)+`"`), &b); err != nil {
		panic(err)
	}
	b[0] ^= 1
	m["mac"] = b
}

// otherPoint replaces the PAKE point with a valid one from a run with
// another password: what a relay that guesses the code would send.
func otherPoint(role Role) func(map[string]any) {
	return func(m map[string]any) {
		p, err := newPAKE(password("7KQ2MXW4PD00000"), role)
		if err != nil {
			panic(err)
		}
		if role == Initiator {
			m["pake"] = encodePoint(p.Xᵤ, p.Xᵥ)
			return
		}
		q, _ := newPAKE(password("7KQ2MXW4PD00000"), Initiator)
		if _, err := sessionKey(p, Initiator, encodePoint(q.Xᵤ, q.Xᵥ)); err != nil {
			panic(err)
		}
		m["pake"] = encodePoint(p.Yᵤ, p.Yᵥ)
	}
}

// A relay that passes every message but changes one field is caught, and
// both sides fail: the responder's abort or missing ok tells the initiator.
func TestTamperingIsDetected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hook  hook
		onlyA bool // the responder has finished before the change (the ok)
	}{
		{name: "responder identity swapped", hook: rewrite(sideB, 0, set("fingerprint", eve.Fingerprint), set("device_id", eve.ID))},
		{name: "initiator identity swapped", hook: rewrite(sideA, 1, set("fingerprint", eve.Fingerprint), set("device_id", eve.ID))},
		{name: "initiator point replaced", hook: rewrite(sideA, 0, otherPoint(Initiator))},
		{name: "responder point replaced", hook: rewrite(sideB, 0, otherPoint(Responder))},
		{name: "responder confirmation mac changed", hook: rewrite(sideB, 0, flipMAC)},
		{name: "initiator confirmation mac changed", hook: rewrite(sideA, 1, flipMAC)},
		{name: "ok mac changed", hook: rewrite(sideB, 1, flipMAC), onlyA: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := pair(t, newRelay(tc.hook), code, code)
			requireErr(t, ra.err, ErrMismatch, "initiator")
			if !tc.onlyA {
				requireErr(t, rb.err, ErrMismatch, "responder")
			}
		})
	}
}

// A relay that does not know the code runs its own PAKE with each side,
// with a guessed code and its own identity: nobody pairs with it.
func TestMITMWithGuessedCodeFails(t *testing.T) {
	toAlice, toBob := newRelay(nil), newRelay(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var ra, rb, rEveA, rEveB result
	done := make(chan struct{})
	go func() {
		defer close(done)
		rEveA, rEveB = run(t, ctx, toAlice.end(sideB), toBob.end(sideA), "7KQ2M-XW4PD-00000", "7KQ2M-XW4PD-00000", Responder, Initiator, eve, eve)
	}()
	ra, rb = run(t, ctx, toAlice.end(sideA), toBob.end(sideB), code, code, Initiator, Responder, alice, bob)
	<-done
	requireErr(t, ra.err, ErrMismatch, "alice")
	requireErr(t, rb.err, ErrMismatch, "bob")
	requireErr(t, rEveA.err, ErrMismatch, "eve towards alice")
	requireErr(t, rEveB.err, ErrMismatch, "eve towards bob")
}

// Messages recorded from one run do not work in another, even with the
// same code and the same devices.
func TestReplayFails(t *testing.T) {
	old := newRelay(nil)
	ra, rb := pair(t, old, code, code)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)

	replay := func(from side, n int) hook {
		return func(s side, i int, msg []byte) [][]byte {
			if s == from && i == n {
				return [][]byte{old.sent(from)[n]}
			}
			return [][]byte{msg}
		}
	}
	for _, tc := range []struct {
		name  string
		hook  hook
		wantA error
		wantB error
	}{
		// The responder cannot tell an old X from a new one; the keys differ.
		{name: "initiator pake", hook: replay(sideA, 0), wantA: ErrMismatch, wantB: ErrMismatch},
		{name: "responder pake", hook: replay(sideB, 0), wantA: ErrMismatch, wantB: ErrMismatch},
		{name: "initiator confirm", hook: replay(sideA, 1), wantA: ErrMismatch, wantB: ErrMismatch},
		{name: "ok", hook: replay(sideB, 1), wantA: ErrMismatch},
		// Within one run: the first message again in place of the second.
		{name: "initiator pake as confirm", hook: func(s side, i int, msg []byte) [][]byte {
			if s == sideA && i == 1 {
				return [][]byte{old.sent(sideA)[0]}
			}
			return [][]byte{msg}
		}, wantA: ErrProtocol, wantB: ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := pair(t, newRelay(tc.hook), code, code)
			requireErr(t, ra.err, tc.wantA, "initiator")
			if tc.wantB != nil {
				requireErr(t, rb.err, tc.wantB, "responder")
			}
		})
	}
}

func TestMalformedMessages(t *testing.T) {
	first := func(from side, n int, repl []byte) hook {
		return func(s side, i int, msg []byte) [][]byte {
			if s == from && i == n {
				return [][]byte{repl}
			}
			return [][]byte{msg}
		}
	}
	truncate := func(from side, n int) hook {
		return func(s side, i int, msg []byte) [][]byte {
			if s == from && i == n {
				return [][]byte{msg[:len(msg)/2]}
			}
			return [][]byte{msg}
		}
	}
	offCurve := make([]byte, pointLen)
	offCurve[0], offCurve[64] = 4, 1
	offCurveJSON, _ := json.Marshal(map[string]any{"v": 1, "type": "pake", "role": "initiator", "pake": offCurve})
	big := make([]byte, MaxMessageSize+1)
	for _, tc := range []struct {
		name string
		hook hook
	}{
		{"empty initiator message", first(sideA, 0, nil)},
		{"not json", first(sideA, 0, []byte("hello"))},
		{"truncated initiator pake", truncate(sideA, 0)},
		{"truncated responder pake", truncate(sideB, 0)},
		{"truncated confirm", truncate(sideA, 1)},
		{"oversize", first(sideA, 0, big)},
		{"point off the curve", first(sideA, 0, offCurveJSON)},
		{"other version", rewrite(sideA, 0, set("v", 2))},
		{"unknown type", rewrite(sideA, 0, set("type", "hello"))},
		{"confirm first", rewrite(sideA, 0, set("type", "confirm"))},
		{"responder pake without mac", rewrite(sideB, 0, func(m map[string]any) { delete(m, "mac") })},
		{"lower-case fingerprint", rewrite(sideB, 0, set("fingerprint", "sha-256 "+"b0"+bob.Fingerprint[10:]))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := pair(t, newRelay(tc.hook), code, code)
			requireErr(t, ra.err, ErrProtocol, "initiator")
			requireErr(t, rb.err, ErrProtocol, "responder")
		})
	}
}

func TestBothInitiatorsFail(t *testing.T) {
	r := newRelay(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ra, rb := run(t, ctx, r.end(sideA), r.end(sideB), code, code, Initiator, Initiator, alice, bob)
	requireErr(t, ra.err, ErrProtocol, "a")
	requireErr(t, rb.err, ErrProtocol, "b")
}

func TestTimeout(t *testing.T) {
	dropResponder := func(s side, i int, msg []byte) [][]byte {
		if s == sideB {
			return nil
		}
		return [][]byte{msg}
	}
	r := newRelay(dropResponder)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	ra, rb := run(t, ctx, r.end(sideA), r.end(sideB), code, code, Initiator, Responder, alice, bob)
	requireErr(t, ra.err, context.DeadlineExceeded, "initiator")
	requireErr(t, rb.err, context.DeadlineExceeded, "responder")
	assert.Contains(t, ra.err.Error(), "waiting for the other device")
}

func TestInvalidArguments(t *testing.T) {
	r := newRelay(nil)
	for name, call := range map[string]func() error{
		"no role":    func() error { _, err := Authenticate(t.Context(), r.end(sideA), code, 0, alice); return err },
		"empty code": func() error { _, err := Authenticate(t.Context(), r.end(sideA), " - ", Initiator, alice); return err },
		"bad fingerprint": func() error {
			_, err := Authenticate(t.Context(), r.end(sideA), code, Initiator, Identity{ID: "x", Fingerprint: "sha-1 AA"})
			return err
		},
		"bad device id": func() error {
			_, err := Authenticate(t.Context(), r.end(sideA), code, Initiator, Identity{ID: "a b", Fingerprint: alice.Fingerprint})
			return err
		},
	} {
		assert.Error(t, call(), name)
	}
	assert.Empty(t, r.sent(sideA), "nothing is sent for invalid arguments")
}

func TestNormalizeCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"7KQ2M-XW4PD-R8T3Z", "7KQ2MXW4PDR8T3Z"},
		{"  7kq2m xw4pd\tr8t3z\n", "7KQ2MXW4PDR8T3Z"},
		{"7kq2m_xw4pd.r8t3z", "7KQ2MXW4PDR8T3Z"},
		{"--7--kq2m--", "7KQ2M"},
		{"Oil-oIL", "011011"}, // read as the digits they look like
		{"purple sausage", "PURP1ESAUSAGE"},
	} {
		got, err := NormalizeCode(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "  ", "-", "7-pürple", "7;kq2m", "a\x00b", "a\xffb"} {
		_, err := NormalizeCode(bad)
		assert.Error(t, err, "%q", bad)
	}
	long := ""
	for range maxCodeLen + 1 {
		long += "a"
	}
	_, err := NormalizeCode(long)
	assert.Error(t, err)
}

func TestRoleByDeviceID(t *testing.T) {
	ra, err := RoleByDeviceID("aaaa", "bbbb")
	require.NoError(t, err)
	rb, err := RoleByDeviceID("bbbb", "aaaa")
	require.NoError(t, err)
	assert.Equal(t, Initiator, ra)
	assert.Equal(t, Responder, rb)
	_, err = RoleByDeviceID("aaaa", "aaaa")
	assert.Error(t, err)
}
