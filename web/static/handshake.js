// The LAN handshake of docs/PROTOCOL.md §2 (hello, offer, answer, error
// frames), carried over a WebSocket to the process that served this page:
// one binary WebSocket message is one frame. Also the page's identity (a
// DTLS certificate kept in IndexedDB) and the WebRTC setup of §3.

import { sha256 } from './sha256.js';

export const VERSION = 2;
export const HELLO = 1, OFFER = 2, ANSWER = 3, ERROR = 4;
const TYPE_NAMES = { 1: 'hello', 2: 'offer', 3: 'answer', 4: 'error' };
const MAX_PAYLOAD = 65536;
export const READ_TIMEOUT = 10000;
export const OPEN_TIMEOUT = 15000;
export const LABEL = 'peerdrop/2';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export class HandshakeError extends Error {
  constructor(code, message, remote = false) {
    super(remote ? `the other device refused (${code}): ${message}` : message);
    this.code = code;
    this.remote = remote;
  }
}

export function encodeFrame(type, obj) {
  const payload = enc.encode(JSON.stringify(obj));
  if (payload.length > MAX_PAYLOAD) throw new Error(`${TYPE_NAMES[type]} frame too large`);
  const out = new Uint8Array(6 + payload.length);
  out[0] = VERSION;
  out[1] = type;
  new DataView(out.buffer).setUint32(2, payload.length);
  out.set(payload, 6);
  return out;
}

// decodeFrame parses one whole frame (one WebSocket message).
export function decodeFrame(buf) {
  const b = new Uint8Array(buf);
  if (b.length < 6) throw new HandshakeError('bad-frame', 'short frame');
  if (b[0] !== VERSION) throw new HandshakeError('unsupported-version', `frame version ${b[0]}`);
  if (b[1] < 1 || b[1] > 4) throw new HandshakeError('bad-frame', `unknown frame type ${b[1]}`);
  const n = new DataView(b.buffer, b.byteOffset).getUint32(2);
  if (n > MAX_PAYLOAD || b.length !== 6 + n) throw new HandshakeError('bad-frame', 'bad frame length');
  let obj;
  try {
    obj = JSON.parse(dec.decode(b.subarray(6)));
  } catch {
    obj = null;
  }
  return { type: b[1], payload: obj };
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const FP_RE = /^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

export function validName(name) {
  if (typeof name !== 'string' || name.length === 0) return false;
  const n = enc.encode(name).length;
  return n >= 1 && n <= 64 && /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$/u.test(name);
}

// deviceIdFor derives a device id from a fingerprint (PROTOCOL.md §2.1):
// the first 16 bytes of the SHA-256 fingerprint, 32 lower-case hex digits;
// '' when fp is not a SHA-256 fingerprint. Go: identity.DeviceIDFor.
export function deviceIdFor(fp) {
  if (typeof fp !== 'string' || !/^sha-256 ([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(fp)) return '';
  return fp.slice(8).replaceAll(':', '').slice(0, 32).toLowerCase();
}

const HEX64_RE = /^[0-9a-f]{64}$/;

export function validateHello(h) {
  if (!h || typeof h !== 'object') throw new HandshakeError('bad-hello', 'hello is not an object');
  if (h.commit !== undefined && !HEX64_RE.test(h.commit)) throw new HandshakeError('bad-hello', 'bad commit');
  if (h.nonce !== undefined && !HEX64_RE.test(h.nonce)) throw new HandshakeError('bad-hello', 'bad nonce');
  if (h.version !== VERSION) throw new HandshakeError('unsupported-version', `hello version ${h.version}`);
  if (!ID_RE.test(h.device_id || '')) throw new HandshakeError('bad-hello', 'bad device id');
  if (!validName(h.name)) throw new HandshakeError('bad-hello', 'bad name');
  if (!FP_RE.test(h.fingerprint || '')) throw new HandshakeError('bad-hello', 'bad fingerprint');
  if (h.device_id !== deviceIdFor(h.fingerprint)) throw new HandshakeError('bad-hello', 'device id does not match its certificate');
  return h;
}

// sdpFingerprints lists every a=fingerprint value, session and media level.
export function sdpFingerprints(sdp) {
  const out = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('a=fingerprint:')) out.push(line.slice('a=fingerprint:'.length).trim());
  }
  return out;
}

// candidateTypes lists the types (host, srflx, prflx, relay) of the
// candidates in an SDP, each once.
export function candidateTypes(sdp) {
  const out = new Set();
  for (const m of sdp.matchAll(/^a=candidate:.* typ (\w+)/gm)) out.add(m[1]);
  return [...out];
}

export function fingerprintMatches(sdp, want) {
  const fps = sdpFingerprints(sdp);
  return fps.length > 0 && fps.every((fp) => fp.toLowerCase() === want.toLowerCase());
}

// FrameQueue hands out frames pushed into it, with a read deadline.
export class FrameQueue {
  constructor() {
    this.frames = [];
    this.waiter = null;
    this.closed = null; // an Error once the transport ended
    this.onTake = null; // hears each frame read (the pipe counts what it holds)
  }
  push(frame) {
    this.frames.push(frame);
    this.wake();
  }
  close(err) {
    if (!this.closed) this.closed = err || new Error('the connection closed');
    this.wake();
  }
  wake() {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }
  async read(timeout = READ_TIMEOUT) {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.frames.length) {
        const f = this.frames.shift();
        if (this.onTake) this.onTake(f);
        return f;
      }
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new HandshakeError('timeout', `the other device sent nothing for ${timeout / 1000} s`);
      await new Promise((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, left);
      });
    }
  }
}

// Session is one handshake over send (a function taking frame bytes) and
// a FrameQueue.
export class Session {
  constructor(send, queue) {
    this.sendBytes = send;
    this.queue = queue;
  }
  send(type, obj) { this.sendBytes(encodeFrame(type, obj)); }
  fail(code, message) {
    try { this.send(ERROR, { code, message }); } catch { /* closing anyway */ }
    return new HandshakeError(code, message);
  }
  async expect(want) {
    let f;
    try {
      f = decodeFrame(await this.queue.read());
    } catch (e) {
      if (e instanceof HandshakeError && e.code !== 'timeout') throw this.fail(e.code, e.message);
      throw e;
    }
    if (f.type === ERROR) {
      const p = f.payload || {};
      throw new HandshakeError(String(p.code || ''), String(p.message || '').slice(0, 1024), true);
    }
    if (f.type !== want) throw this.fail('unexpected-frame', `got ${TYPE_NAMES[f.type]}, want ${TYPE_NAMES[want]}`);
    return f.payload;
  }
  async readHello() {
    const p = await this.expect(HELLO);
    try {
      return validateHello(p);
    } catch (e) {
      throw this.fail(e.code, e.message);
    }
  }
  async readSDP(type) {
    const p = await this.expect(type);
    if (!p || typeof p.sdp !== 'string' || p.sdp === '') throw this.fail('bad-sdp', 'empty sdp');
    return p.sdp;
  }
}

// --- identity ---

function idb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('peerdrop', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('kv');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function idbGet(key) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const req = db.transaction('kv').objectStore('kv').get(key);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function idbPut(key, value) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('kv', 'readwrite');
    tx.objectStore('kv').put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

export function randomHex(bytes) {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function defaultName() {
  const ua = navigator.userAgent;
  let kind = 'Browser';
  if (/iPhone/.test(ua)) kind = 'iPhone';
  else if (/iPad/.test(ua)) kind = 'iPad';
  else if (/Android/.test(ua)) kind = /Mobile/.test(ua) ? 'Android phone' : 'Android tablet';
  return `${kind} (web)`;
}

export function deviceType() {
  const ua = navigator.userAgent;
  if (/iPad|Tablet/.test(ua) || (/Android/.test(ua) && !/Mobile/.test(ua))) return 'tablet';
  if (/Mobi|iPhone|Android/.test(ua)) return 'phone';
  return 'desktop';
}

// loadIdentity returns this browser's device: an ECDSA P-256 certificate
// (made once, kept in IndexedDB; a private browsing window makes a new one
// each time), its fingerprint, the device id derived from it (deviceIdFor)
// and the display name.
export async function loadIdentity() {
  let self = null;
  try {
    self = await idbGet('self');
  } catch { /* no IndexedDB: a fresh identity for this visit */ }
  if (!self || !(self.cert instanceof RTCCertificate) || self.cert.expires < Date.now() + 86400000) {
    const cert = await RTCPeerConnection.generateCertificate({
      name: 'ECDSA', namedCurve: 'P-256', expires: 365 * 86400000,
    });
    self = { cert, name: defaultName() };
    try { await idbPut('self', self); } catch { /* kept for this visit only */ }
  }
  const fingerprint = await certFingerprint(self.cert);
  return {
    cert: self.cert,
    deviceId: deviceIdFor(fingerprint),
    name: self.name,
    fingerprint,
    async rename(name) {
      if (!validName(name)) throw new Error('a name is 1 to 64 bytes of printable text');
      self.name = name;
      this.name = name;
      await idbPut('self', self);
    },
  };
}

// certFingerprint is "sha-256 AA:BB:...", from getFingerprints() or, where a
// browser lacks it, from the a=fingerprint of an offer made with the cert.
async function certFingerprint(cert) {
  const fp = typeof cert.getFingerprints === 'function' &&
    cert.getFingerprints().find((f) => f.algorithm === 'sha-256');
  if (fp) return `sha-256 ${fp.value.toUpperCase()}`;
  const pc = new RTCPeerConnection({ certificates: [cert] });
  try {
    pc.createDataChannel('probe');
    const offer = await pc.createOffer();
    const line = sdpFingerprints(offer.sdp).find((f) => f.toLowerCase().startsWith('sha-256 '));
    if (!line) throw new Error('the browser gives no SHA-256 certificate fingerprint');
    return `sha-256 ${line.slice(8).trim().toUpperCase()}`;
  } finally {
    pc.close();
  }
}

export function helloOf(id) {
  // web: a page never resumes (its identity lasts one visit): receivers
  // drop what it leaves unfinished (PROTOCOL.md 6.3).
  return { device_id: id.deviceId, name: id.name, version: VERSION, fingerprint: id.fingerprint, web: true };
}

function hexBytes(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function hexOf(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// commitTo is the commitment a listener's hello carries for its nonce
// (hex): hex(SHA-256(nonce)).
export function commitTo(nonceHex) {
  return hexOf(sha256(hexBytes(nonceHex)));
}

// verificationCode is the six digits both screens show for one connection
// (PROTOCOL.md §11): from the dialer's and the listener's fingerprints and
// the two nonces (hex) of its handshake. Go: trust.Code.
export function verificationCode(dialerFP, listenerFP, dialerNonce, listenerNonce) {
  const s = `peerdrop-code/2\n${dialerFP}\n${listenerFP}\n${dialerNonce}\n${listenerNonce}\n`;
  const d = sha256(enc.encode(s));
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(d[i]);
  const n = String(v % 1000000n).padStart(6, '0');
  return `${n.slice(0, 3)} ${n.slice(3)}`;
}

// --- WebRTC (PROTOCOL.md §3) ---

// newPeerConnection: on the LAN host candidates only (no STUN or TURN);
// off the LAN the rendezvous server's STUN/TURN entries (§13.4).
function newPeerConnection(id, iceServers = []) {
  return new RTCPeerConnection({ certificates: [id.cert], iceServers });
}

// gathered waits for ICE gathering to finish: ICE is non-trickle, the SDP
// sent holds every candidate.
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => {
      if (pc.iceGatheringState === 'complete') {
        pc.removeEventListener('icegatheringstatechange', done);
        resolve();
      }
    };
    pc.addEventListener('icegatheringstatechange', done);
    // A stuck interface must not hold the handshake past its deadline.
    setTimeout(resolve, 5000);
  });
}

// keepEarly buffers the channel's messages from the moment it exists: a
// message event with no handler is lost, and the first message can come
// right after the channel opens (Channel takes the buffer over).
function keepEarly(dc) {
  dc.binaryType = 'arraybuffer';
  dc.early = [];
  dc.onmessage = (ev) => dc.early.push(ev.data);
  return dc;
}

// NO_PATH says which step failed when the handshake worked but no data
// path opened: UDP (the same words as the app's and the command line's).
const NO_PATH = 'the device answered, but no connection could be set up: UDP is blocked between this device and it '
  + '(its firewall must let in its UDP port, 53318 by default)';

function channelOpen(pc, dc) {
  return new Promise((resolve, reject) => {
    if (dc.readyState === 'open') return resolve();
    const t = setTimeout(() => reject(new Error(NO_PATH)), OPEN_TIMEOUT);
    dc.addEventListener('open', () => { clearTimeout(t); resolve(); });
    dc.addEventListener('close', () => { clearTimeout(t); reject(new Error('the data channel closed before it opened')); });
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed') { clearTimeout(t); reject(new Error(NO_PATH)); }
    });
  });
}

function wsURL(path) {
  const u = new URL(path, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

function openSocket(path, why = 'cannot reach the device that served this page') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsURL(path));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(why));
  });
}

// dial sends to the device that served the page, or with to = {device_id,
// fingerprint} to a device it discovered nearby (/ws/dial: the bridge dials
// it by id and pipes the frames): the page is the dialer and SDP offerer,
// the WebSocket its handshake connection. It returns the open connection
// {pc, dc, remote}.
export async function dial(id, to = null) {
  const ws = to
    ? await openSocket(`ws/dial?id=${encodeURIComponent(to.device_id)}`, 'the device that served this page no longer sees that device, or cannot reach it')
    : await openSocket('ws/connect');
  const q = new FrameQueue();
  ws.onmessage = (ev) => { if (ev.data instanceof ArrayBuffer) q.push(ev.data); };
  // The bridge says why it closed (which step failed) in the reason.
  ws.onclose = (ev) => q.close(ev.reason ? new Error(ev.reason) : null);
  // The bridge checks the device id; the page also holds it to the
  // fingerprint the device advertised, which its card's code is made of.
  const check = to ? (remote) => {
    if (remote.device_id !== to.device_id) return 'that is not the device chosen';
    if (to.fingerprint && remote.fingerprint !== to.fingerprint) return 'that device is not using the certificate it announced';
    return '';
  } : null;
  try {
    return await dialSession(id, new Session((b) => ws.send(b), q), { check });
  } finally {
    ws.close();
  }
}

// dialSession runs the dialing side of a handshake over session s: the
// listener speaks first (PROTOCOL.md §2.2), so nothing goes out before its
// hello passed. check, when set, may refuse the peer's hello (a reason
// string); iceServers are for the RTCPeerConnection.
export async function dialSession(id, s, { check = null, iceServers = [] } = {}) {
  let pc = null;
  try {
    const remote = await s.readHello();
    if (!remote.commit) throw s.fail('bad-hello', "the listener's hello has no commit");
    if (remote.device_id === id.deviceId && remote.fingerprint === id.fingerprint) {
      throw s.fail('refused', 'that is this device itself');
    }
    if (check) {
      const why = check(remote);
      if (why) throw s.fail('refused', why);
    }
    // Our nonce goes out only now that the listener is bound to its own.
    const nonce = randomHex(32);
    s.send(HELLO, { ...helloOf(id), nonce });
    pc = newPeerConnection(id, iceServers);
    const dc = keepEarly(pc.createDataChannel(LABEL, { ordered: true }));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    s.send(OFFER, { sdp: pc.localDescription.sdp });
    const a = await s.expect(ANSWER);
    if (!a || typeof a.sdp !== 'string' || a.sdp === '') throw s.fail('bad-sdp', 'empty sdp');
    if (typeof a.nonce !== 'string' || !HEX64_RE.test(a.nonce) || commitTo(a.nonce) !== remote.commit) {
      // Close without an error frame: a refusal (PROTOCOL.md §2.2).
      throw new HandshakeError('refused', "the other device's nonce does not match its commitment (someone in the middle?)");
    }
    const answer = a.sdp;
    if (!fingerprintMatches(answer, remote.fingerprint)) {
      throw new HandshakeError('internal', "the other device's certificate does not match its introduction");
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await channelOpen(pc, dc);
    const code = verificationCode(id.fingerprint, remote.fingerprint, nonce, a.nonce);
    return { pc, dc, remote, code, candidates: candidateTypes(pc.localDescription.sdp) };
  } catch (e) {
    if (pc) pc.close();
    throw e;
  }
}

// answer runs the receiving side of one handshake (the page is the
// listener and SDP answerer) over session s: its hello goes first; check
// may refuse the sender; iceServers are for the RTCPeerConnection.
export async function answer(id, s, check, iceServers = []) {
  // Our hello commits to our nonce; the answer reveals it, once the
  // dialer's nonce is known to us (PROTOCOL.md §2.2).
  const nonce = randomHex(32);
  s.send(HELLO, { ...helloOf(id), commit: commitTo(nonce) });
  const remote = await s.readHello();
  if (!remote.nonce) throw s.fail('bad-hello', "the dialer's hello has no nonce");
  if (remote.device_id === id.deviceId && remote.fingerprint === id.fingerprint) {
    throw s.fail('refused', 'refusing a connection from this device itself');
  }
  if (check) {
    const why = check(remote);
    if (why) throw s.fail('refused', why);
  }
  const offer = await s.readSDP(OFFER);
  if (!fingerprintMatches(offer, remote.fingerprint)) {
    throw s.fail('internal', "the peer's certificate does not match its introduction");
  }
  const pc = newPeerConnection(id, iceServers);
  try {
    const dcReady = new Promise((resolve) => {
      pc.ondatachannel = (ev) => { if (ev.channel.label === LABEL) resolve(keepEarly(ev.channel)); };
    });
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
    } catch (e) {
      throw s.fail('internal', `cannot answer the offer: ${e.message}`);
    }
    s.send(ANSWER, { sdp: pc.localDescription.sdp, nonce });
    const dc = await Promise.race([
      dcReady,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no data channel within 15 s')), OPEN_TIMEOUT)),
    ]);
    await channelOpen(pc, dc);
    const code = verificationCode(remote.fingerprint, id.fingerprint, remote.nonce, nonce);
    return { pc, dc, remote, code, candidates: candidateTypes(pc.localDescription.sdp) };
  } catch (e) {
    pc.close();
    throw e;
  }
}

// Registration is this page, registered to receive with the device that
// served it: that process listens on TCP for the page (port) and pipes
// each handshake here. onConn gets every connection that opens.
export async function register(id, { onListening, onConn, onError, onClosed }) {
  const ws = await openSocket(`ws/listen?type=${deviceType()}`);
  let cur = null; // {n, queue, closed}
  // The page is done with handshake h: nothing more of it goes out, and the
  // bridge hears so at once, so no late frame of it can reach the next sender.
  const closeHandshake = (h) => {
    if (h.closed) return;
    h.closed = true;
    if (cur === h) cur = null;
    try { ws.send(JSON.stringify({ type: 'close', n: h.n })); } catch { /* gone */ }
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      let c;
      try { c = JSON.parse(ev.data); } catch { return; }
      if (c.type === 'listening') onListening(c.port);
      else if (c.type === 'open') {
        const h = { n: c.n, queue: new FrameQueue(), frames: 0 };
        cur = h;
        const s = new Session((b) => { if (cur === h) ws.send(b); }, h.queue);
        answer(id, s)
          .then((conn) => onConn(conn))
          .catch((e) => { if (!e.silent) onError(e); })
          .finally(() => closeHandshake(h));
      } else if (c.type === 'close' && cur && cur.n === c.n) {
        // The TCP side ended (normally once the data channel is open): the
        // answer in progress reads nothing more, and sends nothing more.
        const h = cur;
        const e = new Error('the sender closed the connection');
        // Closed before a single frame: a probe, which the bridge answered
        // for us (PROTOCOL.md §2.5), or a port scan. Nothing failed that
        // the user wanted, so nothing is shown (the CLI counts it silent).
        e.silent = h.frames === 0;
        h.queue.close(e);
        closeHandshake(h);
      }
      return;
    }
    if (cur) {
      cur.frames++;
      cur.queue.push(ev.data);
    }
  };
  ws.onclose = (ev) => {
    if (cur) cur.queue.close();
    onClosed(ev);
  };
  ws.send(encodeFrame(HELLO, helloOf(id)));
  return ws;
}
