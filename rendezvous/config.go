package rendezvous

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Config is what New needs. Zero fields take the defaults in brackets.
type Config struct {
	// ICEServers returns the STUN/TURN entries for a new client (fresh TURN
	// credentials per client). Nil: an empty list.
	ICEServers func(clientID string) []ICEServer
	// Now is the clock of codes, pins and rate limits (tests). [time.Now]
	// Idle and ping timers always use the real clock.
	Now func() time.Time
	// Logger gets connection-level events at debug level. [discard]
	Logger *slog.Logger
	// ClientIPHeader names a header that holds the client address, set by
	// a reverse proxy in front of the server ("X-Forwarded-For": its last
	// entry is used). Empty: the TCP peer address. Set it only behind a
	// proxy that overwrites the header, or clients choose their own address.
	ClientIPHeader string
	// OriginPatterns lets browsers on these origins connect (see
	// websocket.AcceptOptions). Native clients send no Origin and are
	// always accepted; by default a browser must come from the server's
	// own origin.
	OriginPatterns []string
	// Store holds the rooms, presence, pins and rate limits: NewRedisStore
	// to share them with other instances. [NewMemoryStore()]
	Store Store
	// Site, when set, serves every request the protocol's paths (/ws,
	// /healthz) do not: peerdrop serve puts the web client there.
	Site http.Handler

	CodeTTL         time.Duration // pairing code lifetime [10m]
	MaxRoomMembers  int           // members of one code room, creator included [8]
	MaxRoomsPerConn int           // code rooms and presence links of one connection [16]
	MaxPayload      int           // bytes of a signal payload [64 KiB]
	MaxConns        int           // open connections in all [10000]
	MaxConnsPerIP   int           // open connections per client address (IPv6: per /64) [64]
	// MaxConnsPerPrefix is the open connections of one network: the
	// addresses that share a /PrefixBits4 (IPv4) or /PrefixBits6 (IPv6)
	// prefix. One host with many addresses (a /24 is cheap to rent) cannot
	// fill the server alone. [256]
	MaxConnsPerPrefix int
	PrefixBits4       int           // prefix length of an IPv4 network [24]
	PrefixBits6       int           // prefix length of an IPv6 network [56]
	MaxCodes          int           // live codes plus tombstones [100000]
	MaxPins           int           // device keys remembered [100000]
	MaxIPs            int           // client addresses tracked for rate limits [100000]
	PinTTL            time.Duration // a pin is forgotten this long after its last announce [720h]

	ConnectRate  Limit // new connections per address [1/s, burst 30]
	PairRate     Limit // create and join per address [10/min, burst 10]
	PresenceRate Limit // announce and find per address [30/min, burst 30]
	MessageRate  Limit // messages per address [50/s, burst 200]
	// MaxStrikes: after this many refused messages (rate-limited, malformed,
	// out of order) a connection is closed. [5]
	MaxStrikes int

	IdleTimeout  time.Duration // no message and no pong for this long: closed [2m]
	PingInterval time.Duration // ping a connection quiet for this long [30s]
	HelloTimeout time.Duration // the hello must come within [10s]
	WriteTimeout time.Duration // one message write [10s]
	SendQueue    int           // bytes queued for one connection [1 MiB]
}

func (c *Config) setDefaults() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	durs := []struct {
		p *time.Duration
		d time.Duration
	}{
		{&c.CodeTTL, 10 * time.Minute}, {&c.PinTTL, 30 * 24 * time.Hour},
		{&c.IdleTimeout, 2 * time.Minute}, {&c.PingInterval, 30 * time.Second},
		{&c.HelloTimeout, 10 * time.Second}, {&c.WriteTimeout, 10 * time.Second},
	}
	for _, d := range durs {
		if *d.p < 0 {
			return fmt.Errorf("rendezvous config: negative duration %v", *d.p)
		}
		if *d.p == 0 {
			*d.p = d.d
		}
	}
	ints := []struct {
		p *int
		d int
	}{
		{&c.MaxRoomMembers, 8}, {&c.MaxRoomsPerConn, 16}, {&c.MaxPayload, DefaultMaxPayload},
		{&c.MaxConns, 10000}, {&c.MaxConnsPerIP, 64}, {&c.MaxConnsPerPrefix, 256},
		{&c.PrefixBits4, 24}, {&c.PrefixBits6, 56}, {&c.MaxCodes, 100000},
		{&c.MaxPins, 100000}, {&c.MaxIPs, 100000}, {&c.MaxStrikes, 5}, {&c.SendQueue, 1 << 20},
	}
	for _, i := range ints {
		if *i.p < 0 {
			return fmt.Errorf("rendezvous config: negative limit %d", *i.p)
		}
		if *i.p == 0 {
			*i.p = i.d
		}
	}
	if c.PrefixBits4 > 32 || c.PrefixBits6 > 128 {
		return fmt.Errorf("rendezvous config: prefix lengths /%d, /%d too long", c.PrefixBits4, c.PrefixBits6)
	}
	if c.MaxRoomMembers < 2 {
		return errors.New("rendezvous config: a room needs at least 2 members")
	}
	limits := []struct {
		p *Limit
		d Limit
	}{
		{&c.ConnectRate, Limit{Every: time.Second, Burst: 30}},
		{&c.PairRate, PerMinute(10)},
		{&c.PresenceRate, PerMinute(30)},
		{&c.MessageRate, Limit{Every: 20 * time.Millisecond, Burst: 200}},
	}
	for _, l := range limits {
		if l.p.Every < 0 || l.p.Burst < 0 {
			return errors.New("rendezvous config: negative rate limit")
		}
		if l.p.Every == 0 {
			l.p.Every = l.d.Every
		}
		if l.p.Burst == 0 {
			l.p.Burst = l.d.Burst
		}
	}
	return nil
}
