package rendezvous

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"

	"github.com/coder/websocket"
	"github.com/thepeerdrop/peerdrop/internal/device"
)

// readLoop reads and handles messages until the connection ends or breaks
// a rule too often.
func (c *conn) readLoop() {
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
		if !c.handle(data) {
			return
		}
	}
}

// handle acts on one message; false means the connection is being closed.
func (c *conn) handle(data []byte) bool {
	s := c.s
	env, derr := DecodeEnvelope(data, s.cfg.MaxPayload)
	now := s.cfg.Now()
	s.mu.Lock()
	ok := c.ipst.message.allow(now, s.cfg.MessageRate)
	s.mu.Unlock()
	if !ok {
		s.m.limited[limitMessage].Add(1)
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

// peer describes c to others; call with s.mu held.
func (c *conn) peer() *Peer { return &Peer{ClientID: c.id, Hello: *c.hello} }

func (c *conn) handleHello(env *Envelope) bool {
	if c.helloed.Load() {
		return c.refuse(env, newError(CodeProtocol, "hello twice"))
	}
	h := *env.Device
	c.s.mu.Lock()
	c.hello = &h
	c.s.mu.Unlock()
	c.helloed.Store(true)
	c.reply(env.Req, &Envelope{Type: TypeOK})
	return true
}

func (c *conn) handleCreate(env *Envelope) bool {
	s := c.s
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.ipst.pair.allow(now, s.cfg.PairRate) {
		s.m.limited[limitPair].Add(1)
		return c.refuse(env, newError(CodeRateLimited, "too many pairing attempts; wait a minute"))
	}
	if len(c.rooms) >= s.cfg.MaxRoomsPerConn {
		c.replyError(env, newError(CodeTooManyRooms, ""))
		return true
	}
	s.maybeSweep(now)
	if len(s.codes) >= s.cfg.MaxCodes {
		c.replyError(env, newError(CodeServerFull, "too many pairing codes in use"))
		return true
	}
	var k string
	for i := 0; ; i++ {
		var err error
		if k, err = s.newCode(); err != nil || i == 16 {
			c.replyError(env, newError(CodeInternal, "cannot draw a code"))
			return true
		}
		// Live codes and tombstones alike: a code is issued once in its lifetime.
		if s.codes[k] == nil {
			break
		}
	}
	r := &room{code: k, creator: c, members: []*conn{c}, open: true, expires: now.Add(s.cfg.CodeTTL)}
	s.codes[k] = &code{room: r, expires: r.expires}
	s.openCodes++
	s.rooms++
	c.rooms = append(c.rooms, r)
	c.reply(env.Req, &Envelope{Type: TypeCreated, Code: FormatCode(k), Expires: r.expires})
	return true
}

func (c *conn) handleJoin(env *Envelope) bool {
	s := c.s
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every attempt counts, good code or not, before anything is looked up.
	if !c.ipst.pair.allow(now, s.cfg.PairRate) {
		s.m.limited[limitPair].Add(1)
		return c.refuse(env, newError(CodeRateLimited, "too many pairing attempts; wait a minute"))
	}
	k, err := NormalizeCode(env.Code)
	var e *code
	if err == nil {
		e = s.codes[k]
	}
	if e != nil && e.room != nil && !now.Before(e.expires) {
		s.killCodeLocked(e.room)
	}
	// Unknown, malformed, expired and closed look the same from outside.
	if e == nil || e.room == nil || !e.room.open {
		c.replyError(env, newError(CodeBadCode, ""))
		return true
	}
	r := e.room
	if slices.Contains(r.members, c) {
		c.replyError(env, newError(CodeProtocol, "already in this room"))
		return true
	}
	if len(r.members) >= s.cfg.MaxRoomMembers {
		c.replyError(env, newError(CodeRoomFull, ""))
		return true
	}
	if len(c.rooms) >= s.cfg.MaxRoomsPerConn {
		c.replyError(env, newError(CodeTooManyRooms, ""))
		return true
	}
	shown := FormatCode(k)
	c.reply(env.Req, &Envelope{Type: TypeJoined, Code: shown, Expires: r.expires})
	me := c.peer()
	for _, m := range r.members {
		m.send(&Envelope{Type: TypePeerJoined, Code: shown, Peer: me})
		c.send(&Envelope{Type: TypePeerJoined, Code: shown, Peer: m.peer()})
	}
	r.members = append(r.members, c)
	c.rooms = append(c.rooms, r)
	return true
}

// roomByCode finds c's room with the typed code; call with s.mu held.
func (c *conn) roomByCode(typed string) *room {
	k, err := NormalizeCode(typed)
	if err != nil {
		return nil
	}
	for _, r := range c.rooms {
		if r.code == k {
			return r
		}
	}
	return nil
}

func (c *conn) handleLeave(env *Envelope) bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r := c.roomByCode(env.Code)
	if r == nil {
		c.replyError(env, newError(CodeBadCode, ""))
		return true
	}
	s.leaveLocked(c, r)
	c.reply(env.Req, &Envelope{Type: TypeOK})
	return true
}

func (c *conn) handleClose(env *Envelope) bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if env.Code == "" {
		for _, r := range c.rooms {
			if r.creator == c {
				s.killCodeLocked(r)
			}
		}
		c.reply(env.Req, &Envelope{Type: TypeOK})
		return true
	}
	r := c.roomByCode(env.Code)
	if r == nil || r.creator != c {
		c.replyError(env, newError(CodeBadCode, ""))
		return true
	}
	s.killCodeLocked(r)
	c.reply(env.Req, &Envelope{Type: TypeOK})
	return true
}

// killCodeLocked makes r's code refuse joins from now on, for good.
func (s *Server) killCodeLocked(r *room) {
	if !r.open {
		return
	}
	r.open = false
	s.openCodes--
	if e := s.codes[r.code]; e != nil && e.room == r {
		e.room = nil // a tombstone until the code's expiry
	}
}

// leaveLocked takes c out of r and tells the other members. A presence link
// ends with either member; a code room with its last one.
func (s *Server) leaveLocked(c *conn, r *room) {
	r.members = slices.DeleteFunc(r.members, func(m *conn) bool { return m == c })
	c.rooms = slices.DeleteFunc(c.rooms, func(x *room) bool { return x == r })
	if r.creator == c {
		s.killCodeLocked(r)
	}
	shown := ""
	if r.code != "" {
		shown = FormatCode(r.code)
	}
	for _, m := range r.members {
		m.send(&Envelope{Type: TypePeerLeft, Code: shown, Peer: &Peer{ClientID: c.id}})
	}
	if r.code == "" {
		for _, m := range r.members {
			m.rooms = slices.DeleteFunc(m.rooms, func(x *room) bool { return x == r })
		}
		r.members = nil
		s.links--
		return
	}
	if len(r.members) == 0 {
		s.rooms--
	}
}

func (c *conn) handleAnnounce(env *Envelope) bool {
	s := c.s
	if env.DeviceID != c.hello.ID {
		return c.refuse(env, newError(CodeBadMessage, "announce: device id differs from the hello's"))
	}
	now := s.cfg.Now()
	s.mu.Lock()
	ok := c.ipst.presence.allow(now, s.cfg.PresenceRate)
	s.mu.Unlock()
	if !ok {
		s.m.limited[limitPresence].Add(1)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pins[env.DeviceID]
	if p != nil && p.key != string(der) {
		c.replyError(env, newError(CodeKeyMismatch, "this device id is bound to another key"))
		return true
	}
	if p == nil {
		if len(s.pins) >= s.cfg.MaxPins {
			s.sweep(now)
		}
		if len(s.pins) >= s.cfg.MaxPins {
			c.replyError(env, newError(CodeServerFull, "too many devices"))
			return true
		}
		p = &pin{key: string(der)}
		s.pins[env.DeviceID] = p
	}
	p.lastSeen = now
	if old := s.presence[env.DeviceID]; old != nil && old != c {
		old.announced = "" // the device reconnected; the newest connection wins
	}
	s.presence[env.DeviceID] = c
	c.announced = env.DeviceID
	c.reply(env.Req, &Envelope{Type: TypeOK})
	return true
}

func (c *conn) handleFind(env *Envelope) bool {
	s := c.s
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.ipst.presence.allow(now, s.cfg.PresenceRate) {
		s.m.limited[limitPresence].Add(1)
		return c.refuse(env, newError(CodeRateLimited, "too many finds"))
	}
	t := s.presence[env.DeviceID]
	if t == nil || t == c {
		c.replyError(env, newError(CodeNotFound, ""))
		return true
	}
	for _, r := range c.rooms {
		if r.code == "" && slices.Contains(r.members, t) {
			c.reply(env.Req, &Envelope{Type: TypeFound, Peer: t.peer()})
			return true
		}
	}
	if len(c.rooms) >= s.cfg.MaxRoomsPerConn || len(t.rooms) >= s.cfg.MaxRoomsPerConn {
		c.replyError(env, newError(CodeTooManyRooms, ""))
		return true
	}
	r := &room{members: []*conn{c, t}}
	c.rooms = append(c.rooms, r)
	t.rooms = append(t.rooms, r)
	s.links++
	c.reply(env.Req, &Envelope{Type: TypeFound, Peer: t.peer()})
	t.send(&Envelope{Type: TypePeerJoined, Peer: c.peer()})
	return true
}

func (c *conn) handleSignal(env *Envelope) bool {
	s := c.s
	b, err := jsonMarshal(&Envelope{Type: TypeSignal, From: c.id, Payload: env.Payload})
	if err != nil { // the payload came from json.Unmarshal; cannot happen
		c.replyError(env, newError(CodeBadMessage, "payload"))
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.conns[env.To]
	if t == nil || t == c || !c.sharesRoom(t) {
		// Whether the id exists elsewhere is none of the sender's business.
		c.replyError(env, newError(CodeUnknownPeer, ""))
		return true
	}
	if !t.enqueue(b) {
		c.replyError(env, newError(CodePeerBusy, "the recipient is not keeping up; try again"))
		return true
	}
	s.m.relayed.Add(1)
	s.m.relayedBytes.Add(uint64(len(env.Payload)))
	return true
}

// sharesRoom reports whether c and t are in one room. Call it with s.mu held.
func (c *conn) sharesRoom(t *conn) bool {
	for _, r := range c.rooms {
		if slices.Contains(r.members, t) {
			return true
		}
	}
	return false
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
