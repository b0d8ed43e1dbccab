package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/transfer"
)

func (e *env) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	to := fs.String("to", "", "the receiver: a nearby device's name or id, or HOST:PORT")
	wait := fs.Duration("wait", 3*time.Second, "how long to look for a device given by name or id")
	text := fs.String("text", "", "a message to send (alone, or with the files)")
	server := fs.String("server", "", "rendezvous server URL (peerdrop serve), to reach a device on another network with --code, or a paired device with --to")
	code := fs.String("code", "", "with --server: the pairing code the receiver shows")
	relayOnly := fs.Bool("relay-only", false, "with --server: connect only through the server's TURN relay (the receiver never learns your addresses)")
	lanes := fs.Int("lanes", 0, fmt.Sprintf("on the local network, how many connections one transfer may use at most, 1 to %d (0: one per core, when the link is fast)", transfer.MaxLanes))
	checkLS := localSendFlags(fs, false)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	paths := fs.Args()
	switch {
	case *server != "" && *to != "" && *code != "":
		return &exitError{code: 2, err: errors.New("with --server, give --code (pair with a new device) or --to (a paired device), not both")}
	case *server != "" && *to == "" && *code == "":
		return &exitError{code: 2, err: errors.New("--server needs --code (the pairing code the receiver shows) or --to (a paired device)")}
	case *server == "" && *code != "":
		return &exitError{code: 2, err: errors.New("--code needs --server: the rendezvous server the receiver uses")}
	case *server == "" && *relayOnly:
		return &exitError{code: 2, err: errors.New("--relay-only needs --server")}
	case *server == "" && *to == "":
		return &exitError{code: 2, err: errors.New("--to is required: a device name, id, or HOST:PORT (see peerdrop devices); or --server and --code for a device on another network")}
	}
	if len(paths) == 0 && *text == "" {
		return &exitError{code: 2, err: errors.New("nothing to send: give files, folders or --text")}
	}
	if *lanes < 0 || *lanes > transfer.MaxLanes {
		return &exitError{code: 2, err: fmt.Errorf("--lanes %d: want 0 to %d", *lanes, transfer.MaxLanes)}
	}
	if *wait <= 0 || *wait > time.Hour {
		return &exitError{code: 2, err: fmt.Errorf("--wait %s: want a duration between 1ms and 1h", *wait)}
	}
	if err := checkLS(); err != nil {
		return err
	}
	e.applyLocalSend(fs)

	o := engine.SendOptions{To: *to, Wait: *wait, Code: *code, RelayOnly: *relayOnly, Paths: paths, Text: *text, Lanes: *lanes}
	if *server != "" {
		u, err := serverURL(*server)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		o.Server = u
	}
	return usageError(e.eng.Send(ctx, o))
}
