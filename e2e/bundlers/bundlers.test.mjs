// Each fixture app, as its tool built it (build.mjs), makes a real call in headless Chromium
// against calling-server: two people in independent browser contexts load the fixture, sign in,
// one calls, the other accepts, both see the other's video playing (videoWidth > 0), the caller
// hangs up and both hear CALL_END. The same two contexts are reused from fixture to fixture.
//
// Run through run.sh, which builds the fixtures and starts the server (serving them, and pkg/
// at /pkg/) inside a loopback-only network namespace; it sets BUNDLERS_BASE_URL and FIXTURES.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parse } from 'acorn';

const require = createRequire(import.meta.url);
const { chromium } = require('../../.tools/node_modules/playwright-core');

const BASE_URL = process.env.BUNDLERS_BASE_URL;
const FIXTURES = (process.env.FIXTURES || '').split(' ').filter(Boolean);
const DEADLINE = 20_000;

let browser;
const people = {};

before(async () => {
  assert.ok(BASE_URL, 'BUNDLERS_BASE_URL is not set (run e2e/bundlers/run.sh)');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--no-sandbox',
    ],
  });
  for (const who of ['caller', 'callee']) {
    const context = await browser.newContext();
    await context.grantPermissions(['camera', 'microphone'], { origin: BASE_URL });
    const page = await context.newPage();
    const log = [];
    page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
    people[who] = { page, log };
  }
});

after(async () => {
  await browser?.close();
});

// Waits (synchronous predicate, polled by Playwright) until `fn(arg)` is truthy in the page.
async function waitIn(who, description, fn, arg) {
  try {
    await people[who].page.waitForFunction(fn, arg, { timeout: DEADLINE });
  } catch (err) {
    const events = await people[who].page
      .evaluate(() => (window.fixture ? window.fixture.events.map((e) => e.eventName) : 'no fixture'))
      .catch(() => 'page gone');
    throw new Error(
      `${who}: ${description} not within ${DEADLINE} ms; events ${JSON.stringify(events)}\n` +
        `${people[who].log.slice(-30).join('\n')}\n${err.message}`,
    );
  }
}

// The legacy files as installed: nothing newer than ES2019 for webpack 4's and Babel's parsers,
// no import.meta, no top-level await (acorn rejects both in ES2019).
test('the legacy entries parse as ES2019', () => {
  const dir = new URL('./node_modules/trtc-calling-wasm/', import.meta.url);
  for (const [file, sourceType] of [
    ['index.cjs', 'script'],
    ['index.es2019.mjs', 'module'],
    ['trtc-calling-wasm.umd.js', 'script'],
  ]) {
    const text = readFileSync(new URL(file, dir), 'utf8');
    assert.doesNotThrow(() => parse(text, { ecmaVersion: 2019, sourceType }), `${file} is not ES2019`);
  }
  // And the modern entry is not: the check above would notice a newer file.
  const modern = readFileSync(new URL('index.js', dir), 'utf8');
  assert.throws(() => parse(modern, { ecmaVersion: 2019, sourceType: 'module' }));
});

const eventSeen = (name) => window.fixture.events.some((e) => e.eventName === name);

for (const name of FIXTURES) {
  test(`${name}: a video call through the package as ${name} built it`, async () => {
    const { caller, callee } = people;
    const ids = { caller: `${name}-a`, callee: `${name}-b` };
    for (const who of ['caller', 'callee']) {
      people[who].log.length = 0;
      await people[who].page.goto(`${BASE_URL}/${name}/`);
      await waitIn(who, 'the fixture app', () => window.fixture !== undefined);
      const start = await people[who].page.evaluate(() => ({
        name: window.fixture.name,
        statics: window.fixture.statics,
        early: window.fixture.early,
      }));
      assert.equal(start.name, name);
      // EVENT and CALL_TYPE right after the import, and a new instance's answers.
      assert.deepEqual(start.statics, { invited: 'onInvited', callEnd: 'onCallEnd', video: 2 });
      assert.deepEqual(start.early, { status: 'idle', type: 0, inviter: false, group: false, invitees: [], user: null });
    }
    for (const who of ['caller', 'callee']) {
      const user = await people[who].page.evaluate((id) => window.fixture.login(id), ids[who]);
      assert.equal(user, ids[who]);
    }

    assert.equal(await caller.page.evaluate((id) => window.fixture.call(id), ids.callee), 'calling');
    await waitIn('callee', 'INVITED', eventSeen, 'onInvited');
    assert.equal(await callee.page.evaluate(() => window.fixture.listenerThisIsInstance), true);
    assert.equal(await callee.page.evaluate(() => window.fixture.accept()), 'connected');

    for (const who of ['caller', 'callee']) {
      await waitIn(who, 'the remote video playing', () => window.fixture.remoteVideoWidth() > 0);
    }
    await caller.page.evaluate(() => window.fixture.hangup());
    for (const who of ['caller', 'callee']) {
      await waitIn(who, 'CALL_END', eventSeen, 'onCallEnd');
      // After loading, a new instance answers as the early one did (what the legacy entry
      // answers before its module is ready is what the module answers).
      const fresh = await people[who].page.evaluate(() => window.fixture.freshAnswers());
      assert.deepEqual(fresh, { status: 'idle', type: 0, inviter: false, group: false, invitees: [], user: null });
      const errors = await people[who].page.evaluate(() =>
        window.fixture.events.filter((e) => e.eventName === 'onError'),
      );
      assert.deepEqual(errors, [], `${who}: ERROR events`);
      assert.ok(!people[who].log.some((l) => l.startsWith('[pageerror]')), people[who].log.join('\n'));
    }
    for (const who of ['caller', 'callee']) {
      await people[who].page.evaluate(() => window.fixture.logout());
    }
  });
}
