package trust

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

func fp(t testing.TB) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	parts := make([]string, 32)
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return "sha-256 " + strings.Join(parts, ":")
}

// newDevice returns a fresh id and the fingerprint it derives from.
func newDevice(t testing.TB) (id, fingerprint string) {
	f := fp(t)
	return identity.DeviceIDFor(f), f
}

func TestTrustOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	id, a := newDevice(t)
	require.NoError(t, s.Verify(id, a), "unknown: fine")
	assert.Empty(t, s.List(), "a hello pins nothing")
	require.NoError(t, s.Pin(id, "Laptop", a), "first proven contact pins")
	require.NoError(t, s.Pin(id, "Laptop renamed", a), "same certificate: fine")
	require.NoError(t, s.Close())

	info, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// The pin survives a restart.
	s, err = Open(dir)
	require.NoError(t, err)
	assert.True(t, s.IsPinned(id, a))
	assert.False(t, s.IsPinned("nobody", a))
	d, ok := s.Pinned(id)
	require.True(t, ok)
	assert.Equal(t, "Laptop renamed", d.Name)

	require.NoError(t, s.Forget(id))
	assert.Empty(t, s.List())
	assert.NoError(t, s.Pin(id, "Laptop", a), "forgotten: first contact again")
	require.NoError(t, s.Close())
}

// Another certificate under a pinned id takes a 128-bit second preimage
// of SHA-256 now that ids derive from certificates; the check stays.
func TestIdentityChanged(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	id, a := newDevice(t)
	s.devices[id] = &Device{Device: device.Device{ID: id, Name: "Laptop", Fingerprint: fp(t)}}
	err = s.Verify(id, a)
	require.ErrorIs(t, err, ErrIdentityChanged)
	assert.Contains(t, err.Error(), "Laptop")
	assert.Contains(t, err.Error(), "identity changed")
	assert.ErrorIs(t, s.Pin(id, "Laptop", a), ErrIdentityChanged)
	assert.False(t, s.IsPinned(id, a))
	require.NoError(t, s.Repair(id, a))
	assert.NoError(t, s.Verify(id, a), "re-paired")
}

func TestTrusted(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	id, a := newDevice(t)
	assert.False(t, s.IsTrusted(id, a), "unknown")
	require.NoError(t, s.Pin(id, "Phone", a))
	assert.False(t, s.IsTrusted(id, a), "pinned is not trusted")
	require.NoError(t, s.SetTrusted(id, true))
	assert.True(t, s.IsTrusted(id, a))
	assert.False(t, s.IsTrusted(id, fp(t)), "trusted id with another certificate")
	assert.Error(t, s.SetTrusted("nobody", true))
	list := s.List()
	require.Len(t, list, 1)
	assert.True(t, list[0].Trusted)
	require.NoError(t, s.Close())
}

func TestMalformedInput(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	id, a := newDevice(t)
	other, _ := newDevice(t)
	for _, tc := range []struct{ id, fp string }{
		{"bad id", a}, {id, "sha-256 zz"}, {other, a}, {"0123456789abcdef", a},
	} {
		assert.Error(t, s.Verify(tc.id, tc.fp), tc.id)
		assert.Error(t, s.Pin(tc.id, "x", tc.fp), tc.id)
	}
	require.NoError(t, s.Close())
	assert.Empty(t, s.List(), "nothing malformed is stored")
	_, err = os.Stat(filepath.Join(dir, fileName))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing written")

	require.NoError(t, os.WriteFile(filepath.Join(dir, fileName), []byte("{not json"), 0o600))
	_, err = Open(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fileName)
}

// Pins from before ids were derived from certificates name ids nobody
// uses any more: they are dropped.
func TestOpenDropsUnderivedIDs(t *testing.T) {
	dir := t.TempDir()
	id, a := newDevice(t)
	old := fmt.Sprintf(`[{"id":"0123456789abcdef","name":"Old","fingerprint":%q,"trusted":true},
		{"id":%q,"name":"New","fingerprint":%q}]`, fp(t), id, a)
	require.NoError(t, os.WriteFile(filepath.Join(dir, fileName), []byte(old), 0o600))
	s, err := Open(dir)
	require.NoError(t, err)
	list := s.List()
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0].ID)
}

func TestConcurrentPins(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	var ids, fps [4]string
	for i := range ids {
		ids[i], fps[i] = newDevice(t)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			assert.NoError(t, s.Verify(ids[i%4], fps[i%4]))
			assert.NoError(t, s.Pin(ids[i%4], "Dev", fps[i%4]))
		})
	}
	wg.Wait()
	assert.Len(t, s.List(), 4)
	require.NoError(t, s.Close())
}

// A first pin is written at once (another process sees it); the updates
// of known devices that every connection brings are written in batches,
// within flushDelay, and by Close: a burst of connections does not rewrite
// the file once each.
func TestUpdatesAreWrittenLater(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	id, f := newDevice(t)
	require.NoError(t, s.Pin(id, "Dev", f))
	other, err := Open(dir)
	require.NoError(t, err)
	assert.True(t, other.IsPinned(id, f), "a first pin is on disk at once")
	info, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)

	for i := range 1000 {
		require.NoError(t, s.Pin(id, fmt.Sprintf("Dev %d", i), f))
	}
	require.Eventually(t, func() bool {
		d, _ := other.Pinned(id)
		return d.Name == "Dev 999"
	}, 5*time.Second, 20*time.Millisecond, "written within flushDelay")
	again, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)
	assert.False(t, os.SameFile(info, again), "rewritten (atomically: a new file)")

	require.NoError(t, s.Pin(id, "Last", f))
	require.NoError(t, s.Close())
	d, _ := other.Pinned(id)
	assert.Equal(t, "Last", d.Name, "Close writes what waits")
	require.NoError(t, s.Close(), "twice is fine")
	require.NoError(t, s.Pin(id, "After", f))
	d, _ = other.Pinned(id)
	assert.Equal(t, "After", d.Name, "after Close, updates are written at once")
}

// A full store never drops a trusted device, nor one seen within
// keepRecent, to make room for a new one; the least recently seen of the
// others goes first.
func TestFullStoreKeepsTrustedAndRecent(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	now := time.Now()
	var trusted, oldest, old string
	for i := range maxDevices {
		id, f := newDevice(t)
		d := &Device{Device: device.Device{ID: id, Name: "Dev", Fingerprint: f}, LastSeen: now.Add(-time.Minute)}
		switch i {
		case 0:
			d.Trusted, d.LastSeen, trusted = true, now.Add(-365*24*time.Hour), id
		case 1:
			d.LastSeen, oldest = now.Add(-72*time.Hour), id
		case 2:
			d.LastSeen, old = now.Add(-48*time.Hour), id
		}
		s.devices[id] = d
	}
	id, f := newDevice(t)
	require.NoError(t, s.Pin(id, "New", f))
	assert.True(t, s.IsPinned(id, f))
	_, ok := s.Pinned(oldest)
	assert.False(t, ok, "the least recently seen untrusted device made room")
	_, ok = s.Pinned(trusted)
	assert.True(t, ok, "a trusted device stays, however old")

	id2, f2 := newDevice(t)
	require.NoError(t, s.Pin(id2, "Newer", f2))
	_, ok = s.Pinned(old)
	assert.False(t, ok)

	id3, f3 := newDevice(t)
	require.NoError(t, s.Pin(id3, "Newest", f3), "not remembered is not an error")
	assert.False(t, s.IsPinned(id3, f3), "every other device was seen recently: nothing goes")
	assert.Len(t, s.List(), maxDevices)
	_, ok = s.Pinned(trusted)
	assert.True(t, ok)
	require.NoError(t, s.Close())
}

func TestCode(t *testing.T) {
	a := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	b := "sha-256 " + strings.TrimSuffix(strings.Repeat("01:", 32), ":")
	nd, nl := make([]byte, 32), make([]byte, 32)
	for i := range 32 {
		nd[i], nl[i] = byte(i), byte(32+i)
	}
	assert.Regexp(t, regexp.MustCompile(`^\d{3} \d{3}$`), Code(a, b, nd, nl))
	// Known answer (docs/PROTOCOL.md section 11; the page's JS checks the
	// same vector): the derivation must not drift.
	assert.Equal(t, "363 453", Code(a, b, nd, nl))
	assert.Equal(t, "698 085", Code(b, a, nd, nl), "the roles are part of the input")

	seen := map[string]bool{}
	same := 0 // by chance, one in a million each
	for range 300 {
		x, y := fp(t), fp(t)
		n1, n2 := nonce(t), nonce(t)
		c := Code(x, y, n1, n2)
		for _, other := range []string{
			Code(x, fp(t), n1, n2),   // another certificate
			Code(x, y, nonce(t), n2), // another dialer nonce
			Code(x, y, n1, nonce(t)), // another listener nonce
		} {
			if other == c {
				same++
			}
		}
		seen[c] = true
	}
	assert.LessOrEqual(t, same, 2, "another certificate or nonce, another code")
	assert.Greater(t, len(seen), 290, "codes spread out")
}

func nonce(t *testing.T) []byte {
	n := make([]byte, 32)
	_, err := rand.Read(n)
	require.NoError(t, err)
	return n
}

// A long-running process (receive) sees what another one (`peerdrop trust
// add`) wrote, and its own next write does not undo it.
func TestChangesFromAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	receiver, err := Open(dir)
	require.NoError(t, err)
	alice, a := newDevice(t)
	bob, b := newDevice(t)
	require.NoError(t, receiver.Pin(alice, "Alice", a))
	require.NoError(t, receiver.Flush())

	cmd, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, cmd.SetTrusted(alice, true))

	assert.True(t, receiver.IsTrusted(alice, a), "the receiver sees the new trust")
	require.NoError(t, receiver.Pin(bob, "Bob", b))
	require.NoError(t, receiver.Pin(alice, "Alice", a))
	require.NoError(t, receiver.Flush())
	again, err := Open(dir)
	require.NoError(t, err)
	assert.True(t, again.IsTrusted(alice, a), "the receiver's own save kept it")
	assert.Len(t, again.List(), 2)

	// An update waiting in memory survives a change another process made
	// meanwhile, and does not undo it; nor does it bring back a device
	// forgotten there.
	carol, c := newDevice(t)
	require.NoError(t, receiver.Pin(carol, "Carol", c))
	require.NoError(t, receiver.Pin(carol, "Carol renamed", c))
	require.NoError(t, receiver.Pin(bob, "Bob renamed", b))
	require.NoError(t, cmd.SetTrusted(bob, true))
	require.NoError(t, cmd.Forget(carol))
	require.NoError(t, receiver.Close())
	again, err = Open(dir)
	require.NoError(t, err)
	assert.True(t, again.IsTrusted(bob, b))
	d, _ := again.Pinned(bob)
	assert.Equal(t, "Bob renamed", d.Name)
	_, ok := again.Pinned(carol)
	assert.False(t, ok, "forgotten elsewhere stays forgotten")

	require.NoError(t, cmd.Forget(alice))
	assert.NoError(t, receiver.Verify(alice, a), "forgotten elsewhere: a new first contact")
	_, ok = receiver.Pinned(alice)
	assert.False(t, ok)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")
}

func TestTrustCode(t *testing.T) {
	a := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	b := "sha-256 " + strings.TrimSuffix(strings.Repeat("01:", 32), ":")
	// Known answer (docs/PROTOCOL.md section 11): the derivation must not drift.
	assert.Equal(t, "3995 4323 2613", DeviceCode(a))
	assert.Equal(t, "2062 9050 2710", DeviceCode(b))
	assert.Equal(t, "2062 9050 2710 · 3995 4323 2613", TrustCode(a, b))
	assert.Equal(t, TrustCode(a, b), TrustCode(b, a), "both devices show the same code")
	assert.Equal(t, DeviceCode(a), DeviceCode(strings.ToLower(a)), "hex case does not matter")
	assert.Regexp(t, regexp.MustCompile(`^\d{4} \d{4} \d{4} · \d{4} \d{4} \d{4}$`), TrustCode(fp(t), fp(t)))

	// Each half stands for one certificate: another certificate on one side
	// changes that side's half only.
	x, y, z := fp(t), fp(t), fp(t)
	assert.NotEqual(t, TrustCode(x, y), TrustCode(x, z))
	assert.Contains(t, TrustCode(x, z), DeviceCode(x))
	assert.NotContains(t, TrustCode(x, z), DeviceCode(y))
}
