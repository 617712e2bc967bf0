// Group calls through the server's SFU on the test hosts. The hub runs calling-server with the
// SFU on the service address (--sfu-udp) and TURN credentials minted for coturn, which runs
// there too; the people's browsers run on hosts a and b, each page one person of the demo
// (a group call: one connection per page, to the SFU, sending the camera as simulcast
// encodings and receiving every other participant on it).
//
// - A participant whose page may use relay candidates only (the SDK's `iceTransportPolicy:
//   'relay'`) reaches the SFU through coturn, and everyone sees everyone.
// - Host b's link to the hub is cut and restored: b's page resumes its place in the same SFU
//   session by an ICE restart (no second join), nobody hears b leave, and the others never stop
//   seeing each other meanwhile.
// - What host b can receive is capped (a tbf qdisc on the hub's side of b's link): the SFU
//   forwards b the senders' lowest layer, while a receiver on host a gets a larger one; once the
//   cap is lifted, b moves up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Person, PHONE } from '../harness.mjs';
import { TestNetwork, SERVICE_IP, OUTPUT } from './network.mjs';
import {
  installProbe, waitForFramesSince, stats, events, connectionStates, frameTimesSince, videoRtp,
} from './probe.mjs';

const HELP = execFileSync(process.env.SERVER_BIN, ['--help'], { encoding: 'utf8' });
const NO_SFU = !HELP.includes('--sfu-udp') && 'this calling-server has no --sfu-udp';
const NO_TURN = !HELP.includes('--turn-secret') && 'this calling-server has no --turn-secret';
const hasTc = (() => {
  try {
    execFileSync('tc', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const NO_TC = !hasTc && 'tc (iproute2) is not installed';

/** Frames (at 20 fps) that must arrive for video to count as flowing. */
const FLOWING = 10;
/** Frames (about 5 s at 20 fps) each view on host a presents before host b's link is cut. */
const BEFORE_CUT = 100;
/** Deadline for a group call's videos to flow once everyone accepted. */
const CONNECT_MS = 30_000;
/** Deadline for host b's page to notice its link is gone (Chromium's ICE consent checks). */
const NOTICE_MS = 20_000;
/** Deadline for b's video to flow again once its link is back (the SDK restarts ICE within ~3 s). */
const RESUME_MS = 25_000;
/**
 * The longest a view of a participant whose link stayed up may go without a frame while b's
 * link is cut: the SFU forwards their media as before.
 */
const MAX_GAP_MS = 1_500;
/** Deadline for the SFU to move a capped receiver down to the lowest layer. */
const DOWN_MS = 45_000;
/**
 * Deadline for the SFU to move it up again once the cap is lifted: its estimate of what b can
 * take has to grow past two medium layers, then the higher layer must fit for 3 s.
 */
const UP_MS = 45_000;
/** The cap on what host b receives, as a tbf qdisc on the hub's end of b's link. */
const CAP = ['rate', '400kbit', 'burst', '16kb', 'latency', '50ms'];

const net = new TestNetwork('sfu');
let base;
let serverLog;
let browsers;

before(async () => {
  net.up();
  if (NO_SFU) return;
  const turnArgs = [];
  if (!NO_TURN) {
    const turn = await net.startTurn();
    turnArgs.push('--turn-secret', turn.secret, '--turn-uri', turn.uri);
  }
  base = await net.startServer(['--sfu-udp', `${SERVICE_IP}:0`, ...turnArgs]);
  serverLog = path.join(OUTPUT, `${net.prefix}-server-8080.log`);
  const [a, b] = await Promise.all([net.launchBrowser('a', base), net.launchBrowser('b', base)]);
  browsers = { a, b };
});

after(async () => {
  await net.down();
});

/**
 * The demo's app.js, constructing the SDK with `iceTransportPolicy: 'relay'`: every connection
 * the SDK makes gathers relay candidates only (the TURN servers come from the server at login).
 */
function relayOnlyApp() {
  const source = readFileSync(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../www/js/app.js'), 'utf8');
  const construct = 'new TRTCCalling({ SDKAppID: sdkAppID })';
  assert.ok(source.includes(construct), `www/js/app.js constructs the SDK as "${construct}"`);
  return source.replace(construct, "new TRTCCalling({ SDKAppID: sdkAppID, iceTransportPolicy: 'relay' })");
}

/** Records, in the page, the text of every notice the demo shows (they fade after a while). */
function watchNotices(person) {
  return person.page.evaluate(() => {
    window.noticesSeen = [];
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) if (n.dataset?.testid === 'notice') window.noticesSeen.push(n.textContent);
      }
    }).observe(document.getElementById('notices'), { childList: true });
  });
}

/**
 * People signed in on their hosts (`specs`: [userID, host, { relayOnly }]), with the probe and
 * the notice watcher; on failure their consoles, events, connections and a screenshot.
 */
async function withGroup(scenario, specs, body) {
  const people = specs.map(([id, host]) => new Person(browsers[host], id, PHONE, scenario, base));
  try {
    for (const [i, p] of people.entries()) {
      await p.open();
      if (specs[i][2]?.relayOnly) {
        const app = relayOnlyApp();
        await p.context.route('**/js/app.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body: app }));
      }
      await installProbe(p);
      await watchNotices(p);
      await p.signIn();
    }
    await body(...people);
  } catch (err) {
    for (const p of people) {
      if (p.page) await p.shot('FAILED').catch(() => {});
      console.error(p.dumpLogs());
      const heard = await events(p).catch(() => 'page gone');
      const links = await stats(p).catch(() => 'page gone');
      const rtp = await videoRtp(p).catch(() => 'page gone');
      console.error(`--- ${p.userID} heard ${JSON.stringify(heard)}\n--- peer connections ${JSON.stringify(links)}\n--- video RTP ${JSON.stringify(rtp)}`);
    }
    throw err;
  } finally {
    await Promise.all(people.map((p) => p.close()));
  }
}

/** `caller` calls everyone else in `people` (video, a group call); they accept; returns when everyone sees everyone's video flowing. */
async function groupCall(caller, ...others) {
  await caller.page.getByTestId('callee-input').fill(others.map((p) => p.userID).join(' '));
  await caller.page.getByTestId('call-video').click();
  await Promise.all(others.map((p) => p.waitFor('[data-testid="incoming"]')));
  const accepted = Date.now();
  for (const p of others) await p.page.getByTestId('accept').click();
  const all = [caller, ...others];
  await Promise.all(all.map((p) => p.waitFor('body[data-call="connected"]')));
  await Promise.all(all.flatMap((p) => all.filter((o) => o !== p).map((o) => waitForFramesSince(p, o.userID, accepted, FLOWING, CONNECT_MS))));
  return accepted;
}

/** Everyone hangs up (the last one may see the call end first). */
async function hangUpAll(people) {
  for (const p of people) {
    if ((await p.page.evaluate(() => document.body.dataset.call)) !== 'idle') {
      await p.page.getByTestId('btn-hangup').click().catch(() => {});
    }
    await p.waitFor('body[data-screen="home"][data-call="idle"]');
  }
}

/** `person`'s one live peer connection: the one to the SFU. */
async function sfuConnection(person) {
  const [pc, ...more] = await stats(person);
  assert.ok(pc, `${person.userID}: a live peer connection`);
  assert.equal(more.length, 0, `${person.userID}: one peer connection in a group call through the SFU`);
  return pc;
}

/** A counter or gauge of the server's /metrics, read from `person`'s page (the test process has no route to the hub). */
async function metric(person, name) {
  const text = await person.page.evaluate(async () => (await fetch('/metrics', { cache: 'no-store' })).text());
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `/metrics has ${name}`);
  return Number(line.split(' ')[1]);
}

/** Waits (bounded) until the server's `name` reads `value`. */
async function waitForMetric(person, name, value, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let seen;
  while ((seen = await metric(person, name)) !== value) {
    assert.ok(Date.now() < deadline, `${name} is ${seen}, not ${value}, after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The server log's "joined the SFU" lines for `userID`. */
function sfuJoinLines(userID) {
  return readFileSync(serverLog, 'utf8').split('\n').filter((l) => l.includes('joined the SFU') && l.includes(`user="${userID}"`));
}

/**
 * The longest stretch without a frame of `userID` at `person` from `from` until `until` (ms,
 * default now), when it began (ms after `from`), and the frames seen.
 */
async function longestGap(person, userID, from, until = Date.now()) {
  const times = (await frameTimesSince(person, userID, from)).filter((t) => t <= until);
  let gap = 0;
  let at = 0;
  let prev = from;
  for (const t of [...times, until]) {
    if (t - prev > gap) [gap, at] = [t - prev, prev - from];
    prev = t;
  }
  return { gap, at, frames: times.length };
}

/** The frame width of each sender's video as `person` receives it ({ userID: width }). */
async function receivedWidths(person) {
  const out = {};
  for (const pc of await videoRtp(person)) {
    for (const r of pc.inbound) if (r.user) out[r.user] = { width: r.frameWidth ?? 0, frames: r.framesDecoded ?? 0 };
  }
  return out;
}

/** The frame width of each simulcast encoding `person` sends ({ rid: width }). */
async function sentWidths(person) {
  const out = {};
  for (const pc of await videoRtp(person)) {
    for (const r of pc.outbound) out[r.rid ?? '-'] = r.frameWidth ?? 0;
  }
  return out;
}

/** Polls `check` (returning { ok, value }) every 500 ms until ok, within `timeout`; returns the value. */
async function waitFor(check, what, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const { ok, value } = await check();
    if (ok) return value;
    assert.ok(Date.now() < deadline, `${what}: not within ${timeout} ms; last ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The smallest frame width among the simulcast encodings `person` sends now (its lowest layer). */
async function lowestSent(person) {
  const widths = Object.values(await sentWidths(person)).filter((w) => w > 0);
  return widths.length ? Math.min(...widths) : 0;
}

/**
 * Polls what `receiver` gets of `senders` until `fits(width, sender's lowest layer's width)`
 * holds for every one of them with frames still being decoded, within `timeout`; returns the
 * widths then ({ sender: { width, frames, lowest } }).
 */
async function waitForWidths(receiver, senders, fits, what, timeout) {
  let before = await receivedWidths(receiver);
  return waitFor(async () => {
    await new Promise((r) => setTimeout(r, 500));
    const now = await receivedWidths(receiver);
    const value = {};
    let ok = true;
    for (const s of senders) {
      const lowest = await lowestSent(s);
      const got = now[s.userID];
      value[s.userID] = { ...got, lowest };
      ok &&= Boolean(got) && lowest > 0 && fits(got.width, lowest) && got.frames > (before[s.userID]?.frames ?? 0);
    }
    before = now;
    return { ok, value };
  }, `${receiver.userID}: ${what}`, timeout);
}

test('a participant that may only relay reaches the SFU through TURN: everyone sees the other two', { skip: NO_SFU || NO_TURN }, async () => {
  await withGroup('sfu-relay', [['amy', 'a'], ['ben', 'a'], ['cat', 'b', { relayOnly: true }]], async (amy, ben, cat) => {
    await groupCall(amy, ben, cat);
    const pc = await sfuConnection(cat);
    assert.ok(pc.selected, 'cat: a selected candidate pair');
    assert.equal(pc.selected.local.type, 'relay', `cat's selected pair relays: ${JSON.stringify(pc.selected)}`);
    assert.ok(pc.remotes.every((c) => c.address === SERVICE_IP), `cat's remote candidates are the SFU's: ${JSON.stringify(pc.remotes)}`);
    for (const p of [amy, ben]) {
      const other = await sfuConnection(p);
      console.log(`${p.userID}'s pair to the SFU: ${JSON.stringify(other.selected)}`);
    }
    console.log(`cat's pair to the SFU: ${JSON.stringify(pc.selected)}`);
    await cat.shot('relayed');
    await hangUpAll([amy, ben, cat]);
  });
});

/**
 * How dan and eve (host a) saw each other while fay's link (host b) was cut, recorded by the cut
 * test for the one after it: each view's longest gap between frames from the cut on, the gap it
 * may have, and what was seen.
 */
const duringCut = [];

test("host b's link to the hub is cut and restored: b resumes in the same SFU session, nobody leaves", { skip: NO_SFU }, async () => {
  await withGroup('sfu-blip', [['dan', 'a'], ['eve', 'a'], ['fay', 'b']], async (dan, eve, fay) => {
    const joinsBefore = await metric(dan, 'calling_sfu_joins_total');
    await groupCall(dan, eve, fay);
    await waitForMetric(dan, 'calling_sfu_joins_total', joinsBefore + 3);
    const pcsBefore = (await connectionStates(fay)).length;
    // A stretch of the call before the cut, to compare dan and eve's views of each other with.
    const flowing = Date.now();
    await Promise.all([waitForFramesSince(dan, 'eve', flowing, BEFORE_CUT, CONNECT_MS), waitForFramesSince(eve, 'dan', flowing, BEFORE_CUT, CONNECT_MS)]);

    const cut = Date.now();
    net.setOnline('b', false);
    try {
      await fay.page.waitForFunction(() => window.probeConnectionStates().some((s) => s === 'disconnected' || s === 'failed'), null, { timeout: NOTICE_MS, polling: 50 });
    } catch (err) {
      throw new Error(`fay's page did not see its connection to the SFU interrupted within ${NOTICE_MS} ms: ${JSON.stringify(await connectionStates(fay))}\n${err.message}`);
    }
    const noticed = Date.now();
    const back = Date.now();
    net.setOnline('b', true);

    const directions = [[dan, 'fay'], [eve, 'fay'], [fay, 'dan'], [fay, 'eve']];
    const resumed = await Promise.allSettled(directions.map(([p, other]) => waitForFramesSince(p, other, back, FLOWING, RESUME_MS)));
    if (resumed.some((r) => r.status === 'rejected')) {
      const told = resumed.map((r, i) => `${directions[i][0].userID} watching ${directions[i][1]}: ${r.status === 'fulfilled' ? `first frame ${r.value - back} ms after the link came back` : r.reason.message.split('\n')[0]}`);
      throw new Error(`video did not resume both ways within ${RESUME_MS} ms of the link coming back:\n${told.join('\n')}`);
    }
    const [danSees, eveSees, fayDan, fayEve] = resumed.map((r) => r.value);
    console.log(`fay's page saw its SFU connection interrupted ${noticed - cut} ms after the cut; after the link came back, first frame of fay at dan ${danSees - back} ms, at eve ${eveSees - back} ms; of dan at fay ${fayDan - back} ms, of eve at fay ${fayEve - back} ms`);

    // dan and eve kept seeing each other across the cut, as before it.
    for (const [p, other] of [[dan, 'eve'], [eve, 'dan']]) {
      const { gap, at, frames } = await longestGap(p, other, cut);
      const before = await longestGap(p, other, flowing, cut);
      const seen = `${frames} frames in ${Date.now() - cut} ms from the cut on (the link came back at ${back - cut} ms), longest gap ${gap} ms from ${at} ms; before the cut: ${before.frames} frames in ${cut - flowing} ms, longest gap ${before.gap} ms`;
      console.log(`${p.userID} watching ${other}: ${seen}`);
      duringCut.push({ who: `${p.userID} watching ${other}`, gap, allowed: MAX_GAP_MS, seen });
    }
    // Nobody heard fay (or anyone) leave, and everyone is still in the call.
    for (const p of [dan, eve, fay]) {
      for (const name of ['onUserLeave', 'onCallEnd', 'onError']) {
        assert.deepEqual(await events(p, name), [], `${p.userID}: ${name}`);
      }
      const notices = await p.page.evaluate(() => window.noticesSeen);
      assert.deepEqual(notices.filter((n) => /left the call/.test(n)), [], `${p.userID}: notices ${JSON.stringify(notices)}`);
      assert.equal(await p.page.evaluate(() => document.body.dataset.call), 'connected', `${p.userID}: still in the call`);
    }
    // The same session: fay's page made no new connection and the SFU saw no second join.
    assert.equal((await connectionStates(fay)).length, pcsBefore, `fay's page made no new peer connection: ${JSON.stringify(await connectionStates(fay))}`);
    await sfuConnection(fay);
    assert.equal(await metric(dan, 'calling_sfu_joins_total'), joinsBefore + 3, 'calling_sfu_joins_total: nobody joined the SFU again');
    assert.equal(sfuJoinLines('fay').length, 1, `the server log's joins of fay: ${sfuJoinLines('fay').join('\n')}`);
    await fay.shot('resumed');
    await hangUpAll([dan, eve, fay]);
  });
});

// Apart from the cut test so that each promise fails on its own.
test("while host b's link is cut, the others' views of each other never pause", { skip: NO_SFU }, () => {
  assert.ok(duringCut.length === 2, 'the cut test recorded both views');
  for (const { who, gap, allowed, seen } of duringCut) {
    assert.ok(gap <= allowed, `${who}: the video stopped while fay was away: ${seen}`);
  }
});

test("a receiver whose link is capped gets the senders' lowest layer, a receiver uncapped a larger one; lifting the cap moves it up", { skip: NO_SFU || NO_TC }, async () => {
  await withGroup('sfu-layers', [['gus', 'a'], ['hal', 'a'], ['ivy', 'b']], async (gus, hal, ivy) => {
    await groupCall(gus, hal, ivy);
    const tc = (...args) => execFileSync('ip', ['netns', 'exec', net.ns('hub'), 'tc', ...args], { encoding: 'utf8' });
    let capped = false;
    try {
      // What the hub sends to b: everything ivy receives.
      tc('qdisc', 'add', 'dev', 'hub-b', 'root', 'tbf', ...CAP);
      capped = true;
      const capAt = Date.now();
      const low = await waitForWidths(ivy, [gus, hal], (w, lowest) => w > 0 && w <= lowest, "the senders' lowest layer", DOWN_MS);
      const downAfter = Date.now() - capAt;
      // Meanwhile the uncapped receivers on host a get a larger layer of the same senders,
      // while ivy still gets the lowest.
      const compared = await waitFor(async () => {
        const [atGus, atHal, atIvy, gusLowest, halLowest] = await Promise.all([
          receivedWidths(gus), receivedWidths(hal), receivedWidths(ivy), lowestSent(gus), lowestSent(hal),
        ]);
        const ok = atGus.hal?.width > atIvy.hal?.width && atHal.gus?.width > atIvy.gus?.width
          && atIvy.hal.width <= halLowest && atIvy.gus.width <= gusLowest;
        return { ok, value: { gus: atGus, hal: atHal, ivy: atIvy, lowest: { gus: gusLowest, hal: halLowest } } };
      }, 'uncapped receivers on host a getting a larger layer than ivy', DOWN_MS);
      const layers = { gus: await sentWidths(gus), hal: await sentWidths(hal) };
      console.log(`capped (${CAP.join(' ')}): ivy receives ${JSON.stringify(low)} after ${downAfter} ms; then gus receives ${JSON.stringify(compared.gus)}, hal ${JSON.stringify(compared.hal)}, ivy ${JSON.stringify(compared.ivy)}; layers sent ${JSON.stringify(layers)}`);
      await ivy.shot('capped');

      tc('qdisc', 'del', 'dev', 'hub-b', 'root');
      capped = false;
      const lifted = Date.now();
      let up;
      try {
        up = await waitForWidths(ivy, [gus, hal], (w, lowest) => w > lowest, 'a layer above the lowest', UP_MS);
      } catch (err) {
        const meanwhile = { gus: await receivedWidths(gus), hal: await receivedWidths(hal), sent: { gus: await sentWidths(gus), hal: await sentWidths(hal) } };
        throw new Error(`${err.message}\nmeanwhile, uncapped on host a: ${JSON.stringify(meanwhile)}`);
      }
      console.log(`cap lifted: ivy receives ${JSON.stringify(up)} after ${Date.now() - lifted} ms`);
      await ivy.shot('uncapped');
    } finally {
      if (capped) tc('qdisc', 'del', 'dev', 'hub-b', 'root');
    }
    await hangUpAll([gus, hal, ivy]);
  });
});
