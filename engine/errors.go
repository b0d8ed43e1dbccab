package engine

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/thepeerdrop/peerdrop/peer"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// Sentinel errors callers branch on.
var (
	// ErrStopped: Run has ended; the engine takes no new work.
	ErrStopped = errors.New("the engine has stopped")
	// ErrAlreadyRunning: Run was called a second time.
	ErrAlreadyRunning = errors.New("the engine is already running (or has run)")
	// ErrUnknownItem: no queue item has that id.
	ErrUnknownItem = errors.New("no such item in the queue")
	// ErrUnknownDevice: no device with that id is pinned or in the list.
	ErrUnknownDevice = errors.New("no such device")
	// ErrUnknownOffer: no offer with that id is waiting for an answer.
	ErrUnknownOffer = errors.New("no such offer is waiting")
	// ErrNoSpace: the files chosen from an offer (Answer, AnswerSome) do
	// not fit in the free space of the download folder; the offer stays
	// open, and a smaller choice may fit (Offer.TooBig).
	ErrNoSpace = errors.New("not enough free space for the files chosen")
	// ErrNotActive: the item is not in a state the action applies to
	// (pause a finished item, retry a receive or a send that worked).
	ErrNotActive = errors.New("the item cannot do that now")
)

// noSpaceError is ErrNoSpace with the receiver's figures: "not enough
// free space on the receiving device: needs X, has Y: choose less".
type noSpaceError struct{ err error }

func (e noSpaceError) Error() string        { return e.err.Error() + ": choose less" }
func (e noSpaceError) Is(target error) bool { return target == ErrNoSpace }
func (e noSpaceError) Unwrap() error        { return e.err }

// wrongDeviceError: the address of a discovered device was answered by
// another device (addresses change hands on a LAN).
type wrongDeviceError struct {
	want string
	got  signaling.Hello
}

func (e *wrongDeviceError) Error() string {
	return fmt.Sprintf("another device (%s, id %s) answered at the address of id %s", e.got.Name, e.got.ID, e.want)
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

// connectFailure says in plain words which step of a connection to name
// failed, and what to do about it; false when err is none of these steps
// (a refusal, an identity check and the like are described elsewhere).
// Both faces use it: the app's queue (describeSendError) and the command
// line's send.
func connectFailure(name string, err error) (string, bool) {
	var (
		ue *peer.UnreachableError
		np *peer.NoPathError
	)
	switch {
	case errors.As(err, &ue) && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("could not reach %s: nothing answers on its handshake port (TCP %d); "+
			"is ThePeerDrop running there, and receiving?", name, ue.Port()), true
	case errors.As(err, &ue):
		return fmt.Sprintf("could not reach %s: no answer on its handshake port (TCP %d); "+
			"it has left the network, or its firewall drops TCP %d", name, ue.Port(), ue.Port()), true
	case errors.As(err, &np):
		udp := "the UDP port it uses"
		switch len(np.UDPPorts) {
		case 0:
		case 1:
			udp = fmt.Sprintf("UDP %d", np.UDPPorts[0])
		default:
			udp = "the random UDP ports it uses: let it use one UDP port, the default, and open that one"
		}
		return fmt.Sprintf("%s answered, but no connection could be set up: UDP is blocked between the two devices "+
			"(its firewall must let in %s); `peerdrop doctor --to %q` checks", name, udp, name), true
	}
	return "", false
}

// explainConnect is err under connectFailure's words, when it has some.
func explainConnect(name string, err error) error {
	if msg, ok := connectFailure(name, err); ok {
		return plainf(err, "%s", msg)
	}
	return err
}
