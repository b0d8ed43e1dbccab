//go:build linux

package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

// engineEvents collects an in-process engine's events for a test.
type engineEvents struct{ ch chan engine.Event }

// await returns the first event (from now on) for which match is true.
func (ev engineEvents) await(t *testing.T, ctx context.Context, what string, match func(engine.Event) bool) engine.Event {
	t.Helper()
	for {
		select {
		case e := <-ev.ch:
			if match(e) {
				return e
			}
		case <-ctx.Done():
			require.FailNow(t, "engine event", "no %s: %v", what, ctx.Err())
		}
	}
}

// The page honours the receiver's choice (PROTOCOL.md §4.1, take): it
// offers three files to the desktop's engine (in process, serving the web
// client on loopback, as the app runs it), the desktop keeps only the
// second, and the page streams only that one and says what was skipped.
func TestWebPageSendsOnlyTaken(t *testing.T) {
	chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), webTimeout)
	defer cancel()

	events := engineEvents{ch: make(chan engine.Event, 4096)}
	dl := t.TempDir()
	eng, err := engine.New(engine.Config{
		Name: "Desk", Type: "laptop", Port: -1, Hidden: true, NoBrowse: true,
		ConfigDir: t.TempDir(), DownloadDir: dl, WebListen: "127.0.0.1:0",
		OnEvent: func(e engine.Event) {
			select {
			case events.ch <- e:
			default: // progress floods are of no interest here
			}
		},
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() {
		stop()
		assert.NoError(t, <-done, "engine run")
	}()
	web := events.await(t, ctx, "web client served", func(e engine.Event) bool {
		s, ok := e.(engine.WebStatus)
		return ok && s.URL != ""
	}).(engine.WebStatus)

	p := openBrowser(t, ctx, web.URL+"?save=download", t.TempDir())
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)

	// Large enough that a page ignoring take would be seen streaming the
	// others (the receiver cancels them, but bytes go out first).
	src := t.TempDir()
	const size = 2*MiB + 3
	writeRandomFile(t, filepath.Join(src, "a.bin"), size, 31)
	sum := writeRandomFile(t, filepath.Join(src, "b.bin"), size+1, 32)
	writeRandomFile(t, filepath.Join(src, "c.bin"), size+2, 33)
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{
		filepath.Join(src, "a.bin"), filepath.Join(src, "b.bin"), filepath.Join(src, "c.bin")}))

	o := events.await(t, ctx, "offer", func(e engine.Event) bool { _, ok := e.(engine.OfferReceived); return ok }).(engine.OfferReceived).Offer
	require.Equal(t, 3, o.EntryCount, "offer: %+v", o)
	require.Equal(t, "b.bin", o.Entries[1].Name)
	require.NoError(t, eng.AnswerSome(o.ID, []int{1}))

	got := events.await(t, ctx, "the item finished", func(e engine.Event) bool {
		ic, ok := e.(engine.ItemChanged)
		return ok && ic.Item.ID == o.ID && ic.Item.State.Finished()
	}).(engine.ItemChanged).Item
	assert.Equal(t, engine.StateDone, got.State, "receiving item: %+v", got)
	assert.Equal(t, []string{"a.bin", "c.bin"}, got.Skipped)

	p.poll(`window.peerdrop.state.sent.length >= 1`, 30*time.Second)
	sent := p.state().Sent[0]
	assert.Empty(t, sent.Error)
	assert.Empty(t, sent.Failed)
	assert.Equal(t, 3, sent.Files, "files offered")
	assert.Equal(t, 1, sent.Sent, "files sent")
	assert.EqualValues(t, size+1, sent.Bytes, "the page streamed only the file taken")
	assert.Equal(t, []string{"a.bin", "c.bin"}, sent.Skipped)
	assert.Equal(t, "sent 1 of 3 files, 2 skipped by the receiver (a.bin, c.bin)", sent.Said, "what the page says")
	shown, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector("#transfer-list li.transfer .info").textContent`))
	require.NoError(t, err)
	assert.Equal(t, sent.Said, shown, "the transfer row")

	// A take the offer cannot satisfy is a protocol violation: the page
	// tells the receiver (error) and stops, sending nothing. A receiver
	// played in the page: a fake channel over transfer.js's own decoder.
	verdicts, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](takeViolationsJS, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"protocol: take: index 3 out of range (3 top-level entries); sent offer,entries,error",
		"protocol: accept: take indexes must increase, within 0..99999; sent offer,entries,error",
		"protocol: accept: take indexes must increase, within 0..99999; sent offer,entries,error",
		"too-large: accept: take lists 1001 entries, limit 1000; sent offer,entries,error",
	}, verdicts)

	names := dirNames(t, dl)
	assert.Equal(t, []string{"b.bin"}, names, "the download folder holds the file taken, nothing else")
	assert.Equal(t, sum, sha256File(t, filepath.Join(dl, "b.bin")))
}

// takeViolationsJS answers a page's offer of three files with bad take
// lists and reports, per list, the page's error and what it sent.
const takeViolationsJS = `import("./transfer.js").then(async (m) => {
  const out = [];
  for (const take of [[3], [1, 1], [2, 0], Array.from({ length: 1001 }, (_, i) => i)]) {
    const sent = [];
    let id = "", answered = false;
    const ch = {
      send(msg) { sent.push(msg.type); if (msg.type === "offer") id = msg.id; },
      sendData() { sent.push("data"); },
      async room() {}, async flush() {},
      async violate(e) { sent.push("error"); },
      async next() {
        if (answered) return null;
        answered = true;
        return m.decode(JSON.stringify({ type: "accept", id, take }));
      },
    };
    const file = (s) => new File([s], s);
    try {
      await m.sendFiles(ch, ["a", "b", "c"].map((p) => ({ file: file(p), path: p })), "", {});
      out.push("no error; sent " + sent);
    } catch (e) {
      out.push(e.code + ": " + e.message + "; sent " + sent);
    }
  }
  return out;
})`
