package app

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/engine"
)

// Environment variables of the test hook, for end-to-end tests that drive
// the real binary (under Xvfb).
const (
	// EnvTestHook names a file that gets one JSON object per line for each
	// engine event (a summary), plus the hook's own lines.
	EnvTestHook = "PEERDROP_TEST_HOOK"
	// EnvTestSend is "NAME|PATH|PATH...": once a nearby device with that
	// name (or id) appears, send the paths to it as a drop on its avatar
	// does. Once.
	EnvTestSend = "PEERDROP_TEST_SEND"
	// EnvTestAnswer is "accept" or "decline": press that button of every
	// incoming offer's prompt.
	EnvTestAnswer = "PEERDROP_TEST_ANSWER"
)

// testHook is the state of the test hook.
type testHook struct {
	mu  sync.Mutex
	out *os.File // nil: no file

	sendTo    string   // EnvTestSend: the device's name or id
	sendPaths []string // EnvTestSend: what to send
	sent      bool     // Fyne thread only
	answer    string   // EnvTestAnswer
}

// startTestHooks enables the test hook when the PEERDROP_TEST_* variables
// (read with getenv) ask for it; StartTestHooks calls it in a build with
// the peerdrop_testhook tag (the end-to-end tests build the app so), and
// nothing else does: a release build never reads them. Call it on the Fyne
// thread, after SetEngine. The returned stop closes the file; it is never
// nil.
func (u *UI) startTestHooks(getenv func(string) string) (stop func(), err error) {
	h := &testHook{answer: strings.TrimSpace(getenv(EnvTestAnswer))}
	if h.answer != "" && h.answer != "accept" && h.answer != "decline" {
		return func() {}, fmt.Errorf("%s must be accept or decline, not %q", EnvTestAnswer, h.answer)
	}
	if spec := getenv(EnvTestSend); spec != "" {
		parts := strings.Split(spec, "|")
		if len(parts) < 2 || parts[0] == "" {
			return func() {}, fmt.Errorf("%s must be NAME|PATH[|PATH...], not %q", EnvTestSend, spec)
		}
		h.sendTo, h.sendPaths = parts[0], parts[1:]
	}
	if path := getenv(EnvTestHook); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return func() {}, fmt.Errorf("test hook: %w", err)
		}
		h.out = f
	}
	if h.out == nil && h.sendTo == "" && h.answer == "" {
		return func() {}, nil
	}
	u.hook.Store(h)

	ready := map[string]any{"event": "ready", "engine": u.eng != nil}
	if u.eng != nil {
		ready["id"], ready["name"] = u.self.ID, u.self.Name
	}
	h.write(ready)
	if u.eng != nil {
		// The engine may have served the web client before the hook was
		// on: say where (a later WebStatus is recorded as it comes).
		if url := u.eng.WebURL(); url != "" {
			h.record(engine.WebStatus{URL: url})
		}
	}
	u.hookDevices(h)
	return func() {
		u.hook.Store(nil)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.out != nil {
			_ = h.out.Close()
			h.out = nil
		}
	}, nil
}

// write appends one JSON line, with the time.
func (h *testHook) write(v map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.out == nil {
		return
	}
	v["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	_, _ = h.out.Write(append(b, '\n'))
}

// record writes the summary of an engine event; any goroutine.
func (h *testHook) record(ev engine.Event) {
	if s := eventSummary(ev); s != nil {
		h.write(s)
	}
}

// eventSummary is the hook's line for an event.
func eventSummary(ev engine.Event) map[string]any {
	switch ev := ev.(type) {
	case engine.DevicesChanged:
		names, ids, away, web, offline, ls, unencrypted := []string{}, []string{}, []string{}, []string{}, []string{}, []string{}, []string{}
		for _, d := range ev.Devices {
			names, ids = append(names, d.Name), append(ids, d.ID)
			if d.Away {
				away = append(away, d.ID)
			}
			if d.Web {
				web = append(web, d.ID)
			}
			if d.Offline {
				offline = append(offline, d.ID)
			}
			if d.LocalSend {
				ls = append(ls, d.ID)
			}
			if d.Unencrypted {
				unencrypted = append(unencrypted, d.ID)
			}
		}
		return map[string]any{"event": "devices", "names": names, "ids": ids, "away": away, "web": web, "offline": offline,
			"localsend": ls, "unencrypted": unencrypted}
	case engine.ItemChanged:
		it := ev.Item
		return map[string]any{"event": "item", "id": it.ID, "direction": string(it.Direction), "state": string(it.State),
			"peer": it.Peer.Name, "peer_id": it.Peer.ID, "title": it.Title, "files": it.Files,
			"bytes": it.Bytes, "total": it.Total, "error": it.Error, "paths": it.Paths}
	case engine.ItemsCleared:
		return map[string]any{"event": "items-cleared"}
	case engine.OfferReceived:
		o := ev.Offer
		return map[string]any{"event": "offer", "id": o.ID, "from": o.From.Name, "from_id": o.From.ID, "files": o.Files,
			"folders": o.Folders, "size": o.Size, "text": o.Text, "code": o.Code, "trusted": o.Trusted}
	case engine.OfferClosed:
		return map[string]any{"event": "offer-closed", "id": ev.ID}
	case engine.MessageReceived:
		m := ev.Message
		return map[string]any{"event": "message", "id": m.ID, "peer": m.Peer.Name, "peer_id": m.Peer.ID, "text": m.Text,
			"outgoing": m.Outgoing, "error": m.Err}
	case engine.Problem:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return map[string]any{"event": "problem", "error": msg}
	case engine.ServerStatus:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return map[string]any{"event": "server", "url": ev.URL, "connected": ev.Connected, "error": msg}
	case engine.WebStatus:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return map[string]any{"event": "web", "url": ev.URL, "error": msg}
	case engine.PairingCodeShown:
		return map[string]any{"event": "pairing-code", "code": ev.Code.Code, "expires": ev.Code.Expires.UTC().Format(time.RFC3339)}
	case engine.Paired:
		return map[string]any{"event": "paired", "peer": ev.Peer.Name, "peer_id": ev.Peer.ID}
	}
	return nil
}

// hookDevices sends EnvTestSend's paths once its device is nearby, through
// the code a drop on the device's avatar runs. Fyne thread.
func (u *UI) hookDevices(h *testHook) {
	if h.sendTo == "" || h.sent {
		return
	}
	for _, d := range u.devices {
		if (d.Name != h.sendTo && d.ID != h.sendTo) || d.Offline {
			continue // an offline favourite is not there yet
		}
		h.sent = true
		items, err := u.dropOn(d, h.sendPaths)
		line := map[string]any{"event": "test-send", "device": d.Name, "device_id": d.ID, "paths": h.sendPaths}
		if len(items) > 0 {
			line["item"] = items[0].ID
		}
		if err != nil {
			line["error"] = err.Error()
		}
		h.write(line)
		return
	}
}

// hookAnswer presses the Accept or Decline button of an offer's prompt.
func (u *UI) hookAnswer(h *testHook, offerID string) {
	p := u.offers[offerID]
	if p == nil {
		return
	}
	h.write(map[string]any{"event": "test-answer", "id": offerID, "accept": h.answer == "accept"})
	if h.answer == "accept" {
		p.accept.OnTapped()
	} else {
		p.decline.OnTapped()
	}
}
