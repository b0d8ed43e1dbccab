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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestTrustOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	a, other := fp(t), fp(t)
	require.NoError(t, s.Check("laptop1", "Laptop", a), "first contact pins")
	require.NoError(t, s.Check("laptop1", "Laptop renamed", a), "same certificate: fine")

	info, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// The pin survives a restart.
	s, err = Open(dir)
	require.NoError(t, err)
	err = s.Check("laptop1", "Laptop", other)
	require.ErrorIs(t, err, ErrIdentityChanged)
	assert.Contains(t, err.Error(), "Laptop renamed")
	assert.Contains(t, err.Error(), "identity changed")

	assert.True(t, s.IsPinned("laptop1", a))
	assert.False(t, s.IsPinned("laptop1", other))
	assert.False(t, s.IsPinned("nobody", a))
	d, ok := s.Pinned("laptop1")
	require.True(t, ok)
	assert.Equal(t, "Laptop renamed", d.Name)

	require.NoError(t, s.Repair("laptop1", other))
	assert.NoError(t, s.Check("laptop1", "Laptop", other), "re-paired")
	assert.ErrorIs(t, s.Check("laptop1", "Laptop", a), ErrIdentityChanged, "the old certificate is now the stranger")

	require.NoError(t, s.Forget("laptop1"))
	assert.NoError(t, s.Check("laptop1", "Laptop", a), "forgotten: first contact again")
}

func TestTrusted(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	a := fp(t)
	assert.False(t, s.IsTrusted("phone", a), "unknown")
	require.NoError(t, s.Check("phone", "Phone", a))
	assert.False(t, s.IsTrusted("phone", a), "pinned is not trusted")
	require.NoError(t, s.SetTrusted("phone", true))
	assert.True(t, s.IsTrusted("phone", a))
	assert.False(t, s.IsTrusted("phone", fp(t)), "trusted id with another certificate")
	assert.Error(t, s.SetTrusted("nobody", true))
	list := s.List()
	require.Len(t, list, 1)
	assert.True(t, list[0].Trusted)
}

func TestMalformedInput(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	assert.Error(t, s.Check("bad id", "x", fp(t)))
	assert.Error(t, s.Check("ok", "x", "sha-256 zz"))
	assert.Empty(t, s.List(), "nothing malformed is stored")

	require.NoError(t, os.WriteFile(filepath.Join(dir, fileName), []byte("{not json"), 0o600))
	_, err = Open(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fileName)
}

func TestConcurrentChecks(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	a := fp(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			assert.NoError(t, s.Check(fmt.Sprintf("dev%d", i%4), "Dev", a))
		})
	}
	wg.Wait()
	assert.Len(t, s.List(), 4)
}

func TestCode(t *testing.T) {
	a := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	b := "sha-256 " + strings.TrimSuffix(strings.Repeat("01:", 32), ":")
	assert.Equal(t, Code(a, b), Code(b, a), "both ends see the same code")
	assert.Regexp(t, regexp.MustCompile(`^\d{3} \d{3}$`), Code(a, b))
	assert.Equal(t, "971 264", Code(a, b), "known answer: the derivation must not drift")

	seen := map[string]bool{}
	for range 300 {
		x, y := fp(t), fp(t)
		c := Code(x, y)
		assert.NotEqual(t, c, Code(x, fp(t)), "another certificate, another code")
		seen[c] = true
	}
	assert.Greater(t, len(seen), 290, "codes spread out")
}

// A long-running process (receive) sees what another one (`peerdrop trust
// add`) wrote, and its own next write does not undo it.
func TestChangesFromAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	receiver, err := Open(dir)
	require.NoError(t, err)
	a, b := fp(t), fp(t)
	require.NoError(t, receiver.Check("alice", "Alice", a))

	cmd, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, cmd.SetTrusted("alice", true))

	assert.True(t, receiver.IsTrusted("alice", a), "the receiver sees the new trust")
	require.NoError(t, receiver.Check("bob", "Bob", b))
	again, err := Open(dir)
	require.NoError(t, err)
	assert.True(t, again.IsTrusted("alice", a), "the receiver's own save kept it")
	assert.Len(t, again.List(), 2)

	require.NoError(t, cmd.Forget("alice"))
	assert.NoError(t, receiver.Check("alice", "Alice", b), "forgotten elsewhere: a new first contact")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")
}
