//go:build linux

package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// limitsJS runs the page's off-LAN modules (rendezvous.js, offlan.js,
// pake.js) against a fake server connection in the page itself and
// returns what the Go test checks, as JSON.
const limitsJS = `(async () => {
  const rz = await import('./rendezvous.js');
  const ol = await import('./offlan.js');
  const pk = await import('./pake.js');
  const out = {};
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // fake is a rendezvous Client as far as Mux and RemoteHost use it.
  const fake = () => ({
    closed: null, iceServers: [], sent: [], creates: 0, deliver: null,
    signal(to, payload) { this.sent.push({ to, payload }); if (this.deliver) this.deliver(to, payload); },
    async create() { this.creates++; await sleep(20); return { code: '7KQ2M-XW4P' + this.creates, expires: 'not a date' }; },
    async closeCode() { await sleep(5); return {}; },
    async leave() { await sleep(5); return {}; },
    close() { this.closed = new Error('closed'); },
  });
  const chunk = (n) => pk.b64(new Uint8Array(n));
  const pipeId = (i) => i.toString(16).padStart(16, '0');
  // Each part runs on its own: one that throws is reported, not fatal.
  out.thrown = [];
  const part = async (name, f) => { try { await f(); } catch (e) { out.thrown.push(name + ': ' + e.message); } };

  // At most MAX_PIPES pipes open or waiting, one per peer at a time.
  await part('pipes', async () => {
    const c = fake();
    const accepted = [];
    new rz.Mux(c, true, (p) => accepted.push(p));
    for (let i = 0; i < 20; i++) c.onPeerJoined({ client_id: 'peer' + i }, '7KQ2M-XW4PD');
    for (let i = 0; i < 20; i++) c.onSignal('peer' + i, { pipe: pipeId(i + 1), seq: 0, data: chunk(10) });
    c.onSignal('peer0', { pipe: pipeId(99), seq: 0, data: chunk(10) });
    out.maxPipes = rz.MAX_PIPES;
    out.accepted = accepted.length;
    out.refused = c.sent.filter((s) => s.payload.close && s.payload.seq === 0).length;
    // A pipe that ends frees its place.
    accepted[0].close();
    c.onSignal('peer19', { pipe: pipeId(100), seq: 0, data: chunk(10) });
    out.acceptedAfterClose = accepted.length;
  });

  // The bytes a pipe holds count until its reader takes them: 1 MiB
  // before the handshake, 256 KiB of frames once in handshake mode.
  await part('held', async () => {
    const c = fake();
    const got = [];
    new rz.Mux(c, true, (p) => got.push(p));
    c.onPeerJoined({ client_id: 'a' }, '7KQ2M-XW4PD');
    c.onPeerJoined({ client_id: 'b' }, '7KQ2M-XW4PD');
    let seq = 0;
    while (seq < 40 && !(got[0] && got[0].err)) c.onSignal('a', { pipe: pipeId(1), seq: seq++, data: chunk(32768) });
    out.pakeChunksHeld = seq; // the one that broke 1 MiB included
    // A frame: version 2, type 1, 32762 bytes: one 32 KiB chunk.
    const frame = new Uint8Array(32768);
    frame[0] = 2; frame[1] = 1;
    new DataView(frame.buffer).setUint32(2, 32762);
    const data = pk.b64(frame);
    c.onSignal('b', { pipe: pipeId(2), seq: 0, data: chunk(100) });
    const p = got[1];
    await p.recv(1000);
    const { queue } = p.frames();
    seq = 1;
    for (let i = 0; i < 6; i++) c.onSignal('b', { pipe: pipeId(2), seq: seq++, data });
    out.framesQueued = queue.frames.length;
    for (let i = 0; i < 6; i++) await queue.read(1000); // taken: no longer held
    for (let i = 0; i < 8; i++) c.onSignal('b', { pipe: pipeId(2), seq: seq++, data });
    out.errAt8 = p.err ? p.err.message : '';
    c.onSignal('b', { pipe: pipeId(2), seq: seq++, data });
    out.errAt9 = p.err ? p.err.message : '';
  });

  // A refused signal ends the pipes to its recipient only; an error that
  // names nobody (an older server) ends them all.
  await part('refusedSignal', async () => {
    const c = fake();
    const got = [];
    new rz.Mux(c, true, (p) => got.push(p));
    c.onPeerJoined({ client_id: 'a' }, '7KQ2M-XW4PD');
    c.onPeerJoined({ client_id: 'b' }, '7KQ2M-XW4PD');
    c.onSignal('a', { pipe: pipeId(1), seq: 0, data: chunk(10) });
    c.onSignal('b', { pipe: pipeId(2), seq: 0, data: chunk(10) });
    // The server's errors, as the page's client reads them off the wire.
    const wire = new rz.Client(null);
    wire.onError = c.onError;
    wire.handle({ type: 'error', code: 'peer-busy', to: 'a' });
    out.refusedNamed = got.map((p) => !!p.err);
    wire.handle({ type: 'error', code: 'rate-limited' });
    out.refusedAnon = got.map((p) => !!p.err);
  });

  // The code refresh: a bad date counts as 10 minutes; always 1 to 10 minutes.
  await part('refresh', async () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    out.delays = [
      ol.refreshDelay('not a date', now), ol.refreshDelay(undefined, now), ol.refreshDelay(42, now),
      ol.refreshDelay('2025-12-31T23:00:00Z', now), ol.refreshDelay('2026-01-01T00:05:00Z', now),
      ol.refreshDelay('2026-01-01T05:00:00Z', now),
    ];
  });

  // Pairing messages: strings only, and only the two abort reasons.
  await part('decode', async () => {
    const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
    const G = '046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5';
    const g = Uint8Array.from(G.match(/../g), (h) => parseInt(h, 16)); // P-256's generator
    const tries = {
      arrayRole: { v: 1, type: 'pake', role: ['initiator'], pake: pk.b64(g) },
      arrayType: { v: 1, type: ['abort'], reason: 'mismatch' },
      numberReason: { v: 1, type: 'abort', reason: 7 },
      otherReason: { v: 1, type: 'abort', reason: 'you were hacked, visit example.com' },
      mismatch: { v: 1, type: 'abort', reason: 'mismatch' },
      malformed: { v: 1, type: 'abort', reason: 'malformed' },
    };
    out.decode = {};
    for (const [k, m] of Object.entries(tries)) {
      try { pk.decodeMessage(enc(m)); out.decode[k] = 'ok'; } catch (e) { out.decode[k] = 'refused'; }
    }
  });

  // Two retirements at once make one new code.
  const hostOf = (c, onError) => new ol.RemoteHost(c,
    { deviceId: 'ab'.repeat(16), fingerprint: 'sha-256 ' + Array(32).fill('AB').join(':'), name: 'host' },
    { onCode: () => {}, onConn: () => {}, onError });
  await part('retire', async () => {
    const c = fake();
    const h = hostOf(c, () => {});
    await h.newCode();
    await Promise.all([h.retire(h.room), h.retire(h.room)]);
    out.createsAfterTwoRetires = c.creates;
    h.close();
  });

  // A joiner that rejects M4 (its abort where the hello would be) is a
  // failed run: the code is retired.
  await part('m4', async () => {
    const c = fake();
    const errors = [];
    const h = hostOf(c, (e) => errors.push(e.message));
    await h.newCode();
    const code = h.full;
    c.onPeerJoined({ client_id: 'j' }, '7KQ2M-XW4P1');
    const inbox = [];
    let wake = null;
    c.deliver = (to, payload) => { if (payload.data) { inbox.push(pk.unb64(payload.data)); if (wake) wake(); } };
    let seq = 0;
    const tr = {
      send: (b) => c.onSignal('j', { pipe: pipeId(7), seq: seq++, data: pk.b64(b) }),
      recv: async (t) => {
        const end = Date.now() + t;
        while (!inbox.length && Date.now() < end) await new Promise((r) => { wake = r; setTimeout(r, 100); });
        if (!inbox.length) throw new Error('nothing');
        return inbox.shift();
      },
    };
    await pk.authenticate(tr, code, 'initiator', { device_id: 'cd'.repeat(16), fingerprint: 'sha-256 ' + Array(32).fill('CD').join(':') });
    tr.send(new TextEncoder().encode('{"v":1,"type":"abort","reason":"mismatch"}'));
    for (let i = 0; i < 50 && c.creates < 2; i++) await sleep(100);
    out.createsAfterM4Abort = c.creates;
    out.m4Errors = errors;
    h.close();
  });
  return JSON.stringify(out);
})()`

// The off-LAN page's limits and checks, run in the page on its own
// modules: a code's creator keeps at most MAX_PIPES pipes, one per peer;
// a pipe's unread bytes count until the reader takes them; the code
// refresh never spins; pairing messages are typed strictly; a refused
// signal ends only its recipient's pipes; two
// retirements make one code; a rejected M4 retires the code.
func TestWebOffLANLimits(t *testing.T) {
	ctx := webContext(t)
	_, pageURL := startServeWithPage(t, ctx)
	p := openBrowser(t, ctx, pageURL, t.TempDir())
	p.poll(`window.peerdrop && window.peerdrop.state.ready`, 30*time.Second)
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](limitsJS, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	var v struct {
		MaxPipes, Accepted, Refused, AcceptedAfterClose int
		PakeChunksHeld, FramesQueued                    int
		ErrAt8, ErrAt9                                  string
		Delays                                          []int
		Decode                                          map[string]string
		CreatesAfterTwoRetires, CreatesAfterM4Abort     int
		M4Errors                                        []string
		RefusedNamed, RefusedAnon                       []bool
		Thrown                                          []string
	}
	require.NoError(t, json.Unmarshal([]byte(got), &v), "%s", got)
	assert.Empty(t, v.Thrown, "parts that threw")
	assert.Equal(t, 16, v.MaxPipes)
	assert.Equal(t, 16, v.Accepted, "16 pipes at most")
	assert.Equal(t, 5, v.Refused, "4 beyond the limit and peer0's second pipe are closed at once")
	assert.Equal(t, 17, v.AcceptedAfterClose, "a closed pipe frees its place")
	assert.Equal(t, 33, v.PakeChunksHeld, "32 chunks of 32 KiB fill 1 MiB; the 33rd ends the pipe")
	assert.Equal(t, 6, v.FramesQueued)
	assert.Empty(t, v.ErrAt8, "frames read no longer count; 8 unread frames are 256 KiB")
	assert.Contains(t, v.ErrAt9, "more than the handshake needs", "a 9th unread frame is over 256 KiB")
	assert.Equal(t, []int{600000, 600000, 600000, 60000, 300000, 600000}, v.Delays)
	assert.Equal(t, map[string]string{
		"arrayRole": "refused", "arrayType": "refused", "numberReason": "refused",
		"otherReason": "refused", "mismatch": "ok", "malformed": "ok",
	}, v.Decode)
	assert.Equal(t, 2, v.CreatesAfterTwoRetires, "one code at start, one for both retirements")
	assert.Equal(t, 2, v.CreatesAfterM4Abort, "the code is retired after a rejected M4")
	require.NotEmpty(t, v.M4Errors)
	assert.Contains(t, v.M4Errors[0], "the pairing code did not match")
	assert.Equal(t, []bool{true, false}, v.RefusedNamed, "a refused signal to a ends a's pipe only")
	assert.Equal(t, []bool{true, true}, v.RefusedAnon, "an error naming nobody ends every pipe")
}
