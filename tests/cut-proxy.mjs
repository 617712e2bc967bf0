// A TCP proxy between browser-test pages and calling-server whose connections a test can cut,
// as a network does: the reconnect tests point an SDK's signalingUrl at it and break it from the
// page through a small control API (CORS open, since the tests run on another origin).
//
//   node cut-proxy.mjs LISTEN_PORT TARGET_PORT CONTROL_PORT
//
//   POST /cut?ms=N    end every proxied connection now (FIN both ways, no WebSocket close frame)
//                     and refuse new ones for N ms (until /heal without ms)
//   POST /stall?ms=N  stop carrying bytes on every connection, old and new, for N ms (until
//                     /heal without ms): a path that went dead without anyone closing it
//   POST /heal        carry traffic again at once
//   GET  /state       {"live": connections open, "accepted": connections ever accepted,
//                      "refused": connections refused while cut}
import { createServer, connect } from 'node:net';
import { createServer as createHttp } from 'node:http';

const [listenPort, targetPort, controlPort] = process.argv.slice(2).map(Number);
const live = new Set();
let mode = 'open'; // 'open' | 'cut' | 'stall'
let healTimer = null;
let accepted = 0;
let refused = 0;

function pair(client) {
  const upstream = connect(targetPort, '127.0.0.1');
  const link = { client, upstream };
  live.add(link);
  const end = () => {
    live.delete(link);
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
  client.pipe(upstream);
  upstream.pipe(client);
  if (mode === 'stall') stall(link);
}

// Pausing the readers holds bytes in the kernel's buffers: nothing reaches either side, and
// neither side is told anything, as on a dead path.
function stall(link) {
  link.client.pause();
  link.upstream.pause();
}

function resume(link) {
  link.client.resume();
  link.upstream.resume();
}

function setMode(next, ms) {
  clearTimeout(healTimer);
  healTimer = null;
  mode = next;
  if (next === 'cut') for (const link of [...live]) { link.client.destroy(); link.upstream.destroy(); }
  if (next === 'stall') for (const link of live) stall(link);
  if (next === 'open') for (const link of live) resume(link);
  if (next !== 'open' && ms > 0) healTimer = setTimeout(() => setMode('open', 0), ms);
}

createServer((client) => {
  if (mode === 'cut') {
    refused += 1;
    client.destroy();
    return;
  }
  accepted += 1;
  pair(client);
}).listen(listenPort, '127.0.0.1');

createHttp((req, res) => {
  const url = new URL(req.url, 'http://x');
  const ms = Number(url.searchParams.get('ms') ?? 0);
  const headers = { 'access-control-allow-origin': '*', 'content-type': 'application/json' };
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...headers, 'access-control-allow-methods': 'GET, POST' });
    return res.end();
  }
  if (req.method === 'POST' && url.pathname === '/cut') setMode('cut', ms);
  else if (req.method === 'POST' && url.pathname === '/stall') setMode('stall', ms);
  else if (req.method === 'POST' && url.pathname === '/heal') setMode('open', 0);
  else if (!(req.method === 'GET' && url.pathname === '/state')) {
    res.writeHead(404, headers);
    return res.end();
  }
  res.writeHead(200, headers);
  res.end(JSON.stringify({ mode, live: live.size, accepted, refused }));
}).listen(controlPort, '127.0.0.1');
