// The pairing PAKE of docs/PROTOCOL-pairing.md: SPAKE2 on P-256 over the
// pairing code, whose keys authenticate both devices' certificate
// fingerprints, so that the rendezvous server in the middle cannot swap
// them. SHA-256, HMAC and HKDF are computed with sha256.js rather than
// WebCrypto: crypto.subtle is missing on plain-http pages that are not
// localhost, and a page served by `peerdrop serve` without TLS must pair too.

import { sha256, toHex } from './sha256.js';
import * as ec from './p256.js';
import { deviceIdFor } from './handshake.js';

const enc = new TextEncoder();
const VERSION = 1;
const MAX_MESSAGE = 1024;
export const TIMEOUT = 30000; // the whole run (P.4)

const LABEL = 'peerdrop-pairing-v1';
const L_TRANSCRIPT = 'peerdrop-pairing-v1 transcript';
const L_KEY_I = 'peerdrop-pairing-v1 initiator key';
const L_KEY_R = 'peerdrop-pairing-v1 responder key';
const L_CONFIRM_R = 'peerdrop-pairing-v1 responder confirm';
const L_CONFIRM_I = 'peerdrop-pairing-v1 initiator confirm';
const L_OK = 'peerdrop-pairing-v1 responder ok';

export const MISMATCH = 'mismatch', MALFORMED = 'malformed';

// PairingError: kind is MISMATCH (a MAC did not verify: a wrong code, or a
// relay that changed a message) or MALFORMED (anything else the peer or
// the relay got wrong); the messages are the reference's (package pairing).
export class PairingError extends Error {
  constructor(kind, detail) {
    super(kind === MISMATCH
      ? `the pairing code did not match, or someone in the middle changed the messages (${detail})`
      : `the pairing messages were malformed or out of order (${detail})`);
    this.kind = kind;
  }
}

const bytes = (s) => (typeof s === 'string' ? enc.encode(s) : s);

function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

// lp is every field with a 4-byte big-endian length before it.
export function lp(...fields) {
  return concat(...fields.map((f) => {
    const b = bytes(f);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.length);
    return concat(len, b);
  }));
}

export function hmac(key, data) {
  let k = bytes(key);
  if (k.length > 64) k = sha256(k);
  const ipad = new Uint8Array(64), opad = new Uint8Array(64);
  ipad.set(k); opad.set(k);
  for (let i = 0; i < 64; i++) { ipad[i] ^= 0x36; opad[i] ^= 0x5c; }
  return sha256(concat(opad, sha256(concat(ipad, bytes(data)))));
}

// hkdf is RFC 5869 with SHA-256, for at most 32 bytes (one block).
export function hkdf(ikm, salt, info, len = 32) {
  const prk = hmac(salt, ikm);
  return hmac(prk, concat(bytes(info), Uint8Array.of(1))).subarray(0, len);
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

// normalizeCode is P.2: drop white space and - _ . , : /, upper-case,
// O→0, I and L→1; anything else is an error.
export function normalizeCode(typed) {
  let out = '';
  for (const c of typed) {
    if (/\s/.test(c) || '-_.,:/'.includes(c)) continue;
    if (!/^[A-Za-z0-9]$/.test(c)) throw new Error(`a pairing code has no ${JSON.stringify(c)}`);
    out += c.toUpperCase().replace('O', '0').replace(/[IL]/, '1');
  }
  if (out === '' || out.length > 128) throw new Error('that is not a pairing code');
  return out;
}

// password is pw of P.5 for a normalised code (32 bytes).
export function password(code) {
  return sha256(lp(LABEL, 'initiator', 'responder', code));
}

const hexBytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
export const U = ec.decode(hexBytes('04000000000000000000000000' +
  '8aed73af1c28ffe0e075b724a9b5c218a86bfaac8418993c13263d05d52003d0f7214dfd5644908d43bcdfc004fb6f7ae6d91a88'));
export const V = ec.decode(hexBytes('04000000000000000000000000' +
  'be58a717b83350798221be18b2c142f2598b2531143edef30edb8795f2c969fe9374317358176803c670cc8b53270594f629d8fb'));

// sessionKey is K of P.5 from the points X, Y, Z.
function sessionKey(pw, X, Y, Z) {
  const m = (v) => ec.bigToBytes(v); // minimal big-endian, as big.Int.Bytes
  return sha256(concat(pw, m(X.x), m(X.y), m(Y.x), m(Y.y), m(Z.x), m(Z.y)));
}

// keys is P.6: the transcript hash and one key per direction, from K and
// the two points as sent (65 bytes each).
export function keys(K, x, y) {
  const th = sha256(lp(L_TRANSCRIPT, x, y));
  return { th, kI: hkdf(K, th, L_KEY_I), kR: hkdf(K, th, L_KEY_R) };
}

export const macR = (ks, r) => hmac(ks.kR, lp(L_CONFIRM_R, r.device_id, r.fingerprint, ks.th));
export const macI = (ks, i, r) => hmac(ks.kI, lp(L_CONFIRM_I, i.device_id, i.fingerprint, r.device_id, r.fingerprint, ks.th));
export const macOK = (ks, i, r) => hmac(ks.kR, lp(L_OK, i.device_id, i.fingerprint, r.device_id, r.fingerprint, ks.th));

// --- messages (P.4) ---

export function b64(b) {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function unb64(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const FP_RE = /^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/;
const FIELDS = ['role', 'pake', 'device_id', 'fingerprint', 'mac', 'reason'];
const SHAPES = {
  'pake/initiator': ['role', 'pake'],
  'pake/responder': ['role', 'pake', 'device_id', 'fingerprint', 'mac'],
  'confirm/initiator': ['role', 'device_id', 'fingerprint', 'mac'],
  'ok/responder': ['role', 'mac'],
  abort: ['reason'],
};

// decodeMessage parses and checks one pairing message: exactly the fields
// its type carries, a point on the curve, canonical ids and fingerprints.
export function decodeMessage(data) {
  const bad = (why) => new PairingError(MALFORMED, why);
  const raw = bytes(data);
  if (raw.length > MAX_MESSAGE) throw bad(`message of ${raw.length} bytes`);
  let m;
  try { m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw)); } catch { throw bad('not JSON'); }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw bad('not an object');
  if (m.v !== VERSION) throw bad(`pairing version ${m.v}`);
  if (typeof m.type !== 'string' || (m.role !== undefined && typeof m.role !== 'string')) throw bad('type or role not a string');
  const shape = SHAPES[m.type === 'abort' ? 'abort' : `${m.type}/${m.role}`];
  if (!shape) throw bad(`unexpected ${m.type} message`);
  for (const f of FIELDS) {
    if (m[f] !== undefined && m[f] !== null && typeof m[f] !== 'string') throw bad(`${f} is not a string`);
    const has = m[f] !== undefined && m[f] !== null && m[f] !== '';
    if (has !== shape.includes(f)) throw bad(`${m.type} message ${has ? 'with' : 'without'} ${f}`);
  }
  const out = { type: m.type, role: m.role, reason: m.reason };
  if (shape.includes('pake')) {
    out.pake = unb64(m.pake);
    if (!out.pake || !ec.decode(out.pake)) throw bad('the PAKE point is not on P-256');
  }
  if (shape.includes('mac')) {
    out.mac = unb64(m.mac);
    if (!out.mac || out.mac.length !== 32) throw bad('bad mac');
  }
  if (shape.includes('device_id')) {
    if (!ID_RE.test(m.device_id) || !FP_RE.test(m.fingerprint)) throw bad('bad device id or fingerprint');
    if (m.device_id !== deviceIdFor(m.fingerprint)) throw bad('device id does not match its certificate');
    out.peer = { device_id: m.device_id, fingerprint: m.fingerprint };
  }
  // Only the two reasons of P.4: the peer's own words are never shown.
  if (m.type === 'abort' && m.reason !== MISMATCH && m.reason !== MALFORMED) throw bad('unknown abort reason');
  return out;
}

function encodeMessage(m) {
  const o = { v: VERSION, type: m.type };
  if (m.role) o.role = m.role;
  if (m.pake) o.pake = b64(m.pake);
  if (m.peer) { o.device_id = m.peer.device_id; o.fingerprint = m.peer.fingerprint; }
  if (m.mac) o.mac = b64(m.mac);
  if (m.reason) o.reason = m.reason;
  return enc.encode(JSON.stringify(o));
}

// authenticate runs the PAKE over tr ({send(bytes), recv(timeoutMs) ->
// bytes}, one pairing message each) with the whole code as typed, in role
// 'initiator' (joined with the code) or 'responder' (showed it). own is
// {device_id, fingerprint}. It returns the peer the code authenticated,
// {device_id, fingerprint}, and reads no message beyond its last one.
export async function authenticate(tr, typedCode, role, own) {
  const pw = password(normalizeCode(typedCode));
  const w = ec.bytesToBig(pw);
  const deadline = Date.now() + TIMEOUT;
  let peerAborted = false;
  const recv = async (want) => {
    const m = decodeMessage(await tr.recv(Math.max(1, deadline - Date.now())));
    if (m.type === 'abort') {
      peerAborted = true;
      if (m.reason === MISMATCH) throw new PairingError(MISMATCH, 'the other device could not verify us');
      throw new PairingError(MALFORMED, 'the other device gave up (it found a pairing message malformed)');
    }
    if (m.type !== want) throw new PairingError(MALFORMED, `expected a ${want} message, got ${m.type}`);
    return m;
  };
  const send = (m) => tr.send(encodeMessage(m));
  const secret = ec.randomScalar();
  try {
    if (role === 'initiator') {
      const X = ec.add(ec.mul(secret, ec.G), ec.mul(w, U));
      const x = ec.encode(X);
      send({ type: 'pake', role, pake: x });
      const m2 = await recv('pake');
      if (m2.role !== 'responder') throw new PairingError(MALFORMED, 'the other device also took the initiator role');
      const Y = ec.decode(m2.pake);
      const Z = ec.mul(secret, ec.add(Y, ec.neg(ec.mul(w, V))));
      if (!Z) throw new PairingError(MALFORMED, 'degenerate PAKE point');
      const ks = keys(sessionKey(pw, X, Y, Z), x, m2.pake);
      const responder = m2.peer;
      if (!equal(m2.mac, macR(ks, responder))) throw new PairingError(MISMATCH, "the responder's confirmation did not verify");
      send({ type: 'confirm', role, peer: own, mac: macI(ks, own, responder) });
      const ok = await recv('ok');
      if (!equal(ok.mac, macOK(ks, own, responder))) throw new PairingError(MISMATCH, "the responder's ok did not verify");
      return responder;
    }
    const m1 = await recv('pake');
    if (m1.role !== 'initiator') throw new PairingError(MALFORMED, "expected the initiator's pake message");
    const X = ec.decode(m1.pake);
    const Y = ec.add(ec.mul(secret, ec.G), ec.mul(w, V));
    const Z = ec.mul(secret, ec.add(X, ec.neg(ec.mul(w, U))));
    if (!Y || !Z) throw new PairingError(MALFORMED, 'degenerate PAKE point');
    const y = ec.encode(Y);
    const ks = keys(sessionKey(pw, X, Y, Z), m1.pake, y);
    send({ type: 'pake', role, pake: y, peer: own, mac: macR(ks, own) });
    const m3 = await recv('confirm');
    const initiator = m3.peer;
    if (!equal(m3.mac, macI(ks, initiator, own))) throw new PairingError(MISMATCH, "the initiator's confirmation did not verify");
    send({ type: 'ok', role, mac: macOK(ks, initiator, own) });
    return initiator;
  } catch (e) {
    // Tell the peer, best effort, so that it fails now, not at its timeout.
    if (e instanceof PairingError && !peerAborted) {
      try { send({ type: 'abort', reason: e.kind }); } catch { /* the transport is gone */ }
    }
    throw e;
  }
}

// vectors computes the values of P.9 with this code, for the tests
// (e2e TestWebPAKEVectors compares them with the document).
export function vectors() {
  const pw = password(normalizeCode('7KQ2M-XW4PD-R8T3Z'));
  const x = ec.encode(ec.G);
  const y = ec.encode(ec.mul(2n, ec.G));
  const K = Uint8Array.from({ length: 32 }, (_, i) => i);
  const ks = keys(K, x, y);
  const i = { device_id: 'a11ce0000000000a', fingerprint: `sha-256 ${Array(32).fill('A1').join(':')}` };
  const r = { device_id: 'b0b0000000000b0b', fingerprint: `sha-256 ${Array(32).fill('B0').join(':')}` };
  return {
    pw: toHex(pw), X: toHex(x), Y: toHex(y), TH: toHex(ks.th), k_I: toHex(ks.kI), k_R: toHex(ks.kR),
    mac_R: toHex(macR(ks, r)), mac_I: toHex(macI(ks, i, r)), mac_ok: toHex(macOK(ks, i, r)),
    U_on_curve: ec.onCurve(U), V_on_curve: ec.onCurve(V),
    // The group law: (n−1)·G = −G, and 3·G = G + 2·G.
    order_ok: toHex(ec.encode(ec.mul(ec.N - 1n, ec.G))) === toHex(ec.encode(ec.neg(ec.G))) &&
      toHex(ec.encode(ec.mul(3n, ec.G))) === toHex(ec.encode(ec.add(ec.G, ec.mul(2n, ec.G)))),
  };
}
