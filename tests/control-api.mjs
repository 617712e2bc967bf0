// What the browser tests' helper scripts (cut-proxy.mjs, drain-control.mjs, cluster-control.mjs)
// share: the small HTTP control API through which a test page drives them (CORS open, since the
// tests run on another origin), a TCP pipe that carries a connection's bytes both ways untouched,
// and a calling-server's health check.
import { createServer } from 'node:http';
import { connect } from 'node:net';

const HEADERS = { 'access-control-allow-origin': '*', 'content-type': 'application/json' };

// Serves a control API on 127.0.0.1:port. `route(method, pathname, searchParams)` (may be
// async) returns the body of the answer, sent as JSON with 200, or undefined for a request it
// does not know (404); what it throws is answered 409 {"error": message}, so a page sees why.
// CORS preflights (OPTIONS) are answered for every path.
export function serveControl(port, route) {
  return createServer(async (req, res) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...HEADERS, 'access-control-allow-methods': 'GET, POST' });
      return res.end();
    }
    const url = new URL(req.url, 'http://x');
    let body;
    try {
      body = await route(req.method, url.pathname, url.searchParams);
    } catch (e) {
      res.writeHead(409, HEADERS);
      return res.end(JSON.stringify({ error: e.message }));
    }
    if (body === undefined) {
      res.writeHead(404, HEADERS);
      return res.end();
    }
    res.writeHead(200, HEADERS);
    res.end(JSON.stringify(body));
  }).listen(port, '127.0.0.1');
}

// Carries the bytes of `client` (an accepted socket) to a new connection to
// 127.0.0.1:targetPort and back. The link, {client, upstream}, is in the set `links` until
// either side ends or fails, which ends the other too. Returns the link.
export function pipe(client, targetPort, links) {
  const upstream = connect(targetPort, '127.0.0.1');
  const link = { client, upstream };
  links.add(link);
  const end = () => {
    links.delete(link);
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
  client.pipe(upstream);
  upstream.pipe(client);
  return link;
}

// Whether the calling-server on 127.0.0.1:port answers /healthz with 200 (within a second).
export async function healthy(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}
