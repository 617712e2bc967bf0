// The static file server of the browser parts of the benchmark suite: each of `roots`
// ([URL prefix, directory], first match wins) served from its directory on a free loopback
// port, never cached; `onServed(prefix, rest)` hears every file served.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };

/** Starts serving; returns the server and its origin (`http://127.0.0.1:PORT`). */
export async function serveFiles(roots, onServed = () => {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const [prefix, dir] = roots.find(([p]) => url.pathname.startsWith(p));
    const file = path.join(dir, path.normalize(url.pathname.slice(prefix.length)));
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    onServed(prefix, url.pathname.slice(prefix.length));
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}
