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
import { createServer } from 'node:net';

import { pipe, serveControl } from './control-api.mjs';

const [listenPort, targetPort, controlPort] = process.argv.slice(2).map(Number);
const live = new Set();
let mode = 'open'; // 'open' | 'cut' | 'stall'
let healTimer = null;
let accepted = 0;
let refused = 0;

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
  const link = pipe(client, targetPort, live);
  if (mode === 'stall') stall(link);
}).listen(listenPort, '127.0.0.1');

serveControl(controlPort, (method, path, params) => {
  const ms = Number(params.get('ms') ?? 0);
  if (method === 'POST' && path === '/cut') setMode('cut', ms);
  else if (method === 'POST' && path === '/stall') setMode('stall', ms);
  else if (method === 'POST' && path === '/heal') setMode('open', 0);
  else if (!(method === 'GET' && path === '/state')) return undefined;
  return { mode, live: live.size, accepted, refused };
});
