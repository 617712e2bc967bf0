// Call-setup benchmark: trtc-calling-wasm and PeerJS in the same headless Chromium, with the
// same flags and fake devices, over loopback. For each system it places N calls between two
// browser contexts, the two systems taking turns call by call (so both see the same machine
// load), and measures, on one clock shared by both pages:
//   ring    the caller's call → its SDP offer at the callee, the same work for both: ours
//           call() → the relayed offer arriving at the callee; PeerJS peer.call() → the callee's
//           `call` event (which PeerJS fires on the offer). Ours also: call() → INVITED.
//   answer  accept() → first remote frame presented, on each side (requestVideoFrameCallback)
//           (PeerJS: call.answer(stream) → first frame; also from before its getUserMedia),
//           after a ring of --ring-ms, then again for --short-calls calls after --short-ring-ms
//           (ours connects while it rings, so a short ring leaves it less done in advance).
//   hangup  hangup() → the peer's CALL_END         (PeerJS: call.close() → peer's `close`)
// Run inside a loopback-only network namespace with both servers already listening.
//
// node bench/callsetup.mjs --ours ws://127.0.0.1:P/ws --app ID=KEY --peer-port P2 --pkg DIR
//      [--calls 30] [--ring-ms 1000] [--short-calls 10] [--short-ring-ms 200]
//      [--deadline-s 300] [--out FILE]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { userSig } from './usersig.mjs';
import { summary } from './stats.mjs';
import { CHROMIUM_FLAGS } from './chromium.mjs';
import { serveFiles } from './files.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const CALLS = Number(args.calls ?? 30);
const RING_MS = Number(args['ring-ms'] ?? 1000);
const SHORT_CALLS = Number(args['short-calls'] ?? 10);
const SHORT_RING_MS = Number(args['short-ring-ms'] ?? 200);
// One bound for the whole run: the systems take turns, so neither can starve the other.
const DEADLINE = Date.now() + Number(args['deadline-s'] ?? 300) * 1000;
const [appId, appKey] = String(args.app ?? '').split('=');
const require = createRequire(path.join(here, '..', '.tools', 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');


// Static files for both pages: the pages, the SDK package, and the PeerJS client bundle.
const fetched = new Set();
const roots = [
  ['/pkg/', path.resolve(args.pkg ?? path.join(here, '..', 'pkg'))],
  ['/peerjs/', path.join(here, 'node_modules', 'peerjs', 'dist')],
  ['/', path.join(here, 'pages')],
];
const { server: files, origin } = await serveFiles(roots, (prefix, rest) => { if (prefix === '/pkg/') fetched.add(rest); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `page`'s marks until `pick(marks)` is truthy, or throws after `ms` (or at the run's deadline). */
async function waitMarks(page, pick, ms, what) {
  const until = Math.min(Date.now() + ms, DEADLINE);
  for (;;) {
    const m = await page.evaluate(() => window.bench.marks());
    if (pick(m)) return m;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

async function openPage(browser, file) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${origin}/${file}`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 20000 });
  return { page, context, errors };
}

/**
 * Splits one latency of calling-server's protocol into: the sender's delay from the API call to
 * its frame leaving, the frame's trip through the server, and the receiver's delay from the
 * frame's arrival to its event. Nothing for PeerJS, whose frames have other types.
 */
function split(name, start, sentLog, sentTypes, recvLog, recvTypes, event) {
  const sent = sentLog.find((w) => w.dir === 'out' && sentTypes.includes(w.type) && w.t >= start);
  // The frame that caused the event: the last of those types to arrive before it.
  const frames = sent ? recvLog.filter((w) => w.dir === 'in' && recvTypes.includes(w.type) && w.t >= sent.t - 1) : [];
  const recv = frames.filter((w) => w.t <= event).pop() ?? frames[0];
  if (!sent || !recv) return {};
  return {
    [`${name}SenderDelay`]: sent.t - start,
    [`${name}ServerTrip`]: recv.t - sent.t,
    [`${name}ReceiverDelay`]: event - recv.t,
  };
}

/** Time between two frames the server sends one client for one action (`a` then `b`). */
function frameGap(name, start, log, a, b) {
  const first = log.find((w) => w.dir === 'in' && w.type === a && w.t >= start);
  const second = first && log.find((w) => w.dir === 'in' && w.type === b && w.t >= first.t);
  return second ? { [name]: second.t - first.t } : {};
}

/** How long the page's own listener ran for the first `type` frame after `start`. */
function handled(name, start, log, type) {
  const h = log.find((w) => w.dir === 'handled' && w.type === type && w.t >= start);
  return h ? { [name]: h.ms } : {};
}

/** Main-thread time of the callee's RTCPeerConnection.close() calls between `start` and `end`. */
function peerClose(name, start, log, end) {
  const closes = log.filter((w) => w.dir === 'pcClose' && w.t >= start && w.t <= end);
  return closes.length ? { [name]: closes.reduce((n, w) => n + w.ms, 0) } : {};
}

/**
 * Where the answer time goes (calling-server's protocol): after accept(), when the callee's
 * `accept` frame left, and when the first relayed WebRTC signal reached either side.
 */
function timeline(accept, calleeLog, callerLog) {
  const after = (log, dir, types) => log.find((w) => w.dir === dir && types.includes(w.type) && w.t >= accept);
  const sent = after(calleeLog, 'out', ['accept']);
  const signals = [after(calleeLog, 'in', ['signal']), after(callerLog, 'in', ['signal'])].filter(Boolean);
  const out = {};
  if (sent) out.answerAcceptSent = sent.t - accept;
  if (signals.length) out.answerFirstSignal = Math.min(...signals.map((w) => w.t)) - accept;
  return out;
}

/**
 * Where the caller's wait for the callee's first frame goes, for both systems: the callee's
 * camera opening (ours: inside accept(); PeerJS: before its answer(), so not in its answer
 * time), the answer → the first packet of the callee's video at the caller (its track's
 * unmute), and that → the frame presented.
 */
function callerSide(ce, cr) {
  const first = (list, t) => list?.find((x) => x >= t);
  const out = {};
  const open = first(ce.mediaReady, ce.accept);
  if (open !== undefined) out.answerCalleeCapture = open - ce.accept;
  const unmute = first(cr.videoUnmutes, ce.accept);
  if (unmute !== undefined) {
    out.answerCallerFirstPacket = unmute - ce.answer;
    out.answerCallerPresent = cr.firstFrame - unmute;
  }
  return out;
}

/** Both pages of one system, logged in; `login` logs a page in as a user. */
async function openSystem(browser, name, file, login) {
  const caller = await openPage(browser, file);
  const callee = await openPage(browser, file);
  const tag = Math.random().toString(36).slice(2, 8);
  const ids = { caller: `${name}caller${tag}`, callee: `${name}callee${tag}` };
  await login(caller.page, ids.caller);
  await login(callee.page, ids.callee);
  return { name, caller, callee, ids, rows: [], shortRows: [], failures: [] };
}

/** Waits until both pages of `sys` are idle; throws after 5 s. */
async function waitIdle(sys, what) {
  const until = Date.now() + 5000;
  for (;;) {
    const status = [await sys.caller.page.evaluate(() => window.bench.status()),
      await sys.callee.page.evaluate(() => window.bench.status())];
    if (status.every((s) => s === 'idle')) return;
    if (Date.now() > until) throw new Error(`${sys.name}: not idle 5 s ${what} (caller ${status[0]}, callee ${status[1]})`);
    await sleep(5);
  }
}

/** One call of `sys` whose callee answers after `ringMs` plus `offset` ms; returns its figures. */
async function oneCall(sys, ringMs, offset) {
  const { caller, callee, ids } = sys;
  await caller.page.evaluate(() => window.bench.reset());
  await callee.page.evaluate(() => window.bench.reset());
  await caller.page.evaluate((id) => window.bench.call(id), ids.callee);
  await waitMarks(callee.page, (m) => m.invited, 5000, 'the invitation');
  // A person takes a moment to answer: the ring plus 0-49 ms, a different offset for each
  // call and the same sequence for both systems. A fixed delay would put every answer at the
  // same point of the caller's camera frame cycle (50 ms for the fake camera, opened when
  // calling), so every call would wait the same part of a frame for the first one to send.
  await sleep(ringMs + offset);
  await callee.page.evaluate(() => window.bench.accept());
  const ce = await waitMarks(callee.page, (m) => m.firstFrame, 10000, "the callee's first frame");
  const cr = await waitMarks(caller.page, (m) => m.firstFrame, 10000, "the caller's first frame");
  await caller.page.evaluate(() => window.bench.hangup());
  const ce2 = await waitMarks(callee.page, (m) => m.end, 5000, "the callee's call end");
  const cr2 = await caller.page.evaluate(() => window.bench.marks());
  // The caller's offer at the callee: PeerJS fires `call` on it; ours relays it as a signal.
  const ringFrom = cr.peerCall ?? cr.call;
  const offer = ce.wire.find((w) => w.dir === 'in' && w.type === 'signal' && w.kind === 'offer' && w.t >= cr.call);
  const offerAt = cr.peerCall !== undefined ? ce.invited : offer?.t;
  const row = {
    ringToOffer: offerAt - ringFrom,
    ringFromClick: ce.invited - cr.call,
    answerCallee: ce.firstFrame - ce.answer,
    answerCaller: cr.firstFrame - ce.answer,
    answerCalleeFromClick: ce.firstFrame - ce.accept,
    answerCallerFromClick: cr.firstFrame - ce.accept,
    hangup: ce2.end - cr2.hangup,
    // Devices the callee opened before it accepted (must be 0).
    calleeMediaBeforeAccept: ce.mediaOpenings.filter((t) => t < ce.accept).length,
    ...split('ring', cr.call, cr.wire, ['invite'], ce.wire, ['invited'], ce.invited),
    ...timeline(ce.accept, ce.wire, cr.wire),
    ...callerSide(ce, cr),
    ...split('hangup', cr2.hangup, cr2.wire, ['hangup'], ce2.wire, ['memberLeft', 'callEnded'], ce2.end),
    ...frameGap('hangupFrameGap', cr2.hangup, ce2.wire, 'memberLeft', 'callEnded'),
    ...handled('hangupMemberLeftHandling', cr2.hangup, ce2.wire, 'memberLeft'),
    ...peerClose('hangupCalleePeerClose', cr2.hangup, ce2.wire, ce2.end),
  };
  // Ours only: the bare invitation, without any connection work.
  if (cr.peerCall === undefined) row.ringInvite = ce.invited - cr.call;
  // Both sides back to idle before the next call: a call that does not end counts as failed.
  await waitIdle(sys, 'after the hangup');
  return row;
}

/** Runs one call of `sys`, recording its figures in `rows` or its failure. */
async function turn(sys, rows, i, ringMs, offset) {
  try {
    rows.push(await oneCall(sys, ringMs, offset));
  } catch (e) {
    const error = String(e.message ?? e);
    sys.failures.push({ call: i, ringMs, error });
    console.error(`[callsetup] ${sys.name} call ${i} (ring ${ringMs} ms) FAILED: ${error}`);
    await sys.caller.page.evaluate(() => window.bench.hangup()).catch(() => {});
    await sys.callee.page.evaluate(() => window.bench.hangup()).catch(() => {});
    await waitIdle(sys, 'after a failed call').catch((err) => {
      sys.failures.push({ call: i, ringMs, error: String(err.message ?? err) });
      console.error(`[callsetup] ${sys.name}: ${err.message ?? err}`);
    });
  }
}

/** The figures of one system's calls. */
async function finish(sys) {
  const pageErrors = [...sys.caller.errors, ...sys.callee.errors].slice(0, 5);
  await sys.caller.context.close();
  await sys.callee.context.close();
  const { rows, shortRows } = sys;
  const pick = (k, list = rows) => summary(list.map((r) => r[k]));
  return {
    calls: rows.length,
    shortCalls: shortRows.length,
    failures: sys.failures,
    pageErrors,
    ringToOffer: pick('ringToOffer'),
    ringInvite: pick('ringInvite'),
    ringFromClick: pick('ringFromClick'),
    answerCallee: pick('answerCallee'),
    answerCaller: pick('answerCaller'),
    answerCalleeFromClick: pick('answerCalleeFromClick'),
    answerCallerFromClick: pick('answerCallerFromClick'),
    shortAnswerCallee: pick('answerCallee', shortRows),
    shortAnswerCaller: pick('answerCaller', shortRows),
    hangup: pick('hangup'),
    breakdown: Object.fromEntries(
      [
        ...['ring', 'hangup'].flatMap((n) => ['SenderDelay', 'ServerTrip', 'ReceiverDelay'].map((k) => `${n}${k}`)),
        'hangupFrameGap',
        'hangupMemberLeftHandling',
        'hangupCalleePeerClose',
        'answerAcceptSent',
        'answerFirstSignal',
        'answerCalleeCapture',
        'answerCallerFirstPacket',
        'answerCallerPresent',
      ].map((k) => [k, pick(k)]).filter(([, v]) => v.count > 0),
    ),
    calleeMediaBeforeAccept: [...rows, ...shortRows].reduce((n, r) => n + r.calleeMediaBeforeAccept, 0),
    rows,
    shortRows,
  };
}

/**
 * The calls of both systems, taking turns call by call (which one goes first alternates), the
 * normal ring first, then the short one.
 */
async function interleave(systems) {
  const live = systems.filter((s) => !s.error);
  const rounds = [[CALLS, RING_MS, 'rows'], [SHORT_CALLS, SHORT_RING_MS, 'shortRows']];
  for (const [count, ringMs, list] of rounds) {
    for (let i = 0; i < count && Date.now() < DEADLINE; i++) {
      const order = i % 2 ? [...live].reverse() : live;
      for (const sys of order) {
        // A system that never completed a call after 3 tries is not tried further.
        if (sys.failures.length >= 3 && sys.rows.length + sys.shortRows.length === 0) continue;
        await turn(sys, sys[list], i, ringMs, (i * 37) % 50);
      }
    }
  }
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
const result = {
  calls: CALLS, ringMs: RING_MS, shortCalls: SHORT_CALLS, shortRingMs: SHORT_RING_MS, ringSpreadMs: 50,
  interleaved: true, chromium: browser.version(), flags: CHROMIUM_FLAGS,
};
try {
  const ours = await openSystem(browser, 'ours', 'ours.html', async (page, userID) => {
    const sig = userSig(appKey, Number(appId), userID);
    await page.evaluate((o) => window.bench.login(o), {
      sdkAppID: Number(appId), userID, userSig: sig, signalingUrl: args.ours,
    });
  }).catch((e) => ({ error: String(e.message ?? e) }));
  const peerjs = await openSystem(browser, 'PeerJS', 'peerjs.html', async (page, userID) => {
    await page.evaluate((o) => window.bench.login(o), { userID, host: '127.0.0.1', port: Number(args['peer-port']) });
  }).catch((e) => ({ error: String(e.message ?? e) }));
  await interleave([ours, peerjs]);
  result.ours = ours.error ? ours : await finish(ours);
  result.ours.pkgFetched = [...fetched].sort();
  result.peerjs = peerjs.error ? peerjs : await finish(peerjs);
} finally {
  await browser.close();
  files.close();
}
const json = JSON.stringify(result, null, 2);
if (args.out) fs.writeFileSync(args.out, json);
for (const sys of ['ours', 'peerjs']) {
  const r = result[sys];
  if (r.error) console.error(`[callsetup] ${sys}: ${r.error}`);
  else console.error(`[callsetup] ${sys}: ${r.calls} + ${r.shortCalls} calls, ring to offer p50 ${r.ringToOffer.p50?.toFixed(1)} ms, answer p50 ${r.answerCallee.p50?.toFixed(1)}/${r.answerCaller.p50?.toFixed(1)} ms (short ring ${r.shortAnswerCallee.p50?.toFixed(1)}/${r.shortAnswerCaller.p50?.toFixed(1)}), hangup p50 ${r.hangup.p50?.toFixed(1)} ms, ${r.failures.length} failures`);
}
