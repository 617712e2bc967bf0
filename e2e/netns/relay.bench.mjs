// Benchmark part "relay": accept → first remote frame through a TURN relay against the same
// over a direct link, on test hosts in network namespaces (e2e/netns/net.sh). Two networks run
// side by side and the calls take turns between them, so both see the same machine load:
//   relay   a and b cannot reach each other; the hub runs coturn and a calling-server that
//           hands out TURN credentials (--turn-secret, --turn-uri): media must cross the relay.
//   direct  a and b share a direct link; the hub's calling-server offers no TURN.
// Each call rings for RELAY_BENCH_RING_MS (1000) and is then accepted; the time from accept (the
// click on the callee's accept button, as its page sees it) to the first remote frame presented
// is taken on both sides (requestVideoFrameCallback), with
// where it went in between: the callee's getUserMedia inside accept(), each connection's ICE
// and DTLS state changes, the remote video track's unmute (its first RTP packet) and the
// first frame decoded. Writes OUTPUT/relay-bench.json and prints both figures.
//
// Not a test suite (the runner picks up *.test.mjs only); run it through the namespace runner:
//   NETNS_TESTS=e2e/netns/relay.bench.mjs RELAY_BENCH_CALLS=10 e2e/netns/run.sh
// It still fails when a call does not connect, or a relay call's media does not cross the relay.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Person, DESKTOP, PHONE } from '../harness.mjs';
import { TestNetwork, OUTPUT } from './network.mjs';
import { installProbe, waitForFramesSince, stats } from './probe.mjs';

const CALLS = Number(process.env.RELAY_BENCH_CALLS || 10);
const RING_MS = Number(process.env.RELAY_BENCH_RING_MS || 1000);
/** Frames (at 20 fps) that must arrive after accept for video to count as flowing. */
const FLOWING = 5;
const FRAME_MS = 20_000;

/**
 * Runs in each page before its scripts (after the probe): the wall-clock time of what happens
 * on the way from accept to the first frame, from outside the SDK.
 */
function timelineProbe() {
  const marks = [];
  const mark = (name, extra = {}) => marks.push({ name, t: Date.now(), ...extra });
  const gum = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = async function (...args) {
    mark('gumStart');
    const stream = await gum.apply(this, args);
    mark('gumDone');
    return stream;
  };
  const Native = window.RTCPeerConnection;
  let next = 0;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const pc = next++;
      mark('pcCreated', { pc });
      this.addEventListener('iceconnectionstatechange', () => mark(`ice:${this.iceConnectionState}`, { pc }));
      this.addEventListener('connectionstatechange', () => mark(`pc:${this.connectionState}`, { pc }));
      this.addEventListener('track', (e) => {
        if (e.track.kind !== 'video') return;
        mark('videoTrack', { pc, muted: e.track.muted });
        e.track.addEventListener('unmute', () => mark('videoUnmute', { pc }));
      });
    }
    async setRemoteDescription(desc) {
      mark(`remote:${desc?.type}`);
      return super.setRemoteDescription(desc);
    }
    async setLocalDescription(desc) {
      const r = await super.setLocalDescription(desc);
      mark(`local:${this.localDescription?.type}`);
      return r;
    }
    restartIce() {
      mark('restartIce');
      return super.restartIce();
    }
  };
  // The accept button's click as the page sees it: the test's own clock reading before
  // Playwright's click() also holds the driver's round trips.
  document.addEventListener('click', (e) => {
    if (e.target.closest?.('[data-testid="accept"]')) mark('acceptClick');
  }, true);
  window.benchMarks = () => marks;
}

const nets = {
  relay: new TestNetwork('rbench-relay'),
  direct: new TestNetwork('rbench-direct', { direct: true }),
};
const pairs = {};
const results = { relay: [], direct: [] };
const load = { atStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') };

before(async () => {
  nets.relay.up();
  nets.direct.up();
  const turn = await nets.relay.startTurn();
  const bases = {
    relay: await nets.relay.startServer(['--turn-secret', turn.secret, '--turn-uri', turn.uri]),
    direct: await nets.direct.startServer(),
  };
  for (const kind of ['relay', 'direct']) {
    const net = nets[kind];
    const [a, b] = await Promise.all([net.launchBrowser('a', bases[kind]), net.launchBrowser('b', bases[kind])]);
    const alice = new Person(a, 'alice', DESKTOP, `rbench-${kind}`, bases[kind]);
    const bob = new Person(b, 'bob', PHONE, `rbench-${kind}`, bases[kind]);
    for (const p of [alice, bob]) {
      await p.open();
      await p.context.addInitScript(timelineProbe);
      await installProbe(p);
      await p.signIn();
    }
    pairs[kind] = { alice, bob };
  }
});

after(async () => {
  load.atEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const summary = {};
  for (const kind of ['relay', 'direct']) {
    const xs = results[kind].flatMap((c) => [c.alice.firstFrame, c.bob.firstFrame]);
    summary[kind] = { ...spread(xs), breakdown: breakdown(results[kind]) };
    if (xs.length) {
      const side = (s) => results[kind].map((c) => c[s].firstFrame).join(', ');
      console.log(`${kind}: accept → first remote frame (ms) alice ${side('alice')}; bob ${side('bob')}; ` +
        `p50 ${summary[kind].p50}, p95 ${summary[kind].p95} (${xs.length} values)`);
    }
  }
  if (summary.relay && summary.direct) {
    console.log(`relay − direct, p50: ${summary.relay.p50 - summary.direct.p50} ms (goal: ≤ 10 ms); load average ${load.atStart} → ${load.atEnd}`);
  }
  writeFileSync(path.join(OUTPUT, 'relay-bench.json'), JSON.stringify({ ringMs: RING_MS, load, summary, calls: results }, null, 2));
  for (const { alice, bob } of Object.values(pairs)) await Promise.all([alice.close(), bob.close()]);
  await Promise.all(Object.values(nets).map((n) => n.down()));
});

/** p50 / p95 of `xs` (nearest rank). */
function spread(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return s.length ? { count: s.length, p50: at(0.5), p95: at(0.95) } : null;
}

/** Marks looked at after accept, on each side, in the order they usually come. */
const STEPS = ['gumStart', 'gumDone', 'restartIce', 'local:offer', 'remote:offer', 'local:answer', 'remote:answer', 'ice:checking', 'ice:connected', 'videoUnmute'];

/** Per side, the p50 (ms after accept) of each step's first mark after accept, and of the first frame. */
function breakdown(calls) {
  const out = {};
  for (const side of ['alice', 'bob']) {
    const row = {};
    for (const step of STEPS) {
      const xs = calls.map((c) => c[side].marks.find(([name, at]) => name === step && at >= 0)?.[1]).filter(Number.isFinite);
      if (xs.length) row[step] = { ...spread(xs), of: calls.length };
    }
    row.firstFrame = spread(calls.map((c) => c[side].firstFrame));
    out[side] = row;
  }
  return out;
}

/** `person`'s marks from `since` on, each as [name, ms after `accepted`]. */
async function timeline(person, since, accepted) {
  const marks = await person.page.evaluate(() => window.benchMarks());
  return marks.filter((m) => m.t >= since).map((m) => [m.name, m.t - accepted]);
}

/** One call on `kind`'s network: ring RING_MS, accept, both sides' first frame and timeline. */
async function oneCall(kind) {
  const { alice, bob } = pairs[kind];
  const placed = Date.now();
  await alice.page.getByTestId('callee-input').fill('bob');
  await alice.page.getByTestId('call-video').click();
  await bob.waitFor('[data-testid="incoming"]');
  // The ring's length is what is measured against, not a wait for something to happen.
  await new Promise((r) => setTimeout(r, Math.max(0, placed + RING_MS - Date.now())));
  const clicked = Date.now();
  await bob.page.getByTestId('accept').click();
  const [toAlice, toBob] = await Promise.all([
    waitForFramesSince(alice, 'bob', clicked, FLOWING, FRAME_MS),
    waitForFramesSince(bob, 'alice', clicked, FLOWING, FRAME_MS),
  ]);
  const [click] = (await bob.page.evaluate(() => window.benchMarks())).filter((m) => m.name === 'acceptClick' && m.t >= clicked);
  assert.ok(click, 'the page saw the accept click');
  const accepted = click.t;
  const selected = {};
  for (const p of [alice, bob]) {
    const [pc] = await stats(p);
    selected[p.userID] = pc?.selected ? [pc.selected.local.type, pc.selected.remote.type] : null;
  }
  const call = {
    alice: { firstFrame: toAlice - accepted, marks: await timeline(alice, placed, accepted) },
    bob: { firstFrame: toBob - accepted, marks: await timeline(bob, placed, accepted) },
    clickDelay: accepted - clicked,
    selected,
    load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0],
  };
  await alice.page.getByTestId('btn-hangup').click();
  await Promise.all([alice, bob].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
  return call;
}

test(`accept → first remote frame through a TURN relay and over a direct link, ${CALLS} calls each, taking turns`, async () => {
  for (let i = 0; i < CALLS; i += 1) {
    for (const kind of i % 2 ? ['direct', 'relay'] : ['relay', 'direct']) {
      const call = await oneCall(kind);
      if (kind === 'relay') {
        for (const side of ['alice', 'bob']) {
          assert.ok(call.selected[side]?.includes('relay'), `relay call ${i}, ${side}: the selected pair relays (${call.selected[side]})`);
        }
      }
      results[kind].push(call);
    }
  }
});
