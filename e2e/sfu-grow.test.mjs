// A 1:1 call that grows into a group call moves from peer to peer to the server's SFU while
// its media keeps playing, through the demo page in real Chromium against a real
// calling-server running the SFU (e2e/run.sh starts it with `--sfu-udp`).
//
// What the move is judged by is the gap it causes, not every late frame: four pages encoding
// their simulcast layers on two shared cores make Chromium drop layers now and then, which the
// SFU follows with a short gap of its own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, withPeople, BASE_URL, DESKTOP, PHONE, STATE_TIMEOUT } from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/**
 * Watches, in the page, `userID`'s video and the notices shown. When the call moves to the
 * SFU, the view is re-rendered on the stream the SFU forwards: the gap that costs is the time
 * from the last frame on the old element to the first on the new one. Every notice's text is
 * kept, and a log of the frames that came late, for a failure's message.
 */
function watch(page, userID) {
  return page.evaluate((user) => {
    const t0 = performance.now();
    const at = () => Math.round(performance.now() - t0);
    // `longestBefore`: the longest wait for a frame on the first element, the video's own jitter
    // on this machine before the move.
    const seen = { switches: [], notices: [], log: [], el: null, lastFrameAt: null, longestBefore: 0, first: null };
    const follow = (el) => {
      const onFrame = () => {
        if (seen.el !== el) return;
        const now = performance.now();
        if (seen.pendingSwitchFrom !== undefined) {
          seen.switches.push(Math.round(now - seen.pendingSwitchFrom));
          seen.log.push(`${at()} ms: first frame on the new element`);
          seen.pendingSwitchFrom = undefined;
        } else if (seen.lastFrameAt !== null) {
          const gap = now - seen.lastFrameAt;
          if (el === seen.first) seen.longestBefore = Math.max(seen.longestBefore, gap);
          if (gap > 300) seen.log.push(`${at()} ms: a frame after ${Math.round(gap)} ms`);
        }
        seen.lastFrameAt = now;
        el.requestVideoFrameCallback(onFrame);
      };
      el.requestVideoFrameCallback(onFrame);
    };
    setInterval(() => {
      const v = document.querySelector(`#view-${user} video`);
      if (v && v !== seen.el) {
        if (seen.el) seen.pendingSwitchFrom = seen.lastFrameAt ?? performance.now();
        seen.first ??= v;
        seen.el = v;
        seen.log.push(`${at()} ms: a new video element`);
        follow(v);
      }
    }, 20);
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) if (n.dataset?.testid === 'notice') seen.notices.push(n.textContent);
      }
    }).observe(document.getElementById('notices'), { childList: true });
    window.growthWatch = seen;
  }, userID);
}

function watched(page) {
  return page.evaluate(() => {
    const { switches, notices, log, pendingSwitchFrom, longestBefore } = window.growthWatch;
    return { switches, notices, log, waiting: pendingSwitchFrom !== undefined, longestBefore: Math.round(longestBefore) };
  });
}

/** `calling_sfu_participants` from the server's metrics. */
async function sfuParticipants() {
  const text = await (await fetch(`${BASE_URL}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('calling_sfu_participants '));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function waitForSfuParticipants(n, within = STATE_TIMEOUT) {
  const deadline = Date.now() + within;
  let seen;
  while ((seen = await sfuParticipants()) !== n) {
    if (Date.now() > deadline) throw new Error(`the SFU has ${seen} participants, not ${n}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The e2e server's `--resume-grace` (its default), and some. */
const RESUME_GRACE_MS = 35_000;

test('a 1:1 call that grows to four moves to the SFU; the first two keep seeing each other throughout', async () => {
  // Members of earlier tests' calls whose pages closed before their logout reached the server
  // stay in the SFU until their sessions' resume grace ends: the counts below are this test's.
  await waitForSfuParticipants(0, RESUME_GRACE_MS);
  const people = [['amy', DESKTOP], ['ben', PHONE], ['cat', PHONE], ['dan', PHONE]];
  await withPeople(browser, 'sfu-grow', people, async (amy, ben, cat, dan) => {
    await amy.page.getByTestId('callee-input').fill('ben');
    await amy.page.getByTestId('call-video').click();
    await ben.waitFor('[data-testid="incoming"]');
    await ben.page.getByTestId('accept').click();
    await Promise.all([amy.waitForVideo('ben'), ben.waitForVideo('amy')]);
    assert.equal(await sfuParticipants(), 0, 'a 1:1 call is peer to peer');

    await watch(amy.page, 'ben');
    await watch(ben.page, 'amy');
    await amy.page.getByTestId('btn-add').click();
    await amy.page.getByTestId('invite-input').fill('cat dan');
    await amy.page.getByTestId('invite-submit').click();
    await Promise.all([cat, dan].map((p) => p.waitFor('[data-testid="incoming"]')));
    // Both of the first two are on the SFU before anyone accepts.
    await waitForSfuParticipants(2);
    await cat.page.getByTestId('accept').click();
    await dan.page.getByTestId('accept').click();

    const all = [amy, ben, cat, dan];
    await Promise.all(all.flatMap((p) => all.filter((o) => o !== p).map((o) => p.waitForVideo(o.userID))));
    await waitForSfuParticipants(4);
    await Promise.all(all.map((p) => p.shot('01-four')));

    for (const [p, other] of [[amy, 'ben'], [ben, 'amy']]) {
      const { switches, notices, log, waiting, longestBefore } = await watched(p.page);
      const why = `${p.userID} watching ${other}:\n${log.join('\n')}`;
      assert.ok(!waiting && switches.length === 1, `the view moved to the SFU's stream once, and plays: ${why}`);
      // The move may cost a frame interval or two, never the seconds a wait for a key frame
      // would (on a loaded machine the video's own gaps before the move set the scale).
      const allowed = Math.max(1000, 2 * longestBefore);
      assert.ok(switches[0] < allowed, `${switches[0]} ms without a frame at the move (allowed ${allowed}): ${why}`);
      console.log(`${p.userID}: ${other}'s video moved to the SFU with ${switches[0]} ms between frames (longest before: ${longestBefore} ms)`);
      const unexpected = notices.filter((n) => /unstable|left|lost/i.test(n));
      assert.deepEqual(unexpected, [], `${p.userID}: the move showed ${JSON.stringify(notices)}`);
      assert.equal(await p.page.locator('[data-testid="tile"][data-joined="true"]').count(), 3, `${p.userID}: remote tiles`);
    }
  });
});
