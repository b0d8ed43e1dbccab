package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

// maxMessages bounds the conversation kept with one peer.
const maxMessages = 500

// Engine is the running core of one device. Create it with New, start it
// with Run; every other method may be called from any goroutine, before or
// while Run runs.
//
// Lifecycle: Run may be called once. Sends (files and text) started before
// Run begin at once, on a context of the engine's own; Run's end cancels that
// context and waits for them, so every goroutine the engine starts has ended
// when Run returns. After that the engine takes no new work (ErrStopped);
// the queue, history and conversations can still be read.
//
// Events: Config.OnEvent is called with no engine lock held, one event at a
// time, in the order of the changes. It may run on the goroutine of the
// method that caused the change (Send reports its new item before it
// returns) and may call engine methods; their events follow once it returns.
type Engine struct {
	cfg      Config
	id       *identity.Identity
	trust    *trust.Store
	peerCfg  peer.Config
	histPath string
	events   eventQueue

	selfMu sync.Mutex
	self   selfState // the name and type (self.go)

	// root is the context of every send; Run cancels it when it ends.
	root       context.Context
	rootCancel context.CancelFunc
	// work counts the goroutines of sends and text messages.
	work sync.WaitGroup
	// histMu serialises history writes; it is taken before mu, never after.
	histMu sync.Mutex

	mu         sync.Mutex
	started    bool
	stopped    bool
	runCtx     context.Context // Run's context, once Run started
	addr       string
	ln         *peer.Listener // while Run listens
	dir        string         // download dir, absolute
	autoAccept bool
	quickSave  bool
	nearby     map[string]discovery.Device   // by device id
	items      []*item                       // the queue, oldest first
	byID       map[string]*item              // the queue by item id
	incoming   map[string]*item              // incoming items by transfer id
	offers     map[string]*pendingOffer      // offers waiting for Answer, by item id
	messages   map[string][]Message          // conversations by peer id
	receivers  map[string]*transfer.Receiver // by download dir
	srv        serverState                   // the rendezvous server (remote.go)
	web        webState                      // the web client for phones (web.go)
	seenType   map[string]string             // device types last seen, for offline devices
	waitWake   chan struct{}                 // the device list changed: start waiting sends (buffered 1)
}

// pendingOffer is a question waiting for Answer.
type pendingOffer struct {
	answer  chan answer // buffered: Answer never waits
	entries int         // top-level entries of the offer
	// sizes are the bytes of the top-level entries listed (Offer.Entries),
	// size the offer's; space checks that the entries chosen fit.
	sizes []int64
	size  int64
	space func(need int64) error
}

// fits checks, before the answer goes out, that the entries taken (nil:
// all) fit in the free space now; the receiver checks again as it accepts.
func (p *pendingOffer) fits(take []int) error {
	if p.space == nil {
		return nil
	}
	need := p.size
	if take != nil {
		need = 0
		for _, i := range take {
			if i >= len(p.sizes) {
				return nil // not listed: the receiver's own check decides
			}
			need += p.sizes[i]
		}
	}
	if err := p.space(need); err != nil {
		return noSpaceError{err}
	}
	return nil
}

// answer is the user's decision about an offer: take lists the top-level
// entries kept (nil: all).
type answer struct {
	ok   bool
	take []int
}

// Target says where to send: a device's id and name (as discovered), and
// the addresses to try, best first.
type Target struct {
	ID    string // "" when the device is only known by address
	Name  string
	Addrs []string // HOST:PORT
}

// TargetOf is the Target for a discovered device, or for one known only by
// the address a user typed (AddressDevice: no id, and no name either, so
// that its hello names it).
func TargetOf(d Device) Target {
	if d.ID == "" {
		if len(d.Addrs) == 0 && d.Host != "" && d.Port > 0 {
			return Target{Addrs: []string{net.JoinHostPort(d.Host, strconv.Itoa(d.Port))}}
		}
		return Target{Addrs: d.Addresses()}
	}
	return Target{ID: d.ID, Name: d.Name, Addrs: d.Addresses()}
}

// New loads (or creates) the identity, pinned devices and history in
// cfg.ConfigDir. A malformed history file is ignored (and logged).
func New(cfg Config) (*Engine, error) {
	if cfg.ConfigDir == "" {
		return nil, errors.New("engine: no config dir")
	}
	if cfg.Name == "" {
		h, _ := os.Hostname()
		cfg.Name = DefaultName(h)
	}
	if err := signaling.ValidateName(cfg.Name); err != nil {
		return nil, fmt.Errorf("engine: name %q: %w", cfg.Name, err)
	}
	if cfg.Type == "" {
		cfg.Type = discovery.DetectType()
	}
	if !discovery.ValidType(cfg.Type) {
		return nil, fmt.Errorf("engine: device type %q: want desktop, laptop, phone, tablet or server", cfg.Type)
	}
	if cfg.Port < -1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("engine: port %d out of range", cfg.Port)
	}
	if cfg.DownloadDir == "" {
		cfg.DownloadDir = DefaultDownloadDir()
	}
	if err := checkWebListen(cfg.WebListen); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	server, err := canonicalServer(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	dir, err := prepareDir(cfg.DownloadDir)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	id, err := identity.Load(cfg.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("engine: load identity: %w", err)
	}
	pins, err := trust.Open(cfg.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("engine: load trusted devices: %w", err)
	}
	root, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:        cfg,
		id:         id,
		trust:      pins,
		peerCfg:    peer.Config{Identity: id, Name: cfg.Name, Type: cfg.Type},
		histPath:   filepath.Join(cfg.ConfigDir, historyFileName),
		events:     eventQueue{fn: cfg.OnEvent},
		root:       root,
		rootCancel: cancel,
		dir:        dir,
		autoAccept: cfg.AutoAcceptTrusted,
		quickSave:  cfg.QuickSave,
		nearby:     map[string]discovery.Device{},
		byID:       map[string]*item{},
		incoming:   map[string]*item{},
		offers:     map[string]*pendingOffer{},
		messages:   map[string][]Message{},
		receivers:  map[string]*transfer.Receiver{},
		srv:        newServerState(server),
		web:        newWebState(cfg.WebListen),
		self:       selfState{name: cfg.Name, typ: cfg.Type, changed: make(chan struct{})},
		seenType:   map[string]string{},
		waitWake:   make(chan struct{}, 1),
	}
	e.peerCfg.OnProven = e.provenPeer
	for _, it := range loadHistory(e.histPath) {
		e.items = append(e.items, it)
		e.byID[it.ID] = it
	}
	return e, nil
}

// prepareDir makes dir absolute and creates it.
func prepareDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("download folder %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("download folder: %w", err)
	}
	return abs, nil
}

// lock takes e.mu; the function it returns releases it and then delivers
// the events queued meanwhile. Use: defer e.lock()().
func (e *Engine) lock() func() {
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		e.events.flush()
	}
}

// emit queues an event; the caller holds e.mu. A change to the device list
// also wakes the sends that wait for a device.
func (e *Engine) emit(ev Event) {
	if _, ok := ev.(DevicesChanged); ok {
		poke(e.waitWake)
	}
	e.events.push(ev)
}

// emitItem reports a change to it; the caller holds e.mu. A change that
// only moves the progress is dropped when the last one went out less than
// progressEvery ago: the next change carries the figures anyway.
func (e *Engine) emitItem(it *item, progressOnly bool) {
	if progressOnly {
		now := time.Now()
		if now.Sub(it.lastProgress) < progressEvery {
			return
		}
		it.lastProgress = now
	}
	e.emit(ItemChanged{Item: it.snapshot()})
}

// problem reports trouble outside any item; err's message is for people.
func (e *Engine) problem(err error) {
	slog.Warn("engine: problem", slog.Any("err", err))
	defer e.lock()()
	e.emit(Problem{Err: err})
}

// Run listens, advertises and browses until ctx ends, and returns once every
// goroutine it started has ended (running transfers are interrupted). With
// Config.Port 0 and the default port taken (another peerdrop runs), it
// listens on any free port instead: discovery advertises the port in use.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return ErrAlreadyRunning
	}
	e.started = true
	ctx, cancel := context.WithCancel(ctx)
	e.runCtx = ctx
	dir := e.dir
	e.mu.Unlock()
	defer e.shutdown() // last: stop and wait for the sends
	defer cancel()
	// Sends run on the root context: Run's end is their end.
	stopSends := context.AfterFunc(ctx, e.rootCancel)
	defer stopSends()

	transfer.CleanStale(dir, transfer.StaleAfter)
	ln, err := e.listen()
	if err != nil {
		return err
	}
	ln.Check = e.checkPeer
	ln.OnError = e.onHandshakeError
	e.mu.Lock()
	e.addr = ln.Addr().String()
	e.ln = ln
	cur := e.peerConfig()
	ln.SetSelf(cur.Name, cur.Type) // renamed before Run
	e.mu.Unlock()
	slog.Info("engine: listening", slog.String("addr", ln.Addr().String()), slog.String("dir", dir))

	var wg sync.WaitGroup
	if !e.cfg.Hidden {
		port := ln.Addr().(*net.TCPAddr).Port
		wg.Go(func() { e.runAdvertiser(ctx, port) })
	}
	wg.Go(func() { e.runWaiting(ctx) })
	wg.Go(func() { e.runServer(ctx) })
	wg.Go(func() { e.runWeb(ctx) })
	if !e.cfg.NoBrowse {
		b := &discovery.Browser{Self: e.id.DeviceID, OnEvent: e.onDiscovery}
		wg.Go(func() {
			if err := b.Run(ctx); err != nil {
				e.problem(plainf(err, "Cannot look for nearby devices on this network."))
			}
		})
	}
	err = ln.Serve(ctx, e.serveConn)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// listen opens the handshake port that Config.Port asks for.
func (e *Engine) listen() (*peer.Listener, error) {
	switch p := e.cfg.Port; p {
	case -1:
		return peer.Listen(":0", e.peerCfg)
	case 0:
		ln, err := peer.Listen(fmt.Sprintf(":%d", signaling.DefaultPort), e.peerCfg)
		if err == nil {
			return ln, nil
		}
		slog.Warn("engine: default port taken, using another one", slog.Any("err", err))
		return peer.Listen(":0", e.peerCfg)
	default:
		ln, err := peer.Listen(fmt.Sprintf(":%d", p), e.peerCfg)
		if err == nil || !e.cfg.PortFallback {
			return ln, err
		}
		ln, err2 := peer.Listen(":0", e.peerCfg)
		if err2 != nil {
			return nil, err // the port asked for says more
		}
		e.problem(plainf(err, "Port %d is in use by another program, so ThePeerDrop listens on port %d for now. Choose another port in Settings.",
			p, ln.Addr().(*net.TCPAddr).Port))
		return ln, nil
	}
}

// shutdown ends what Run leaves behind: sends stop, and Run waits for them.
func (e *Engine) shutdown() {
	e.rootCancel()
	e.mu.Lock()
	e.stopped = true
	e.addr = ""
	e.ln = nil
	if len(e.nearby) > 0 || len(e.srv.away) > 0 || len(e.web.pages) > 0 {
		clear(e.nearby)
		clear(e.srv.away)
		clear(e.web.pages)
		e.emit(DevicesChanged{Devices: []Device{}})
	}
	e.srv.connected, e.srv.pairing = false, false
	failed := e.failWaitingLocked()
	e.mu.Unlock()
	e.events.flush()
	e.work.Wait()
	if failed {
		e.saveHistory()
	}
	if err := e.trust.Close(); err != nil {
		slog.Warn("engine: save trusted devices", slog.Any("err", err))
	}
}

// checkPeer is the check at hello time: it refuses a known device that
// comes with another certificate and stores nothing (a hello is a claim).
func (e *Engine) checkPeer(h signaling.Hello) error {
	return e.trust.Verify(h.ID, h.Fingerprint)
}

// provenPeer pins a peer's certificate on first contact, once DTLS has
// proven it (peer.Config.OnProven), and refuses a known device that comes
// with another one.
func (e *Engine) provenPeer(h signaling.Hello) error {
	if err := e.trust.Pin(h.ID, h.Name, h.Fingerprint); err != nil {
		return err
	}
	defer e.lock()()
	_, near := e.nearby[h.ID]
	_, page := e.web.pages[h.ID]
	if near || page {
		e.emit(DevicesChanged{Devices: e.devicesLocked()}) // it may be known now
	}
	return nil
}

// onHandshakeError hears about incoming connections that failed before a
// transfer could start.
func (e *Engine) onHandshakeError(from net.Addr, err error) { e.handshakeFailed(from.String(), err) }

// handshakeFailed reports an incoming connection from that failed: to the
// user when a known device came with another identity, else to the log.
func (e *Engine) handshakeFailed(from string, err error) {
	var ic *trust.IdentityChangedError
	if errors.As(err, &ic) {
		e.problem(plainf(err, "%s's identity changed, so its connection was refused: compare the verification code and re-pair.", ic.Name))
		return
	}
	slog.Info("engine: incoming connection failed", slog.String("from", from), slog.Any("err", err))
}

// onDiscovery applies a change to the nearby list.
func (e *Engine) onDiscovery(ev discovery.Event) {
	defer e.lock()()
	if ev.Kind == discovery.Gone {
		delete(e.nearby, ev.Device.ID)
	} else {
		e.nearby[ev.Device.ID] = ev.Device
		e.noteTypeLocked(ev.Device.ID, ev.Device.Type)
	}
	e.emit(DevicesChanged{Devices: e.devicesLocked()})
}

// devicesLocked is the nearby list with what we know of each; the caller
// holds e.mu.
func (e *Engine) devicesLocked() []Device {
	pins := map[string]trust.Device{}
	for _, p := range e.trust.List() {
		pins[p.ID] = p
	}
	out := make([]Device, 0, len(e.nearby)+len(e.web.pages))
	describe := func(d discovery.Device) Device {
		p, known := pins[d.ID]
		return Device{
			Device:  d,
			Known:   known,
			Trusted: known && p.Trusted && p.Fingerprint == d.Fingerprint,
			Changed: known && p.Fingerprint != d.Fingerprint,
		}
	}
	for _, d := range e.nearby {
		if _, page := e.web.pages[d.ID]; page {
			continue // our own page's advertisement: listed below, reached here
		}
		out = append(out, describe(d))
	}
	for _, d := range e.web.pages {
		dev := describe(d)
		dev.Web = true
		out = append(out, dev)
	}
	out = append(out, e.awayDevicesLocked(pins)...)
	out = append(out, e.offlineDevicesLocked(pins)...)
	slices.SortFunc(out, func(a, b Device) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Self is this device.
func (e *Engine) Self() Peer { return Peer{ID: e.id.DeviceID, Name: e.peerConfig().Name} }

// Type is this device's type (discovery.Type*).
func (e *Engine) Type() string { return e.deviceType() }

// Fingerprint is this device's certificate fingerprint.
func (e *Engine) Fingerprint() string { return e.id.Fingerprint }

// TrustCode is what to compare with the other device's screen before
// trusting it: trust.TrustCode of this device's fingerprint and the
// device's pinned one (the one SetTrusted trusts). Both devices show the
// same code. A device not pinned yet (never connected) has none.
func (e *Engine) TrustCode(deviceID string) (string, error) {
	// Only a pinned certificate: one a connection proved. An advertised
	// one is a claim (and trusting needs the pin anyway).
	p, ok := e.trust.Pinned(deviceID)
	if !ok {
		return "", fmt.Errorf("trust code for %s: %w", deviceID, ErrUnknownDevice)
	}
	return trust.TrustCode(e.id.Fingerprint, p.Fingerprint), nil
}

// Addr is the LAN handshake address ("" until Run listens).
func (e *Engine) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Devices is the nearby list, sorted by name: the devices discovered on
// the LAN, the paired ones away (on the server, not nearby), and the
// trusted ones that are neither (Offline).
func (e *Engine) Devices() []Device {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.devicesLocked()
}

// Send queues an offer of paths (files and folders) to a device and starts
// it; the returned Item is already in the queue. Paths that cannot be sent
// are an error, and then nothing is queued.
func (e *Engine) Send(to Target, paths []string) (Item, error) { return e.send(to, paths) }

// SendText sends a text message. The Message returned is in the
// conversation at once; delivery is reported by MessageReceived with the
// same ID, Err set when it failed.
func (e *Engine) SendText(to Target, text string) (Message, error) { return e.sendText(to, text) }

// Answer accepts or declines a waiting offer.
func (e *Engine) Answer(offerID string, accept bool) error {
	p, err := e.pendingOffer(offerID)
	if err != nil {
		return err
	}
	if accept {
		if err := p.fits(nil); err != nil {
			return err // the offer stays open: choose less
		}
	}
	return e.deliverAnswer(offerID, p, answer{ok: accept})
}

// AnswerSome accepts a waiting offer, but only its top-level entries at
// the given indexes (Offer.Entries); the sender is told and skips the
// rest. At least one must be chosen.
func (e *Engine) AnswerSome(offerID string, entries []int) error {
	p, err := e.pendingOffer(offerID)
	if err != nil {
		return err
	}
	take := slices.Compact(slices.Sorted(slices.Values(entries)))
	switch {
	case len(take) == 0:
		return fmt.Errorf("answer %s: choose at least one file or folder", offerID)
	case take[0] < 0 || take[len(take)-1] >= p.entries:
		return fmt.Errorf("answer %s: no entry %v in the offer", offerID, entries)
	case len(take) == p.entries:
		take = nil
	case len(take) > transfer.MaxTake:
		return fmt.Errorf("answer %s: at most %d entries can be chosen; accept all instead", offerID, transfer.MaxTake)
	}
	if err := p.fits(take); err != nil {
		return err // the offer stays open: choose less
	}
	return e.deliverAnswer(offerID, p, answer{ok: true, take: take})
}

// pendingOffer is the offer waiting for an answer under this id. Its space
// check runs after, without the engine's lock: it asks the file system.
func (e *Engine) pendingOffer(offerID string) (*pendingOffer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.offers[offerID]
	if p == nil {
		return nil, fmt.Errorf("answer %s: %w", offerID, ErrUnknownOffer)
	}
	return p, nil
}

// deliverAnswer hands a to the offer p, unless it was answered (or went
// away) meanwhile.
func (e *Engine) deliverAnswer(offerID string, p *pendingOffer, a answer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.offers[offerID] != p {
		return fmt.Errorf("answer %s: %w", offerID, ErrUnknownOffer)
	}
	delete(e.offers, offerID)
	p.answer <- a
	return nil
}

// Pause, Resume, Cancel and Retry act on a queue item. Retry starts a
// failed, cancelled or declined send again (same paths, same peer).
// Cancelling an offer that waits for our answer declines it.
func (e *Engine) Pause(itemID string) error  { return e.control(itemID, "pause") }
func (e *Engine) Resume(itemID string) error { return e.control(itemID, "resume") }
func (e *Engine) Cancel(itemID string) error { return e.control(itemID, "cancel") }
func (e *Engine) Retry(itemID string) error  { return e.retry(itemID) }

// Items is the queue, newest first, history included.
func (e *Engine) Items() []Item {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Item, 0, len(e.items))
	for i := len(e.items) - 1; i >= 0; i-- {
		out = append(out, e.items[i].snapshot())
	}
	return out
}

// ClearFinished removes finished items from the queue and its history file.
func (e *Engine) ClearFinished() {
	func() {
		defer e.lock()()
		e.items = slices.DeleteFunc(e.items, func(it *item) bool {
			if !it.State.Finished() {
				return false
			}
			e.forgetLocked(it)
			return true
		})
		e.emit(ItemsCleared{})
	}()
	e.saveHistory()
}

// forgetLocked drops it from the indexes; the caller removes it from e.items.
func (e *Engine) forgetLocked(it *item) {
	delete(e.byID, it.ID)
	if it.Direction == Incoming && e.incoming[it.transferID] == it {
		delete(e.incoming, it.transferID)
	}
}

// addItemLocked adds a new item as the newest; the caller holds e.mu.
func (e *Engine) addItemLocked(it *item) {
	e.items = append(e.items, it)
	e.byID[it.ID] = it
}

// trimLocked keeps at most maxFinished finished items, dropping the oldest.
func (e *Engine) trimLocked() {
	n := 0
	for _, it := range e.items {
		if it.State.Finished() {
			n++
		}
	}
	if n <= maxFinished {
		return
	}
	e.items = slices.DeleteFunc(e.items, func(it *item) bool {
		if n > maxFinished && it.State.Finished() {
			n--
			e.forgetLocked(it)
			return true
		}
		return false
	})
}

// Messages is the conversation with a peer, oldest first.
func (e *Engine) Messages(peerID string) []Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.messages[peerID])
}

// addMessageLocked appends m to its peer's conversation; the caller holds e.mu.
func (e *Engine) addMessageLocked(m Message) {
	c := append(e.messages[m.Peer.ID], m)
	if len(c) > maxMessages {
		c = slices.Delete(c, 0, len(c)-maxMessages)
	}
	e.messages[m.Peer.ID] = c
}

// SetTrusted marks a pinned device as trusted (auto-accept) or not.
func (e *Engine) SetTrusted(deviceID string, trusted bool) error {
	if err := e.trust.SetTrusted(deviceID, trusted); err != nil {
		return fmt.Errorf("trust %s: %w", deviceID, err)
	}
	defer e.lock()()
	// Trusted devices are listed even when offline: the list changed.
	e.emit(DevicesChanged{Devices: e.devicesLocked()})
	return nil
}

// Trusted lists the pinned devices marked trusted.
func (e *Engine) Trusted() []Peer {
	var out []Peer
	for _, d := range e.trust.List() {
		if d.Trusted {
			out = append(out, Peer{ID: d.ID, Name: d.Name})
		}
	}
	return out
}

// SetAutoAcceptTrusted turns auto-accept from trusted devices on or off.
func (e *Engine) SetAutoAcceptTrusted(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.autoAccept = on
}

// SetQuickSave turns quick save on or off: every offer, from any device,
// is accepted without asking (Config.QuickSave).
func (e *Engine) SetQuickSave(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.quickSave = on
}

// QuickSave reports whether quick save is on.
func (e *Engine) QuickSave() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.quickSave
}

// DownloadDir is the folder received files go to now (absolute): the one
// in Config, ~/Downloads by default, or the last SetDownloadDir.
func (e *Engine) DownloadDir() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dir
}

// SetDownloadDir changes where received files go (for new offers). The
// folder is created; a relative one is taken from the working directory.
func (e *Engine) SetDownloadDir(dir string) error {
	if dir == "" {
		return errors.New("download folder: empty path")
	}
	abs, err := prepareDir(dir)
	if err != nil {
		return err
	}
	transfer.CleanStale(abs, transfer.StaleAfter)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dir = abs
	return nil
}

// plainError is an error whose message is for people; the chain behind it
// is kept for errors.Is and the log.
type plainError struct {
	msg string
	err error
}

func (p *plainError) Error() string { return p.msg }
func (p *plainError) Unwrap() error { return p.err }

// plainf wraps err under a sentence for people.
func plainf(err error, format string, args ...any) error {
	return &plainError{msg: fmt.Sprintf(format, args...), err: err}
}
