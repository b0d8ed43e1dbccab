package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/units"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// output writes events either as JSON lines on stdout or as words and a
// progress bar for a person. It is safe for concurrent use.
type output struct {
	mu     sync.Mutex
	stdout io.Writer
	stderr io.Writer
	json   bool
	tty    bool
	bars   map[string]*progressbar.ProgressBar
}

func newOutput(stdout, stderr io.Writer, jsonOut bool) *output {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &output{stdout: stdout, stderr: stderr, json: jsonOut, tty: tty, bars: map[string]*progressbar.ProgressBar{}}
}

// jsonEvent writes one JSON object with "event" set to name.
func (o *output) jsonEvent(name string, fields map[string]any) {
	fields["event"] = name
	fields["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(fields)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.stdout.Write(append(b, '\n'))
}

// say prints a line for a person (stderr in JSON mode, stdout otherwise).
func (o *output) say(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.stdout
	if o.json {
		w = o.stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// event reports a transfer event. role is "send" or "receive".
func (o *output) event(ev engine.TransferEvent) {
	if o.json {
		o.eventJSON(ev)
		return
	}
	switch ev := ev.(type) {
	case engine.Progress:
		o.progress(ev)
	case engine.Accepted:
		if len(ev.Skipped) == 0 {
			o.say("Accepted.")
			break
		}
		names := make([]string, len(ev.Skipped))
		for i, n := range ev.Skipped {
			names[i] = visible.Escape(n)
		}
		o.say("Accepted, without %s (left out by the receiver).", strings.Join(names, ", "))
	case engine.Declined:
		if ev.Reason != "" && ev.Reason != "declined by the receiver" {
			o.say("Declined: %s.", visible.Escape(ev.Reason))
		} else {
			o.say("Declined.")
		}
	case engine.FileDone:
		if ev.Path != "" {
			o.clearBar(ev.ID)
			o.say("Received %s (%s)", visible.Escape(ev.Path), humanBytes(ev.Size))
		}
	case engine.FileFailed:
		o.clearBar(ev.ID)
		o.say("Failed: %s: %s", visible.Escape(ev.Name), visible.Escape(ev.Message))
	case engine.Paused:
		o.say("Paused.")
	case engine.Resumed:
		o.say("Resumed.")
	case engine.Reconnecting:
		o.clearBar(ev.ID)
		o.say("Connection lost, reconnecting (attempt %d): %v", ev.Attempt, ev.Err)
	case engine.Interrupted:
		o.clearBar(ev.ID)
		o.say("Connection lost; what arrived is kept so the sender can resume.")
	case engine.TransferDone:
		o.finishBar(ev.ID)
		switch {
		case ev.Cancelled:
			o.say("Cancelled.")
		case len(ev.Failed) > 0:
			o.say("Done with errors: %d files arrived, %d failed.", ev.Files, len(ev.Failed))
		default:
			o.say("Done: %d files, %s.", ev.Files, humanBytes(ev.Bytes))
		}
	case engine.TextReceived:
		o.say("Message from %s: %s", visible.Escape(ev.From.Name), visible.Text(ev.Text))
	case engine.TextDelivered:
		o.say("Message delivered.")
	}
}

func (o *output) eventJSON(ev engine.TransferEvent) {
	switch ev := ev.(type) {
	case engine.IncomingOffer:
		o.jsonEvent("offer", map[string]any{
			"id": ev.ID, "from": ev.From.Name, "from_id": ev.From.ID, "files": ev.Files,
			"folders": ev.Folders, "size": ev.Size, "text": ev.Text, "resuming": ev.Resuming, "code": ev.From.Code,
		})
	case engine.Accepted:
		fields := map[string]any{"id": ev.ID}
		if len(ev.Skipped) > 0 {
			fields["skipped"] = ev.Skipped // top-level entries the receiver left out
		}
		o.jsonEvent("accepted", fields)
	case engine.Declined:
		o.jsonEvent("declined", map[string]any{"id": ev.ID, "reason": ev.Reason})
	case engine.Progress:
		o.jsonEvent("progress", map[string]any{"id": ev.ID, "name": ev.Name, "bytes": ev.Bytes, "total": ev.Total})
	case engine.FileDone:
		if ev.Path == "" { // sender side: the receiver confirmed it
			o.jsonEvent("file-sent", map[string]any{"id": ev.ID, "name": ev.Name, "size": ev.Size})
			return
		}
		o.jsonEvent("file-done", map[string]any{
			"id": ev.ID, "name": ev.Name, "path": ev.Path, "size": ev.Size,
			"sha256": ev.SHA256, "resumed_from": ev.ResumedFrom,
		})
	case engine.FolderDone:
		o.jsonEvent("folder-done", map[string]any{"id": ev.ID, "name": ev.Name, "path": ev.Path})
	case engine.FileFailed:
		o.jsonEvent("file-error", map[string]any{"id": ev.ID, "name": ev.Name, "code": ev.Code, "message": ev.Message})
	case engine.Paused:
		o.jsonEvent("paused", map[string]any{"id": ev.ID, "remote": ev.Remote})
	case engine.Resumed:
		o.jsonEvent("resumed", map[string]any{"id": ev.ID, "remote": ev.Remote})
	case engine.Reconnecting:
		o.jsonEvent("reconnecting", map[string]any{"id": ev.ID, "attempt": ev.Attempt, "error": errString(ev.Err)})
	case engine.Interrupted:
		o.jsonEvent("interrupted", map[string]any{"id": ev.ID, "error": errString(ev.Err)})
	case engine.TransferDone:
		failed := ev.Failed
		if failed == nil {
			failed = []string{}
		}
		o.jsonEvent("transfer-done", map[string]any{
			"id": ev.ID, "files": ev.Files, "bytes": ev.Bytes, "failed": failed, "cancelled": ev.Cancelled,
		})
	case engine.TextReceived:
		o.jsonEvent("text", map[string]any{"id": ev.ID, "from": ev.From.Name, "from_id": ev.From.ID, "text": ev.Text})
	case engine.TextDelivered:
		o.jsonEvent("text-delivered", map[string]any{"id": ev.ID})
	}
}

func (o *output) progress(ev engine.Progress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.tty {
		return // a bar on a pipe or a log file is noise
	}
	bar := o.bars[ev.ID]
	if bar == nil {
		bar = progressbar.NewOptions64(ev.Total,
			progressbar.OptionSetWriter(o.stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
		o.bars[ev.ID] = bar
	}
	bar.Describe(shorten(visible.Escape(ev.Name), 28))
	_ = bar.Set64(ev.Bytes)
}

func (o *output) clearBar(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if bar := o.bars[id]; bar != nil {
		_ = bar.Clear()
	}
}

func (o *output) finishBar(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if bar := o.bars[id]; bar != nil {
		_ = bar.Finish()
		delete(o.bars, id)
	}
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

func humanBytes(n int64) string { return units.Bytes(n) }
