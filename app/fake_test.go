package app

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// fakeEngine stands in for the engine in widget tests only: it records the
// calls the UI makes and answers from its fields.
type fakeEngine struct {
	mu       sync.Mutex
	self     engine.Peer
	devices  []engine.Device
	items    []engine.Item
	trusted  []engine.Peer
	messages map[string][]engine.Message
	sendErr  error
	ansErr   error // Answer and AnswerSome, accepting
	pairCode engine.PairingCode
	pairErr  error // StartPairing
	joinPeer engine.Peer
	joinErr  error  // JoinPairing
	webURL   string // WebURL
	dlDir    string // DownloadDir ("" = none reported)
	typ      string // Type
	addrs    []netip.Addr
	port     int
	targets  []engine.Target // of Send, in order
	calls    []string
	next     int
}

var _ Engine = (*fakeEngine)(nil)

func newFake() *fakeEngine {
	return &fakeEngine{self: engine.Peer{ID: "self-id", Name: "Alice's Laptop"}, messages: map[string][]engine.Message{}}
}

func (f *fakeEngine) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the recorded calls, e.g. "Pause i1".
func (f *fakeEngine) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeEngine) Self() engine.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.self
}
func (f *fakeEngine) Devices() []engine.Device { return f.devices }
func (f *fakeEngine) Items() []engine.Item     { return f.items }
func (f *fakeEngine) Trusted() []engine.Peer   { return f.trusted }
func (f *fakeEngine) Messages(id string) []engine.Message {
	return f.messages[id]
}

func (f *fakeEngine) Send(to engine.Target, paths []string) (engine.Item, error) {
	f.record("Send %s %s", to.ID, strings.Join(paths, ","))
	f.mu.Lock()
	f.targets = append(f.targets, to)
	f.mu.Unlock()
	if f.sendErr != nil {
		return engine.Item{}, f.sendErr
	}
	f.next++
	return engine.Item{ID: fmt.Sprintf("sent-%d", f.next), Direction: engine.Outgoing, Peer: engine.Peer{ID: to.ID, Name: to.Name},
		Title: paths[0], Files: len(paths), State: engine.StateConnecting}, nil
}

func (f *fakeEngine) SendText(to engine.Target, text string) (engine.Message, error) {
	f.record("SendText %s %s", to.ID, text)
	if f.sendErr != nil {
		return engine.Message{}, f.sendErr
	}
	f.next++
	return engine.Message{ID: fmt.Sprintf("m-%d", f.next), Peer: engine.Peer{ID: to.ID, Name: to.Name}, Text: text,
		Outgoing: true, Time: time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)}, nil
}

func (f *fakeEngine) Answer(id string, accept bool) error {
	f.record("Answer %s %v", id, accept)
	if accept {
		return f.ansErr
	}
	return nil
}
func (f *fakeEngine) AnswerSome(id string, entries []int) error {
	f.record("AnswerSome %s %v", id, entries)
	return f.ansErr
}
func (f *fakeEngine) Pause(id string) error  { f.record("Pause %s", id); return nil }
func (f *fakeEngine) Resume(id string) error { f.record("Resume %s", id); return nil }
func (f *fakeEngine) Cancel(id string) error { f.record("Cancel %s", id); return nil }
func (f *fakeEngine) Retry(id string) error  { f.record("Retry %s", id); return nil }
func (f *fakeEngine) ClearFinished()         { f.record("ClearFinished") }
func (f *fakeEngine) SetTrusted(id string, on bool) error {
	f.record("SetTrusted %s %v", id, on)
	return nil
}

// TrustCode is the same made-up code for every device.
func (f *fakeEngine) TrustCode(id string) (string, error) {
	f.record("TrustCode %s", id)
	return "1234 5678 9012 · 3456 7890 1234", nil
}
func (f *fakeEngine) SetAutoAcceptTrusted(on bool) { f.record("SetAutoAcceptTrusted %v", on) }
func (f *fakeEngine) SetQuickSave(on bool)         { f.record("SetQuickSave %v", on) }
func (f *fakeEngine) SetLocalSend(on, allowHTTP bool) {
	f.record("SetLocalSend %v %v", on, allowHTTP)
}
func (f *fakeEngine) SetDownloadDir(dir string) error {
	f.record("SetDownloadDir %s", dir)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dlDir = dir
	return nil
}

func (f *fakeEngine) DownloadDir() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dlDir
}

func (f *fakeEngine) SetServer(url string) error {
	f.record("SetServer %s", url)
	return nil
}

func (f *fakeEngine) StartPairing(context.Context) (engine.PairingCode, error) {
	f.record("StartPairing")
	return f.pairCode, f.pairErr
}

func (f *fakeEngine) JoinPairing(_ context.Context, code string) (engine.Peer, error) {
	f.record("JoinPairing %s", code)
	return f.joinPeer, f.joinErr
}

func (f *fakeEngine) CancelPairing() { f.record("CancelPairing") }

// dev is a nearby device for tests.
func dev(id, name, kind string) engine.Device {
	return engine.Device{Device: discovery.Device{
		Info:  discovery.Info{Device: device.Device{ID: id, Name: name, Type: kind}, Version: int(signaling.Version)},
		Port:  53318,
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.23")},
	}}
}

// newTestUI is the UI on Fyne's test driver with a fake engine. Progress is
// only flushed when a test asks (flushItems).
func newTestUI(t *testing.T) (*UI, *fakeEngine) {
	t.Helper()
	a := test.NewTempApp(t)
	f := newFake()
	u := New(a, f, Options{ProgressInterval: time.Hour})
	u.runNow = true
	u.portal = nil // never the desktop's own file chooser in a widget test
	u.win.Resize(fyne.NewSize(780, 560))
	t.Cleanup(u.win.Close)
	return u, f
}

// texts lists the text of every label and canvas text shown in the window,
// dialogs included; hidden objects and their children are left out.
func texts(w fyne.Window) []string {
	var out []string
	c := w.Canvas()
	for _, r := range append([]fyne.CanvasObject{c.Content()}, c.Overlays().List()...) {
		walk(r, func(o fyne.CanvasObject) {
			switch o := o.(type) {
			case *widget.Label:
				out = append(out, o.Text)
			case *canvas.Text:
				out = append(out, o.Text)
			}
		})
	}
	return out
}

// walk calls fn for o and every visible object under it.
func walk(o fyne.CanvasObject, fn func(fyne.CanvasObject)) {
	if o == nil || !o.Visible() {
		return
	}
	fn(o)
	switch x := o.(type) {
	case *fyne.Container:
		for _, c := range x.Objects {
			walk(c, fn)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(x).Objects() {
			walk(c, fn)
		}
	}
}

// shows reports whether some text in the window contains s.
func shows(w fyne.Window, s string) bool {
	for _, t := range texts(w) {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// center is the middle of an object on the canvas.
func center(o fyne.CanvasObject) fyne.Position {
	p := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
	return p.Add(fyne.NewPos(o.Size().Width/2, o.Size().Height/2))
}

func (f *fakeEngine) WebURL() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.webURL
}

func (f *fakeEngine) SetWebListen(addr string) error {
	f.record("SetWebListen %s", addr)
	return nil
}

func (f *fakeEngine) SetName(name string) error {
	f.record("SetName %s", name)
	if err := signaling.ValidateName(name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self.Name = name
	return nil
}

func (f *fakeEngine) SetType(typ string) error {
	f.record("SetType %s", typ)
	if !discovery.ValidType(typ) {
		return fmt.Errorf("device type %q: want desktop, laptop, phone, tablet or server", typ)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typ = typ
	return nil
}

func (f *fakeEngine) Type() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cmp.Or(f.typ, discovery.TypeLaptop)
}

func (f *fakeEngine) Addresses() ([]netip.Addr, int) { return f.addrs, f.port }

func (f *fakeEngine) Diagnose(_ context.Context, o engine.DiagnoseOptions) (engine.Report, error) {
	f.record("Diagnose %s", o.To)
	return engine.Report{
		Interfaces: []engine.InterfaceAddrs{{Name: "eth0", Addrs: []string{"192.168.1.5"}}},
		Multicast:  engine.MulticastReport{Sent: true, Heard: []string{}},
		Local:      engine.LocalPorts{TCPPort: 53318, UDPPort: 53318, Receiving: true},
		Problems:   []string{"No other device's mDNS (multicast) was heard."},
	}, nil
}
