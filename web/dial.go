package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// dialTimeout bounds the TCP connect to one of a device's addresses, as
// peer.DialTimeout does.
const dialTimeout = 5 * time.Second

// What /ws/dial answers any failure before the device's hello with (not
// reachable, refused, closed, timed out, a bad or another device's hello),
// no sooner than deviceHelloTimeout after the dial began: the page learns
// nothing about what listens at an address (no port scanner).
const (
	// It names the step (the TCP handshake port), in at most the 123
	// bytes a WebSocket close reason may carry.
	dialFailure = "cannot reach the device on its handshake port (TCP 53318 by default): is it receiving, with that port open?"
)

// deviceHelloTimeout bounds the dial and the wait for the dialed device's
// hello together (a listener sends it at once), counted from the start of
// the dial; every failure before that hello is answered at that moment, no
// sooner, so a closed port, a silent service and a wrong answer take the
// same time (a var: tests shorten it).
var deviceHelloTimeout = 5 * time.Second

// Nearby is a device the serving process discovered, as /api/devices
// lists it: the page may send to it through /ws/dial.
type Nearby struct {
	DeviceID    string `json:"device_id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// nearby is what Devices lists, without this device itself.
func (s *Server) nearby() []discovery.Device {
	if s.Devices == nil {
		return nil
	}
	var out []discovery.Device
	for _, d := range s.Devices() {
		if d.ID == "" || d.ID == s.Host.DeviceID || len(d.Addrs) == 0 || d.Port == 0 {
			continue
		}
		out = append(out, d)
	}
	return out
}

// lookup is the discovered device with exactly this id.
func (s *Server) lookup(id string) (discovery.Device, bool) {
	for _, d := range s.nearby() {
		if d.ID == id {
			return d, true
		}
	}
	return discovery.Device{}, false
}

func (s *Server) serveDevices(w http.ResponseWriter, _ *http.Request) {
	list := []Nearby{}
	for _, d := range s.nearby() {
		list = append(list, Nearby{DeviceID: d.ID, Name: d.Name, Type: d.Type, Fingerprint: d.Fingerprint})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(list)
}

// serveDial connects a page that sends to a discovered device: the bridge
// dials that device's advertised handshake address (never one the page
// names) and pipes the frames both ways, one WebSocket message per frame.
func (s *Server) serveDial(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	dev, ok := s.lookup(r.URL.Query().Get("id"))
	if !ok {
		http.Error(w, "no such device nearby", http.StatusNotFound)
		return
	}
	select {
	case s.connects <- struct{}{}:
	default:
		http.Error(w, "too many handshakes at once", http.StatusServiceUnavailable)
		return
	}
	defer func() { <-s.connects }()
	s.wg.Add(1)
	defer s.wg.Done()
	ws, err := accept(w, r)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := pipeDial(hctx, ws, dev); err != nil && ctx.Err() == nil {
		s.report(fmt.Errorf("handshake to %s for a web page: %w", dev.Name, err))
	}
}

// errPageLeft says that the page closed its WebSocket (its data channel is
// open, or it gave up): the handshake is over, not failed.
var errPageLeft = errors.New("the page closed the handshake")

// dialDevice connects to dev's addresses, best first.
func dialDevice(ctx context.Context, dev discovery.Device) (net.Conn, error) {
	var errs []error
	for _, addr := range dev.Addresses() {
		d := net.Dialer{Timeout: dialTimeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("cannot reach %s: %w", dev.Name, errors.Join(errs...))
}

// pipeDial runs one handshake from the page to dev until either side ends
// or ctx does. The device's hello must carry dev's id.
func pipeDial(ctx context.Context, ws *websocket.Conn, dev discovery.Device) error {
	by := time.Now().Add(deviceHelloTimeout)
	// fail closes the page's WebSocket the same way whatever went wrong
	// before the device proved itself, no sooner than deviceHelloTimeout
	// after the dial began: the page cannot tell an open port from a closed one,
	// nor a listener from some other service.
	fail := func(err error) error {
		t := time.NewTimer(time.Until(by))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		_ = ws.Close(websocket.StatusTryAgainLater, dialFailure)
		return err
	}
	tcp, err := dialDevice(ctx, dev)
	if err != nil {
		return fail(err)
	}
	defer tcp.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = tcp.SetDeadline(dl)
	}
	// The listener speaks first (§2): nothing of the page's is sent before
	// the device's hello came, carrying the id (and fingerprint) it was
	// discovered with.
	hello, err := readDeviceHello(ctx, tcp, dev, by)
	if err != nil {
		return fail(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, writeTimeout)
	err = ws.Write(wctx, websocket.MessageBinary, frameMessage(hello))
	wcancel()
	if err != nil {
		return nil // the page left
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = tcp.Close() })
	defer stop()

	fromDevice := make(chan error, 1)
	go func() {
		err := deviceToPage(ctx, tcp, ws)
		switch {
		case errors.Is(err, errDeviceLeft):
			// The device is done (the data channel is open, or it gave
			// up): a normal close, which ends the page's reads too.
			_ = ws.Close(websocket.StatusNormalClosure, "")
		case errors.Is(err, errPageLeft):
		default:
			closeWith(ws, err)
		}
		cancel()
		fromDevice <- err
	}()
	err = pageToDevice(ctx, ws, tcp)
	if failed(err) {
		closeWith(ws, err)
	}
	cancel()
	if derr := <-fromDevice; failed(derr) {
		return derr
	}
	if failed(err) {
		return err
	}
	return nil
}

// failed says whether err is a failure, not one side ending the pipe.
func failed(err error) bool {
	return err != nil && !errors.Is(err, errPageLeft) && !errors.Is(err, errDeviceLeft)
}

var errDeviceLeft = errors.New("the device closed the handshake")

// pageToDevice writes each frame of the page to tcp.
func pageToDevice(ctx context.Context, ws *websocket.Conn, tcp net.Conn) error {
	for {
		typ, p, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil || websocket.CloseStatus(err) != -1 {
				return errPageLeft
			}
			return fmt.Errorf("read from the page: %w", err)
		}
		if typ != websocket.MessageBinary {
			return fmt.Errorf("%w: a text message on /ws/dial", ErrBadMessage)
		}
		f, err := DecodeFrameMessage(p)
		if err != nil {
			return err
		}
		if err := signaling.WriteFrame(tcp, f); err != nil {
			return errDeviceLeft
		}
	}
}

// readDeviceHello reads the device's first frame: it must be the hello of
// dev (its id, and its fingerprint when discovery had one). Anything else
// (an error frame included) ends the dial.
func readDeviceHello(ctx context.Context, tcp net.Conn, dev discovery.Device, by time.Time) (signaling.Frame, error) {
	stop := context.AfterFunc(ctx, func() { _ = tcp.SetReadDeadline(time.Now()) })
	defer stop()
	_ = tcp.SetReadDeadline(by)
	f, err := signaling.ReadFrame(tcp)
	_ = tcp.SetReadDeadline(time.Time{})
	if dl, ok := ctx.Deadline(); ok {
		_ = tcp.SetReadDeadline(dl)
	}
	if err != nil {
		return f, fmt.Errorf("waiting for the device's hello: %w", err)
	}
	if f.Type != signaling.TypeHello {
		return f, fmt.Errorf("the device sent a %s frame before its hello", f.Type)
	}
	h, err := signaling.DecodeHello(f.Payload)
	if err != nil {
		return f, fmt.Errorf("the device's hello: %w", err)
	}
	if h.ID != dev.ID {
		return f, fmt.Errorf("the device answered as %s, not as %s", h.ID, dev.ID)
	}
	if dev.Fingerprint != "" && !strings.EqualFold(h.Fingerprint, dev.Fingerprint) {
		return f, fmt.Errorf("the device %s answered with another certificate than it advertises", dev.ID)
	}
	return f, nil
}

// deviceToPage passes each frame of the device to the page (its hello was
// checked and passed on by pipeDial).
func deviceToPage(ctx context.Context, tcp net.Conn, ws *websocket.Conn) error {
	for {
		f, err := signaling.ReadFrame(tcp)
		if err != nil {
			return errDeviceLeft
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err = ws.Write(wctx, websocket.MessageBinary, frameMessage(f))
		cancel()
		if err != nil {
			return errPageLeft
		}
	}
}
