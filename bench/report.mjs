// Merges the parts' JSON into bench-output/bench.json and prints the results table (Markdown),
// also written to the RESULTS file given (bench/RESULTS.md holds the latest run).
//
// node bench/report.mjs OUT_DIR RESULTS_MD [README_MD]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const [outDir, resultsMd] = process.argv.slice(2);
const read = (name) => {
  const file = path.join(outDir, name);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
};
const sh = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};

const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? 'unknown CPU';
const machine = {
  cpu,
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  kernel: os.release(),
  chromium: sh('chromium', ['--version']),
  node: process.version,
  rustc: sh('rustc', ['--version']),
  openFilesLimit: sh('bash', ['-c', 'ulimit -n']),
};
const parts = {
  size: read('size.json'),
  callsetup: read('callsetup.json'),
  reconnect: read('reconnect.json'),
  iceRestore: read('ice-restore.json'),
  relay: read('relay.json'),
  loadOurs: read('loadgen-ours.json'),
  loadPeer: read('loadgen-peer.json'),
  clusterHold: [0, 1, 2].map((i) => read(`loadgen-cluster-hold-${i}.json`)?.hold).filter(Boolean),
  loadCluster: read('loadgen-cluster.json'),
  group: read('group.json'),
  timings: read('timings.json'),
};
const bench = { date: new Date().toISOString(), machine, ...parts };
fs.writeFileSync(path.join(outDir, 'bench.json'), JSON.stringify(bench, null, 2));

// Formatting helpers: missing figures show as "—" rather than failing the report.
const num = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');
const kb = (b) => (Number.isFinite(b) ? `${(b / 1000).toFixed(1)} KB` : '—');
const kib = (b) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KiB` : '—');
const mib = (b) => (Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)} MiB` : '—');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '—');
const pp = (s) => (s && s.count ? `${num(s.p50)} / ${num(s.p95)} ms` : '—');
/** A system's caller-side split of the answer ("capture / first packet / presented" p50s). */
const callerSplit = (sys) => {
  const b = sys.breakdown ?? {};
  const cell = (k) => (b[k]?.count ? num(b[k].p50) : '—');
  return b.answerCallerFirstPacket?.count ? `${cell('answerCalleeCapture')} / ${cell('answerCallerFirstPacket')} / ${cell('answerCallerPresent')} ms` : '—';
};
const pq = (s) => (s && s.count ? `${num(s.p50_ms, 2)} / ${num(s.p99_ms, 2)} ms` : '—');

const cs = parts.callsetup ?? {};
const o = cs.ours && !cs.ours.error ? cs.ours : {};
const p = cs.peerjs && !cs.peerjs.error ? cs.peerjs : {};
const ho = parts.loadOurs?.hold ?? {};
const hp = parts.loadPeer?.hold ?? {};
const steps = parts.loadOurs?.cycles ?? [];
const cy = steps[0] ?? {};
// The highest rate step whose ring p99 met the 10 ms target and that kept up with its rate.
const sustained = (list) => list
  .filter((c) => c.ring?.count && c.ring.p99_ms <= 10 && c.achieved_rate >= 0.95 * c.target_rate)
  .sort((a, b) => b.achieved_rate - a.achieved_rate)[0];
const within = sustained(steps);
// The cluster: a hold per node (one load generator each), then cycles across nodes and a
// node killed under resumable sessions.
const ch = parts.clusterHold ?? [];
const clusterSteps = parts.loadCluster?.cycles ?? [];
const ccy = clusterSteps[0] ?? {};
const clusterWithin = sustained(clusterSteps);
const fo = parts.loadCluster?.failover ?? {};
const sum = (xs, f) => xs.reduce((n, x) => n + (f(x) ?? 0), 0);
const lo = parts.loadOurs?.relay_latency ?? {};
const lp = parts.loadPeer?.relay_latency ?? {};
const to = parts.loadOurs?.relay_throughput ?? {};
const tp = parts.loadPeer?.relay_throughput ?? {};
const size = parts.size?.total ?? {};
const rc = parts.reconnect ?? {};
// Raw milliseconds per side from e2e/netns/ice-restart.test.mjs, both sides pooled.
function spread(bySide) {
  const xs = Object.values(bySide ?? {}).flat().filter(Number.isFinite).sort((a, b) => a - b);
  const at = (q) => xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)];
  return xs.length ? { count: xs.length, p50: at(0.5), p95: at(0.95) } : null;
}
const rl = parts.relay?.summary ?? {};
const ice = { restore: spread(parts.iceRestore?.restore), fresh: spread(parts.iceRestore?.fresh), networkBack: spread(parts.iceRestore?.networkBack) };
function split(name) {
  const b = o.breakdown ?? {};
  const parts = ['SenderDelay', 'ServerTrip', 'ReceiverDelay'].map((k) => b[`${name}${k}`]?.p50);
  return parts.every(Number.isFinite) ? `${parts.map((x) => num(x)).join(' / ')} ms` : '—';
}
function outcomeText(list) {
  if (list.length === 0) return '—';
  const sum = (f) => list.reduce((n, c) => n + f(c), 0);
  const kinds = {};
  for (const c of list) for (const [k, v] of Object.entries(c.outcomes ?? {})) kinds[k] = (kinds[k] ?? 0) + v;
  const detail = Object.entries(kinds).map(([k, v]) => `${k} ${int(v)}`).join(', ');
  return `${int(sum((c) => c.with_outcome))} of ${int(sum((c) => c.invitations))} (${detail}; hangup reached the other member: ${int(sum((c) => c.ended))})`;
}
const held = (h) => {
  if (h.held === undefined) return '—';
  const why = [h.capped_by && `capped by the ${h.capped_by}`, h.stopped_by && `ramp stopped by ${h.stopped_by}`].filter(Boolean);
  return `${int(h.held)} of ${int(h.target_sessions)}${why.length ? ` (${why.join('; ')})` : ''}`;
};

const rows = [
  ['Package wasm + JS, gzip -9 (raw)', `${kb(size.gzip9)} (${kb(size.raw)})`, '—', '—', '≤ 139 KB'],
  [`Ring: the caller's call → its SDP offer at the callee (ours: call(); PeerJS: peer.call() → \`call\` event), p50 / p95 (${o.calls ?? 0} / ${p.calls ?? 0} calls, taking turns)`, pp(o.ringToOffer), pp(p.ringToOffer), ratio(o.ringToOffer?.p50, p.ringToOffer?.p50), ''],
  ['… ours call() → INVITED: the invitation alone, before any connection work (PeerJS has no ring without an offer), p50 / p95', pp(o.ringInvite), 'n/a', '', 'p50 ≤ 5 ms'],
  [`Answer → first remote frame after a ${num(cs.ringMs, 0)} ms ring (ours connected while ringing), callee, p50 / p95`, pp(o.answerCallee), pp(p.answerCallee), ratio(o.answerCallee?.p50, p.answerCallee?.p50), 'p50 ≤ 70 ms'],
  [`Answer → first remote frame after a ${num(cs.ringMs, 0)} ms ring, caller, p50 / p95`, pp(o.answerCaller), pp(p.answerCaller), ratio(o.answerCaller?.p50, p.answerCaller?.p50), 'p50 ≤ 70 ms'],
  [`… after a ${num(cs.shortRingMs, 0)} ms ring (less time to connect in advance), callee / caller p50 (${o.shortCalls ?? 0} / ${p.shortCalls ?? 0} calls)`, o.shortAnswerCallee?.count ? `${num(o.shortAnswerCallee.p50)} / ${num(o.shortAnswerCaller?.p50)} ms` : '—', p.shortAnswerCallee?.count ? `${num(p.shortAnswerCallee.p50)} / ${num(p.shortAnswerCaller?.p50)} ms` : '—', `${ratio(o.shortAnswerCallee?.p50, p.shortAnswerCallee?.p50)} / ${ratio(o.shortAnswerCaller?.p50, p.shortAnswerCaller?.p50)}`, ''],
  [`Accept → first remote frame through a TURN relay (test hosts that cannot reach each other; ring ${num(parts.relay?.ringMs, 0)} ms; both sides), p50 / p95 (${rl.relay?.count ?? 0} values)`, pp(rl.relay), 'n/a', '', 'p50 ≤ direct + 10 ms'],
  [`… direct, test hosts: the same over a direct link, no TURN, calls taking turns with the relayed ones, p50 / p95 (${rl.direct?.count ?? 0} values; load average ${parts.relay?.load?.atStart ?? '?'} at its start)`, pp(rl.direct), 'n/a', '', ''],
  ['… ours after accept(): accept frame sent / first WebRTC signal relayed, p50', ['answerAcceptSent', 'answerFirstSignal'].every((k) => o.breakdown?.[k]) ? `${num(o.breakdown.answerAcceptSent.p50)} / ${num(o.breakdown.answerFirstSignal.p50)} ms` : '—', '', '', ''],
  ['… caller side: accept → callee camera open (PeerJS: before its answer(), not counted) / answer → first video packet at the caller / → presented, p50', callerSplit(o), callerSplit(p), '', ''],
  ['… PeerJS timed from before its getUserMedia, callee / caller p50', '(same)', `${num(p.answerCalleeFromClick?.p50)} / ${num(p.answerCallerFromClick?.p50)} ms`, `${ratio(o.answerCallee?.p50, p.answerCalleeFromClick?.p50)} / ${ratio(o.answerCaller?.p50, p.answerCallerFromClick?.p50)}`, ''],
  ['… ring split: caller SDK → frame sent / server trip / callee SDK → event, p50', split('ring'), '', '', ''],
  ["Hangup → peer's CALL_END, p50 / p95", pp(o.hangup), pp(p.hangup), ratio(o.hangup?.p50, p.hangup?.p50), 'p50 ≤ 5 ms'],
  ['… hangup split: caller SDK → frame sent / server trip (to the frame that caused CALL_END) / callee SDK → event, p50', split('hangup'), '', '', ''],
  ['… of that trip: `memberLeft` → `callEnded` arriving at the callee, p50 / p95', o.breakdown?.hangupFrameGap ? pp(o.breakdown.hangupFrameGap) : '—', '', '', ''],
  ["… of which the callee SDK's own `memberLeft` handler, p50 / p95", o.breakdown?.hangupMemberLeftHandling ? pp(o.breakdown.hangupMemberLeftHandling) : '—', '', '', ''],
  ["… and RTCPeerConnection.close() on the callee before its CALL_END, p50 / p95", o.breakdown?.hangupCalleePeerClose ? pp(o.breakdown.hangupCalleePeerClose) : 'none before CALL_END', '', '', ''],
  [`Signaling cut, then the network back → RECONNECTED, session resumed (ours reconnects by itself; PeerJS does not), p50 / p95 (${rc.resume?.count ?? 0} rounds)`, pp(rc.resume), 'n/a', '', ''],
  ['… against a fresh login → SDK_READY on a new socket (what logging in again costs), p50 / p95', pp(rc.relogin), 'n/a', '', ''],
  [`Media link pulled mid-call, then plugged back → first new remote frame (ours heals the same call by ICE restart; test hosts in network namespaces), p50 / p95 (${ice.restore?.count ?? 0} values, both sides)`, pp(ice.restore), 'n/a', '', ''],
  [`… a host's whole network (signaling and media) down, then back → first new remote frame in the same call (session resumed, ICE restarted), p50 / p95 (${ice.networkBack?.count ?? 0} values, both sides)`, pp(ice.networkBack), 'n/a', '', ''],
  [`… against a fresh call there: accept → first remote frame, p50 / p95 (${ice.fresh?.count ?? 0} values)`, pp(ice.fresh), 'n/a', '', ''],
  ['Callee devices opened before accepting', int(o.calleeMediaBeforeAccept), int(p.calleeMediaBeforeAccept), '', '0'],
  // No ratio: on this machine both servers stop at the same open-file limit, not at their own.
  ['Concurrent logged-in sessions held', held(ho), held(hp), ho.capped_by && hp.capped_by ? '' : ratio(ho.held, hp.held), '≥ 50,000'],
  ['Server memory per session (projected for 50,000 sessions)', `${kib(ho.server_bytes_per_session)} (${mib(ho.server_bytes_per_session * 50000)})`, `${kib(hp.server_bytes_per_session)} (${mib(hp.server_bytes_per_session * 50000)})`, ratio(ho.server_bytes_per_session, hp.server_bytes_per_session), ''],
  ['Logins per second while ramping', int(ho.logins_per_sec), int(hp.logins_per_sec), ratio(ho.logins_per_sec, hp.logins_per_sec), ''],
  [`Invitations/s sustained (target rate ${int(cy.target_rate)}, ${int(cy.pairs)} pairs)`, int(cy.achieved_rate), 'n/a', '', '≥ 10,000'],
  ['Ring latency under that load, p50 / p99', pq(cy.ring), 'n/a', '', 'p99 ≤ 10 ms'],
  ...steps.slice(1).map((c) => [`… at ${int(c.target_rate)}/s offered: achieved, ring p50 / p99`, `${int(c.achieved_rate)}/s, ${pq(c.ring)}`, 'n/a', '', '']),
  ["Accept → inviter's `accepted`, p50 / p99, per step", steps.map((c) => `${int(c.target_rate)}/s: ${pq(c.accept)}`).join('; ') || '—', 'n/a', '', ''],
  ["Hangup → other member's `callEnded`, p50 / p99, per step", steps.map((c) => `${int(c.target_rate)}/s: ${pq(c.hangup)}`).join('; ') || '—', 'n/a', '', ''],
  ['CPU per invitation cycle (invite, accept, hangup): server / load generator, per step', steps.map((c) => `${int(c.target_rate)}/s: ${num(c.server_cpu_us_per_invitation, 0)} / ${num(c.loadgen_cpu_us_per_invitation, 0)} µs`).join('; ') || '—', 'n/a', '', ''],
  ['Highest step sustained with ring p99 ≤ 10 ms', within ? `${int(within.achieved_rate)}/s` : 'none of the steps', 'n/a', '', '≥ 10,000/s'],
  ['Invitations that reached an outcome (all steps)', outcomeText(steps), 'n/a', '', 'all'],
  [`Relay latency, light load (${int(lo.pairs)} pairs), p50 / p99`, pq(lo.latency), pq(lp.latency), ratio(lo.latency?.p50_ms, lp.latency?.p50_ms), ''],
  [`Relay throughput, ${int(to.pairs)} pairs offering ${int(to.offered_per_sec)} msg/s`, `${int(to.messages_per_sec)} msg/s`, `${int(tp.messages_per_sec)} msg/s`, ratio(to.messages_per_sec, tp.messages_per_sec), ''],
  ['Relay latency at that load, p50 / p99', pq(to.latency), pq(tp.latency), ratio(to.latency?.p50_ms, tp.latency?.p50_ms), ''],
  ['Server CPU per relayed message at that load', `${num(to.server_cpu_us_per_message)} µs`, `${num(tp.server_cpu_us_per_message)} µs`, ratio(to.server_cpu_us_per_message, tp.server_cpu_us_per_message), ''],
  [`Cluster of 3 nodes on Redis: sessions held (a load generator per node; per node)`, ch.length ? `${int(sum(ch, (h) => h.held))} of ${int(sum(ch, (h) => h.target_sessions))} (${ch.map((h) => int(h.held)).join(' / ')})` : '—', 'n/a', '', '≥ 50,000'],
  ['… server memory per session, per node', ch.length ? ch.map((h) => kib(h.server_bytes_per_session)).join(' / ') : '—', 'n/a', '', ''],
  [`… invitations/s sustained, the two parties of every call on two nodes (target rate ${int(ccy.target_rate)}, ${int(ccy.pairs)} pairs), ring p50 / p99`, ccy.ring ? `${int(ccy.achieved_rate)}/s, ${pq(ccy.ring)}` : '—', 'n/a', '', '≥ 10,000/s, p99 ≤ 10 ms'],
  ...clusterSteps.slice(1).map((c) => [`… at ${int(c.target_rate)}/s offered: achieved, ring p50 / p99`, `${int(c.achieved_rate)}/s, ${pq(c.ring)}`, 'n/a', '', '']),
  ['… CPU per invitation cycle, all nodes together / load generator, per step', clusterSteps.map((c) => `${int(c.target_rate)}/s: ${num(c.server_cpu_us_per_invitation, 0)} / ${num(c.loadgen_cpu_us_per_invitation, 0)} µs`).join('; ') || '—', 'n/a', '', ''],
  ['… highest step sustained with ring p99 ≤ 10 ms', clusterWithin ? `${int(clusterWithin.achieved_rate)}/s` : 'none of the steps', 'n/a', '', '≥ 10,000/s'],
  ['… invitations that reached an outcome (all steps)', outcomeText(clusterSteps), 'n/a', '', 'all'],
  [`… a node killed (SIGKILL) under ${int(fo.logged_in)} resumable sessions → each resumed on another node, p50 / p99 / max (${int(fo.resumed)} resumed)`, fo.kill_to_resumed?.count ? `${num(fo.kill_to_resumed.p50_ms, 0)} / ${num(fo.kill_to_resumed.p99_ms, 0)} / ${num(fo.kill_to_resumed.max_ms, 0)} ms` : '—', 'n/a', '', ''],
];

// Group calls: the same call as a mesh and through the SFU, per size; a 1:1 call for reference.
const groupRuns = (parts.group?.runs ?? []).filter((r) => !r.error);
const groupRun = (mode, size) => groupRuns.find((r) => r.mode === mode && r.size === size);
const groupSizes = [...new Set(groupRuns.filter((r) => r.size > 2).map((r) => r.size))].sort((a, b) => a - b);
const oneToOne = groupRun('mesh', 2);
/** "4: SFU a / mesh b; 6: …" for one figure of each run. */
const perSize = (figure) => groupSizes
  .map((n) => `${n}: SFU ${figure(groupRun('sfu', n))} / mesh ${figure(groupRun('mesh', n))}`)
  .join('; ') || '—';
const seenText = (r) => (r ? `${r.seen} of ${r.expected}` : '—');
const kbps = (r) => (r?.uplinkKbps?.count ? `${int(r.uplinkKbps.p50)} kbit/s` : '—');
const sfuLargest = groupRun('sfu', groupSizes[groupSizes.length - 1]);
rows.push(
  [`Group call through the SFU against the same call as a mesh, at ${groupSizes.join(' / ') || '—'} participants (one Chromium, a context each; load average ${parts.group?.loadAverageAtStart ?? '?'} at its start): every participant seeing every other`, perSize(seenText), 'n/a', '', 'all'],
  [`… uplink per participant, p50 (a 1:1 call: ${kbps(oneToOne)})`, perSize(kbps), 'n/a', `${groupSizes[groupSizes.length - 1] ?? '?'} via SFU / 1:1: ${ratio(sfuLargest?.uplinkKbps?.p50, oneToOne?.uplinkKbps?.p50)}`, '9 via SFU ≤ 1.5 × 1:1'],
  ['… outbound video streams (encodings) per participant, p50', perSize((r) => (r?.videoStreams?.count ? `${r.videoStreams.p50} (${r.videoEncodings.p50})` : '—')), 'n/a', '', 'SFU: 1 (≤ 3)'],
  ['… browser CPU per participant, share of one core', perSize((r) => (Number.isFinite(r?.browserCpuPerParticipant) ? `${num(r.browserCpuPerParticipant * 100)} %` : '—')), 'n/a', '', ''],
  ['… accept → first frame of each other participant, p50 / p95', perSize((r) => pp(r?.joinMs)), 'n/a', '', ''],
  ['… server CPU per forwarded stream (audio and video each), share of one core', groupSizes.map((n) => `${n}: ${Number.isFinite(groupRun('sfu', n)?.serverCpuPerForwardedStream) ? `${num(groupRun('sfu', n).serverCpuPerForwardedStream * 100, 2)} %` : '—'}`).join('; ') || '—', 'n/a', '', ''],
);

const table = [
  '| Measure | trtc-calling-wasm | PeerJS | ours / PeerJS | Target |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n');
const failures = [
  ...(cs.ours?.error ? [`call setup (ours) did not run: ${cs.ours.error}`] : []),
  ...(cs.peerjs?.error ? [`call setup (PeerJS) did not run: ${cs.peerjs.error}`] : []),
  ...(o.failures ?? []).map((f) => `ours call ${f.call} (ring ${f.ringMs} ms): ${f.error}`),
  ...(p.failures ?? []).map((f) => `PeerJS call ${f.call} (ring ${f.ringMs} ms): ${f.error}`),
  ...(rc.failures ?? []).map((f) => `reconnect: ${f}`),
  ...['size', 'callsetup', 'reconnect', 'iceRestore', 'relay', 'loadOurs', 'loadPeer', 'loadCluster', 'group'].filter((k) => !parts[k]).map((k) => `part ${k} produced no figures`),
  ...(parts.group?.runs ?? []).filter((r) => r.error).map((r) => `group call, ${r.mode} ${r.size}: ${r.error}`),
  ...Object.entries(fo.failures ?? {}).map(([why, n]) => `failover: ${n} × ${why}`),
];
const md = [
  `Measured ${bench.date.slice(0, 16).replace('T', ' ')} UTC by \`scripts/bench.sh\` on ${machine.cpu}, ${machine.cores} cores, ` +
    `${machine.memoryGiB} GiB, Linux ${machine.kernel}, ${machine.chromium}, Node ${machine.node}, ${machine.rustc}; ` +
    `open-file limit ${machine.openFilesLimit} per process; load average (1/5/15 min) ${parts.timings?.loadAverageAtStart ?? '?'} ` +
    `at the start, ${parts.timings?.loadAverageAtEnd ?? '?'} at the end; the suite took ${parts.timings?.totalSecs ?? '?'} s. Everything over loopback; the browser parts in a ` +
    `loopback-only network namespace, headless Chromium with fake devices and the same flags for both systems.`,
  '',
  table,
  '',
  ...(failures.length ? ['Incomplete or failed in this run:', '', ...failures.slice(0, 12).map((f) => `- ${f}`), ''] : []),
].join('\n');
process.stdout.write(`${md}\n`);
if (resultsMd) {
  const head = fs.existsSync(resultsMd) ? fs.readFileSync(resultsMd, 'utf8').split('<!-- table -->')[0] : '';
  fs.writeFileSync(resultsMd, `${head || '# Benchmark results\n\n'}<!-- table -->\n${md}`);
}
// The README carries the latest table too, between its benchmark markers.
const readme = process.argv[4];
if (readme && fs.existsSync(readme)) {
  const text = fs.readFileSync(readme, 'utf8');
  const start = '<!-- benchmarks:start -->';
  const end = '<!-- benchmarks:end -->';
  const [i, j] = [text.indexOf(start), text.indexOf(end)];
  if (i >= 0 && j > i) {
    const intro = 'Run them with `./scripts/bench.sh` (about 12 minutes; every part bounded, traffic only on ' +
      'loopback). How each figure is measured: [bench/RESULTS.md](bench/RESULTS.md). Latest run:';
    fs.writeFileSync(readme, `${text.slice(0, i + start.length)}\n${intro}\n\n${md}\n${text.slice(j)}`);
  }
}
