package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/transfer"
	"github.com/thepeerdrop/peerdrop/trust"
)

func (e *env) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	to := fs.String("to", "", "the receiver, HOST:PORT")
	text := fs.String("text", "", "a message to send (alone, or with the files)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	paths := fs.Args()
	addr, err := targetAddr(*to)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(paths) == 0 && *text == "" {
		return &exitError{code: 2, err: errors.New("nothing to send: give files, folders or --text")}
	}

	var connectOnce sync.Once
	dial := func(ctx context.Context) (transfer.Link, error) {
		c, err := peer.Dial(ctx, addr, e.cfg, e.checkPeer)
		if err != nil {
			return nil, err
		}
		connectOnce.Do(func() {
			if e.out.json {
				e.out.jsonEvent("connected", map[string]any{"peer": c.Remote.Name, "peer_id": c.Remote.DeviceID, "address": addr,
					"code": trust.Code(e.cfg.Identity.Fingerprint, c.Remote.Fingerprint)})
			} else {
				e.out.say("Connected to %s (verification code %s).", c.Remote.Name, trust.Code(e.cfg.Identity.Fingerprint, c.Remote.Fingerprint))
			}
		})
		return c, nil
	}

	if len(paths) == 0 {
		link, err := dial(ctx)
		if err != nil {
			return err
		}
		defer link.Close()
		id, err := transfer.SendText(ctx, link, *text)
		if err != nil {
			return err
		}
		e.out.event(transfer.TextDelivered{ID: id})
		return nil
	}

	offer, err := transfer.NewOffer(paths, *text)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if !e.out.json {
		files := 0
		for _, en := range offer.Entries {
			if !en.Dir {
				files++
			}
		}
		e.out.say("Offering %d files (%s) to %s, waiting for them to accept...", files, humanBytes(offer.TotalSize()), addr)
	}
	s := transfer.NewSender(transfer.SendOptions{Offer: offer, Dial: dial, OnEvent: e.out.event})
	res, err := s.Run(ctx)
	if err != nil {
		if errors.Is(err, transfer.ErrIncomplete) && len(res.Failed) > 0 {
			names := make([]string, 0, len(res.Failed))
			for _, f := range res.Failed {
				names = append(names, f.Name+" ("+f.Message+")")
			}
			return fmt.Errorf("%d of %d files did not arrive: %s", len(res.Failed), res.Files, strings.Join(names, ", "))
		}
		return err
	}
	return nil
}

// targetAddr checks a --to value. Names come with discovery; for now HOST:PORT.
func targetAddr(to string) (string, error) {
	if to == "" {
		return "", errors.New("--to HOST:PORT is required")
	}
	host, port, err := net.SplitHostPort(to)
	if err != nil {
		return "", fmt.Errorf("--to %q: want HOST:PORT", to)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("--to %q: bad port", to)
	}
	if host == "" {
		return "", fmt.Errorf("--to %q: missing host", to)
	}
	return to, nil
}
