// The page: shows the device that served it, sends it files, folders and
// messages, and receives offers from nearby devices through it. Served by
// `peerdrop serve` it runs off the LAN instead (offlan.js): it pairs with a
// code another device shows and sends to it, or shows a code and receives.
// window.peerdrop.state mirrors what happened, for people debugging and
// for the end-to-end tests.

import { loadIdentity, dial, register, validName } from './handshake.js';
import { connectServer, RemoteDialer, RemoteHost, splitCode } from './offlan.js';
import { PairingError } from './pake.js';
import { svg as qrSVG } from './qr.js';
import { Channel, sendFiles, sendText, receive, Declined, Cancelled, validatePath } from './transfer.js';
import { canPickFolder, folderSink, downloadSink, zipSink, zipName } from './save.js';
import { escapeName, escapeText, showName } from './visible.js';
import { humanBytes as human } from './units.js';

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

const state = {
  ready: false,
  port: 0,
  sent: [], // {files, failed, error}
  received: [], // {path, size, sha256}
  texts: [], // {from, text}
  textsSent: [], // {text, error}
  offers: [], // {id, from, files, declined, code}
  done: [], // received offers that ended: {id, failed}
  cancelled: [], // received offers that stopped: {id, why}
  errors: [],
  mode: '', // 'lan' or 'server' (off the LAN)
  code: '', // off the LAN: the code this page shows
  link: '', // and its pairing link (https://SERVER/#CODE), drawn as a QR code
  paired: [], // off the LAN: devices a code authenticated {name, device_id, fingerprint}
  connections: [], // every connection's local candidate types {peer, candidates}
  codes: [], // the verification code of each connection this page opened to send
  devices: [], // on the LAN: where the page can send {device_id, name, type, fingerprint}, the serving device first
  target: '', // the device_id of where the device card sends
};
window.peerdrop = { state };

let me = null;
// target is where the device card sends: {name, type, fingerprint, dial()}.
let target = null;

function status(msg, bad = false) {
  const s = $('#status');
  // Status lines quote names and errors from the network: what does not
  // print is shown escaped (visible.js).
  s.textContent = escapeName(msg);
  s.classList.toggle('bad', bad);
}

function problem(msg) {
  state.errors.push(msg);
  status(msg, true);
}

// --- transfers list ---

function transferRow(title) {
  const bar = el('progress', { max: 1, value: 0 });
  const info = el('span', { className: 'info', textContent: 'connecting…' });
  const stop = el('button', { className: 'cancel', type: 'button', textContent: 'Cancel' });
  const li = el('li', { className: 'transfer' }, el('div', { className: 'title', textContent: title }), bar,
    el('div', { className: 'row' }, info, stop));
  $('#transfer-list').prepend(li);
  let cancelled = false;
  let shown = 0; // when progress was last drawn
  stop.onclick = () => { cancelled = true; stop.disabled = true; info.textContent = 'cancelling…'; };
  return {
    get cancelled() { return cancelled; },
    finished() { stop.remove(); },
    progress(done, total) {
      // At most ten times a second: a DOM update per 64 KiB message costs
      // more than the message.
      const now = performance.now();
      if (done < total && now - shown < 100) return;
      shown = now;
      bar.max = total || 1;
      bar.value = done;
      info.textContent = `${human(done)} of ${human(total)}`;
    },
    say(text, cls) {
      info.textContent = escapeName(text);
      if (cls) li.classList.add(cls);
    },
    done() { bar.value = bar.max; },
  };
}

// --- sending to the host ---

async function sendItems(picked) {
  // The receiver refuses the whole offer for one name it does not allow
  // (PROTOCOL.md §4.2): leave those out and say so.
  const bad = picked.filter((it) => !validatePath(it.path));
  if (bad.length) problem(`Not sent (name not allowed on other systems): ${bad.map((it) => it.path).join(', ')}`);
  const items = picked.filter((it) => validatePath(it.path));
  if (!items.length) return;
  const files = items.length;
  const row = transferRow(`To ${escapeName(target.name)}: ${files === 1 ? escapeName(items[0].path) : `${files} files`}`);
  // sent: the files that arrived; skipped: the top-level names the
  // receiver left out (PROTOCOL.md §4.1, take); bytes: what was streamed.
  const result = { files, sent: 0, bytes: 0, skipped: [], skippedFiles: 0, failed: [], error: '', said: '' };
  let ch = null;
  try {
    ch = new Channel(await target.dial());
    connectedCode(ch.code);
    row.say('waiting for them to accept…');
    const r = await sendFiles(ch, items, '', {
      onAccepted: (a) => row.say(a.skipped.length ? `accepted ${a.files} of ${files} files; skipped: ${a.skipped.join(', ')}` : 'accepted'),
      onProgress: (done, total) => row.progress(done, total),
      cancelled: () => row.cancelled,
    });
    Object.assign(result, { sent: r.sent, bytes: r.bytes, skipped: r.skipped, skippedFiles: r.skippedFiles, failed: r.failed });
    row.done();
    result.said = sentSummary(r);
    row.say(result.said, r.failed.length ? 'bad' : 'ok');
  } catch (e) {
    result.error = e.message;
    result.said = e instanceof Declined ? 'declined' : e instanceof Cancelled ? 'cancelled' : `failed: ${e.message}`;
    row.say(result.said, 'bad');
  } finally {
    row.finished();
    if (ch) ch.close();
    state.sent.push(result);
  }
}

// sentSummary says how a send ended: "sent 3 files", or with files the
// receiver left out "sent 1 of 3 files, 2 skipped by the receiver (a.txt,
// b.txt)", and what failed.
function sentSummary(r) {
  const files = (n) => `${n} file${n === 1 ? '' : 's'}`;
  let said = r.sent === r.offered ? `sent ${files(r.sent)}` : `sent ${r.sent} of ${files(r.offered)}`;
  if (r.skippedFiles > 0 || r.skipped.length) said += `, ${r.skippedFiles} skipped by the receiver (${r.skipped.join(', ')})`;
  if (r.failed.length) said += `; failed: ${r.failed.join(', ')}`;
  return said;
}

function fromInput(input) {
  return Array.from(input.files, (f) => ({ file: f, path: f.webkitRelativePath || f.name }));
}

// fromDrop walks dropped files and folders (webkitGetAsEntry works in
// every current browser).
async function fromDrop(dt) {
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ file, path: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  const entries = Array.from(dt.items || [], (it) => it.webkitGetAsEntry && it.webkitGetAsEntry()).filter(Boolean);
  if (entries.length) {
    for (const e of entries) await walk(e, '');
  } else {
    for (const f of dt.files) out.push({ file: f, path: f.name });
  }
  return out;
}

async function sendMessage(text) {
  const rec = { text, error: '' };
  let ch = null;
  try {
    ch = new Channel(await target.dial());
    connectedCode(ch.code);
    await sendText(ch, text);
    await ch.flush(1000);
    addMessage(`You → ${escapeName(target.name)}`, escapeText(text));
  } catch (e) {
    rec.error = e.message;
    problem(`The message did not go out: ${e.message}`);
  } finally {
    if (ch) ch.close();
    state.textsSent.push(rec);
  }
}

function addMessage(who, text) {
  $('#messages').prepend(el('li', {}, el('b', { textContent: `${who}: ` }), el('span', { className: 'text', textContent: text })));
}

// --- receiving ---

function decide(offer) {
  const files = offer.entries.filter((e) => !e.dir);
  const rec = { id: offer.id, from: offer.from.name, files: files.length, declined: false, code: offer.code };
  state.offers.push(rec);
  return new Promise((resolve) => {
    // Names as the CLI shows them: escaped, and marked when they mix scripts.
    const names = files.slice(0, 3).map((e) => showName(e.path)).join(', ') + (files.length > 3 ? ', …' : '');
    const what = files.length ? `${files.length} file${files.length === 1 ? '' : 's'} (${human(offer.size)}): ${names}` : 'a message';
    const code = offer.code;
    const accept = el('button', { className: 'accept', textContent: 'Accept' });
    const decline = el('button', { className: 'decline', textContent: 'Decline' });
    const card = el('li', { className: 'offer' },
      el('div', { className: 'title', textContent: `${showName(offer.from.name)} wants to send you ${what}` }),
      offer.text ? el('blockquote', { textContent: escapeText(offer.text) }) : '',
      el('div', { className: 'code', textContent: `Verification code ${code}` }),
      el('div', { className: 'buttons' }, decline, accept));
    $('#offer-list').prepend(card);
    const answered = (sink) => { card.remove(); resolve(sink); };
    // The sender gave up while we were deciding: the offer is gone.
    offer.signal?.addEventListener('abort', () => {
      rec.withdrawn = true;
      answered(null);
    });
    decline.onclick = () => { rec.declined = true; answered(null); };
    accept.onclick = async () => {
      if (canPickFolder()) {
        try {
          answered(await folderSink());
          return;
        } catch (e) {
          if (e.name === 'AbortError') return; // picker closed: still undecided
          problem(`Cannot use that folder (${e.message}); saving as downloads.`);
        }
      }
      // Several files are one download: browsers block a page that
      // starts many.
      answered(files.length > 1 ? zipSink(zipName(offer.entries, offer.from.name), problem) : downloadSink());
    };
  });
}

function serveConnection(conn) {
  const ch = new Channel(conn);
  const rows = new Map();
  receive(ch, {
    decide: async (offer) => {
      const sink = await decide(offer);
      if (sink) rows.set(offer.id, transferRow(`From ${escapeName(offer.from.name)}: ${offer.entries.filter((e) => !e.dir).length} files`));
      return sink;
    },
    onText: (text, from) => {
      state.texts.push({ from: from.name, text });
      addMessage(escapeName(from.name), escapeText(text));
    },
    onProgress: (id, done, total) => rows.get(id)?.progress(done, total),
    onFile: (id, entry, ok, sum, message) => {
      if (ok) state.received.push({ path: entry.path, size: entry.size, sha256: sum });
      else problem(`${entry.path}: ${message}`);
    },
    onDone: (id, failed) => {
      const row = rows.get(id);
      row?.done();
      row?.finished();
      row?.say(failed.length ? `done; failed: ${failed.map(escapeName).join(', ')}` : 'received', failed.length ? 'bad' : 'ok');
      state.done.push({ id, failed });
    },
    onCancelled: (id, why) => {
      rows.get(id)?.finished();
      rows.get(id)?.say(`stopped: ${why}`, 'bad');
      state.cancelled.push({ id, why });
    },
    cancelRequested: (id) => rows.get(id)?.cancelled,
  }).catch((e) => {
    for (const row of rows.values()) row.finished();
    problem(`Transfer from ${conn.remote.name} stopped: ${e.message}`);
  });
}

// keepRegistered stays registered to receive, and comes back after a
// dropped WebSocket (a phone that slept).
async function keepRegistered() {
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30000)) {
    const closed = new Promise((resolve) => {
      register(me, {
        onListening: (port) => {
          delay = 1000;
          state.port = port;
          state.ready = true;
          status(`Nearby devices see this page as “${me.name}”.`);
        },
        onConn: serveConnection,
        onError: (e) => problem(`A connection failed: ${e.message}`),
        onClosed: resolve,
      }).catch(resolve);
    });
    await closed;
    state.ready = false;
    status('Lost the connection to the device; trying again…', true);
    await new Promise((r) => setTimeout(r, delay));
  }
}

// --- off the LAN (served by peerdrop serve) ---

// Each role gets a server connection of its own (a Mux takes over its
// client's events): the dialer of the code typed last, the code shown.
let dialer = null;
let host = null;

// joinCode pairs with the code another device shows (peerdrop receive
// --server, or a page that made a code): the device card then sends to it.
async function joinCode(info, typed) {
  try {
    splitCode(typed);
  } catch (e) {
    problem(e.message);
    return;
  }
  $('#join').disabled = true;
  status('Pairing…');
  let trying = null; // the new dialer until its pairing succeeded
  try {
    const d = new RemoteDialer(await connectServer(me, info.ws), me, typed);
    trying = d;
    let first = await d.dial();
    // Only now does the device paired before give way to this one.
    trying = null;
    if (dialer) dialer.close();
    dialer = d;
    const peer = first.remote;
    state.connections.push({ peer: peer.name, candidates: first.candidates });
    state.paired.push({ name: peer.name, device_id: peer.device_id, fingerprint: peer.fingerprint });
    target = {
      name: peer.name, type: 'through the server', fingerprint: peer.fingerprint,
      // The connection the pairing opened serves the first send; later
      // sends connect again through the server, without the code.
      dial: async () => {
        const c = first;
        first = null;
        if (c && c.dc.readyState === 'open') return c;
        if (c) c.pc.close();
        return d.dial();
      },
    };
    showHost();
    status(`Paired with “${peer.name}”: drop files on its card. Check that both screens show the verification code.`);
  } catch (e) {
    if (trying) trying.close();
    problem(`Pairing failed: ${e.message}`);
  } finally {
    $('#join').disabled = false;
  }
}

// showCode makes a code for another device to join with (peerdrop send
// --server URL --code CODE); what it sends arrives here.
async function showCode(info) {
  $('#create').disabled = true;
  let failed = ''; // why the last pairing with the code shown failed
  try {
    host = new RemoteHost(await connectServer(me, info.ws), me, {
      onCode: ({ code }) => {
        state.code = code;
        $('#my-code').textContent = code;
        const link = `${location.origin}${location.pathname}#${code}`;
        state.link = link;
        $('#my-link').textContent = link;
        $('#my-link').href = link;
        $('#my-qr').replaceChildren(qrSVG(link));
        const ws = new URL(info.ws || 'ws', location.href);
        ws.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
        ws.hash = '';
        ws.search = '';
        $('#my-command').textContent = `peerdrop send --server ${ws} --code ${code} FILE`;
        $('#show-code').hidden = false;
        if (failed) {
          status(`The last pairing failed (${failed}); here is a new code: type it on the other device.`, true);
          failed = '';
        } else {
          status('Type this code on the other device; it is good for one pairing, for 10 minutes.');
        }
      },
      onConn: (conn) => {
        const peer = conn.remote;
        state.connections.push({ peer: peer.name, candidates: conn.candidates });
        if (!state.paired.some((p) => p.device_id === peer.device_id)) {
          state.paired.push({ name: peer.name, device_id: peer.device_id, fingerprint: peer.fingerprint });
        }
        status(`Connected to “${peer.name}” through the server.`);
        serveConnection(conn);
      },
      onError: (e) => {
        if (e instanceof PairingError) failed = e.message;
        problem(`${e instanceof PairingError ? 'A pairing' : 'A connection'} failed: ${e.message}`);
      },
      onGone: (e) => {
        host = null;
        state.code = '';
        $('#show-code').hidden = true;
        $('#create').disabled = false;
        problem(`Lost the server (${e.message}); the code is gone. Show a new one.`);
      },
    });
    await host.newCode();
  } catch (e) {
    problem(`Cannot make a code: ${e.message}`);
    $('#create').disabled = false;
  }
}

async function offLAN(info) {
  $('#host').hidden = true;
  $('#remote').hidden = false;
  let fromLink = location.hash.slice(1);
  try {
    fromLink = decodeURIComponent(fromLink);
  } catch { /* not percent-encoded: take it as it is */ }
  if (fromLink) {
    $('#code').value = fromLink;
    // The code is a secret: keep it out of the history and the address bar.
    history.replaceState(null, '', location.pathname + location.search);
  }
  $('#join-form').onsubmit = (ev) => {
    ev.preventDefault();
    joinCode(info, $('#code').value);
  };
  $('#create').onclick = () => showCode(info);
  status('Type the code another device shows, or show a code here.');
  if (fromLink) {
    try {
      splitCode(fromLink);
    } catch (e) {
      problem(`The link's code is not usable: ${e.message}`);
    }
  }
  state.ready = true;
}

// --- nearby devices (LAN) ---

let serving = null; // the device that served the page (/api/info)
let nearby = []; // what /api/devices listed last, without this page

// choose makes the device card send to the device with this id: the one
// that served the page (/ws/connect) or one it discovered (/ws/dial).
function choose(id) {
  if (id === serving.device_id) {
    target = { ...serving, dial: () => dial(me) };
  } else {
    const d = nearby.find((n) => n.device_id === id);
    if (!d) return;
    target = { ...d, dial: () => dial(me, d) };
  }
  state.target = id;
  showHost();
  drawDevices();
}

function drawDevices() {
  const all = [serving, ...nearby];
  state.devices = all.map(({ device_id, name, type, fingerprint }) => ({ device_id, name, type, fingerprint }));
  const others = all.filter((d) => d.device_id !== state.target);
  $('#nearby').hidden = others.length === 0;
  $('#nearby-list').replaceChildren(...others.map((d) => {
    const pick = el('button', { type: 'button', className: 'choose', textContent: 'Send here' });
    pick.dataset.id = d.device_id;
    pick.onclick = () => choose(d.device_id);
    return el('li', { className: 'device nearby' },
      el('b', { textContent: escapeName(d.name) }), ' ', el('span', { className: 'type', textContent: escapeName(d.type || '') }), ' ', pick);
  }));
}

// watchDevices keeps the list of nearby devices the serving process sees.
async function watchDevices() {
  for (;;) {
    try {
      const r = await fetch('api/devices', { cache: 'no-store' });
      if (r.ok) {
        const list = await r.json();
        nearby = (Array.isArray(list) ? list : []).filter((d) => d && typeof d.device_id === 'string' &&
          d.device_id !== me.deviceId && d.device_id !== serving.device_id && validName(d.name));
        drawDevices();
      }
    } catch { /* the device is away for a moment: keep the last list */ }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

// --- page setup ---

function showHost() {
  $('#host-name').textContent = escapeName(target.name);
  $('#host-type').textContent = escapeName(target.type);
  // A code belongs to one connection (its handshake's nonces): none yet.
  $('#host-code').textContent = 'shown once connected';
  $('#host').hidden = false;
}

// connectedCode shows the verification code of the connection just opened
// to the device card's device.
function connectedCode(code) {
  $('#host-code').textContent = code;
  state.codes.push(code);
}

function wire() {
  const files = $('#files');
  files.onchange = () => { sendItems(fromInput(files)); files.value = ''; };
  const folder = $('#folder');
  folder.onchange = () => { sendItems(fromInput(folder)); folder.value = ''; };
  const zone = $('#drop');
  zone.ondragover = (ev) => { ev.preventDefault(); zone.classList.add('over'); };
  zone.ondragleave = () => zone.classList.remove('over');
  zone.ondrop = async (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    sendItems(await fromDrop(ev.dataTransfer));
  };
  $('#text-form').onsubmit = (ev) => {
    ev.preventDefault();
    const t = $('#text');
    const text = t.value;
    if (!text) return;
    t.value = '';
    sendMessage(text);
  };
  $('#rename').onclick = async () => {
    const name = prompt('Name shown to other devices', me.name);
    if (name === null) return;
    if (!validName(name)) { problem('A name is 1 to 64 bytes of printable text.'); return; }
    await me.rename(name);
    $('#my-name').textContent = me.name;
    status('Renamed; reload the page for nearby devices to see the new name.');
  };
  $('#save-note').textContent = canPickFolder()
    ? 'Received files are written into a folder you pick when you accept.'
    : 'Received files are saved as downloads once their SHA-256 is verified.';
}

async function main() {
  if (typeof RTCPeerConnection !== 'function') {
    problem('This browser has no WebRTC; ThePeerDrop cannot run here.');
    return;
  }
  try {
    me = await loadIdentity();
    $('#my-name').textContent = me.name;
    const r = await fetch('api/info', { cache: 'no-store' });
    if (!r.ok) throw new Error(`api/info: ${r.status}`);
    const info = await r.json();
    state.mode = info.mode || 'lan';
    wire();
    if (state.mode === 'server') {
      await offLAN(info);
      return;
    }
    serving = info;
    choose(info.device_id);
    keepRegistered();
    watchDevices();
  } catch (e) {
    problem(`Cannot start: ${e.message}`);
  }
}

main();
