// Reconnect benchmark: how fast a signaling connection is back once the network is.
//
// One SDK instance in headless Chromium talks to calling-server through tests/cut-proxy.mjs.
// Each round the proxy cuts its connection (and refuses new ones) until the SDK reports
// RECONNECTING and its first attempt has failed; then the page heals the proxy and fires the
// `online` event a browser fires when the network returns, and measures, on the page's clock:
//   resume    network back → RECONNECTED {resumed: true} (new socket, resume, replay)
//   relogin   the same page: a new instance's login() → SDK_READY over a fresh socket, what an
//             SDK without resume would need at best (and what ours falls back to past the grace)
// Run inside a loopback-only network namespace with calling-server listening.
//
// node bench/reconnect.mjs --server 127.0.0.1:8080 --app ID=KEY --pkg DIR [--rounds 20] [--out FILE]
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { userSig } from './usersig.mjs';
import { summary } from './stats.mjs';
import { CHROMIUM_FLAGS } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const SERVER = args.server ?? '127.0.0.1:8080';
const ROUNDS = Number(args.rounds ?? 20);
const [appId, appKey] = String(args.app ?? '').split('=');
const PKG = path.resolve(args.pkg ?? path.join(here, '..', 'pkg'));
const [PROXY, CONTROL, PAGES] = [18090, 18091, 18092];
const require = createRequire(path.join(here, '..', '.tools', 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
  const TRTCCalling = (await import('/pkg/index.js')).default;
  const E = TRTCCalling.EVENT;
  const seen = { reconnecting: 0, reconnected: [] };
  let sdk = null;
  // Resolves on the next event of this name from sdk (with its payload and the time).
  const next = (target, name) => new Promise((resolve) => {
    const on = (payload) => { target.off(name, on); resolve({ payload, at: performance.now() }); };
    target.on(name, on);
  });
  window.bench = {
    async login(sdkAppID, userID, userSig, signalingUrl) {
      sdk = new TRTCCalling({ SDKAppID: sdkAppID, signalingUrl });
      sdk.on(E.RECONNECTING, () => { seen.reconnecting += 1; });
      await sdk.login({ userID, userSig });
    },
    reconnecting: () => seen.reconnecting,
    async heal(control) {
      const back = next(sdk, E.RECONNECTED);
      await fetch(control + '/heal', { method: 'POST' });
      const start = performance.now();
      window.dispatchEvent(new Event('online'));
      const { payload, at } = await back;
      return { ms: at - start, resumed: payload.resumed };
    },
    async relogin(sdkAppID, userID, userSig, signalingUrl) {
      const start = performance.now();
      const other = new TRTCCalling({ SDKAppID: sdkAppID, signalingUrl });
      const ready = next(other, E.SDK_READY);
      await other.login({ userID, userSig });
      const { at } = await ready;
      await other.logout();
      return at - start;
    },
  };
  window.ready = true;
</script>`;

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const pages = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(PAGE);
  }
  const file = path.join(PKG, path.normalize(url.pathname.replace(/^\/pkg\//, '')).replace(/^(\.\.[/\\])+/, ''));
  fs.readFile(file, (err, body) => {
    if (err) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    res.end(body);
  });
}).listen(PAGES, '127.0.0.1');

const proxy = spawn('node', [path.join(here, '..', 'tests', 'cut-proxy.mjs'), PROXY, SERVER.split(':')[1], CONTROL], { stdio: 'inherit' });
const control = `http://127.0.0.1:${CONTROL}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
const failures = [];
const resume = [];
const relogin = [];
try {
  for (const deadline = Date.now() + 10_000; ; ) {
    try { if ((await fetch(`${control}/state`)).ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('cut-proxy did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const page = await (await browser.newContext()).newPage();
  await page.goto(`http://127.0.0.1:${PAGES}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
  const sdkAppID = Number(appId);
  await page.evaluate(([a, u, s, url]) => window.bench.login(a, u, s, url),
    [sdkAppID, 'cut', userSig(appKey, sdkAppID, 'cut'), `ws://127.0.0.1:${PROXY}/ws`]);
  for (let round = 0; round < ROUNDS; round++) {
    const before = await page.evaluate(() => window.bench.reconnecting());
    await fetch(`${control}/cut`, { method: 'POST' });
    // The loss is noticed and the first attempt (refused by the cut proxy) has failed.
    await page.waitForFunction((n) => window.bench.reconnecting() > n, before, { timeout: 15_000 });
    const { ms, resumed } = await page.evaluate((c) => window.bench.heal(c), control);
    if (resumed) resume.push(ms); else failures.push(`round ${round}: not resumed`);
    const user = `fresh${round}`;
    relogin.push(await page.evaluate(([a, u, s, url]) => window.bench.relogin(a, u, s, url),
      [sdkAppID, user, userSig(appKey, sdkAppID, user), `ws://${SERVER}/ws`]));
  }
} catch (err) {
  failures.push(String(err));
} finally {
  await browser.close();
  proxy.kill();
  pages.close();
}
const result = { rounds: ROUNDS, resume: summary(resume), relogin: summary(relogin), failures };
const fmt = (s) => (s.count ? `p50 ${s.p50.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms (${s.count})` : 'none');
console.log(`reconnect: network back → resumed: ${fmt(result.resume)}; fresh login → SDK_READY: ${fmt(result.relogin)}`);
for (const f of failures) console.log(`reconnect: FAILED ${f}`);
if (args.out) fs.writeFileSync(args.out, JSON.stringify(result, null, 2));
process.exit(failures.length ? 1 : 0);
