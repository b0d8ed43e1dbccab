package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/thepeerdrop/peerdrop/engine"
)

// doctor checks the network and says what stops devices from finding or
// reaching each other: exit 0 when nothing does, 1 when something does.
func (e *env) doctor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	to := fs.String("to", "", "also check the connection to this device: NAME, ID or HOST:PORT")
	wait := fs.Duration("wait", 3*time.Second, "how long to listen for multicast and to look for --to")
	port := fs.Int("port", engine.DefaultPort, "this device's handshake port (TCP, and UDP by default)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("doctor takes no arguments, got %q (a device goes with --to)", fs.Arg(0))}
	}
	if *wait <= 0 || *wait > time.Minute {
		return &exitError{code: 2, err: fmt.Errorf("--wait %s: want a duration between 1ms and 1m", *wait)}
	}
	if *port <= 0 || *port > 65535 {
		return &exitError{code: 2, err: fmt.Errorf("--port %d out of range", *port)}
	}
	r, err := e.eng.Diagnose(ctx, engine.DiagnoseOptions{To: *to, Wait: *wait, Port: *port})
	if err != nil {
		return err
	}
	if e.out.json {
		// One event, "report", with the report's fields.
		var fields map[string]any
		b, err := json.Marshal(r)
		if err == nil {
			err = json.Unmarshal(b, &fields)
		}
		if err != nil {
			return err
		}
		e.out.jsonEvent("report", fields)
	} else {
		fmt.Fprint(e.stdout, r.Text())
	}
	if len(r.Problems) > 0 {
		return &exitError{code: 1, err: errors.New("doctor: found a problem (see above)")}
	}
	return nil
}
