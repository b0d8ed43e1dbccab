package engine

import (
	"time"

	"github.com/thepeerdrop/peerdrop/transfer"
)

// What a Headless run reports, in order, through Headless.OnEvent: the
// transfer protocol's own events (below, under the engine's names) and the
// run's (listening, connected, codes, the server, the web client). A face
// prints each; it decides nothing.

// The transfer protocol's events, as a face prints them.
type (
	TransferEvent = transfer.Event
	IncomingOffer = transfer.OfferReceived
	Accepted      = transfer.Accepted
	Declined      = transfer.Declined
	Progress      = transfer.Progress
	FileDone      = transfer.FileDone
	FolderDone    = transfer.FolderDone
	FileFailed    = transfer.FileFailed
	Paused        = transfer.Paused
	Resumed       = transfer.Resumed
	Reconnecting  = transfer.Reconnecting
	Interrupted   = transfer.Interrupted
	TransferDone  = transfer.TransferDone
	TextReceived  = transfer.TextReceived
	TextDelivered = transfer.TextDelivered
)

// Listening: Receive takes handshakes on the LAN at Address.
type Listening struct {
	Port         int
	UDPPort      int // the one UDP port of every connection; 0: a random one each
	Address      string
	Dir          string
	Discoverable bool
}

// LocalSendListening: Receive also speaks LocalSend, on Port; HTTP: it
// lets unencrypted LocalSend senders in; PIN: it asks senders for one.
type LocalSendListening struct {
	Port      int
	HTTP, PIN bool
}

// CodeShown: a pairing code to pass on to the device on another network.
// First is the run's first code; Again the first after the server
// connection came back (the old code is gone).
type CodeShown struct {
	Code    string
	Expires time.Time
	Server  string
	Link    string // the code as a link for the web page (QR code)
	Dir     string // where received files go
	First   bool
	Again   bool
}

// ServerReconnecting: the server connection was lost; the next attempt is
// after In.
type ServerReconnecting struct {
	Server string
	Err    error
	In     time.Duration
}

// ServerLost: a send's server connection dropped; it connects again.
type ServerLost struct{ Server string }

// WebServing: the web client for phones and tablets is at URL.
type WebServing struct{ URL, Address string }

// PageJoined: a web page registered with the web client.
type PageJoined struct {
	Name, ID, Fingerprint, Type string
	Port                        int
}

// Connected: a send opened a connection; Via is "lan" (Address is the
// peer's) or "server" (Address is the server's URL); RouteLocal and
// RouteRemote are the candidate types of the selected ICE pair.
type Connected struct {
	Name, ID, Code          string
	Via, Address            string
	RouteLocal, RouteRemote string
	// Security, for Via ViaLocalSend: how the connection is protected, in
	// words ("HTTPS, certificate checked" or "not encrypted").
	Security string
}

// ViaLocalSend is Connected.Via for a LocalSend device (its server's address).
const ViaLocalSend = "localsend"

// PathChanged: a connection through the server lost its network path (ICE
// restarts begin) or got one back.
type PathChanged struct {
	Restored      bool
	Restarts      int
	Local, Remote string
}

// Resolved: a send's --to named this nearby device.
type Resolved struct{ Device Device }

// Offering: a send offers Files files of Size bytes to To, and waits.
type Offering struct {
	Files int
	Size  int64
	To    string
}

// TrustedAccepted: an offer from a trusted device was accepted without
// asking (ReceiveOptions.Accept = AcceptTrusted).
type TrustedAccepted struct{ Name string }

// Warning: a problem that does not stop the run.
type Warning struct{ Err error }
