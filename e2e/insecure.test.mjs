// The SDK on an insecure origin (SPEC §5, 60007), at the API level: a page where
// `isSecureContext` really is false logs in, rings, calls and receives media, publishes nothing
// and says why; the secure party sees no audio or video from it and receives no frames.
//
// The insecure origin stays on loopback: `http://insecure.test:PORT/`, a name this browser maps
// to 127.0.0.1. Its own calling-server (serving e2e/insecure/ and pkg/) runs on E2E_INSECURE_PORT
// inside the namespace run.sh created; its log goes to test-output/e2e/insecure-server.log.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { launchBrowser, OUTPUT, STATE_TIMEOUT } from './harness.mjs';

const PORT = Number(process.env.E2E_INSECURE_PORT || 8183);
const SECURE_URL = `http://127.0.0.1:${PORT}/`;
const INSECURE_URL = `http://insecure.test:${PORT}/`;
const SERVER_BIN = process.env.SERVER_BIN || 'target/debug/calling-server';

let server;
let browser;

async function healthy(deadline) {
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`calling-server exited (${server.exitCode})`);
    try {
      if ((await fetch(`${SECURE_URL}healthz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('calling-server did not become healthy');
}

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const log = openSync(path.join(OUTPUT, 'insecure-server.log'), 'w');
  server = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${PORT}`, '--www', 'e2e/insecure', '--pkg', 'pkg'], {
    stdio: ['ignore', log, log],
  });
  await healthy(Date.now() + 20_000);
  // Without device permission Chromium hides host candidates behind mDNS names, which nothing
  // resolves in a loopback-only namespace: show the (loopback) address instead.
  browser = await launchBrowser([
    '--host-resolver-rules=MAP insecure.test 127.0.0.1',
    '--disable-features=WebRtcHideLocalIpsWithMdns,HttpsUpgrades',
  ]);
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill();
    await new Promise((resolve) => server.once('exit', resolve));
  }
});

/** A page at `url` with `client` logged in as `userID`. */
async function open(url, userID) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  await page.goto(url);
  await page.waitForFunction(() => window.ready === true, null, { timeout: STATE_TIMEOUT });
  await page.evaluate((u) => window.client.login(u), userID);
  return { userID, context, page, logs };
}

/** Waits until `fn(arg)` is truthy in the page; fails with the page's events at the deadline. */
async function until(who, what, fn, arg) {
  try {
    await who.page.waitForFunction(fn, arg, { timeout: STATE_TIMEOUT });
  } catch (err) {
    const events = await who.page.evaluate(() => window.client.events.map((e) => e.name)).catch(() => []);
    throw new Error(`${who.userID}: ${what} (events: ${events.join(', ')})\n${who.logs.slice(-20).join('\n')}\n${err.message}`);
  }
}

/** Waits for an event named `name` whose payload has `userID` = `user` (any user if null). */
function event(who, name, user = null) {
  return until(who, `no ${name}${user ? ` for ${user}` : ''}`,
    ([n, u]) => window.client.of(n).some((p) => u === null || p.userID === u), [name, user]);
}

/** Waits until the view `id` shows decoded video whose frame count advances by 10. */
async function framesAdvance(who, id) {
  await until(who, `no video in #${id}`, (i) => window.client.video(i).width > 0, id);
  const { frames } = await who.page.evaluate((i) => window.client.video(i), id);
  await until(who, `video in #${id} stopped`, ([i, f]) => window.client.video(i).frames >= f + 10, [id, frames]);
}

/** How long the insecure side must receive video while the secure side is watched for any. */
const RECEIVE_WINDOW_MS = 2000;

/**
 * Checks, while the insecure side receives the secure side's video for RECEIVE_WINDOW_MS, that
 * the secure side got nothing from it (its view sampled every 100 ms throughout): no
 * availability, no frames, and the insecure side captured no track at all.
 */
async function assertReceiveOnly(secure, insecure) {
  await secure.page.evaluate((u) => window.client.view(u, 'from-insecure'), insecure.userID);
  await insecure.page.evaluate((u) => window.client.view(u, 'from-secure'), secure.userID);
  await framesAdvance(insecure, 'from-secure');
  await secure.page.evaluate(() => {
    const watch = { samples: 0, most: 0 };
    watch.timer = setInterval(() => {
      const v = window.client.video('from-insecure');
      watch.most = Math.max(watch.most, v.frames, v.width);
      watch.samples += 1;
    }, 100);
    window.fromInsecureWatch = watch;
  });
  // The window is timed by the insecure page's own clock, and video keeps arriving there
  // all along (20 fps: a frame each 50 ms, so at least a frame per 100 ms on a loaded machine).
  const start = await insecure.page.evaluate((i) => ({ t: Date.now(), frames: window.client.video(i).frames }), 'from-secure');
  await until(insecure, `video in #from-secure for ${RECEIVE_WINDOW_MS} ms`,
    ([i, t, f, ms]) => Date.now() - t >= ms && window.client.video(i).frames >= f + ms / 100,
    ['from-secure', start.t, start.frames, RECEIVE_WINDOW_MS]);
  const watched = await secure.page.evaluate(() => {
    const { samples, most, timer } = window.fromInsecureWatch;
    clearInterval(timer);
    return { samples, most };
  });
  assert.ok(watched.samples >= RECEIVE_WINDOW_MS / 100 / 2, `too few samples: ${JSON.stringify(watched)}`);
  assert.equal(watched.most, 0, `${secure.userID} received video from the insecure page while watched`);
  // Its first media state said so; it never changed.
  for (const name of ['onUserVideoAvailable', 'onUserAudioAvailable']) {
    await event(secure, name, insecure.userID);
    const flags = await secure.page.evaluate(([n, u]) => window.client.of(n)
      .filter((p) => p.userID === u).map((p) => p.isVideoAvailable ?? p.isAudioAvailable), [name, insecure.userID]);
    assert.deepEqual(flags, [false], `${secure.userID}: ${name} for ${insecure.userID}`);
  }
  assert.deepEqual(await secure.page.evaluate(() => window.client.video('from-insecure')), { frames: 0, width: 0 },
    `${secure.userID} received video from the insecure page`);
  assert.equal(await insecure.page.evaluate(() => window.client.sdk.__localTracks().length), 0,
    'the insecure page captured a track');
  // Exactly one ERROR, 60007, saying what is needed.
  const errors = await insecure.page.evaluate(() => window.client.of('onError'));
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.equal(errors[0].code, 60007);
  assert.match(errors[0].msg, /secure context/);
  assert.deepEqual(await secure.page.evaluate(() => window.client.of('onError')), []);
}

async function hangUpAndEnd(hanger, other) {
  await hanger.page.evaluate(() => window.client.sdk.hangup());
  for (const who of [hanger, other]) {
    await event(who, 'onCallEnd', hanger.userID);
    assert.equal(await who.page.evaluate(() => window.client.sdk.getCallStatus()), 'idle');
  }
}

async function people(run) {
  const tag = Math.floor(Math.random() * 1e6);
  const secure = await open(SECURE_URL, `sam_${tag}`);
  const insecure = await open(INSECURE_URL, `ivy_${tag}`);
  try {
    assert.equal(await secure.page.evaluate(() => window.isSecureContext), true);
    assert.equal(await insecure.page.evaluate(() => window.isSecureContext), false);
    // Device lists need a secure context too: refused with the same code, not an empty list.
    const listing = await insecure.page.evaluate(() => window.client.sdk.getCameras().then(
      (list) => ({ list }), (e) => ({ code: e.code, message: e.message })));
    assert.equal(listing.code, 60007, JSON.stringify(listing));
    await run(secure, insecure);
  } catch (err) {
    console.error(`--- ${insecure.userID} ---\n${insecure.logs.slice(-40).join('\n')}`);
    throw err;
  } finally {
    await secure.context.close();
    await insecure.context.close();
  }
}

test('insecure origin answers a video call: receives video, publishes nothing, ERROR 60007', async () => {
  await people(async (secure, insecure) => {
    await secure.page.evaluate((u) => window.client.sdk.call({ userID: u, type: 2 }), insecure.userID);
    await event(insecure, 'onInvited');
    const reply = await insecure.page.evaluate(() => window.client.sdk.accept());
    assert.equal(reply.code, 0);
    await event(insecure, 'onError');
    await event(secure, 'onUserAccept', insecure.userID);
    await event(insecure, 'onUserEnter', secure.userID);
    assert.equal(await insecure.page.evaluate(() => window.client.sdk.getCallStatus()), 'connected');
    await assertReceiveOnly(secure, insecure);
    await hangUpAndEnd(secure, insecure);
  });
});

test('insecure origin places a video call: rings, connects one way, ERROR 60007', async () => {
  await people(async (secure, insecure) => {
    const reply = await insecure.page.evaluate((u) => window.client.sdk.call({ userID: u, type: 2 }), secure.userID);
    assert.equal(reply.code, 0);
    await event(insecure, 'onError');
    await event(secure, 'onInvited');
    await secure.page.evaluate(() => window.client.sdk.accept());
    await event(insecure, 'onUserAccept', secure.userID);
    await event(insecure, 'onUserEnter', secure.userID);
    await assertReceiveOnly(secure, insecure);
    await hangUpAndEnd(insecure, secure);
  });
});
