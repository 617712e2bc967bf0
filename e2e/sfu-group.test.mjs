// Group calls through the SFU, driven through the demo page. The server of e2e/run.sh runs the
// SFU, so a group call's media goes through it: each page has exactly one RTCPeerConnection for
// the call (to the SFU), sends its camera once as one video m-line with the simulcast encodings
// the SDK gives its camera's size (two at the demo's 480p, three from 720p), and receives every
// other participant's audio and video on that same
// connection, in a MediaStream whose id is their user id. The harness records every
// RTCPeerConnection a page creates (window.rtcStats), so this is checked from outside the SDK.
// The SDK tells the SFU how large each view is drawn, and the SFU forwards the smallest layer
// that fills it: a thumbnail gets a sender's lowest layer while a large view gets a larger one.
// Screenshots go to test-output/e2e/<scenario>-<step>-<user>.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { launchBrowser, withPeople, PHONE } from './harness.mjs';
import {
  MEDIA_TIMEOUT, describe, pageState, onEveryPage, everyoneSeesEveryone, groupCall, waitConnected, others,
} from './sfu-calls.mjs';

/**
 * People in the full group call: the server's limit, 9; E2E_SFU_GROUP_SIZE (2 to 9) sets fewer.
 * Each captures 720p, so that it sends three simulcast encodings.
 */
const GROUP_SIZE = Number(process.env.E2E_SFU_GROUP_SIZE || 9);

/**
 * How often the waits on a page's stats look at them. Nine pages sending three encodings each
 * and decoding eight others' audio and video fill two cores: reading stats more often would
 * take CPU from the call they measure.
 */
const STATS_POLL_MS = 1000;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/**
 * What is wrong with a page's rtcStats() sample for a group call through the SFU with
 * `others` (user ids), as a list of sentences (empty: nothing). Runs in Node and, injected, in
 * the pages (for waitForFunction), so it uses nothing outside itself. `exactInbound`: every
 * inbound video stream of the connection must be a received one (a call without churn).
 */
function sfuProblems(sample, others, exactInbound, encodings) {
  const problems = [];
  if (sample.open.length !== 1) {
    const out = sample.open.flatMap((c) => c.outboundVideo);
    const inb = sample.open.flatMap((c) => c.inboundVideo);
    return [`${sample.open.length} open RTCPeerConnections (${sample.created} created), not 1; between them `
      + `${out.length} outbound video streams (rids [${out.map((o) => o.rid ?? '-')}]) and ${inb.length} inbound`];
  }
  const pc = sample.open[0];
  const out = pc.outboundVideo;
  const rids = out.map((o) => o.rid).sort();
  const asked = [...pc.configuredRids].sort();
  if (asked.length < 2 || asked.includes(null) || rids.join() !== asked.join()) {
    problems.push(`${out.length} outbound video streams with rids [${rids}], not the simulcast encodings `
      + `[${asked}] its sender was given`);
  }
  if (encodings && asked.length !== encodings) {
    problems.push(`its sender was given ${asked.length} simulcast encodings [${asked}], not ${encodings}`);
  }
  const mids = [...new Set(out.map((o) => o.mid))];
  if (mids.length !== 1 || mids[0] === null) problems.push(`outbound video on mids [${mids}], not on one`);
  const inbound = pc.inboundVideo.filter((i) => i.receiving);
  if (exactInbound && inbound.length !== pc.inboundVideo.length) {
    problems.push(`${pc.inboundVideo.length - inbound.length} inbound video streams no longer received`);
  }
  const tracks = new Set(inbound.map((i) => i.track));
  if (tracks.size !== others.length || inbound.length !== others.length) {
    problems.push(`${inbound.length} inbound video streams on ${tracks.size} tracks, not ${others.length}`);
  }
  const streams = inbound.map((i) => i.stream ?? '(none)').sort();
  if (streams.join() !== [...others].sort().join()) {
    problems.push(`inbound video in streams [${streams}], not [${[...others].sort()}]`);
  }
  const still = inbound.filter((i) => !(i.framesDecoded > 0)).map((i) => i.stream ?? i.track);
  if (still.length) problems.push(`nothing decoded from [${still}]`);
  return problems;
}

/**
 * Waits until `person`'s page is in the SFU shape with `others` (see sfuProblems), and its
 * lowest encoding's frames encoded then advance. Throws what the page has instead.
 */
async function expectSfuShape(person, others, { exactInbound = false, encodings = null } = {}) {
  const { page, userID } = person;
  await page.evaluate(`window.sfuProblems = ${sfuProblems}`);
  const since = await page.evaluate(() => performance.now());
  const fail = async (what, err) => {
    const sample = await person.rtcStats().catch((e) => null);
    const problems = sample ? sfuProblems(sample, others, exactInbound, encodings) : ['page gone'];
    throw new Error(`${userID}: ${what}: ${problems.join('; ') || 'no problem left'}\n`
      + `${sample ? describe(sample) : ''}\n  ${await pageState(person)}\n${err.message}`);
  };
  try {
    await page.waitForFunction(
      ([o, t, exact, n]) => {
        const s = window.rtcLatest(t);
        return s !== null && window.sfuProblems(s, o, exact, n).length === 0;
      },
      [others, since, exactInbound, encodings],
      { timeout: MEDIA_TIMEOUT, polling: STATS_POLL_MS },
    );
  } catch (err) {
    await fail(`not one connection to the SFU sending its simulcast encodings and receiving ${others.join(', ')}`, err);
  }
  const base = (await person.rtcStats()).open[0].outboundVideo.find((o) => o.rid === 'l').framesEncoded;
  const after = await page.evaluate(() => performance.now());
  try {
    await page.waitForFunction(
      ([b, t]) => {
        const l = window.rtcLatest(t)?.open[0]?.outboundVideo.find((o) => o.rid === 'l');
        return Boolean(l) && l.framesEncoded > b;
      },
      [base, after],
      { timeout: MEDIA_TIMEOUT, polling: STATS_POLL_MS },
    );
  } catch (err) {
    await fail(`encoding l does not advance past ${base} frames`, err);
  }
}

test(`${GROUP_SIZE} people in one group call: one connection each to the SFU, one video of three `
  + `simulcast encodings, ${GROUP_SIZE - 1} received`, async () => {
  const names = ['nina', 'omar', 'pete', 'ruth', 'saul', 'tina', 'ugo', 'vera', 'walt'].slice(0, GROUP_SIZE);
  const started = Date.now();
  const specs = names.map((n) => [n, PHONE, { query: '?quality=720p' }]);
  await withPeople(browser, 'sfu-1-full', specs, async (...people) => {
    const [caller, ...callees] = people;
    await groupCall(caller, callees);
    const connected = Date.now();
    await onEveryPage(people, (p) => expectSfuShape(p, others(people, p), { exactInbound: true, encodings: 3 }));
    const shaped = Date.now();
    await everyoneSeesEveryone(people);
    await Promise.all(people.map((p) => p.shot('01-all')));
    const n = people.length;
    console.log(`${n} people: signed in and connected in ${(connected - started) / 1000} s, one connection each `
      + `receiving ${n - 1} ${(shaped - connected) / 1000} s later, all ${n * (n - 1)} videos advancing `
      + `${(Date.now() - shaped) / 1000} s after that; load average ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  });
});

test('a member leaves a group call and is added back: the others go on, then everyone sees everyone', async () => {
  const names = ['abe', 'bea', 'cid', 'dot'];
  await withPeople(browser, 'sfu-2-rejoin', names.map((n) => [n, PHONE]), async (...people) => {
    const [abe, bea, cid, dot] = people;
    await groupCall(abe, [bea, cid, dot]);
    await everyoneSeesEveryone(people);
    await onEveryPage(people, (p) => expectSfuShape(p, others(people, p), { exactInbound: true }));

    // Dot hangs up: her tile goes at the three others, who go on seeing each other.
    await dot.page.getByTestId('btn-hangup').click();
    await dot.waitFor('body[data-screen="home"][data-call="idle"]');
    const stayed = [abe, bea, cid];
    await Promise.all(stayed.map((p) => p.waitGone(p.tile('dot'))));
    await onEveryPage(stayed, waitConnected);
    await everyoneSeesEveryone(stayed);
    await onEveryPage(stayed, (p) => expectSfuShape(p, others(stayed, p)));
    await Promise.all(stayed.map((p) => p.shot('01-dot-left')));

    // Bea adds Dot back; Dot accepts.
    await bea.page.getByTestId('btn-add').click();
    await bea.page.getByTestId('invite-input').fill('dot');
    await bea.page.getByTestId('invite-submit').click();
    await dot.waitFor('[data-testid="incoming"]');
    await dot.page.getByTestId('accept').click();
    await waitConnected(dot);
    await everyoneSeesEveryone(people);
    await Promise.all(people.map((p) => p.shot('02-dot-back')));
    await onEveryPage(people, (p) => expectSfuShape(p, others(people, p)));
  });
});

/**
 * How long the SFU may take to give a receiver the layer a view's new size needs: down is at
 * once; up waits for its bandwidth estimate of the receiver to grow past the larger layer.
 */
const LAYER_TIMEOUT = 45_000;

/** Lays out the element `viewer` renders `userID` in (the demo's view) at width × height CSS px. */
function resizeView(viewer, userID, width, height) {
  return viewer.page.evaluate(([id, w, h]) => {
    Object.assign(document.getElementById(id).style, { inset: 'auto', width: `${w}px`, height: `${h}px` });
  }, [`view-${userID}`, width, height]);
}

/** The frame width of the lowest simulcast layer `sender` sends now. */
async function lowestLayerWidth(sender) {
  const widths = (await sender.rtcStats()).open[0].outboundVideo.map((o) => o.frameWidth).filter((w) => w > 0);
  return Math.min(...widths);
}

/**
 * Waits until `viewer` receives `small` in (at most) its lowest layer and `large` in a larger
 * one; returns how long that took, in ms. Fails with the widths received.
 */
async function expectLayersBySize(viewer, small, large) {
  const lowest = { [small.userID]: await lowestLayerWidth(small), [large.userID]: await lowestLayerWidth(large) };
  const since = await viewer.page.evaluate(() => performance.now());
  const started = Date.now();
  try {
    await viewer.page.waitForFunction(
      ([s, l, low, t]) => {
        const inbound = window.rtcLatest(t)?.open[0]?.inboundVideo ?? [];
        const width = (user) => inbound.find((i) => i.receiving && i.stream === user)?.frameWidth ?? 0;
        return width(s) > 0 && width(s) <= low[s] && width(l) > low[l];
      },
      [small.userID, large.userID, lowest, since],
      { timeout: LAYER_TIMEOUT, polling: 250 },
    );
  } catch (err) {
    const inbound = (await viewer.rtcStats()).open[0]?.inboundVideo ?? [];
    const got = inbound.filter((i) => i.receiving).map((i) => `${i.stream} ${i.frameWidth} px`).join(', ');
    throw new Error(`${viewer.userID} should get ${small.userID} (small view) at its lowest layer and `
      + `${large.userID} (large view) above it (lowest layers ${JSON.stringify(lowest)}); gets ${got}\n${err.message}`);
  }
  return Date.now() - started;
}

/** From now on, records when `viewer` presents each frame of `users` (their views' <video>s). */
function recordFrames(viewer, users) {
  return viewer.page.evaluate((ids) => {
    window.frameTimes = {};
    for (const id of ids) {
      const video = document.querySelector(`#view-${id} video`);
      const times = (window.frameTimes[id] = []);
      const onFrame = () => { times.push(performance.now()); video.requestVideoFrameCallback(onFrame); };
      video.requestVideoFrameCallback(onFrame);
    }
  }, users);
}

/** The longest `viewer` went without presenting a frame of `user` since recordFrames, in ms. */
function longestGap(viewer, user) {
  return viewer.page.evaluate((id) => {
    const t = [...window.frameTimes[id], performance.now()];
    return Math.round(Math.max(...t.slice(1).map((x, i) => x - t[i])));
  }, user);
}

/**
 * The longest a view may go without a frame while the SFU switches its layer: the new layer
 * takes over at its next key frame, which the SFU asks for at once; its frames must then play on
 * where the old layer's stopped (each layer runs on its own RTP clock at the sender).
 */
const MAX_SWITCH_GAP_MS = 1_000;

test('each view gets the layer its size needs: a small one the lowest, a large one a larger, again when they swap and back, never pausing', async () => {
  await withPeople(browser, 'sfu-3-views', ['kim', 'lou', 'max'].map((n) => [n, PHONE]), async (kim, lou, max) => {
    await groupCall(kim, [lou, max]);
    await everyoneSeesEveryone([kim, lou, max]);

    // Kim shows Lou in a thumbnail and Max large; any layer of Lou fills the thumbnail.
    await resizeView(kim, 'lou', 100, 60);
    await resizeView(kim, 'max', 600, 450);
    const first = await expectLayersBySize(kim, lou, max);
    await kim.shot('01-lou-small');

    // The sizes swap: Max drops to his lowest layer, Lou rises, neither pausing; then back.
    await recordFrames(kim, ['lou', 'max']);
    await resizeView(kim, 'lou', 600, 450);
    await resizeView(kim, 'max', 100, 60);
    const swapped = await expectLayersBySize(kim, max, lou);
    await kim.shot('02-max-small');
    // And back: four switches in all, each of which could pause a view.
    await resizeView(kim, 'lou', 100, 60);
    await resizeView(kim, 'max', 600, 450);
    const back = await expectLayersBySize(kim, lou, max);
    await kim.waitForVideo('lou', MEDIA_TIMEOUT);
    await kim.waitForVideo('max', MEDIA_TIMEOUT);
    const gaps = { lou: await longestGap(kim, 'lou'), max: await longestGap(kim, 'max') };
    console.log(`layers by view size: ${first} ms to the first sizes, ${swapped} ms after the swap, ${back} ms `
      + `after the swap back; longest gap between frames since the swap ${JSON.stringify(gaps)} ms; load average ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
    for (const [user, gap] of Object.entries(gaps)) {
      assert.ok(gap <= MAX_SWITCH_GAP_MS, `kim's view of ${user} paused ${gap} ms while its layer switched`);
    }
  });
});
