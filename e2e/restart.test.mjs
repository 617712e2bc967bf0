// The server restarts under a call: calling-server is killed (SIGKILL, as a crash or an
// OOM kill would) and started again while two people are in a video call. Without a word of
// app code, both pages are signed in again within 10 s, both see the call end (never one side
// left believing it is still in a call), and they can call each other at once.
//
// This scenario runs its own calling-server (e2e/run.sh exports SERVER_BIN), on its own port,
// so killing it leaves the other scenarios' server alone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import path from 'node:path';
import { launchBrowser, withPeople, OUTPUT, DESKTOP, PHONE } from './harness.mjs';

const PORT = Number(process.env.E2E_RESTART_PORT || 8282);
const BASE = `http://127.0.0.1:${PORT}`;
/** Signed in again within 10 s of the server being back. */
const BACK_WITHIN_MS = 10_000;
/** Dev mode's key, the same on both starts, as on a deployment: UserSigs outlive the restart. */
const DEV_KEY = '5e1f0c0ffee0ddba11f00d5eedfacade5e1f0c0ffee0ddba11f00d5eedfacade';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Starts calling-server serving the demo on PORT and waits (bounded) until it answers. */
async function startServer() {
  const bin = process.env.SERVER_BIN;
  assert.ok(bin, 'SERVER_BIN is set by e2e/run.sh');
  const log = openSync(path.join(OUTPUT, 'restart-server.log'), 'a');
  const args = ['--listen', `127.0.0.1:${PORT}`, '--www', 'www', '--pkg', 'pkg', '--dev-secret-key', DEV_KEY];
  const child = spawn(bin, args, {
    stdio: ['ignore', log, log],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${BASE}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`calling-server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('calling-server did not answer within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, exited };
}

test('the server restarts mid-call: both sides see the call end once, are signed in again by themselves and call again', async () => {
  let server = await startServer();
  try {
    const at = { baseUrl: BASE };
    await withPeople(browser, '10-server-restart', [['alice', DESKTOP, at], ['bob', PHONE, at]], async (alice, bob) => {
      await alice.page.getByTestId('callee-input').fill('bob');
      await alice.page.getByTestId('call-video').click();
      await bob.waitFor('[data-testid="incoming"]');
      await bob.page.getByTestId('accept').click();
      await Promise.all([alice.waitFor('body[data-call="connected"]'), bob.waitFor('body[data-call="connected"]')]);
      await Promise.all([alice.waitForVideo('bob'), bob.waitForVideo('alice')]);
      await alice.shot('01-connected');

      server.child.kill('SIGKILL');
      await server.exited;
      // Both notice: the SDK says it is reconnecting.
      await Promise.all([alice, bob].map((p) => p.waitFor('body[data-connection="reconnecting"]')));
      server = await startServer();
      const started = Date.now();

      // Back by themselves: the restarted server has no session to resume, so each SDK logs in
      // again, and the call, which ended with the old sessions, ends on both sides.
      await Promise.all([alice, bob].map((p) =>
        p.waitFor('body[data-connection="online"][data-screen="home"][data-call="idle"]', BACK_WITHIN_MS)));
      const back = Date.now() - started;
      assert.ok(back < BACK_WITHIN_MS, `signed in again after ${back} ms`);
      for (const p of [alice, bob]) {
        await p.waitFor('[data-testid="notice"][data-kind="ended"]');
        assert.equal(await p.page.locator('[data-testid="notice"][data-kind="ended"]').count(), 1,
          `${p.userID}: the call ended once`);
        assert.equal(await p.videoCount(), 0, `${p.userID}: videos left after the call`);
      }
      await alice.shot('02-back');

      // Signed in again, with no app code: a new call rings at once.
      await alice.page.getByTestId('callee-input').fill('bob');
      await alice.page.getByTestId('call-audio').click();
      await bob.waitFor('[data-testid="incoming"]');
      await bob.page.getByTestId('reject').click();
      await alice.waitFor('body[data-screen="home"][data-call="idle"]');
      console.log(`signed in again ${back} ms after the server was back`);
    });
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
  }
});
