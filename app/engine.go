package app

import (
	"context"
	"net/netip"

	"github.com/thepeerdrop/peerdrop/engine"
)

// Engine is what the UI calls on the engine; *engine.Engine is one. Every
// method may be called from any goroutine; the UI calls them from the Fyne
// thread and none of them blocks for long, except StartPairing and
// JoinPairing, which wait for the server and the other device: the UI
// calls those two off the Fyne thread (UI.background).
type Engine interface {
	Self() engine.Peer
	Devices() []engine.Device
	Send(to engine.Target, paths []string) (engine.Item, error)
	SendText(to engine.Target, text string) (engine.Message, error)
	Answer(offerID string, accept bool) error
	AnswerSome(offerID string, entries []int) error
	Pause(itemID string) error
	Resume(itemID string) error
	Cancel(itemID string) error
	Retry(itemID string) error
	Items() []engine.Item
	ClearFinished()
	Messages(peerID string) []engine.Message
	SetTrusted(deviceID string, trusted bool) error
	TrustCode(deviceID string) (string, error)
	Trusted() []engine.Peer
	SetAutoAcceptTrusted(on bool)
	SetQuickSave(on bool)
	SetLocalSend(on, allowHTTP bool)
	DownloadDir() string
	SetDownloadDir(dir string) error
	SetServer(url string) error
	StartPairing(ctx context.Context) (engine.PairingCode, error)
	JoinPairing(ctx context.Context, code string) (engine.Peer, error)
	CancelPairing()
	WebURL() string
	SetWebListen(addr string) error
	SetName(name string) error
	SetType(typ string) error
	Type() string
	Addresses() ([]netip.Addr, int)
	// Diagnose runs the network check (Settings, *Check the network*); it
	// takes seconds: the UI calls it off the Fyne thread.
	Diagnose(ctx context.Context, o engine.DiagnoseOptions) (engine.Report, error)
}

var _ Engine = (*engine.Engine)(nil)
