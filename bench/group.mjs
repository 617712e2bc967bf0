// Group-call benchmark: the same group call as a mesh and through the SFU, at 4, 6 and 9
// participants, plus a 1:1 call for reference, in one headless Chromium (one context per
// participant, fake devices). For each, it measures:
//   join     accept() → first frame presented of each other participant, every invitee
//   uplink   bytes/s each participant sends (payload and headers, all connections), over a
//            steady window once every participant sees every other
//   encoders outbound video streams (m-lines) and encodings (simulcast layers) that advance
//   cpu      the browser's CPU (every process under this one) per participant, and the
//            server's CPU per forwarded stream (SFU only: N × (N − 1) audio and video each)
// Run inside a loopback-only network namespace with both servers listening: one without the
// SFU (the mesh) and one with it.
//
// node bench/group.mjs --mesh ws://127.0.0.1:P/ws --sfu ws://127.0.0.1:P2/ws --sfu-pid PID
//      --app ID=KEY [--sizes 4,6,9] [--window-s 10] [--deadline-s 600] [--out FILE]
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
const SIZES = String(args.sizes ?? '4,6,9').split(',').map(Number);
const WINDOW_MS = Number(args['window-s'] ?? 10) * 1000;
const DEADLINE = Date.now() + Number(args['deadline-s'] ?? 600) * 1000;
/** How long every participant may take to see every other before a run is reported incomplete. */
const SETTLE_MS = 60_000;
const [appId, appKey] = String(args.app ?? '').split('=');
const require = createRequire(path.join(here, '..', '.tools', 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in these

const roots = [
  ['/pkg/', path.resolve(args.pkg ?? path.join(here, '..', 'pkg'))],
  ['/', path.join(here, 'pages')],
];
const { server: files, origin } = await serveFiles(roots);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds used so far by `pid` and, with `tree`, every process under it. */
function cpuSeconds(pid, tree = false) {
  const stats = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const raw = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) in parentheses.
      const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
      stats.push({ pid: Number(entry), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  const wanted = new Set([pid]);
  if (tree) {
    for (let grew = true; grew;) {
      grew = false;
      for (const s of stats) if (wanted.has(s.ppid) && !wanted.has(s.pid)) { wanted.add(s.pid); grew = true; }
    }
  }
  return stats.filter((s) => wanted.has(s.pid)).reduce((n, s) => n + s.ticks, 0) / TICKS;
}

/** Waits until `check()` is truthy; throws `what` at `ms` or at the run's deadline. */
async function until(check, ms, what) {
  const end = Math.min(Date.now() + ms, DEADLINE);
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** One group call of `size` people on `url`; returns its figures. */
async function run(browser, mode, url, size, serverPid) {
  const tag = `${mode}${size}-${Date.now().toString(36)}`;
  const ids = Array.from({ length: size }, (_, i) => `${tag}-${i}`);
  const people = [];
  try {
    for (const userID of ids) {
      const context = await browser.newContext({ viewport: { width: 360, height: 400 } });
      const page = await context.newPage();
      await page.goto(`${origin}/group.html`);
      await page.waitForFunction(() => window.groupReady === true, null, { timeout: 20000 });
      await page.evaluate((a) => window.group.login(a), {
        sdkAppID: Number(appId), userID, userSig: userSig(appKey, Number(appId), userID), signalingUrl: url,
      });
      people.push({ userID, context, page });
    }
    const [caller, ...callees] = people;
    await caller.page.evaluate((list) => window.group.groupCall(list), callees.map((p) => p.userID));
    await until(async () => {
      const marks = await Promise.all(callees.map((p) => p.page.evaluate(() => window.group.marks())));
      return marks.every((m) => m.invited);
    }, 20_000, 'every invitation');
    await Promise.all(callees.map((p) => p.page.evaluate(() => window.group.accept())));

    // Everyone sees everyone (or the run says how far it got).
    let complete = true;
    try {
      await until(async () => {
        const marks = await Promise.all(people.map((p) => p.page.evaluate(() => window.group.marks())));
        return marks.every((m) => Object.keys(m.firstFrames).length === size - 1);
      }, SETTLE_MS, 'every participant to see every other');
    } catch {
      complete = false;
    }
    const marks = await Promise.all(people.map((p) => p.page.evaluate(() => window.group.marks())));
    const seen = marks.reduce((n, m) => n + Object.keys(m.firstFrames).length, 0);
    const join = marks.slice(1).flatMap((m) => Object.values(m.firstFrames).map((t) => t - m.accept));

    // The steady window: what each sends, the browser's and the server's CPU.
    const before = await Promise.all(people.map((p) => p.page.evaluate(() => window.group.sending())));
    const cpu0 = { browser: cpuSeconds(process.pid, true) - cpuSeconds(process.pid), server: serverPid ? cpuSeconds(serverPid) : 0 };
    const t0 = Date.now();
    await sleep(WINDOW_MS);
    const secs = (Date.now() - t0) / 1000;
    const after = await Promise.all(people.map((p) => p.page.evaluate(() => window.group.sending())));
    const cpu1 = { browser: cpuSeconds(process.pid, true) - cpuSeconds(process.pid), server: serverPid ? cpuSeconds(serverPid) : 0 };

    const uplink = after.map((a, i) => ((a.bytes - before[i].bytes) * 8) / secs);
    const advancing = after.map((a, i) => Object.entries(a.encodings).filter(([k, n]) => n > (before[i].encodings[k] ?? 0)).map(([k]) => k));
    const encodings = advancing.map((keys) => keys.length);
    const streams = advancing.map((keys) => new Set(keys.map((k) => k.split('/').slice(0, 2).join('/'))).size);
    const forwarded = mode === 'sfu' ? size * (size - 1) * 2 : 0;
    const figures = {
      mode, size, complete, seen, expected: size * (size - 1),
      joinMs: summary(join),
      uplinkKbps: summary(uplink.map((b) => b / 1000)),
      videoStreams: summary(streams),
      videoEncodings: summary(encodings),
      openConnections: summary(after.map((a) => a.open)),
      browserCpuPerParticipant: (cpu1.browser - cpu0.browser) / secs / size,
      serverCpu: serverPid ? (cpu1.server - cpu0.server) / secs : null,
      serverCpuPerForwardedStream: forwarded ? (cpu1.server - cpu0.server) / secs / forwarded : null,
      forwardedStreams: forwarded,
      // What the caller's encodings were at the window's end: why a layer is not sent.
      callerLayers: after[0].layers,
    };
    const pct = (x) => (x == null ? '-' : `${(x * 100).toFixed(2)} %`);
    console.log(
      `${mode} ${size}: ${seen}/${size * (size - 1)} seen, join p50 ${figures.joinMs.p50?.toFixed(0)} ms, ` +
      `uplink p50 ${figures.uplinkKbps.p50?.toFixed(0)} kbit/s, video streams ${figures.videoStreams.p50} ` +
      `(${figures.videoEncodings.p50} encodings), browser CPU ${pct(figures.browserCpuPerParticipant)} of a core per participant, ` +
      `server ${pct(figures.serverCpu)} (${pct(figures.serverCpuPerForwardedStream)} per forwarded stream); ` +
      `caller's encodings ${figures.callerLayers.map((l) => `${l.rid ?? '-'}:${l.width ?? 0}px/${l.active === false ? 'off' : 'on'}/${l.limit}`).join(' ')}`,
    );
    return figures;
  } finally {
    await Promise.all(people.map((p) => p.page.evaluate(() => window.group.hangup()).catch(() => {})));
    await Promise.all(people.map((p) => p.context.close().catch(() => {})));
  }
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
const results = { loadAverageAtStart: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), runs: [] };
try {
  // The reference: a 1:1 call (peer to peer on either server).
  results.runs.push(await run(browser, 'mesh', args.mesh, 2, null));
  for (const size of SIZES) {
    for (const [mode, url, pid] of [['sfu', args.sfu, Number(args['sfu-pid'])], ['mesh', args.mesh, null]]) {
      if (Date.now() > DEADLINE) break;
      try {
        results.runs.push(await run(browser, mode, url, size, pid));
      } catch (e) {
        console.log(`${mode} ${size}: ${e.message}`);
        results.runs.push({ mode, size, error: e.message });
      }
    }
  }
} finally {
  results.loadAverageAtEnd = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  await browser.close();
  files.close();
  if (args.out) fs.writeFileSync(args.out, JSON.stringify(results, null, 2));
}
