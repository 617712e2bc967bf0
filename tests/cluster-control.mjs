// A three-node calling-server cluster for the cluster browser tests: Debian's redis-server on a
// Unix socket (every write synced to its append-only file, as a deployment's `appendonly yes`),
// three nodes joined to it (`--redis`), each running an SFU (`--sfu-udp`), and a load balancer in front, the one address the SDKs
// know. The tests restart or kill nodes, or Redis, through a control API (CORS open, since the
// tests run on another origin): a page cannot send a signal itself.
//
//   node cluster-control.mjs LB_PORT CONTROL_PORT FIRST_NODE_PORT BINARY LOG_DIR
//
// The load balancer does what an operator's does: each new TCP connection goes to the next node
// in turn that is in rotation and answers /healthz with 200, and its bytes are carried both ways
// untouched (WebSocket upgrades included). A node being restarted is taken out of rotation
// before it is signalled, as an operator drains a node in two steps.
//
//   POST /restart?node=I  take node I out of rotation, SIGTERM it, wait for it to drain and exit
//                         by itself, start it again and put it back once healthy; answers
//                         {"exit": its exit code} when all that is done
//   POST /kill?node=I     SIGKILL node I (a crash), start it again, put it back once healthy;
//                         answers {"exit": "SIGKILL"}
//   POST /freeze?node=I   SIGSTOP node I (a node starved of CPU, or cut off) until the other nodes
//                         have reaped every session it held, then SIGCONT it; answers
//                         {"reaped": how many they reaped}
//   POST /restart-redis?downMs=N
//                         SIGKILL redis-server, wait until every node says it cannot reach it
//                         (/healthz 503), leave it down N ms more, start it again (its append-only file, synced on every
//                         write, keeps everything) and wait until every node is healthy again
//   GET  /state           {"nodes": [{"up": bool, "connections": sockets carried to it,
//                         "sfuParticipants": its SFU's participants}]};
//                         404 until Redis and the three nodes have started
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { healthy, pipe, serveControl } from './control-api.mjs';

const [lbPort, controlPort, firstNodePort] = process.argv.slice(2, 5).map(Number);
const [binary, logDir] = process.argv.slice(5, 7);
const NODES = 3;
// Shared by every node, so a UserSig from one is valid on all (as with --dev-secret-key in a
// deployment of several nodes).
const DEV_KEY = 'cluster-browser-tests-dev-secret-key';
const START_DEADLINE_MS = 10_000;
const NODE_FLAGS = [
  '--dev-secret-key', DEV_KEY,
  // Longer than a whole rolling restart, so a ringing invitation outlives it.
  '--ring-timeout', '60',
  // A drained node's clients are told to move within half of this.
  '--drain-timeout', '6',
  '--resume-grace', '10',
  // A node silent this long is taken for dead: well inside what an SDK takes to find its
  // socket silent by itself (two unanswered pings, 6 s or more), so that a frozen node's SDKs
  // hear of it only from the node, once it is back.
  '--node-timeout', '3',
];

const redisDir = mkdtempSync(join(tmpdir(), 'cluster-redis-'));
const redisSocket = join(redisDir, 'redis.sock');
const redisLog = openSync(join(logDir, 'cluster-redis.log'), 'a');
let redis = null;

function startRedis() {
  redis = spawn('redis-server', [
    '--port', '0', '--unixsocket', redisSocket, '--save', '', '--dir', redisDir,
    '--appendonly', 'yes', '--appendfsync', 'always',
  ], { stdio: ['ignore', redisLog, 'inherit'] });
  redis.exited = new Promise((r) => redis.once('exit', r));
}

// Until redis-server answers on its socket.
async function redisUp() {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(await new Promise((r) => {
    const probe = connect(redisSocket).once('connect', () => { probe.destroy(); r(true); }).once('error', () => r(false));
  }))) {
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await sleep(50);
  }
}

// Until every node's /healthz is (or is not) 200.
async function nodesHealthy(wanted) {
  const deadline = Date.now() + START_DEADLINE_MS;
  while ((await Promise.all(nodes.map((n) => healthy(n.port)))).some((h) => h !== wanted)) {
    if (Date.now() > deadline) throw new Error(`the nodes did not become ${wanted ? '' : 'un'}healthy`);
    await sleep(50);
  }
}

async function restartRedis(downMs) {
  redis.kill('SIGKILL');
  await redis.exited;
  await nodesHealthy(false);
  await sleep(downMs);
  startRedis();
  await redisUp();
  await nodesHealthy(true);
}

const nodes = Array.from({ length: NODES }, (_, i) => ({
  port: firstNodePort + i,
  log: openSync(join(logDir, `cluster-node-${i}.log`), 'a'),
  child: null,
  inRotation: false,
  connections: new Set(),
}));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start(node) {
  const child = spawn(binary, [
    '--listen', `127.0.0.1:${node.port}`, '--redis', `redis+unix://${redisSocket}`, ...NODE_FLAGS,
    // Each node's SFU on the UDP port of the same number as its TCP one.
    '--sfu-udp', `127.0.0.1:${node.port}`,
  ], { stdio: ['ignore', node.log, node.log] });
  node.child = child;
  child.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(await healthy(node.port))) {
    if (node.child !== child || Date.now() > deadline) throw new Error(`node on ${node.port} did not start`);
    await sleep(50);
  }
  node.inRotation = true;
}

async function stop(node, signal) {
  node.inRotation = false;
  const child = node.child;
  child.kill(signal);
  const exit = await child.exited;
  node.child = null;
  await start(node);
  return exit;
}

// The value of metric `name` of `node` (0 if it has none yet).
async function metric(node, name) {
  const text = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? 0);
}

// Sessions the nodes in `list` have reaped from nodes they took for dead, all together.
async function reapedBy(list) {
  let sum = 0;
  for (const node of list) sum += await metric(node, 'calling_redis_sessions_reaped_total');
  return sum;
}

// Each node's SFU participants (null for a node that is down, or being killed).
async function sfuParticipants() {
  const of = (n) => metric(n, 'calling_sfu_participants').catch(() => null);
  return Promise.all(nodes.map((n) => (n.inRotation ? of(n) : null)));
}

async function freeze(node) {
  const others = nodes.filter((n) => n !== node);
  const before = await reapedBy(others);
  const held = node.connections.size;
  node.child.kill('SIGSTOP');
  try {
    const deadline = Date.now() + 15_000;
    while ((await reapedBy(others)) - before < held) {
      if (Date.now() > deadline) throw new Error(`the ${held} sessions of node ${node.port} were not reaped`);
      await sleep(50);
    }
  } finally {
    node.child.kill('SIGCONT');
  }
  return { reaped: (await reapedBy(others)) - before };
}

let ready = false;

// ---- the load balancer ----
let next = 0;
async function pick() {
  for (let tried = 0; tried < NODES; tried++) {
    const node = nodes[next++ % NODES];
    if (node.inRotation && node.child && (await healthy(node.port))) return node;
  }
  return null;
}

createServer({ pauseOnConnect: true }, async (client) => {
  const node = await pick();
  if (!node) return client.destroy();
  pipe(client, node.port, node.connections);
  client.resume();
}).listen(lbPort, '127.0.0.1');

// ---- the control API ----
serveControl(controlPort, async (method, path, params) => {
  const node = nodes[Number(params.get('node'))];
  if (method === 'POST' && path === '/restart' && node?.child) {
    return { exit: await stop(node, 'SIGTERM') };
  }
  if (method === 'POST' && path === '/kill' && node?.child) {
    return { exit: await stop(node, 'SIGKILL') };
  }
  if (method === 'POST' && path === '/freeze' && node?.child) {
    return freeze(node);
  }
  if (method === 'POST' && path === '/restart-redis') {
    await restartRedis(Number(params.get('downMs') ?? 0));
    return {};
  }
  if (method === 'GET' && path === '/state' && ready) {
    const sfu = await sfuParticipants();
    return {
      nodes: nodes.map((n, i) => ({ up: n.inRotation, connections: n.connections.size, sfuParticipants: sfu[i] })),
    };
  }
  return undefined;
});

function shutdown() {
  for (const node of nodes) node.child?.kill('SIGKILL');
  redis.kill('SIGKILL');
  rmSync(redisDir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', shutdown).on('SIGINT', shutdown);

// Redis first (its socket must exist before a node connects), then the nodes.
startRedis();
await redisUp();
for (const node of nodes) await start(node);
ready = true;
