// Starts and stops the calling-server of the drain browser tests, on request from the test page
// (CORS open, since the tests run on another origin): a page cannot send a signal itself.
// Every server it starts listens on the same port with the same dev-mode secret key, so UserSigs
// stay valid across a restart, as with --dev-secret-key in a deployment.
//
//   node drain-control.mjs SERVER_PORT CONTROL_PORT BINARY LOG
//
//   POST /start?drainTimeout=S  start a server (killing one still running); answers once /healthz
//                               is 200
//   POST /stop                  SIGTERM to the running server: it drains, then exits by itself
//   GET  /state                 {"running": bool, "exits": [exit code or signal of each server]}
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';

import { healthy, serveControl } from './control-api.mjs';

const [serverPort, controlPort] = process.argv.slice(2, 4).map(Number);
const [binary, logPath] = process.argv.slice(4, 6);
const log = openSync(logPath, 'a');
const DEV_KEY = 'drain-browser-tests-dev-secret-key';
const START_DEADLINE_MS = 10_000;
let child = null;
const exits = [];

async function start(drainTimeout) {
  // A server left running by a test that failed half-way is not this test's: gone first.
  if (child) {
    const old = child;
    const gone = new Promise((r) => old.once('exit', r));
    old.kill('SIGKILL');
    await gone;
  }
  const started = spawn(binary, [
    '--listen', `127.0.0.1:${serverPort}`, '--dev-secret-key', DEV_KEY,
    '--drain-timeout', String(drainTimeout), '--resume-grace', '4',
  ], { stdio: ['ignore', log, log] });
  child = started;
  started.on('exit', (code, signal) => {
    exits.push(code ?? signal);
    if (child === started) child = null;
  });
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(await healthy(serverPort))) {
    if (child !== started || Date.now() > deadline) throw new Error('calling-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

serveControl(controlPort, async (method, path, params) => {
  if (method === 'POST' && path === '/start') {
    await start(Number(params.get('drainTimeout') ?? 30));
  } else if (method === 'POST' && path === '/stop') {
    if (!child) throw new Error('no server is running');
    child.kill('SIGTERM');
  } else if (!(method === 'GET' && path === '/state')) {
    return undefined;
  }
  return { running: child !== null, exits };
});

// The test command ends this script with SIGTERM: no server outlives it.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    child?.kill('SIGKILL');
    process.exit(0);
  });
}
