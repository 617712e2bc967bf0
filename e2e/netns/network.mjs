// Test hosts in network namespaces for the suites in this folder: builds the network of
// e2e/netns/net.sh (a hub holding the servers, hosts a and b with one browser each), starts
// calling-server and coturn in the hub, and launches Chromium inside a or b.
//
// Run through e2e/netns/run.sh (root; it sweeps leftovers and tears everything down on exit).
// The test process itself stays in the root namespace and never opens a socket: it drives the
// browsers over Playwright's pipe and the servers through `ip netns exec`.

import { createRequire } from 'node:module';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('../../.tools/node_modules/playwright-core');

const HERE = path.dirname(new URL(import.meta.url).pathname);
const ROOT = path.resolve(HERE, '../..');
export const OUTPUT = process.env.E2E_OUTPUT || path.join(ROOT, 'test-output/netns');

/** The hub's service address (calling-server, coturn), reachable from a and b. */
export const SERVICE_IP = '10.77.0.1';
/** Each host's own addresses: its link to the hub, then its end of the direct link. */
export const HOST_ADDRESSES = { a: ['10.77.1.2', '10.77.3.1'], b: ['10.77.2.2', '10.77.3.2'] };
/** Every interface net.sh creates (each inside a namespace, never in the root one). */
export const INTERFACES = ['a-hub', 'hub-a', 'b-hub', 'hub-b', 'a-b', 'b-a'];
/** The direct link's end in each host. */
export const DIRECT_LINK = { a: 'a-b', b: 'b-a' };
/** Each host's end of its link to the hub, and the hub's address on that link. */
export const HUB_LINK = { a: 'a-hub', b: 'b-hub' };
const HUB_GATEWAY = { a: '10.77.1.1', b: '10.77.2.1' };

const SERVER_PORT = 8080;
const TURN_PORT = 3478;
const TURNS_PORT = 5349;

function ip(...args) {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

/** Resolves once `child` exits, with its exit code. */
function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

export class TestNetwork {
  /** `name` tells this network's namespaces apart from other suites' in the same run. */
  constructor(name, { direct = false } = {}) {
    this.prefix = `${process.env.NETNS_PREFIX || `tcw-${process.pid}`}-${name}`;
    this.direct = direct;
    this.children = [];
    this.browsers = [];
    mkdirSync(OUTPUT, { recursive: true });
  }

  ns(host) {
    return `${this.prefix}-${host}`;
  }

  up() {
    execFileSync(path.join(HERE, 'net.sh'), ['up', this.prefix, ...(this.direct ? ['direct'] : [])], { stdio: 'inherit' });
    return this;
  }

  /** Closes the browsers, stops the servers and deletes the namespaces. Safe to call twice. */
  async down() {
    await Promise.all(this.browsers.map((b) => b.close().catch(() => {})));
    this.browsers = [];
    for (const child of this.children) child.kill('SIGKILL');
    await Promise.all(this.children.map(exited));
    this.children = [];
    execFileSync(path.join(HERE, 'net.sh'), ['down', this.prefix], { stdio: 'inherit' });
  }

  /** `ip -n <host's namespace> …`, its output as text. */
  ip(host, ...args) {
    return ip('-n', this.ns(host), ...args);
  }

  /** Sets an interface of `host` up or down, as a cable pulled and plugged back. */
  setLink(host, ifname, state) {
    this.ip(host, 'link', 'set', ifname, state);
  }

  /**
   * Takes every link of `host` down (the host is offline), or brings them back up with its
   * route to the service address (which the kernel dropped with its link), in one batch, as
   * a network that comes back hands out address and route together.
   */
  setOnline(host, online) {
    const links = [HUB_LINK[host], ...(this.direct ? [DIRECT_LINK[host]] : [])];
    const commands = links.map((l) => `link set ${l} ${online ? 'up' : 'down'}`);
    if (online) commands.push(`route replace ${SERVICE_IP}/32 via ${HUB_GATEWAY[host]}`);
    execFileSync('ip', ['-n', this.ns(host), '-batch', '-'], { input: `${commands.join('\n')}\n` });
  }

  /** Starts `cmd` inside `host`'s namespace, its output appended to OUTPUT/<log>. */
  spawnIn(host, cmd, args, log) {
    const out = openSync(path.join(OUTPUT, log), 'a');
    const child = spawn('ip', ['netns', 'exec', this.ns(host), cmd, ...args], { stdio: ['ignore', out, out] });
    this.children.push(child);
    return child;
  }

  /** Waits (bounded) until `url` answers from inside `host`, failing early if `child` dies. */
  waitForHttp(host, url, child, seconds = 30) {
    return new Promise((resolve, reject) => {
      const probe = spawn('ip', ['netns', 'exec', this.ns(host), process.execPath, path.join(ROOT, 'e2e/wait-for.mjs'), url, String(seconds), String(child.pid)], { stdio: 'inherit' });
      probe.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${url} did not answer inside ${this.ns(host)}`))));
    });
  }

  /**
   * calling-server in the hub, serving the demo (www/) and the package (pkg/) as e2e/run.sh
   * does, on the service address. Dev mode on a non-loopback address needs --dev-on-network:
   * only a and b can reach it. Returns the page's base URL.
   */
  async startServer(extraArgs = [], port = SERVER_PORT) {
    const bin = process.env.SERVER_BIN;
    if (!bin) throw new Error('SERVER_BIN is not set (run through e2e/netns/run.sh)');
    const base = `http://${SERVICE_IP}:${port}`;
    const args = ['--listen', `${SERVICE_IP}:${port}`, '--www', path.join(ROOT, 'www'), '--pkg', path.join(ROOT, 'pkg'), '--dev-on-network', ...extraArgs];
    const child = this.spawnIn('hub', bin, args, `${this.prefix}-server-${port}.log`);
    await this.waitForHttp('hub', `${base}/healthz`, child);
    return base;
  }

  /**
   * coturn in the hub on the service address, relaying from that address too, with TURN REST
   * credentials from a secret made for this run. Returns { uri, secret }.
   */
  async startTurn({ tls = false } = {}) {
    const secret = randomBytes(16).toString('hex');
    // With `tls`, TURN over TLS too, on a certificate made for this run (the browsers trust
    // it: see launchBrowser).
    const tlsArgs = tls ? this.turnCertificate() : ['--no-tls'];
    const args = [
      '-n', '--listening-ip', SERVICE_IP, '--listening-port', String(TURN_PORT), '--relay-ip', SERVICE_IP,
      '--min-port', '49152', '--max-port', '49407',
      '--use-auth-secret', '--static-auth-secret', secret, '--realm', 'calling.test',
      ...tlsArgs, '--no-dtls', '--no-cli', '--no-stun', '--no-multicast-peers',
      // Peers are the relay's own addresses (both sides relay through the one hub address);
      // coturn refuses private peers unless allowed.
      '--allowed-peer-ip', SERVICE_IP,
      '--db', path.join(OUTPUT, `${this.prefix}-turndb.sqlite`),
      '--pidfile', path.join(OUTPUT, `${this.prefix}-turn.pid`),
      '--log-file', 'stdout', '--simple-log',
    ];
    const child = this.spawnIn('hub', 'turnserver', args, `${this.prefix}-turn.log`);
    await this.waitForUdpListener('hub', TURN_PORT, child);
    if (tls) await this.waitForUdpListener('hub', TURNS_PORT, child, 20_000, 'tcp');
    return { uri: `turn:${SERVICE_IP}:${TURN_PORT}?transport=udp`, tlsUri: `turns:${SERVICE_IP}:${TURNS_PORT}?transport=tcp`, secret };
  }

  /** A self-signed certificate for the service address, made for this run: coturn's TLS arguments. */
  turnCertificate() {
    const cert = path.join(OUTPUT, `${this.prefix}-turn-cert.pem`);
    const key = path.join(OUTPUT, `${this.prefix}-turn-key.pem`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=turn.test', '-addext', `subjectAltName=IP:${SERVICE_IP}`], { stdio: 'ignore' });
    return ['--cert', cert, '--pkey', key, '--tls-listening-port', String(TURNS_PORT)];
  }

  /** Waits (bounded) until something in `host` listens on UDP (or `proto`) `port`, failing if `child` exits. */
  async waitForUdpListener(host, port, child, ms = 20_000, proto = 'udp') {
    const deadline = Date.now() + ms;
    const wanted = new RegExp(`:${port}\\s`);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process ${child.pid} exited before listening on ${proto} ${port}`);
      const listening = execFileSync('ip', ['netns', 'exec', this.ns(host), 'ss', proto === 'udp' ? '-Hlnu' : '-Hlnt'], { encoding: 'utf8' });
      if (wanted.test(listening)) return;
      if (Date.now() > deadline) throw new Error(`nothing listens on ${proto} ${port} in ${this.ns(host)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Headless Chromium running inside `host`'s namespace, for pages from `origins` (one or a
   * list of the servers' base URLs). Playwright launches it over a pipe, so its executable is
   * a wrapper that enters the namespace first. `turnOverTls`: it will reach coturn over TLS,
   * whose certificate was made for the run (turnCertificate) and signed by no CA, so it skips
   * certificate checks.
   */
  async launchBrowser(host, origins, { turnOverTls = false } = {}) {
    const wrapper = path.join(OUTPUT, `chromium-${this.ns(host)}.sh`);
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${this.ns(host)}' /usr/bin/chromium "$@"\n`, { mode: 0o755 });
    const browser = await chromium.launch({
      executablePath: wrapper,
      headless: true,
      args: [
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        '--autoplay-policy=no-user-gesture-required',
        // The page comes from the hub's plain-HTTP address; getUserMedia needs a secure context.
        `--unsafely-treat-insecure-origin-as-secure=${[origins].flat().join(',')}`,
        // Host candidates carry the hosts' real 10.77.x addresses instead of mDNS names: there
        // is no mDNS responder between these namespaces, and the tests read which addresses
        // the candidates and the selected pair use.
        '--disable-features=WebRtcHideLocalIpsWithMdns',
        ...(turnOverTls ? ['--ignore-certificate-errors'] : []),
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--no-sandbox',
      ],
    });
    this.browsers.push(browser);
    return browser;
  }
}

/** The names of the interfaces in the root namespace. */
export function rootInterfaces() {
  return ip('-o', 'link', 'show').split('\n').filter(Boolean).map((line) => line.split(':')[1].trim().split('@')[0]);
}
