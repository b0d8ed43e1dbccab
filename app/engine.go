package app

import "github.com/thepeerdrop/peerdrop/engine"

// Engine is what the UI calls on the engine; *engine.Engine is one. Every
// method may be called from any goroutine; the UI calls them from the Fyne
// thread and none of them blocks for long.
type Engine interface {
	Self() engine.Peer
	Devices() []engine.Device
	Send(to engine.Target, paths []string) (engine.Item, error)
	SendText(to engine.Target, text string) (engine.Message, error)
	Answer(offerID string, accept bool) error
	Pause(itemID string) error
	Resume(itemID string) error
	Cancel(itemID string) error
	Retry(itemID string) error
	Items() []engine.Item
	ClearFinished()
	Messages(peerID string) []engine.Message
	SetTrusted(deviceID string, trusted bool) error
	Trusted() []engine.Peer
	SetAutoAcceptTrusted(on bool)
	SetDownloadDir(dir string) error
}

var _ Engine = (*engine.Engine)(nil)
