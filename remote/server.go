package remote

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/thepeerdrop/peerdrop/peer"
	"github.com/thepeerdrop/peerdrop/rendezvous"
)

// DialTimeout bounds connecting to the rendezvous server.
const DialTimeout = 10 * time.Second

// ServerURL turns what a person typed for a server (a flag, a setting)
// into the WebSocket URL of a rendezvous server: ws:// and wss:// as given,
// http(s):// read as ws(s)://, a bare host as wss://; the path defaults to
// /ws.
func ServerURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty server URL")
	}
	if !strings.Contains(s, "://") {
		s = "wss://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", s, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server %q: want a ws://, wss://, http:// or https:// URL", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server %q: no host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// PairingLink is what a pairing QR code holds: the server's web address
// with the pairing code in the fragment, which browsers never send to the
// server (the web client reads it from there).
func PairingLink(server, code string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return code
	}
	scheme := "https"
	if u.Scheme == "ws" || u.Scheme == "http" {
		scheme = "http"
	}
	return scheme + "://" + u.Host + "/#" + url.PathEscape(code)
}

// DialServer connects the device of cfg (of type deviceType) to the
// rendezvous server at wsURL, within DialTimeout.
func DialServer(ctx context.Context, wsURL string, cfg peer.Config, deviceType string) (*rendezvous.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	c, err := rendezvous.Dial(ctx, wsURL, rendezvous.Hello{
		ID:          cfg.Identity.DeviceID,
		Name:        cfg.Name,
		Type:        deviceType,
		Fingerprint: cfg.Identity.Fingerprint,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the server %s: %w", wsURL, err)
	}
	return c, nil
}

// ErrIDBound means the server keeps this device's id for another key (the
// one that announced it first: another device, or this one before it got a
// new certificate), so that nobody takes over a paired device's name.
// Paired devices cannot find this one there; pairing with a code works.
var ErrIDBound = errors.New("the server has this device's id bound to another certificate")

// Announce announces the device on client with its certificate (DER),
// signed with the certificate's key, so that paired devices find it by its
// id (within DialTimeout). A refusal because the id is bound to another key
// is ErrIDBound.
func Announce(ctx context.Context, client *rendezvous.Client, key crypto.Signer, cert []byte) error {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	err := client.Announce(ctx, key, cert)
	var re *rendezvous.Error
	if errors.As(err, &re) && re.Code == rendezvous.CodeKeyMismatch {
		return fmt.Errorf("%w: %w", ErrIDBound, err)
	}
	return err
}
