package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/identity"
	"github.com/thepeerdrop/peerdrop/localsend"
	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/signaling"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

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
	ls         lsState                       // LocalSend (localsend.go)
	seenType   map[string]string             // device types last seen, for offline devices
	waitWake   chan struct{}                 // the device list changed: start waiting sends (buffered 1)
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
	lsPins, err := localsend.OpenPins(cfg.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
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
		ls:         lsState{mode: lsMode(cfg.LocalSend, cfg.LocalSendHTTP), changed: make(chan struct{}), devices: map[string]localsend.Device{}, pins: lsPins},
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
	ln.AnswerProbes = !e.cfg.Hidden
	udp, err := openUDP(ln.Addr().(*net.TCPAddr).Port, e.cfg.UDPPort, e.cfg.PerConnectionUDP)
	if err != nil {
		e.problem(plainf(err, "Another program uses the UDP port, so transfers use random UDP ports: a firewall must let them all in."))
	}
	if udp != nil {
		ln.SetUDP(udp)
		e.selfMu.Lock()
		e.peerCfg.UDP = udp
		e.selfMu.Unlock()
	}
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
	wg.Go(func() { e.runLocalSend(ctx) })
	if !e.cfg.NoBrowse {
		b := newBrowser(e.id.DeviceID, e.trust, e.onDiscovery)
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
	e.closeUDP()
	if failed {
		e.saveHistory()
	}
	if err := e.trust.Close(); err != nil {
		slog.Warn("engine: save trusted devices", slog.Any("err", err))
	}
}

// Addr is the LAN handshake address ("" until Run listens).
func (e *Engine) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}
