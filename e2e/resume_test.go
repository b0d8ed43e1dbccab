//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResumeAfterReceiverKilled kills the receiver mid-file with SIGKILL and
// starts a new one on the same port, config and download folder. The same
// send process reconnects by itself and finishes the file from where the
// first receiver stopped.
func TestResumeAfterReceiverKilled(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	const size = 300*MiB + 777
	srcPath := filepath.Join(src, "movie.bin")
	sum := writeRandomFile(t, srcPath, size, 4)

	cfg, dl, port := t.TempDir(), t.TempDir(), freePort(t)
	opts := receiverOpts{configDir: cfg, dir: dl, port: port, yes: true, label: "receiver 1"}
	r1 := startReceiver(t, ctx, opts)
	// One association: the file resumes from the end of its partial file
	// (a striped one resumes by ranges: transfer's TestStripedResume...).
	s := startSender(t, ctx, "--to", r1.addr(), "--lanes", "1", srcPath)

	offer := r1.await("offer", nil)
	id := offer.str("id")
	require.NotEmpty(t, id)
	const killAt = 60 * MiB
	r1.await("progress", func(ev event) bool { return ev.num("bytes") >= killAt })
	r1.signal(syscall.SIGKILL)
	r1.wait()
	require.Empty(t, r1.all("file-done"), "the file arrived before the receiver was killed: nothing left to resume")
	require.False(t, s.exited(), "the sender gave up when the receiver died; stderr: %s", s.stderr.String())

	// What the first receiver kept for the resume.
	part := filepath.Join(dl, ".peerdrop", id, "0.part")
	info, err := os.Stat(part)
	require.NoError(t, err, "the killed receiver keeps its partial file")
	kept := info.Size()
	require.GreaterOrEqual(t, kept, int64(killAt))
	require.Less(t, kept, int64(size))

	opts.label = "receiver 2"
	r2 := startReceiver(t, ctx, opts)

	require.Equal(t, 0, s.wait(), "the sender finishes by itself; stderr: %s", s.stderr.String())
	rc := s.await("reconnecting", nil)
	assert.Positive(t, rc.num("attempt"))
	sd := s.await("transfer-done", nil)
	assert.EqualValues(t, 1, sd.num("files"))
	assert.EqualValues(t, size, sd.num("bytes"))
	assert.Empty(t, sd.list("failed"))

	offer2 := r2.await("offer", nil)
	assert.Equal(t, id, offer2.str("id"), "the sender offers the same transfer again")
	assert.True(t, offer2.flag("resuming"), "the new receiver resumes the offer from its state")
	fd := r2.await("file-done", nil)
	assert.Equal(t, "movie.bin", fd.str("name"))
	assert.Equal(t, filepath.Join(dl, "movie.bin"), fd.str("path"))
	assert.Equal(t, sum, fd.str("sha256"))
	assert.Positive(t, fd.num("resumed_from"), "the file resumed")
	assert.Equal(t, kept, fd.num("resumed_from"), "it resumed from what the first receiver had written")
	rd := r2.await("transfer-done", nil)
	assert.EqualValues(t, 1, rd.num("files"))
	assert.Empty(t, rd.list("failed"))

	// Stop the receiver as a person would (Ctrl-C): it exits cleanly.
	r2.signal(os.Interrupt)
	assert.Equal(t, 0, r2.wait(), "receiver 2 exit status after SIGINT; stderr: %s", r2.stderr.String())

	assert.Equal(t, sum, sha256File(t, filepath.Join(dl, "movie.bin")), "the resumed file is byte-identical")
	requireNoLeftovers(t, dl)
	assert.Equal(t, []string{"movie.bin"}, keys(files(snapshot(t, dl))))
}
