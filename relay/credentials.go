package relay

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API (and coturn) fix HMAC-SHA1
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// Credentials makes TURN credentials in coturn's use-auth-secret scheme (the
// TURN REST API): username "expiry:id", expiry in unix seconds, and password
// base64(HMAC-SHA1(secret, username)). They are valid until expires, for
// this server and for coturn started with static-auth-secret=secret. A ttl
// of zero or less means DefaultCredentialTTL.
//
// id names the client in logs; it should not contain ':' (the expiry is
// what comes before the first one, so a ':' does not break the credential,
// but pion then logs only the part up to the next ':').
//
// pion's turn.GenerateLongTermTURNRESTCredentials makes the same credentials
// but reads the clock itself; taking now keeps this one testable.
func Credentials(secret []byte, id string, ttl time.Duration, now time.Time) (username, password string, expires time.Time) {
	if ttl <= 0 {
		ttl = DefaultCredentialTTL
	}
	expires = now.Add(ttl).Truncate(time.Second)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + id
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username)) // a hash never fails to write
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil)), expires
}

// ICEServers returns a client's ICE server entries for a relay at
// publicHostPort ("turn.example.org:3478", "203.0.113.7:3478"): one STUN
// entry and one TURN entry over UDP with fresh credentials for id.
func ICEServers(publicHostPort string, secret []byte, id string, ttl time.Duration) []webrtc.ICEServer {
	username, password, _ := Credentials(secret, id, ttl, time.Now())
	return []webrtc.ICEServer{
		{URLs: []string{"stun:" + publicHostPort}},
		{
			URLs:           []string{"turn:" + publicHostPort + "?transport=udp"},
			Username:       username,
			Credential:     password,
			CredentialType: webrtc.ICECredentialTypePassword,
		},
	}
}

// External returns a client's ICE server entries for external STUN/TURN
// servers (coturn sharing the secret, --external-turn): stun: and stuns:
// URLs in one entry without credentials, turn: and turns: URLs in one entry
// with fresh credentials for id. It fails on a URL pion cannot parse, so
// calling it once at startup checks the flag.
func External(urls []string, secret []byte, id string, ttl time.Duration) ([]webrtc.ICEServer, error) {
	var stunURLs, turnURLs []string
	for _, raw := range urls {
		u, err := stun.ParseURI(raw)
		if err != nil {
			return nil, fmt.Errorf("relay: ICE server URL %q: %w", raw, err)
		}
		switch u.Scheme {
		case stun.SchemeTypeTURN, stun.SchemeTypeTURNS:
			turnURLs = append(turnURLs, raw)
		default:
			stunURLs = append(stunURLs, raw)
		}
	}
	var servers []webrtc.ICEServer
	if len(stunURLs) > 0 {
		servers = append(servers, webrtc.ICEServer{URLs: stunURLs})
	}
	if len(turnURLs) > 0 {
		username, password, _ := Credentials(secret, id, ttl, time.Now())
		servers = append(servers, webrtc.ICEServer{
			URLs:           turnURLs,
			Username:       username,
			Credential:     password,
			CredentialType: webrtc.ICECredentialTypePassword,
		})
	}
	return servers, nil
}

// hostPort joins a host and port the way ICE URLs want them.
func hostPort(ip net.IP, port int) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}
