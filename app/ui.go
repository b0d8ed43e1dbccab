package app

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"

	"github.com/thepeerdrop/peerdrop/engine"
)

// Options tune the UI; the zero value is right for the app.
type Options struct {
	// ProgressInterval is how often progress of running items reaches the
	// widgets (0 = 250 ms). New items and state changes show at once.
	ProgressInterval time.Duration
	// WebListen is where the engine serves the web client for phones
	// when Settings turn it on ("" = engine.DefaultWebListen).
	WebListen string
	// Tray reports whether a system tray is there to keep the app in
	// (nil = ask the desktop: trayAvailable). Called once, in New.
	Tray func() bool
	// StartMinimised keeps the window hidden at start when the app has a
	// tray icon (--minimised, as start at login runs it); the setting of
	// the same name does too.
	StartMinimised bool
	// ConfigDir is the --config-dir the app was started with ("" = the
	// default): start at login starts it with the same.
	ConfigDir string
}

// UI is the main window and everything in it. Except for HandleEvent, its
// methods run on the Fyne thread.
type UI struct {
	app  fyne.App
	win  fyne.Window
	opts Options
	eng  Engine // nil until SetEngine (or when the engine could not start)

	tabs                                          *container.AppTabs
	tabsBox                                       *fyne.Container // the tabs, titles fitted to the width (tabs.go)
	nearbyTab, queueTab, messagesTab, settingsTab *container.TabItem

	nearby   *nearbyView
	queue    *queueView
	messages *messagesView
	settings *settingsView
	quickBar *fyne.Container // Nearby's "Quick save is on" line
	offers   map[string]*offerPrompt
	notices  *desktopNotices // nil until StartNotifications
	showing  map[string]bool // error messages in a dialog now

	self    engine.Peer
	devices []engine.Device // the latest nearby list, sorted by the engine

	items      coalescer // progress from any goroutine, applied on the Fyne thread
	hook       atomic.Pointer[testHook]
	toldInTray bool
	tray       bool   // the tray icon is there: closing the window hides it
	quit       func() // the app's Quit (tests replace it)
	quitAsk    dialog.Dialog
	lastSheet  *sendSheet // the send sheet shown last (tests fill it)
	pair       *pairDialog
	phone      *phoneDialog
	webStatus  engine.WebStatus // the latest
	runNow     bool             // tests: background work runs at once, on the caller

	portal      portalFunc  // the desktop's file chooser (nil: our own picker only)
	asking      bool        // the desktop's file chooser is open
	afterPick   func()      // tests: called once a chooser's answer is applied
	lastPickDir string      // where our picker was last used
	lastPicker  *filePicker // our picker shown last (tests fill it)
}

// New builds the main window (not shown yet). eng may be nil and be set
// later with SetEngine: the engine needs HandleEvent before it exists.
func New(fyneApp fyne.App, eng Engine, opts Options) *UI {
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 250 * time.Millisecond
	}
	if opts.WebListen == "" {
		opts.WebListen = engine.DefaultWebListen
	}
	u := &UI{app: fyneApp, opts: opts, offers: map[string]*offerPrompt{}, showing: map[string]bool{}, portal: sessionPortal}
	u.quit = fyneApp.Quit
	u.win = fyneApp.NewWindow("ThePeerDrop")

	u.nearby = newNearbyView(u)
	u.queue = newQueueView(u)
	u.messages = newMessagesView(u)
	u.settings = newSettingsView(u)

	u.nearbyTab = container.NewTabItemWithIcon("Nearby", theme.ComputerIcon(), u.nearby.content)
	u.queueTab = container.NewTabItemWithIcon("Transfers", theme.UploadIcon(), u.queue.content)
	u.messagesTab = container.NewTabItemWithIcon("Messages", theme.MailComposeIcon(), u.messages.content)
	u.settingsTab = container.NewTabItemWithIcon("Settings", theme.SettingsIcon(), u.settings.content)
	u.tabs = container.NewAppTabs(u.nearbyTab, u.queueTab, u.messagesTab, u.settingsTab)
	u.tabs.OnSelected = func(t *container.TabItem) {
		switch t {
		case u.settingsTab:
			u.settings.refreshTrusted()
			u.settings.refreshReach()
		case u.messagesTab:
			u.messages.shown()
		}
	}

	u.tabsBox = newTabsFit(u.tabs) // icons only when narrow
	u.win.SetContent(u.tabsBox)
	u.win.Resize(fyne.NewSize(780, 560))
	u.win.SetOnDropped(u.onDropped)
	u.win.Canvas().AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyQ, Modifier: fyne.KeyModifierShortcutDefault},
		func(fyne.Shortcut) { u.confirmQuit() })
	u.setupTray()
	if eng != nil {
		u.SetEngine(eng)
	}
	return u
}

// Window is the main window.
func (u *UI) Window() fyne.Window { return u.win }

// ShowAndRun shows the window and runs the app until it quits. Started
// minimised with a tray icon to come back from, the window stays hidden.
func (u *UI) ShowAndRun() {
	if u.startHidden() {
		u.app.Run()
		return
	}
	u.win.ShowAndRun()
}

// SetEngine connects the UI to a running (or about to run) engine and loads
// what it already knows: this device, the nearby list, the queue with its
// history. Call it on the Fyne thread (in main before ShowAndRun is fine).
func (u *UI) SetEngine(eng Engine) {
	u.eng = eng
	u.self = eng.Self()
	u.nearby.setSelf(u.self)
	u.settings.setSelf(u.self)
	items := eng.Items()
	u.queue.setItems(items)
	for _, it := range items {
		u.nearby.noteItem(it)
	}
	u.updateQueueTab()
	u.setDevices(eng.Devices())
	u.settings.refreshTrusted()
	u.settings.showDir(eng.DownloadDir()) // --download-dir may say otherwise than Settings
}

// ShowError shows err in a dialog, in the words it carries; the same
// message twice at once shows once.
func (u *UI) ShowError(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if u.showing[msg] {
		return
	}
	u.showing[msg] = true
	d := dialog.NewError(err, u.win)
	d.SetOnClosed(func() { delete(u.showing, msg) })
	d.Show()
}

// errNoEngine is what the user sees when they act without an engine.
var errNoEngine = errors.New("ThePeerDrop is not running: it could not start (see the earlier message). Restart the app to try again")

// engine returns the engine, or shows why there is none.
func (u *UI) engine() (Engine, bool) {
	if u.eng == nil {
		u.ShowError(errNoEngine)
		return nil, false
	}
	return u.eng, true
}

// HandleEvent takes an engine event from any goroutine and applies it on the
// Fyne thread. It never blocks: progress is coalesced (the latest state of
// each item wins) and reaches the widgets at most every ProgressInterval.
func (u *UI) HandleEvent(ev engine.Event) {
	if h := u.hook.Load(); h != nil {
		h.record(ev)
	}
	switch ev := ev.(type) {
	case engine.ItemChanged:
		now, schedule := u.items.add(ev.Item)
		if now {
			fyne.Do(u.flushItems)
		} else if schedule {
			time.AfterFunc(u.opts.ProgressInterval, func() { fyne.Do(u.flushItems) })
		}
	case engine.DevicesChanged:
		fyne.Do(func() { u.setDevices(ev.Devices) })
	case engine.ItemsCleared:
		fyne.Do(func() {
			u.flushItems()
			u.queue.removeFinished()
			u.updateQueueTab()
		})
	case engine.OfferReceived:
		fyne.Do(func() { u.showOffer(ev.Offer) })
	case engine.OfferClosed:
		fyne.Do(func() { u.closeOffer(ev.ID) })
	case engine.MessageReceived:
		fyne.Do(func() { u.messageReceived(ev.Message) })
	case engine.Problem:
		fyne.Do(func() { u.ShowError(ev.Err) })
	case engine.PairingCodeShown:
		fyne.Do(func() {
			if u.pair != nil {
				u.pair.showCode(ev.Code)
			}
		})
	case engine.Paired:
		fyne.Do(func() {
			if u.pair != nil {
				u.pair.paired(ev.Peer)
			}
			u.nearby.setHint(fmt.Sprintf("Paired with %s.", peerName(ev.Peer)))
		})
	case engine.ServerStatus:
		fyne.Do(func() { u.settings.showServerStatus(ev) })
	case engine.WebStatus:
		fyne.Do(func() {
			u.webStatus = ev
			if u.phone != nil {
				u.phone.show(ev)
			}
		})
	}
}

// flushItems applies the pending item changes.
func (u *UI) flushItems() {
	for _, it := range u.items.take() {
		u.applyItem(it)
	}
}

func (u *UI) applyItem(it engine.Item) {
	u.queue.upsert(it)
	u.nearby.noteItem(it)
	u.updateQueueTab()
}

// updateQueueTab shows how many transfers are active in the tab's title.
func (u *UI) updateQueueTab() {
	text := "Transfers"
	if n := u.queue.active(); n > 0 {
		text = fmt.Sprintf("Transfers (%d)", n)
	}
	if u.queueTab.Text != text {
		u.queueTab.Text = text
		u.tabTitlesChanged()
	}
}

// tabTitlesChanged shows the tabs' new titles (shortened in a narrow
// window). Call it after setting a tab's Text.
func (u *UI) tabTitlesChanged() {
	if u.tabs == nil || u.tabsBox == nil {
		return // still being built
	}
	u.tabs.Refresh()
	u.tabsBox.Refresh() // lays out again: tabsFit shortens the new title
}

func (u *UI) setDevices(devs []engine.Device) {
	u.devices = devs
	u.nearby.setDevices(devs)
	u.messages.devicesChanged(devs)
	if u.tabs.Selected() == u.settingsTab {
		u.settings.refreshTrusted()
	}
	if h := u.hook.Load(); h != nil {
		u.hookDevices(h)
	}
}

// device returns the nearby device with this id.
func (u *UI) device(id string) (engine.Device, bool) {
	for _, d := range u.devices {
		if d.ID == id {
			return d, true
		}
	}
	return engine.Device{}, false
}

// targetFor is where to reach a peer: the nearby device's addresses when it
// is nearby, else only its id (the engine may know how to reach it).
func (u *UI) targetFor(p engine.Peer) engine.Target {
	if d, ok := u.device(p.ID); ok {
		return engine.TargetOf(d)
	}
	return engine.Target{ID: p.ID, Name: p.Name}
}

// openPath opens a file or folder with the desktop's default application.
func (u *UI) openPath(path string) {
	if err := openFile(u.app, path); err != nil {
		u.ShowError(fmt.Errorf("could not open %s: %w", path, err))
	}
}
