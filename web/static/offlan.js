// Off the LAN (docs/PROTOCOL.md §13): the page pairs with a code through
// the `peerdrop serve` that served it, then runs the handshake of §2 over
// the same pipe and WebRTC with the server's STUN/TURN. Both roles of §13.1:
// RemoteDialer joins with a code another device shows (PAKE initiator,
// handshake dialer: it sends), RemoteHost shows a code (PAKE responder,
// handshake listener: it receives).

import { Client, Mux, canonicalRoom } from './rendezvous.js';
import { authenticate, normalizeCode, PairingError, MISMATCH } from './pake.js';
import { Session, dialSession, answer, deviceType } from './handshake.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford's base32
export const CODE_FORMAT = 'a pairing code is 15 letters and digits, like 7KQ2M-XW4PD-R8T3Z';

// splitCode reads a typed code: the server's part (ten characters) and the
// whole code for the PAKE, both canonical (PROTOCOL-pairing.md P.2).
export function splitCode(typed) {
  let full;
  try {
    full = normalizeCode(typed);
  } catch {
    throw new Error(CODE_FORMAT);
  }
  if (full.length !== 15 || [...full].some((c) => !ALPHABET.includes(c))) throw new Error(CODE_FORMAT);
  return { room: full.slice(0, 10), full };
}

// connectServer connects this page's identity to the rendezvous server
// that served the page (wsPath relative to the page).
export function connectServer(id, wsPath = 'ws') {
  const u = new URL(wsPath, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return Client.connect(u.toString(), {
    device_id: id.deviceId, name: id.name, type: deviceType(), fingerprint: id.fingerprint,
  });
}

const own = (id) => ({ device_id: id.deviceId, fingerprint: id.fingerprint });

// authenticated refuses a hello that is not the device the PAKE
// authenticated (§13.3): the SDP check of §3 then ties the certificate to
// that hello, so a server that swaps a fingerprint anywhere is caught.
const authenticated = (auth) => (hello) => (hello.device_id === auth.device_id && hello.fingerprint === auth.fingerprint
  ? null : 'that is not the device the pairing code authenticated (did the server swap it?)');

const transport = (p) => ({ send: (b) => p.send(b), recv: (t) => p.recv(t) });

// RemoteDialer connects to the device that showed a code. The first dial
// joins the code's room, runs the PAKE and the handshake; later dials open
// a new pipe to the same device and run only the handshake, which must
// name the same certificate.
export class RemoteDialer {
  constructor(client, id, typedCode) {
    const { room, full } = splitCode(typedCode);
    this.c = client;
    this.id = id;
    this.room = room;
    this.full = full;
    this.mux = new Mux(client, false, null);
    this.joined = false;
    this.auth = null;
    this.host = '';
    this.failed = null;
  }

  // dial returns an open connection {pc, dc, remote}.
  async dial() {
    if (this.failed) throw this.failed;
    if (this.auth) return this.handshake(this.mux.open(this.host), this.auth);
    if (!this.joined) {
      await this.c.join(this.room);
      this.joined = true;
    }
    const host = await this.mux.first(this.room);
    const p = this.mux.open(host.client_id);
    try {
      this.auth = await authenticate(transport(p), this.full, 'initiator', own(this.id));
    } catch (e) {
      // The code's creator gives a device one run, and retires the code.
      this.failed = e;
      p.close();
      throw e;
    }
    this.host = host.client_id;
    return this.handshake(p, this.auth);
  }

  async handshake(p, auth) {
    const { queue, send } = p.frames();
    try {
      return await dialSession(this.id, new Session(send, queue), {
        check: authenticated(auth), iceServers: this.c.iceServers,
      });
    } finally {
      p.close(); // a non-trickle session: the pipe's job ends with the handshake
    }
  }

  // close leaves the server; connections already open keep going.
  close() {
    this.c.close();
  }
}

// refreshDelay is how long after the server's create reply (at now, ms)
// the page retires the code shown: until the reply's expires, read with
// this device's clock, but never less than a minute nor more than ten
// (a missing or bad date counts as ten), so a wrong clock cannot make the
// page spin through codes.
export function refreshDelay(expires, now = Date.now()) {
  const t = typeof expires === 'string' ? Date.parse(expires) : NaN;
  const d = Number.isFinite(t) ? t - now : 10 * 60000;
  return Math.min(10 * 60000, Math.max(60000, d));
}

function newSecret() {
  const b = new Uint8Array(5);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => ALPHABET[x & 31]).join('');
}

// RemoteHost shows a code and accepts the devices that join with it:
// onCode({code, expires}) for each code to show (a new one after every
// failed pairing, P.8), onConn(conn) for each open connection, onError(e)
// for pairings and handshakes that failed.
export class RemoteHost {
  constructor(client, id, { onCode, onConn, onError, onGone }) {
    this.c = client;
    this.id = id;
    this.onCode = onCode;
    this.onConn = onConn;
    this.onError = onError;
    this.mux = new Mux(client, true, (p) => this.accept(p));
    this.mux.onGone = (err) => {
      clearTimeout(this.expiry);
      if (onGone) onGone(err);
    };
    this.expiry = 0;
    this.paired = new Map(); // client id -> the identity its PAKE authenticated
    this.tried = new Set(); // client ids that had their one PAKE run
    this.turn = Promise.resolve(); // one PAKE at a time
    this.retiring = null; // the retirement under way, once
    this.room = '';
    this.full = '';
  }

  async newCode() {
    const r = await this.c.create();
    this.room = canonicalRoom(r.code);
    const code = `${r.code}-${newSecret()}`;
    this.full = normalizeCode(code);
    this.onCode({ code, expires: r.expires });
    // The server admits no joins with it after that: show a fresh one.
    const room = this.room;
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.retire(room).catch((e) => this.onError(e)), refreshDelay(r.expires));
  }

  close() {
    clearTimeout(this.expiry);
    this.c.close();
  }

  // retire kills the code a failed run used and shows a new one. Two at
  // once (the expiry timer, a failed run) share one retirement.
  retire(room) {
    if (room !== this.room) return Promise.resolve(); // retired already
    if (!this.retiring) this.retiring = this.retireNow(room).finally(() => { this.retiring = null; });
    return this.retiring;
  }

  async retireNow(room) {
    try { await this.c.closeCode(room); } catch { /* dead already */ }
    if (![...this.paired.keys()].some((cid) => this.mux.members.get(cid)?.codes.has(room))) {
      try { await this.c.leave(room); } catch { /* gone */ }
    }
    await this.newCode();
  }

  accept(p) {
    const known = this.paired.get(p.peer);
    if (known) { // a paired device connecting again: no PAKE
      this.handshake(p, known);
      return;
    }
    this.turn = this.turn.then(() => this.pair(p)).catch((e) => this.onError(e));
  }

  async pair(p) {
    const room = this.room;
    const full = this.full;
    const mb = this.mux.members.get(p.peer);
    if (this.tried.has(p.peer) || !mb || !mb.codes.has(room)) {
      p.close(); // one run per client, and only with the code shown now
      return;
    }
    this.tried.add(p.peer);
    let auth;
    try {
      auth = await authenticate(transport(p), full, 'responder', own(this.id));
    } catch (e) {
      p.close();
      this.onError(e);
      await this.retire(room); // any failed run may have been a guess
      return;
    }
    this.paired.set(p.peer, auth);
    this.handshake(p, auth, room); // the next pairing need not wait for this WebRTC
  }

  // handshake answers on p; room is the code of the PAKE run just before
  // on the same pipe (none for a reconnect).
  async handshake(p, auth, room = '') {
    const { queue, send } = p.frames();
    try {
      const conn = await answer(this.id, new Session(send, queue), authenticated(auth), this.c.iceServers);
      this.onConn(conn);
    } catch (e) {
      if (room && p.aborted) {
        // The joiner rejected M4: a failed run like any other (P.8).
        this.paired.delete(p.peer);
        p.close();
        this.onError(new PairingError(MISMATCH, 'the other device could not verify us'));
        await this.retire(room).catch((err) => this.onError(err));
        return;
      }
      this.onError(e);
    } finally {
      p.close();
    }
  }
}
