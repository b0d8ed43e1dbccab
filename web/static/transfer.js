// The transfer protocol of docs/PROTOCOL.md §4-7 on one RTCDataChannel:
// offers with a manifest, text messages, files streamed in 64 KiB binary
// messages with backpressure and a whole-file SHA-256 (sha256.js).

import { SHA256, toHex } from './sha256.js';
import { randomHex } from './handshake.js';

export const CHUNK = 64 * 1024;
// READ_BLOCK is how much of a file the sender reads at once.
const READ_BLOCK = 1024 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
const MAX_CONTROL = 64 * 1024;
const MAX_TEXT = 8192;
const MAX_ENTRIES = 100000;
const MAX_CHUNK = 256 * 1024;
const MAX_FILE = 2 ** 50;
// MAX_TAKE bounds an accept's take list (transfer.MaxTake).
const MAX_TAKE = 1000;

const enc = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class ProtocolError extends Error {
  constructor(code, message, remote = false) {
    super(remote ? `the other device stopped the transfer (${code}): ${message}` : message);
    this.code = code;
    this.remote = remote;
  }
}

export class Declined extends Error {
  constructor(message) { super(message ? `declined: ${message}` : 'the other device declined'); }
}

const TYPES = new Set(['offer', 'entries', 'accept', 'decline', 'file', 'file-end', 'abort', 'file-ok',
  'file-error', 'pause', 'resume', 'cancel', 'retry', 'end', 'done', 'text', 'text-ack', 'error']);
const ID_RE = /^[0-9a-f]{8,64}$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const isInt = (v) => Number.isSafeInteger(v);

// decode parses and checks one control message (PROTOCOL.md §4.1).
export function decode(data) {
  if (data.length > MAX_CONTROL) throw new ProtocolError('too-large', 'control message over 64 KiB');
  let m;
  try { m = JSON.parse(data); } catch { throw new ProtocolError('protocol', 'malformed control message'); }
  if (!m || typeof m !== 'object' || !TYPES.has(m.type)) throw new ProtocolError('protocol', `unknown message type ${m && m.type}`);
  for (const k of ['count', 'index', 'retries']) {
    if (k in m && !isInt(m[k])) throw new ProtocolError('protocol', `${m.type}: ${k} must be an integer`);
  }
  m.index ??= 0; m.offset ??= 0; m.count ??= 0; m.size ??= 0; m.retries ??= 0;
  if (typeof m.text === 'string' && enc.encode(m.text).length > MAX_TEXT) throw new ProtocolError('too-large', 'text over 8 KiB');
  if (typeof m.message === 'string') m.message = m.message.slice(0, 1024);
  const needID = ['offer', 'entries', 'accept', 'decline', 'text', 'text-ack'];
  if (needID.includes(m.type) && !ID_RE.test(m.id || '')) throw new ProtocolError('protocol', `${m.type}: bad id`);
  const lo = m.type === 'cancel' ? -1 : 0;
  if (m.index < lo || m.index >= MAX_ENTRIES) throw new ProtocolError('protocol', `${m.type}: index out of range`);
  switch (m.type) {
    case 'offer':
      if (m.count < 0 || m.count > MAX_ENTRIES) throw new ProtocolError('too-large', 'too many entries');
      if (!isInt(m.size) || m.size < 0) throw new ProtocolError('protocol', 'offer: bad size');
      break;
    case 'entries':
      if (!Array.isArray(m.entries) || m.entries.length < 1 || m.entries.length > 256) throw new ProtocolError('protocol', 'entries: 1 to 256 per message');
      for (const e of m.entries) validateEntry(e);
      break;
    case 'file':
      if (!isInt(m.offset) || m.offset < 0 || m.offset > MAX_FILE) throw new ProtocolError('protocol', 'file: bad offset');
      break;
    case 'file-end':
      if (!SHA_RE.test(m.sha256 || '')) throw new ProtocolError('protocol', 'file-end: bad sha256');
      break;
    case 'accept':
      // take: the top-level entries chosen (PROTOCOL.md §4.1); [] is all.
      if (m.take !== undefined && m.take !== null) {
        if (!Array.isArray(m.take)) throw new ProtocolError('protocol', 'accept: take must be a list');
        if (m.take.length > MAX_TAKE) throw new ProtocolError('too-large', `accept: take lists ${m.take.length} entries, limit ${MAX_TAKE}`);
        m.take.forEach((t, k) => {
          if (!isInt(t) || t < 0 || t >= MAX_ENTRIES || (k > 0 && t <= m.take[k - 1])) {
            throw new ProtocolError('protocol', `accept: take indexes must increase, within 0..${MAX_ENTRIES - 1}`);
          }
        });
      }
      if (!m.take || m.take.length === 0) m.take = null;
      break;
    case 'end':
      if (m.retries < 0) throw new ProtocolError('protocol', 'end: negative retries');
      break;
    default:
  }
  return m;
}

const BAD_CHARS = /[\\:*?"<>|\u0000-\u001f\u007f-\u009f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/;
const DEVICE_NAMES = /^(con|prn|aux|nul|conin\$|conout\$|com[1-9]|lpt[1-9])$/i;

// validatePath is ValidatePath of PROTOCOL.md §4.2.
export function validatePath(p) {
  if (typeof p !== 'string' || p === '' || enc.encode(p).length > 4096 || p.startsWith('/')) return false;
  const parts = p.split('/');
  if (parts.length > 64) return false;
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..' || enc.encode(part).length > 255) return false;
    if (part.endsWith('.') || part.endsWith(' ') || BAD_CHARS.test(part)) return false;
    if (DEVICE_NAMES.test(part.split('.')[0].trimEnd())) return false;
  }
  return true;
}

function validateEntry(e) {
  if (!e || typeof e !== 'object' || !validatePath(e.path)) throw new ProtocolError('bad-manifest', 'invalid path');
  e.size ??= 0; e.mtime ??= 0; e.dir = !!e.dir;
  if (!isInt(e.size) || e.size < 0 || e.size > MAX_FILE || (e.dir && e.size !== 0)) throw new ProtocolError('bad-manifest', `bad size for ${e.path}`);
}

// validateManifest is ValidateManifest of §4.2 for a complete offer.
function validateManifest(entries, size) {
  const seen = new Set();
  const files = new Set();
  let total = 0;
  // Byte for byte: names that differ only in case or normalization are
  // allowed, and the receiver numbers them (save.js, nameKey).
  for (const e of entries) {
    if (seen.has(e.path)) throw new ProtocolError('bad-manifest', `${e.path} twice`);
    seen.add(e.path);
    if (!e.dir) { files.add(e.path); total += e.size; }
  }
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (files.has(parts.slice(0, i).join('/'))) throw new ProtocolError('bad-manifest', `${e.path} is below a file`);
    }
  }
  if (total > MAX_FILE || total !== size) throw new ProtocolError('bad-manifest', 'file sizes do not add up to the offer size');
}

// isCancelAll says whether a raw message is the sender's cancel of the
// whole offer.
function isCancelAll(d) {
  if (typeof d !== 'string' || !d.includes('cancel')) return false;
  try {
    const m = JSON.parse(d);
    return m.type === 'cancel' && (m.index === -1);
  } catch {
    return false;
  }
}

// Channel wraps the data channel: an ordered inbox (messages that arrived
// before a close still count) and sends with backpressure.
export class Channel {
  constructor(conn) {
    this.pc = conn.pc;
    this.dc = conn.dc;
    this.remote = conn.remote;
    this.code = conn.code; // this connection's verification code
    this.dc.binaryType = 'arraybuffer';
    this.dc.bufferedAmountLowThreshold = LOW_WATER;
    this.msgs = this.dc.early || []; // what arrived before us (keepEarly)
    this.dc.early = null;
    this.waiter = null;
    this.closed = false;
    this.dc.onmessage = (ev) => { this.msgs.push(ev.data); this.wake(); };
    const closed = () => { this.closed = true; this.wake(); };
    this.dc.onclose = closed;
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed' || this.pc.connectionState === 'closed') closed();
    });
    this.dc.addEventListener('bufferedamountlow', () => this.wake());
  }
  wake() { const w = this.waiter; this.waiter = null; if (w) w(); }
  sleep(ms) {
    return new Promise((resolve) => {
      this.waiter = resolve;
      if (ms !== undefined) setTimeout(resolve, ms);
    });
  }
  // next returns the next message: an object for control messages, a
  // Uint8Array for data, null once the channel closed and is drained;
  // undefined when nothing arrived within wait ms (wait 0: do not wait).
  async next(wait) {
    const until = wait === undefined ? Infinity : Date.now() + wait;
    for (;;) {
      if (this.msgs.length) {
        const d = this.msgs.shift();
        return typeof d === 'string' ? decode(d) : new Uint8Array(d);
      }
      if (this.closed) return null;
      const left = until - Date.now();
      if (left <= 0) return undefined;
      await this.sleep(left === Infinity ? undefined : left);
    }
  }
  send(m) {
    if (this.dc.readyState !== 'open') throw new Error('the connection closed');
    this.dc.send(JSON.stringify(m));
  }
  sendData(bytes) {
    if (this.dc.readyState !== 'open') throw new Error('the connection closed');
    this.dc.send(bytes);
  }
  // room waits while more than 4 MiB wait in the channel's buffer.
  async room() {
    while (this.dc.bufferedAmount > HIGH_WATER) {
      if (this.dc.readyState !== 'open') throw new Error('the connection closed');
      await this.sleep(1000);
    }
  }
  // flush waits (up to ms) until what we sent has left, before a close.
  async flush(ms) {
    const until = Date.now() + ms;
    while (this.dc.readyState === 'open' && this.dc.bufferedAmount > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async violate(err) {
    try { this.send({ type: 'error', code: err.code, message: err.message }); } catch { /* closing */ }
    await this.flush(1000);
  }
  close() {
    try { this.dc.close(); } catch { /* already */ }
    this.pc.close();
  }
}

// --- sending ---

// manifest turns picked files ({file, path}) into entries: each folder
// once, followed by its content, in lexical order (PROTOCOL.md §4.2).
export function manifest(items) {
  const byPath = new Map();
  for (const it of items) {
    const parts = it.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { entry: { path: dir, size: 0, dir: true }, file: null });
    }
    byPath.set(it.path, {
      entry: { path: it.path, size: it.file.size, mtime: Math.floor((it.file.lastModified || 0) / 1000) },
      file: it.file,
    });
  }
  const cmp = (a, b) => {
    const pa = a.entry.path.split('/'), pb = b.entry.path.split('/');
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
      if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
    }
    return pa.length - pb.length;
  };
  return [...byPath.values()].sort(cmp);
}

function batches(entries) {
  const out = [];
  let cur = [], size = 0;
  for (const e of entries) {
    const n = 64 + 6 * enc.encode(e.path).length;
    if (cur.length && (size + n > MAX_CONTROL - 1024 || cur.length === 256)) { out.push(cur); cur = []; size = 0; }
    cur.push(e);
    size += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

// topLevel gives, per entry, the index of its top-level entry (the first
// part of its path, counted in the order each first appears: what an
// accept's take counts, PROTOCOL.md §4.2), and the top-level names.
export function topLevel(entries) {
  const at = new Map();
  const names = [];
  const of = entries.map((e) => {
    const first = e.path.split('/')[0];
    if (!at.has(first)) { at.set(first, names.length); names.push(first); }
    return at.get(first);
  });
  return { of, names };
}

export class Cancelled extends Error {
  constructor(message = 'cancelled') { super(message); }
}

// sendFiles offers items ({file, path}) and an optional text over ch and
// streams what the receiver accepts: only the top-level entries its accept
// takes (PROTOCOL.md §4.1). events: onAccepted({files, skipped}),
// onProgress(sent, total), onFile(path, ok, message), cancelled() (true:
// stop the transfer). Resolves to {offered, files, sent, bytes, skipped,
// skippedFiles, failed}: the files offered, those taken, those that arrived,
// the bytes streamed, the top-level names left out and the files below them,
// the paths that failed. Rejects with Declined or Cancelled; a receiver
// breaking the protocol is told (error) before the rejection.
export async function sendFiles(ch, items, text, events = {}) {
  try {
    return await sendOffer(ch, items, text, events);
  } catch (err) {
    if (err instanceof ProtocolError && !err.remote) await ch.violate(err);
    throw err;
  }
}

async function sendOffer(ch, items, text, events) {
  const list = manifest(items);
  const entries = list.map((x) => x.entry);
  const id = randomHex(16);
  const total = entries.reduce((s, e) => s + e.size, 0);
  const offer = { type: 'offer', id, count: entries.length, size: total };
  if (text) offer.text = text;
  ch.send(offer);
  for (const b of batches(entries)) ch.send({ type: 'entries', id, entries: b });

  const ok = new Set(), failed = new Map(), cancelled = new Set();
  // skipped: per entry, left out by the accept's take (none until then).
  let skipped = entries.map(() => false), skippedNames = [];
  let paused = false, retries = 0, sent = 0;
  let current = -1, stopCurrent = false;
  const queue = [];

  // handle applies one message from the receiver; returns 'done' at the end.
  const handle = (m) => {
    if (m === null) throw new Error('the connection closed');
    if (m instanceof Uint8Array) throw new ProtocolError('protocol', 'the receiver sent data');
    switch (m.type) {
      case 'text': ch.send({ type: 'text-ack', id: m.id }); events.onText?.(m.text); return null;
      case 'text-ack': return null;
      case 'error': throw new ProtocolError(m.code, m.message || '', true);
      case 'pause': paused = true; return null;
      case 'resume': paused = false; return null;
      case 'file-ok':
        if (skipped[m.index]) throw new ProtocolError('protocol', `file-ok for index ${m.index}, which was not taken`);
        if (m.index < entries.length && !entries[m.index].dir) { ok.add(m.index); failed.delete(m.index); events.onFile?.(entries[m.index].path, true); }
        return null;
      case 'file-error':
        if (skipped[m.index]) throw new ProtocolError('protocol', `file-error for index ${m.index}, which was not taken`);
        if (m.index < entries.length) {
          failed.set(m.index, `${m.code}: ${m.message || ''}`);
          events.onFile?.(entries[m.index].path, false, m.message || m.code);
          if (m.index === current) stopCurrent = true;
        }
        return null;
      case 'cancel':
        if (m.index === -1) throw new Error('the receiver cancelled the transfer');
        if (m.index < entries.length && !skipped[m.index]) { cancelled.add(m.index); if (m.index === current) stopCurrent = true; }
        return null;
      case 'retry':
        if (skipped[m.index]) throw new ProtocolError('protocol', `retry for index ${m.index}, which was not taken`);
        retries++;
        if (m.index < entries.length && !entries[m.index].dir && !ok.has(m.index) && m.index !== current && !queue.includes(m.index)) {
          failed.delete(m.index); cancelled.delete(m.index); queue.push(m.index);
        }
        return null;
      case 'done': return 'done';
      case 'accept': case 'decline': return null; // answered once already
      default: throw new ProtocolError('protocol', `unexpected ${m.type} from the receiver`);
    }
  };

  // cancel sends a whole-transfer cancel (also while the receiver still
  // decides) and stops; what was sent is given time to leave first.
  const cancel = async () => {
    ch.send({ type: 'cancel', index: -1 });
    await ch.flush(5000);
    throw new Cancelled();
  };

  // Wait for the decision.
  for (;;) {
    const m = await ch.next(500);
    if (events.cancelled?.()) await cancel();
    if (m === undefined) continue;
    if (m && m.type === 'decline' && m.id === id) throw new Declined(m.message);
    if (m && m.type === 'accept' && m.id === id) {
      if (m.take) {
        // Only the entries at or below the top-level ones taken are sent.
        const tops = topLevel(entries);
        for (const t of m.take) {
          if (t >= tops.names.length) throw new ProtocolError('protocol', `take: index ${t} out of range (${tops.names.length} top-level entries)`);
        }
        const taken = new Set(m.take);
        skipped = tops.of.map((k) => !taken.has(k));
        skippedNames = tops.names.filter((_, k) => !taken.has(k));
      }
      for (const i of m.done || []) if (i >= 0 && i < entries.length && !skipped[i]) ok.add(i);
      break;
    }
    handle(m);
  }
  const taken = entries.filter((e, i) => !e.dir && !skipped[i]);
  const takenTotal = taken.reduce((s, e) => s + e.size, 0);
  events.onAccepted?.({ files: taken.length, skipped: skippedNames });
  for (let i = 0; i < entries.length; i++) if (!entries[i].dir && !ok.has(i) && !skipped[i]) queue.push(i);
  let bytes = 0; // streamed in this transfer (what the receiver had is not)
  for (const i of ok) sent += entries[i].size;

  const poll = async () => {
    for (;;) {
      if (events.cancelled?.()) await cancel();
      const m = await ch.next(paused ? 500 : 0);
      if (m === undefined) { if (!paused) return; continue; }
      if (handle(m) === 'done') throw new ProtocolError('protocol', 'done before end');
    }
  };

  for (;;) {
    while (queue.length) {
      const i = queue.shift();
      if (ok.has(i) || cancelled.has(i)) continue;
      const file = list[i].file;
      const e = entries[i];
      if (file.size !== e.size) {
        ch.send({ type: 'file-error', index: i, code: 'io', message: 'the file changed since it was offered' });
        failed.set(i, 'changed');
        continue;
      }
      current = i; stopCurrent = false;
      ch.send({ type: 'file', index: i });
      const h = new SHA256();
      let off = 0, aborted = false;
      while (off < e.size) {
        await poll();
        if (stopCurrent) { aborted = true; break; }
        await ch.room();
        // Read a block at a time (each read is a trip through the
        // browser's file machinery), send it in CHUNK-sized messages.
        let block;
        try {
          block = new Uint8Array(await file.slice(off, Math.min(off + READ_BLOCK, e.size)).arrayBuffer());
        } catch (err) {
          ch.send({ type: 'abort', index: i });
          ch.send({ type: 'file-error', index: i, code: 'io', message: 'the sender could not read it' });
          failed.set(i, 'read error');
          aborted = true;
          break;
        }
        h.update(block);
        for (let at = 0; at < block.length; at += CHUNK) {
          if (at > 0) await ch.room();
          ch.sendData(block.subarray(at, Math.min(at + CHUNK, block.length)));
        }
        off += block.length;
        sent += block.length;
        bytes += block.length;
        events.onProgress?.(sent, takenTotal);
      }
      if (aborted) {
        if (stopCurrent) ch.send({ type: 'abort', index: i });
        current = -1;
        continue;
      }
      ch.send({ type: 'file-end', index: i, sha256: h.hex() });
      current = -1;
    }
    ch.send({ type: 'end', retries });
    for (;;) {
      const m = await ch.next(500);
      if (events.cancelled?.()) await cancel();
      if (m === undefined) continue;
      const r = handle(m);
      if (r === 'done') {
        const offered = entries.filter((e) => !e.dir).length;
        const result = {
          offered, files: taken.length, bytes, skipped: skippedNames, skippedFiles: offered - taken.length,
          failed: [...failed.keys()].map((i) => entries[i].path),
        };
        for (const i of m.failed || []) if (i < entries.length && !skipped[i] && !result.failed.includes(entries[i].path)) result.failed.push(entries[i].path);
        result.sent = taken.length - result.failed.length;
        await ch.flush(1000);
        return result;
      }
      if (queue.length) break; // a retry: stream it, then end again
    }
  }
}

// sendText sends a message and waits for its acknowledgement.
export async function sendText(ch, text) {
  if (!text || enc.encode(text).length > MAX_TEXT) throw new Error('a message is 1 to 8192 bytes');
  const id = randomHex(16);
  ch.send({ type: 'text', id, text });
  const until = Date.now() + 15000;
  for (;;) {
    const m = await ch.next(Math.max(0, until - Date.now()));
    if (m === undefined) throw new Error('the message was not confirmed within 15 s');
    if (m === null) throw new Error('the connection closed before the message was confirmed');
    if (m instanceof Uint8Array) continue;
    if (m.type === 'text-ack' && m.id === id) return id;
    if (m.type === 'error') throw new ProtocolError(m.code, m.message || '', true);
  }
}

// --- receiving ---

// receive runs the receiving side on ch until it closes. ui:
//   decide(offer) -> Promise<sink factory | null>  (null: decline)
//      offer = {id, text, entries, size, from, code}
//   onText(text, from), onProgress(id, bytes, total), onFile(id, entry, ok, sha256, message)
//   onDone(id, failedPaths), onCancelled(id)
// A sink factory: {open(entry) -> Promise<{write(u8), close(), abort()}>, finish()}.
// ui.cancelRequested(id) returning true cancels the running offer.
export async function receive(ch, ui) {
  let off = null; // {id, text, count, size, entries, phase, sinks, ...}
  let cur = null; // {index, entry, h, written, w}
  const drop = async () => {
    if (cur) { try { await cur.w.abort(); } catch { /* best effort */ } cur = null; }
  };
  // finish tells the offer's sink it ended, however it ended (done,
  // cancelled, the connection lost), once: a ZIP archive is handed over.
  const finish = async () => {
    if (!off || !off.sink || off.finished) return;
    off.finished = true;
    try { await off.sink.finish?.(); } catch { /* the sink reports its own failure */ }
  };
  try {
    for (;;) {
      if (off && off.phase === 'active' && ui.cancelRequested?.(off.id)) {
        // Our cancel: what the sender already sent of this offer is
        // dropped without complaint until its next offer (§7).
        ch.send({ type: 'cancel', index: -1 });
        await drop();
        await finish();
        ui.onCancelled?.(off.id, 'you cancelled');
        off = { ...off, phase: 'idle', draining: true };
      }
      // Data keeps arriving while a transfer runs, so the wait is short
      // only when a cancel could be pending.
      const m = await ch.next(off && off.phase === 'active' ? 500 : undefined);
      if (m === undefined) continue;
      if (m === null) { await drop(); await finish(); if (off && off.phase === 'active') ui.onCancelled?.(off.id, 'the connection was lost'); return; }
      if (m instanceof Uint8Array) {
        if (!off || off.phase !== 'active' || !cur) {
          if (off && off.draining) continue;
          throw new ProtocolError('protocol', 'data outside a file');
        }
        if (m.length > MAX_CHUNK) throw new ProtocolError('too-large', 'data message over 256 KiB');
        if (cur.written + m.length > cur.entry.size) throw new ProtocolError('size-mismatch', `more data than the size of ${cur.entry.path}`);
        cur.written += m.length;
        off.bytes += m.length;
        if (cur.discard) continue;
        cur.h.update(m);
        try { await cur.w.write(m); } catch (e) {
          cur.discard = true;
          ch.send({ type: 'file-error', index: cur.index, code: 'io', message: 'the receiver could not write it' });
          ui.onFile?.(off.id, cur.entry, false, '', `cannot save: ${e.message}`);
          off.failed.add(cur.index);
        }
        ui.onProgress?.(off.id, off.bytes, off.size);
        continue;
      }
      switch (m.type) {
        case 'text':
          ui.onText?.(m.text, ch.remote);
          ch.send({ type: 'text-ack', id: m.id });
          continue;
        case 'text-ack':
          continue;
        case 'error':
          throw new ProtocolError(m.code, m.message || '', true);
        case 'offer':
          if (off && off.phase !== 'idle') throw new ProtocolError('busy', 'an offer arrived while another one runs');
          off = { id: m.id, text: m.text || '', count: m.count, size: m.size, entries: [], phase: 'collecting', bytes: 0, done: new Set(), failed: new Set(), cancelled: new Set() };
          if (m.count === 0) await decide();
          continue;
        case 'entries':
          if (!off || off.phase !== 'collecting' || m.id !== off.id) throw new ProtocolError('protocol', 'entries outside an offer');
          if (off.entries.length + m.entries.length > off.count) throw new ProtocolError('bad-manifest', 'more entries than announced');
          off.entries.push(...m.entries);
          if (off.entries.length === off.count) await decide();
          continue;
        default:
      }
      if (!off || off.phase !== 'active') {
        if (['file', 'file-end', 'file-error', 'abort', 'end'].includes(m.type) && off && off.draining) continue;
        if (m.type === 'pause' || m.type === 'resume') continue;
        if (m.type === 'cancel') { if (off && off.phase === 'collecting') off = null; continue; }
        throw new ProtocolError('protocol', `unexpected ${m.type} message`);
      }
      const n = off.entries.length;
      if (['file', 'file-end', 'file-error', 'abort'].includes(m.type) && m.index >= n) throw new ProtocolError('protocol', `${m.type}: index out of range`);
      switch (m.type) {
        case 'file': {
          if (cur) throw new ProtocolError('protocol', 'file while another is open');
          const e = off.entries[m.index];
          if (e.dir || off.done.has(m.index)) throw new ProtocolError('protocol', 'file: not a file, or verified already');
          if (m.offset > e.size) throw new ProtocolError('size-mismatch', 'file: offset beyond the size');
          if (m.offset !== 0) throw new ProtocolError('protocol', 'file: no partial file to resume');
          off.failed.delete(m.index); off.cancelled.delete(m.index);
          cur = { index: m.index, entry: e, h: new SHA256(), written: 0, discard: false, w: null };
          try { cur.w = await off.sink.open(e); } catch (err) {
            cur.discard = true;
            cur.w = { write() {}, close() {}, abort() {} };
            ch.send({ type: 'file-error', index: m.index, code: 'io', message: 'the receiver could not write it' });
            ui.onFile?.(off.id, e, false, '', `cannot save: ${err.message}`);
            off.failed.add(m.index);
          }
          continue;
        }
        case 'file-end': {
          if (!cur || cur.index !== m.index) throw new ProtocolError('protocol', 'file-end for a file that is not open');
          const c = cur;
          cur = null;
          if (c.discard || off.cancelled.has(c.index)) { try { await c.w.abort(); } catch { /* */ } continue; }
          if (c.written < c.entry.size) {
            await c.w.abort();
            off.failed.add(c.index);
            ch.send({ type: 'file-error', index: c.index, code: 'size-mismatch', message: 'fewer bytes than announced' });
            ui.onFile?.(off.id, c.entry, false, '', 'incomplete');
            continue;
          }
          const sum = c.h.hex();
          if (sum !== m.sha256) {
            await c.w.abort();
            off.failed.add(c.index);
            ch.send({ type: 'file-error', index: c.index, code: 'hash-mismatch', message: 'the SHA-256 differs' });
            ui.onFile?.(off.id, c.entry, false, sum, 'damaged on the way (SHA-256 differs): discarded');
            continue;
          }
          try {
            await c.w.close();
          } catch (err) {
            off.failed.add(c.index);
            ch.send({ type: 'file-error', index: c.index, code: 'io', message: 'the receiver could not write it' });
            ui.onFile?.(off.id, c.entry, false, sum, `cannot save: ${err.message}`);
            continue;
          }
          off.done.add(c.index);
          ch.send({ type: 'file-ok', index: c.index });
          ui.onFile?.(off.id, c.entry, true, sum);
          continue;
        }
        case 'abort':
          if (cur && cur.index === m.index) await drop();
          continue;
        case 'file-error':
          off.failed.add(m.index);
          ui.onFile?.(off.id, off.entries[m.index], false, '', m.message || 'the sender could not read it');
          if (cur && cur.index === m.index) await drop();
          continue;
        case 'cancel':
          if (m.index === -1) {
            await drop();
            await finish();
            ui.onCancelled?.(off.id, 'the sender cancelled');
            off = { ...off, phase: 'idle', draining: true };
            continue;
          }
          if (m.index >= n) throw new ProtocolError('protocol', 'cancel: index out of range');
          off.cancelled.add(m.index);
          if (cur && cur.index === m.index) { await drop(); }
          continue;
        case 'pause': case 'resume':
          continue;
        case 'end': {
          if (cur) throw new ProtocolError('protocol', 'end while a file is open');
          const failed = [];
          off.entries.forEach((e, i) => { if (!e.dir && !off.done.has(i)) failed.push(i); });
          ch.send({ type: 'done', failed });
          await finish();
          ui.onDone?.(off.id, failed.map((i) => off.entries[i].path));
          off = null;
          continue;
        }
        default:
          throw new ProtocolError('protocol', `unexpected ${m.type} message`);
      }
    }
  } catch (err) {
    await drop();
    await finish();
    if (err instanceof ProtocolError && !err.remote) await ch.violate(err);
    throw err;
  } finally {
    ch.close();
  }

  async function decide() {
    validateManifest(off.entries, off.size);
    off.phase = 'deciding';
    // While the person decides, nothing is read; but a sender that gives
    // up (cancels, or goes) withdraws the offer: the prompt goes away.
    const gone = new AbortController();
    let deciding = true;
    const watch = (async () => {
      while (deciding) {
        if (ch.closed || ch.msgs.some(isCancelAll)) { gone.abort(); return; }
        await ch.sleep(250);
      }
    })();
    let sink;
    try {
      sink = await ui.decide({ id: off.id, text: off.text, entries: off.entries, size: off.size, from: ch.remote, code: ch.code, signal: gone.signal });
    } finally {
      deciding = false;
      ch.wake();
      await watch;
    }
    if (gone.signal.aborted) {
      // The cancel (or the close) that withdrew it is read next.
      if (sink) try { await sink.abort?.(); } catch { /* nothing saved yet */ }
      return;
    }
    if (!sink) {
      ch.send({ type: 'decline', id: off.id });
      off = null;
      return;
    }
    off.sink = sink;
    ch.send({ type: 'accept', id: off.id });
    off.phase = 'active';
    for (const e of off.entries) if (e.dir) ui.onFolder?.(off.id, e);
  }
}
