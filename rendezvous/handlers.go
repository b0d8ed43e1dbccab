package rendezvous

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

// readLoop reads and handles messages until the connection ends or breaks
// a rule too often. Each message is handled on a goroutine of its own,
// one at a time: the reader, which an idle connection keeps blocked in
// Read, then keeps the small stack reading needs, not the one that JSON,
// signatures and the store grow (a stack shrinks only to the size it
// still uses).
func (c *conn) readLoop() {
	handled := make(chan bool, 1)
	for {
		typ, data, err := c.ws.Read(c.s.hardCtx)
		if err != nil {
			return
		}
		c.touch()
		c.s.m.received.Add(1)
		if typ != websocket.MessageText {
			c.kill(websocket.StatusUnsupportedData, "text messages only")
			return
		}
		c.hold()
		go func() { handled <- c.handle(data) }()
		ok := <-handled
		c.release()
		if !ok {
			return
		}
	}
}

// handle acts on one message; false means the connection is being closed.
func (c *conn) handle(data []byte) bool {
	s := c.s
	env, derr := DecodeEnvelope(data, s.cfg.MaxPayload)
	if ok, e := c.allow(limitMessage); !ok {
		if e != nil {
			c.replyError(&env, e)
			return true
		}
		return c.refuse(&env, newError(CodeRateLimited, "too many messages"))
	}
	if derr != nil {
		var e *Error
		errors.As(derr, &e)
		switch e.Code {
		case CodeBadHello:
			// Nothing works without a hello; say why and close.
			c.replyError(&env, e)
			c.kill(websocket.StatusPolicyViolation, "bad hello")
			return false
		case CodeBadCode:
			// The handler answers it, after counting the attempt.
		default:
			return c.refuse(&env, e)
		}
	}
	if env.Type != TypeHello && !c.helloed.Load() {
		return c.refuse(&env, newError(CodeProtocol, "hello first"))
	}
	switch env.Type {
	case TypeHello:
		return c.handleHello(&env)
	case TypeCreate:
		return c.handleCreate(&env)
	case TypeJoin:
		return c.handleJoin(&env)
	case TypeLeave:
		return c.handleLeave(&env)
	case TypeClose:
		return c.handleClose(&env)
	case TypeAnnounce:
		return c.handleAnnounce(&env)
	case TypeFind:
		return c.handleFind(&env)
	case TypeSignal:
		return c.handleSignal(&env)
	}
	return c.refuse(&env, newError(CodeBadMessage, "unknown message type"))
}

// refuse answers a message that breaks a rule and counts a strike.
func (c *conn) refuse(env *Envelope, e *Error) bool {
	c.replyError(env, e)
	c.strikes++
	if c.strikes >= c.s.cfg.MaxStrikes {
		c.s.m.abusive.Add(1)
		c.kill(websocket.StatusPolicyViolation, "too many refused messages")
		return false
	}
	return true
}

// replyError answers env with e. An error that answers a signal names its
// recipient, so that the sender knows which stream lost a message.
func (c *conn) replyError(env *Envelope, e *Error) {
	c.s.m.countError(e.Code)
	r := &Envelope{Type: TypeError, Req: env.Req, Code: e.Code, Message: e.Message}
	if env.Type == TypeSignal && clientIDRe.MatchString(env.To) {
		r.To = env.To
	}
	c.send(r)
}

func (c *conn) reply(req uint32, e *Envelope) {
	e.Req = req
	c.send(e)
}

// peer describes c to others.
func (c *conn) peer() *Peer { return &Peer{ClientID: c.id, Hello: *c.hello} }

// allow takes a token of the address's bucket of kind. A refusal counts;
// when the store failed, e says what to answer.
func (c *conn) allow(kind int) (ok bool, e *Error) {
	s := c.s
	ok, err := s.store.allow(c.ctx, kind, c.ip, s.cfg.Now(), limitOf(&s.cfg, kind))
	if err != nil {
		return false, c.failed("rate limit", err)
	}
	if !ok {
		s.m.limited[kind].Add(1)
	}
	return ok, nil
}

func limitOf(cfg *Config, kind int) Limit {
	return [nLimits]Limit{cfg.ConnectRate, cfg.PairRate, cfg.PresenceRate, cfg.MessageRate}[kind]
}

// failed turns a store error into the answer to the client: a refusal the
// store decided (*Error) as it is, a failure of the store as "try again".
func (c *conn) failed(op string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	c.s.storeFailed(op, err)
	return errUnavailable
}

// answer replies to env with ok, or with the error the store returned.
func (c *conn) answer(env *Envelope, op string, err error) bool {
	if err != nil {
		c.replyError(env, c.failed(op, err))
		return true
	}
	c.reply(env.Req, &Envelope{Type: TypeOK})
	return true
}

func (c *conn) handleHello(env *Envelope) bool {
	if c.helloed.Load() {
		return c.refuse(env, newError(CodeProtocol, "hello twice"))
	}
	h := *env.Device
	c.hello = &h
	c.stored = true // from now on unregister drops it, whatever setPeer says
	if err := c.s.store.setPeer(c.ctx, c.peer()); err != nil {
		// No hello taken: the client may say it again.
		c.replyError(env, c.failed("hello", err))
		return true
	}
	c.helloed.Store(true)
	c.reply(env.Req, &Envelope{Type: TypeOK})
	return true
}

// pairAllowed counts a create or join against the address's pairing rate;
// false when the message was answered.
func (c *conn) pairAllowed(env *Envelope, ok *bool) bool {
	allowed, e := c.allow(limitPair)
	switch {
	case e != nil:
		c.replyError(env, e)
		*ok = true
	case !allowed:
		*ok = c.refuse(env, newError(CodeRateLimited, "too many pairing attempts; wait a minute"))
	}
	return allowed
}

func (c *conn) handleCreate(env *Envelope) (ok bool) {
	s := c.s
	if !c.pairAllowed(env, &ok) {
		return ok
	}
	now := s.cfg.Now()
	// Microseconds: what every store keeps (joined says the same).
	expires := now.Add(s.cfg.CodeTTL).Truncate(time.Microsecond)
	for i := 0; ; i++ {
		s.mu.Lock()
		k, err := s.newCode()
		s.mu.Unlock()
		if err != nil || i == 16 {
			c.replyError(env, newError(CodeInternal, "cannot draw a code"))
			return true
		}
		err = s.store.create(c.ctx, k, c.id, now, expires)
		if errors.Is(err, errCodeTaken) {
			continue
		}
		if err != nil {
			c.replyError(env, c.failed("create", err))
			return true
		}
		c.reply(env.Req, &Envelope{Type: TypeCreated, Code: FormatCode(k), Expires: expires})
		return true
	}
}

func (c *conn) handleJoin(env *Envelope) (ok bool) {
	s := c.s
	// Every attempt counts, good code or not, before anything is looked up.
	if !c.pairAllowed(env, &ok) {
		return ok
	}
	k, err := NormalizeCode(env.Code)
	if err != nil {
		// Malformed looks like unknown, expired and closed.
		c.replyError(env, newError(CodeBadCode, ""))
		return true
	}
	expires, members, err := s.store.join(c.ctx, k, c.id, s.cfg.Now())
	if err != nil {
		c.replyError(env, c.failed("join", err))
		return true
	}
	shown := FormatCode(k)
	c.reply(env.Req, &Envelope{Type: TypeJoined, Code: shown, Expires: expires})
	ids := make([]string, 0, len(members))
	for _, m := range members {
		c.send(&Envelope{Type: TypePeerJoined, Code: shown, Peer: m})
		ids = append(ids, m.ClientID)
	}
	s.tellAll(c.ctx, ids, &Envelope{Type: TypePeerJoined, Code: shown, Peer: c.peer()})
	return true
}

func (c *conn) handleLeave(env *Envelope) bool {
	s := c.s
	k, err := NormalizeCode(env.Code)
	if err != nil {
		c.replyError(env, newError(CodeBadCode, ""))
		return true
	}
	others, err := s.store.leave(c.ctx, k, c.id)
	if err == nil {
		s.tellAll(c.ctx, others, &Envelope{Type: TypePeerLeft, Code: FormatCode(k), Peer: &Peer{ClientID: c.id}})
	}
	return c.answer(env, "leave", err)
}

func (c *conn) handleClose(env *Envelope) bool {
	k := ""
	if env.Code != "" {
		var err error
		if k, err = NormalizeCode(env.Code); err != nil {
			c.replyError(env, newError(CodeBadCode, ""))
			return true
		}
	}
	return c.answer(env, "close", c.s.store.closeCode(c.ctx, k, c.id))
}

func (c *conn) handleAnnounce(env *Envelope) bool {
	s := c.s
	if env.DeviceID != c.hello.ID {
		return c.refuse(env, newError(CodeBadMessage, "announce: device id differs from the hello's"))
	}
	if ok, e := c.allow(limitPresence); !ok {
		if e != nil {
			c.replyError(env, e)
			return true
		}
		return c.refuse(env, newError(CodeRateLimited, "too many announces"))
	}
	// The certificate must be the one the hello's fingerprint names (and
	// so the one the device id derives from): an id is announced only by
	// the holder of its certificate's key.
	cert, err := base64.StdEncoding.DecodeString(env.Certificate)
	if err != nil {
		return c.refuse(env, newError(CodeBadSignature, "certificate is not base64"))
	}
	if fingerprintOf(cert) != c.hello.Fingerprint || device.CheckID(env.DeviceID, fingerprintOf(cert)) != nil {
		return c.refuse(env, newError(CodeBadSignature, "the certificate is not the one the device id and the hello's fingerprint name"))
	}
	parsed, err := x509.ParseCertificate(cert)
	if err != nil {
		return c.refuse(env, newError(CodeBadSignature, "certificate does not parse"))
	}
	pub, isEC := parsed.PublicKey.(*ecdsa.PublicKey)
	if !isEC || pub.Curve != elliptic.P256() {
		return c.refuse(env, newError(CodeBadSignature, "the certificate's key is not ECDSA P-256"))
	}
	der := parsed.RawSubjectPublicKeyInfo
	sig, err := base64.StdEncoding.DecodeString(env.Sig)
	if err != nil || !ecdsa.VerifyASN1(pub, AnnounceDigest(c.nonce, env.DeviceID), sig) {
		return c.refuse(env, newError(CodeBadSignature, "signature does not verify"))
	}
	// Only now, with the key proven, is anything stored about it.
	err = s.store.announce(c.ctx, env.DeviceID, string(der), c.id, s.cfg.Now())
	if err == nil {
		c.announced = env.DeviceID
	}
	return c.answer(env, "announce", err)
}

func (c *conn) handleFind(env *Envelope) bool {
	s := c.s
	if ok, e := c.allow(limitPresence); !ok {
		if e != nil {
			c.replyError(env, e)
			return true
		}
		return c.refuse(env, newError(CodeRateLimited, "too many finds"))
	}
	t, linked, err := s.store.find(c.ctx, env.DeviceID, c.id)
	if err != nil {
		c.replyError(env, c.failed("find", err))
		return true
	}
	c.reply(env.Req, &Envelope{Type: TypeFound, Peer: t})
	if linked {
		s.tellAll(c.ctx, []string{t.ClientID}, &Envelope{Type: TypePeerJoined, Peer: c.peer()})
	}
	return true
}

func (c *conn) handleSignal(env *Envelope) bool {
	s := c.s
	b, err := jsonMarshal(&Envelope{Type: TypeSignal, From: c.id, Payload: env.Payload})
	if err != nil { // the payload came from json.Unmarshal; cannot happen
		c.replyError(env, newError(CodeBadMessage, "payload"))
		return true
	}
	// Whether the id exists elsewhere is none of the sender's business.
	if env.To == c.id {
		c.replyError(env, newError(CodeUnknownPeer, ""))
		return true
	}
	shared, delivered, err := s.store.relay(c.ctx, c.id, env.To, b)
	switch {
	case err != nil:
		c.replyError(env, c.failed("signal", err))
		return true
	case !shared:
		c.replyError(env, newError(CodeUnknownPeer, ""))
		return true
	case !delivered:
		c.replyError(env, newError(CodePeerBusy, "the recipient is not keeping up; try again"))
		return true
	}
	s.m.relayed.Add(1)
	s.m.relayedBytes.Add(uint64(len(env.Payload)))
	return true
}

// jsonMarshal is json.Marshal without HTML escaping (payloads are relayed
// as they came) and without the encoder's trailing newline.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
