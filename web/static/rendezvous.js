// The rendezvous protocol (docs/PROTOCOL-rendezvous.md) over a WebSocket
// to the `peerdrop serve` that served this page, and pipes over its signal
// messages (docs/PROTOCOL.md §13.2): what the page needs off the LAN.

import { b64, unb64 } from './pake.js';
import { FrameQueue, HandshakeError } from './handshake.js';

export const SUBPROTOCOL = 'peerdrop-rendezvous.v1';
const REQUEST_TIMEOUT = 10000;
const MAX_CHUNK = 32 * 1024;
// What a pipe may hold unread: the PAKE's messages are small (1 MiB, as
// remote/pipe.go), the handshake's frames are at most 64 KiB each and
// read one at a time (256 KiB).
export const MAX_BUFFERED = 1 << 20;
export const MAX_BUFFERED_FRAMES = 256 << 10;
// How many pipes a code's creator keeps open or waiting at once, as
// peer.MaxPendingHandshakes; one per peer at a time (remote/host.go busy).
export const MAX_PIPES = 16;
const PIPE_RE = /^[0-9a-f]{16}$/;

// RendezvousError is an error reply of the server: code is section 6's.
export class RendezvousError extends Error {
  constructor(code, message, to = '') {
    super(RendezvousError.words(code, message));
    this.code = code;
    this.to = to; // the recipient of the signal it answers, if any
  }
  static words(code, message) {
    switch (code) {
      case 'bad-code': return 'no such pairing code (expired or already used?)';
      case 'room-full': return 'that code already has all the devices it takes';
      case 'rate-limited': return 'too many attempts; wait a minute and try again';
      case 'server-full': return 'the server is full; try again later';
      default: return `the server refused (${code})${message ? `: ${message}` : ''}`;
    }
  }
}

// canonicalRoom is a server code's canonical form (section 4): upper case,
// no hyphens or spaces, O read as 0, I and L as 1.
export const canonicalRoom = (c) => String(c || '').toUpperCase().replace(/[-\s]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');

// Client is one connection to the rendezvous server. Events go to the
// handlers set on it: onPeerJoined(peer, code), onPeerLeft(clientId, code),
// onSignal(from, payload), onError(err) (an error that answers no request,
// typically a refused signal) and onClose(reason).
export class Client {
  constructor(ws) {
    this.ws = ws;
    this.req = 0;
    this.pending = new Map(); // req -> {resolve, reject, timer}
    this.clientId = '';
    this.iceServers = [];
    this.closed = null;
    this.onPeerJoined = () => {};
    this.onPeerLeft = () => {};
    this.onSignal = () => {};
    this.onError = () => {};
    this.onClose = () => {};
  }

  // connect opens the WebSocket at url, reads the welcome and says hello
  // with device {device_id, name, type, fingerprint}.
  static connect(url, device) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(url, SUBPROTOCOL);
      } catch (e) {
        reject(new Error(`cannot reach the server: ${e.message}`));
        return;
      }
      const c = new Client(ws);
      const timer = setTimeout(() => { ws.close(); reject(new Error('the server did not answer within 10 s')); }, REQUEST_TIMEOUT);
      ws.onerror = () => reject(new Error('cannot reach the server'));
      ws.onclose = (ev) => {
        clearTimeout(timer);
        const why = new Error(`lost the server${ev.reason ? ` (${ev.reason})` : ''}`);
        reject(why);
        c.gone(why);
      };
      ws.onmessage = (ev) => {
        let m;
        try { m = JSON.parse(ev.data); } catch { return; }
        if (m.type === 'welcome' && !c.clientId) {
          clearTimeout(timer);
          c.clientId = m.client_id;
          c.iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
          c.request('hello', { device }).then(() => resolve(c), reject);
          return;
        }
        c.handle(m);
      };
    });
  }

  gone(err) {
    if (this.closed) return;
    this.closed = err;
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
    this.onClose(err);
  }

  close() {
    try { this.ws.close(1000); } catch { /* closed */ }
    this.gone(new Error('closed'));
  }

  send(obj) {
    if (this.closed) throw this.closed;
    this.ws.send(JSON.stringify(obj));
  }

  request(type, fields = {}) {
    return new Promise((resolve, reject) => {
      if (this.closed) { reject(this.closed); return; }
      const req = ++this.req;
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new Error(`the server did not answer ${type} within 10 s`));
      }, REQUEST_TIMEOUT);
      this.pending.set(req, { resolve, reject, timer });
      this.send({ type, req, ...fields });
    });
  }

  handle(m) {
    if (m.req && this.pending.has(m.req)) {
      const p = this.pending.get(m.req);
      this.pending.delete(m.req);
      clearTimeout(p.timer);
      if (m.type === 'error') p.reject(new RendezvousError(m.code, m.message));
      else p.resolve(m);
      return;
    }
    switch (m.type) {
      case 'peer-joined': if (m.peer) this.onPeerJoined(m.peer, m.code || ''); break;
      case 'peer-left': if (m.peer) this.onPeerLeft(m.peer.client_id, m.code || ''); break;
      case 'signal': this.onSignal(m.from, m.payload); break;
      case 'error': this.onError(new RendezvousError(m.code, m.message, typeof m.to === 'string' ? m.to : '')); break;
      default:
    }
  }

  create() { return this.request('create'); }
  join(code) { return this.request('join', { code }); }
  leave(code) { return this.request('leave', { code }); }
  closeCode(code) { return this.request('close', code ? { code } : {}); }
  signal(to, payload) { this.send({ type: 'signal', to, payload }); }
}

// Mux routes a client's signals to pipes and keeps the members of its
// rooms. accepting: this side created the code and accepts new pipes
// (onPipe gets each). It takes over the client's handlers: one Mux per
// Client. onGone, when set, hears that the server connection ended.
export class Mux {
  constructor(client, accepting, onPipe) {
    this.c = client;
    this.onGone = null;
    this.accepting = accepting;
    this.onPipe = onPipe;
    this.pipes = new Map(); // `${peer}/${id}` -> Pipe
    this.members = new Map(); // client id -> {peer, codes: Map(code -> order)}
    this.arrived = 0;
    this.waiters = [];
    client.onPeerJoined = (peer, code) => {
      let mb = this.members.get(peer.client_id);
      if (!mb) { mb = { peer, codes: new Map() }; this.members.set(peer.client_id, mb); }
      mb.peer = peer;
      const room = canonicalRoom(code);
      if (!mb.codes.has(room)) mb.codes.set(room, ++this.arrived);
      this.changed();
    };
    client.onPeerLeft = (id, code) => {
      const mb = this.members.get(id);
      if (!mb) return;
      mb.codes.delete(canonicalRoom(code));
      if (mb.codes.size === 0) {
        this.members.delete(id);
        for (const p of this.pipes.values()) if (p.peer === id) p.end(new Error('the other device left the server'));
      }
      this.changed();
    };
    client.onSignal = (from, payload) => this.route(from, payload);
    client.onError = (err) => {
      // A refused signal broke the pipes to its recipient; one that
      // names none may belong to any pipe: end them all (§13.2).
      if (err.code === 'unknown-peer') return;
      for (const p of this.pipes.values()) {
        if (!err.to || p.peer === err.to) p.end(new Error(`a message between the devices was lost on the server: ${err.message}`));
      }
    };
    client.onClose = (err) => {
      for (const p of this.pipes.values()) p.end(err);
      this.changed();
      if (this.onGone) this.onGone(err);
    };
  }

  changed() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // first waits for the first member of room (its creator).
  async first(room, timeout = REQUEST_TIMEOUT) {
    room = canonicalRoom(room);
    const deadline = Date.now() + timeout;
    for (;;) {
      let best = null, order = Infinity;
      for (const mb of this.members.values()) {
        const o = mb.codes.get(room);
        if (o !== undefined && o < order) { best = mb.peer; order = o; }
      }
      if (best) return best;
      if (this.c.closed) throw this.c.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('the device that showed the code is no longer there');
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, left); });
    }
  }

  open(peerId) {
    if (!this.members.has(peerId)) throw new Error('the other device left the server');
    const b = new Uint8Array(8);
    crypto.getRandomValues(b);
    const id = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    const p = new Pipe(this, peerId, id);
    this.pipes.set(`${peerId}/${id}`, p);
    // A message without data opens the pipe at once (PROTOCOL.md §13.2):
    // a reconnect's handshake starts with the other side's hello.
    p.send(new Uint8Array(0));
    return p;
  }

  route(from, payload) {
    if (!payload || typeof payload !== 'object' || !PIPE_RE.test(payload.pipe) ||
      !Number.isSafeInteger(payload.seq) || payload.seq < 0) return; // not a pipe message
    let data = null;
    if (payload.data !== undefined && payload.data !== null) {
      data = unb64(payload.data);
      if (!data || data.length > MAX_CHUNK) return;
    }
    const key = `${from}/${payload.pipe}`;
    let p = this.pipes.get(key);
    if (!p) {
      if (payload.seq !== 0 || payload.close || !this.members.has(from)) return;
      if (!this.accepting || this.pipes.size >= MAX_PIPES ||
        [...this.pipes.values()].some((q) => q.peer === from)) {
        try { this.c.signal(from, { pipe: payload.pipe, seq: 0, close: true }); } catch { /* gone */ }
        return;
      }
      p = new Pipe(this, from, payload.pipe);
      this.pipes.set(key, p);
      this.onPipe(p);
    }
    p.deliver(payload.seq, data, payload.close === true);
  }
}

// Pipe is one pipe of §13.2. Until frames() is called its chunks are read
// whole (recv: the PAKE's messages); afterwards its bytes are a stream cut
// into handshake frames.
export class Pipe {
  constructor(mux, peer, id) {
    this.mux = mux;
    this.peer = peer;
    this.id = id;
    this.seqOut = 0;
    this.seqIn = 0;
    this.chunks = [];
    this.held = 0;
    this.eof = false;
    this.err = null;
    this.closed = false;
    this.waiter = null;
    this.queue = null; // FrameQueue once frames() was called
    this.buf = new Uint8Array(0);
    this.aborted = false; // a pairing message came where a frame should start
  }

  wake() {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }

  deliver(seq, data, close) {
    if (this.err || this.eof) return;
    if (seq !== this.seqIn) {
      this.end(new Error(`a message between the devices was lost on the server (expected ${this.seqIn}, got ${seq})`));
      return;
    }
    this.seqIn++;
    if (data && data.length) {
      // held counts every byte until the reader takes it: chunks, the
      // partial frame and the frames queued.
      if (this.held + data.length > (this.queue ? MAX_BUFFERED_FRAMES : MAX_BUFFERED)) {
        this.end(new Error('the other device sent more than the handshake needs'));
        return;
      }
      this.held += data.length;
      this.chunks.push(data);
    }
    if (close) this.eof = true;
    this.pump();
    this.wake();
  }

  end(err) {
    if (!this.err) this.err = err;
    this.mux.pipes.delete(`${this.peer}/${this.id}`);
    this.pump();
    this.wake();
  }

  // send writes bytes, split into chunks of at most 32 KiB.
  send(bytes) {
    if (this.closed) throw new Error('the pipe is closed');
    if (this.err) throw this.err;
    for (let i = 0; i < bytes.length || i === 0; i += MAX_CHUNK) {
      this.mux.c.signal(this.peer, { pipe: this.id, seq: this.seqOut++, data: b64(bytes.subarray(i, i + MAX_CHUNK)) });
      if (bytes.length === 0) break;
    }
  }

  // close sends the close marker and forgets the pipe.
  close() {
    if (this.closed) return;
    this.closed = true;
    if (!this.err) {
      try { this.mux.c.signal(this.peer, { pipe: this.id, seq: this.seqOut++, close: true }); } catch { /* gone */ }
    }
    this.mux.pipes.delete(`${this.peer}/${this.id}`);
    if (this.queue) this.queue.close(new Error('the pipe is closed'));
  }

  // recv returns the next chunk whole (one pairing message).
  async recv(timeout) {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.chunks.length) {
        const c = this.chunks.shift();
        this.held -= c.length;
        return c;
      }
      if (this.err) throw this.err;
      if (this.eof) throw new Error('the other device closed the connection (it refused the pairing)');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the other device sent nothing for ${Math.round(timeout / 1000)} s`);
      await new Promise((r) => { this.waiter = r; setTimeout(r, left); });
    }
  }

  // frames returns a FrameQueue of the handshake frames that follow on
  // this pipe, and a function that writes one frame.
  frames() {
    this.queue = new FrameQueue();
    this.queue.onTake = (f) => { this.held -= f.byteLength; };
    this.pump();
    return { queue: this.queue, send: (b) => this.send(b) };
  }

  // pump cuts the stream into frames for the queue. A pairing message
  // where a frame should start (a '{', not the version byte 0x02) is the
  // initiator's abort after rejecting M4 (§13.3).
  pump() {
    if (!this.queue) return;
    while (this.chunks.length) {
      const c = this.chunks.shift();
      const b = new Uint8Array(this.buf.length + c.length);
      b.set(this.buf);
      b.set(c, this.buf.length);
      this.buf = b;
    }
    while (this.buf.length > 0) {
      if (this.buf[0] === 0x7b) {
        this.aborted = true;
        this.queue.close(new HandshakeError('refused', 'the other device rejected the pairing (the code did not match)'));
        this.buf = new Uint8Array(0);
        return;
      }
      if (this.buf.length < 6) break;
      const n = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(2);
      const size = n > 65536 ? 6 : 6 + n; // an oversized frame: decodeFrame says bad-frame
      if (this.buf.length < size) break;
      this.queue.push(this.buf.slice(0, size).buffer);
      this.buf = this.buf.slice(size);
    }
    if (this.err) this.queue.close(this.err);
    else if (this.eof) this.queue.close(new Error('the other device closed the connection'));
  }
}
