//go:build linux

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadUsage: mistakes on the send command line end with a non-zero status
// and one line on stderr that says what is wrong.
func TestBadUsage(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	file := writeFile(t, src, "file.txt", "some content\n")
	missing := filepath.Join(src, "no-such-file.txt")
	cfg := t.TempDir()
	send := func(t *testing.T, label string, args ...string) *proc {
		t.Helper()
		return runPeerdrop(t, ctx, label, append([]string{"--config-dir", cfg, "--name", senderName, "--json", "send"}, args...)...)
	}
	oneLine := func(t *testing.T, p *proc) string {
		t.Helper()
		lines := p.stderrLines()
		require.Len(t, lines, 1, "%s: want one line on stderr, got %q", p.label, lines)
		assert.True(t, strings.HasPrefix(lines[0], "peerdrop: "), "%s: %q", p.label, lines[0])
		return lines[0]
	}

	t.Run("no --to", func(t *testing.T) {
		p := send(t, "send without --to", file)
		assert.Equal(t, 2, p.wait())
		assert.Contains(t, oneLine(t, p), "--to")
		assert.Empty(t, p.all("connected"))
	})

	t.Run("--to with a bad port", func(t *testing.T) {
		p := send(t, "send --to 127.0.0.1:0", "--to", "127.0.0.1:0", file)
		assert.Equal(t, 2, p.wait())
		assert.Contains(t, oneLine(t, p), "127.0.0.1:0")
	})

	t.Run("nothing to send", func(t *testing.T) {
		p := send(t, "send with nothing", "--to", "127.0.0.1:1")
		assert.Equal(t, 2, p.wait())
		assert.Contains(t, oneLine(t, p), "nothing to send")
	})

	t.Run("nobody listening", func(t *testing.T) {
		// Port 1 on loopback: connection refused at once.
		p := send(t, "send to a closed port", "--to", "127.0.0.1:1", file)
		assert.NotEqual(t, 0, p.wait())
		assert.Contains(t, oneLine(t, p), "127.0.0.1:1")
		assert.Empty(t, p.all("connected"))
	})

	t.Run("missing path", func(t *testing.T) {
		// A live receiver: the send must fail on the path, before offering anything.
		dl := t.TempDir()
		r := startReceiver(t, ctx, receiverOpts{dir: dl, yes: true})
		for _, args := range [][]string{{missing}, {file, missing}} {
			p := send(t, "send a missing file", append([]string{"--to", r.addr()}, args...)...)
			assert.NotEqual(t, 0, p.wait())
			line := oneLine(t, p)
			assert.Contains(t, line, missing, "the error names the path")
			assert.Contains(t, line, "no such file")
		}
		assert.Empty(t, r.all("offer"), "nothing was offered")
		assert.Empty(t, snapshot(t, dl))
	})
}
