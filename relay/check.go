package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

var (
	// ErrCredentialsRefused means a TURN server answered 401 Unauthorized
	// to the credentials: a wrong secret, or credentials past their expiry.
	ErrCredentialsRefused = errors.New("the TURN server refused the credentials (wrong secret, or expired)")
	// ErrUnreachable means a TURN server did not answer in time.
	ErrUnreachable = errors.New("the TURN server did not answer")
	// ErrNoTURN means there was no TURN server over UDP to check.
	ErrNoTURN = errors.New("no TURN server over UDP is configured")
)

// Check tries an allocation with the credentials of every turn: URL over
// UDP in servers and returns nil as soon as one succeeds, else every
// failure, each wrapping ErrCredentialsRefused, ErrUnreachable or the cause.
//
// A client that is restricted to relay candidates has nothing to connect
// with when its allocations fail, and pion does not say so: its ICE agent
// gathers no candidate, sits in "checking" until its failed timeout and
// then fails without a reason. A client that finds no "typ relay"
// candidate in its local description can stop at once and call Check to
// turn that into a sentence. Bound the wait with ctx.
func Check(ctx context.Context, servers []webrtc.ICEServer) error {
	var errs []error
	for _, s := range servers {
		for _, raw := range s.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil || u.Scheme != stun.SchemeTypeTURN || u.Proto != stun.ProtoTypeUDP {
				continue
			}
			password, _ := s.Credential.(string)
			err = checkOne(ctx, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), s.Username, password)
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", raw, err))
		}
	}
	if len(errs) == 0 {
		return ErrNoTURN
	}
	return errors.Join(errs...)
}

func checkOne(ctx context.Context, server, username, password string) error {
	addr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	network, local := "udp4", "0.0.0.0:0"
	if addr.IP.To4() == nil {
		network, local = "udp6", "[::]:0"
	}
	conn, err := net.ListenPacket(network, local) //nolint:noctx // a local bind
	if err != nil {
		return err
	}
	defer conn.Close() //nolint:errcheck // ends the client's read loop
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: addr.String(),
		Username:       username,
		Password:       password,
		Conn:           conn,
		LoggerFactory:  pionLoggerFactory{log: discardLogger},
	})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return err
	}
	relayed, err := client.AllocateWithContext(ctx)
	if err != nil {
		var turnErr *stun.TurnError
		switch {
		case errors.As(err, &turnErr) && turnErr.ErrorCodeAttr.Code == stun.CodeUnauthorized:
			return fmt.Errorf("%w: %w", ErrCredentialsRefused, err)
		case ctx.Err() != nil:
			return fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err())
		}
		return err
	}
	return relayed.Close()
}
