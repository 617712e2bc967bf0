// Test harness for the end-to-end suite: launches Debian's Chromium through playwright-core,
// gives each simulated person an independent browser context signed in through the demo UI,
// and offers waits on UI state with deadlines (no fixed sleeps) plus numbered screenshots.
//
// Run through e2e/run.sh, which provides E2E_BASE_URL (a calling-server inside a
// loopback-only network namespace) and E2E_OUTPUT (the screenshot folder).

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('../.tools/node_modules/playwright-core');

export const BASE_URL = process.env.E2E_BASE_URL || 'http://127.0.0.1:8181';
export const OUTPUT = process.env.E2E_OUTPUT || path.resolve('test-output/e2e');
/**
 * How often a wait for a video's frames looks at it. Not on every animation frame (Playwright's
 * default), which keeps a page drawing frames only to be polled: CPU that the nine pages of the
 * full group call need on two cores.
 */
const VIDEO_POLL_MS = 200;
/** Deadline for any single UI state to appear. */
export const STATE_TIMEOUT = 20_000;

export const PHONE = { width: 375, height: 740 };
export const DESKTOP = { width: 1280, height: 800 };

/** Chromium with fake devices; `extraArgs` are added to the standard flags. */
export async function launchBrowser(extraArgs = []) {
  mkdirSync(OUTPUT, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--no-sandbox',
      ...extraArgs,
    ],
  });
}

/** One person: an independent browser context (own storage, own devices) with one tab. */
export class Person {
  /** `baseUrl` overrides the page address (e.g. an insecure origin mapped to the server). */
  constructor(browser, userID, viewport, scenario, baseUrl = BASE_URL) {
    this.browser = browser;
    this.userID = userID;
    this.viewport = viewport;
    this.scenario = scenario;
    this.baseUrl = baseUrl;
    /** Added to the page address (`?quality=720p`); set by withPeople's `query`. */
    this.query = '';
    this.logs = [];
  }

  async open() {
    this.context = await this.browser.newContext({ viewport: this.viewport });
    // Chromium refuses to grant device permissions to an insecure origin, which has none anyway.
    if (this.baseUrl === BASE_URL) {
      await this.context.grantPermissions(['camera', 'microphone'], { origin: this.baseUrl });
    }
    // Every track getUserMedia gives the page is recorded, so a test can see which device is
    // live from outside the SDK and the app.
    await this.context.addInitScript(() => {
      const captured = [];
      const getUserMedia = MediaDevices.prototype.getUserMedia;
      MediaDevices.prototype.getUserMedia = async function (...args) {
        const stream = await getUserMedia.apply(this, args);
        captured.push(...stream.getTracks());
        return stream;
      };
      window.liveCapture = (kind) => {
        const t = captured.filter((x) => x.kind === kind && x.readyState === 'live').pop();
        return t ? { id: t.id, deviceId: t.getSettings().deviceId, label: t.label } : null;
      };
    });
    // Every RTCPeerConnection the page creates is recorded (it only records: the class is a
    // subclass of the browser's, so `instanceof` and the static methods behave as before), with
    // the stream id of each track it receives, so a test can see from outside the SDK how many
    // connections a call uses and what flows on each: window.rtcStats() reads them.
    await this.context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      if (!Native) return;
      const created = [];
      /** Per connection: received track id -> { track, stream id, transceiver }. */
      const received = new WeakMap();
      window.RTCPeerConnection = class RTCPeerConnection extends Native {
        constructor(...args) {
          super(...args);
          const tracks = new Map();
          received.set(this, tracks);
          created.push(this);
          this.addEventListener('track', (e) => {
            tracks.set(e.track.id, { track: e.track, stream: e.streams[0]?.id ?? null, transceiver: e.transceiver });
          });
        }
      };
      /**
       * The recorded connections: how many were created, and for each one not closed its state
       * and its video RTP streams from getStats (outbound: rid, mid, frames encoded, frame width;
       * inbound: mid, track, the stream id it arrived in, whether it is still received, frames
       * decoded, frame width).
       */
      window.rtcStats = async () => {
        const at = performance.now();
        const open = [];
        for (const pc of created.filter((c) => c.signalingState !== 'closed')) {
          const tracks = received.get(pc);
          const outboundVideo = [];
          const inboundVideo = [];
          for (const s of (await pc.getStats()).values()) {
            if (s.kind !== 'video') continue;
            if (s.type === 'outbound-rtp') {
              outboundVideo.push({
                rid: s.rid ?? null, mid: s.mid ?? null, framesEncoded: s.framesEncoded ?? 0, frameWidth: s.frameWidth ?? 0,
              });
            } else if (s.type === 'inbound-rtp') {
              const r = tracks.get(s.trackIdentifier);
              const receiving = Boolean(r) && r.track.readyState === 'live' && !r.transceiver.stopped
                && ['recvonly', 'sendrecv'].includes(r.transceiver.currentDirection);
              inboundVideo.push({
                mid: s.mid ?? null, track: s.trackIdentifier ?? null, stream: r?.stream ?? null,
                receiving, framesDecoded: s.framesDecoded ?? 0, frameWidth: s.frameWidth ?? 0,
              });
            }
          }
          // The simulcast encodings the page asked its video sender for (by rid).
          const configuredRids = pc.getTransceivers()
            .filter((t) => t.direction === 'sendonly' && t.receiver.track.kind === 'video')
            .flatMap((t) => t.sender.getParameters().encodings.map((e) => e.rid ?? null));
          open.push({ pc, connectionState: pc.connectionState, outboundVideo, inboundVideo, configuredRids });
        }
        // Those closed while their statistics were read are not counted either.
        return {
          at,
          created: created.length,
          open: open.filter((o) => o.pc.signalingState !== 'closed').map(({ pc, ...o }) => o),
        };
      };
      // The latest rtcStats() sample taken after `notBefore` (the page's performance.now()),
      // or null; each call starts a new sample unless one is under way. Synchronous, for
      // waitForFunction predicates.
      let latest = null;
      let pending = null;
      window.rtcLatest = (notBefore = 0) => {
        pending ??= window.rtcStats().then((s) => { latest = s; }, () => {}).finally(() => { pending = null; });
        return latest && latest.at >= notBefore ? latest : null;
      };
    });
    this.page = await this.context.newPage();
    this.page.on('console', (m) => this.logs.push(`[${m.type()}] ${m.text()}`));
    this.page.on('pageerror', (e) => this.logs.push(`[pageerror] ${e.message}`));
    await this.page.goto(`${this.baseUrl}${this.query}`);
    await this.waitFor('body[data-screen="login"]');
    return this;
  }

  /** The latest live track of `kind` ("audio", "video") captured in the page, or null. */
  liveCapture(kind) {
    return this.page.evaluate((k) => window.liveCapture(k), kind);
  }

  /** The page's RTCPeerConnections and their video RTP streams (see `rtcStats` in `open`). */
  rtcStats() {
    return this.page.evaluate(() => window.rtcStats());
  }

  /** Signs in through the form, as a person would. */
  async signIn() {
    await this.page.getByTestId('login-user').fill(this.userID);
    await this.page.getByTestId('login-submit').click();
    await this.waitFor('body[data-screen="home"][data-call="idle"]');
    const shown = await this.page.getByTestId('me').textContent();
    if (shown !== this.userID) throw new Error(`${this.userID}: home shows "${shown}"`);
  }

  /** Waits until `selector` matches a visible element. */
  async waitFor(selector, timeout = STATE_TIMEOUT) {
    try {
      await this.page.locator(selector).first().waitFor({ state: 'visible', timeout });
    } catch (err) {
      throw new Error(`${this.userID}: "${selector}" not visible within ${timeout} ms\n${err.message}`);
    }
  }

  /** Waits until `selector` matches nothing visible. */
  async waitGone(selector, timeout = STATE_TIMEOUT) {
    try {
      await this.page.locator(selector).first().waitFor({ state: 'hidden', timeout });
    } catch (err) {
      throw new Error(`${this.userID}: "${selector}" still visible after ${timeout} ms\n${err.message}`);
    }
  }

  /** Waits until the element's text contains `text`. */
  async waitForText(testid, text, timeout = STATE_TIMEOUT) {
    try {
      await this.page.waitForFunction(
        ([id, t]) => document.querySelector(`[data-testid="${id}"]`)?.textContent.includes(t),
        [testid, text],
        { timeout },
      );
    } catch (err) {
      const actual = await this.page.getByTestId(testid).first().textContent().catch(() => null);
      throw new Error(`${this.userID}: [data-testid=${testid}] never contained "${text}" (has "${actual}")\n${err.message}`);
    }
  }

  tile(userID) {
    return `[data-user="${userID}"]`;
  }

  /**
   * Waits until `userID`'s tile plays video whose frames advance: a decoded size and a
   * currentTime that moves on by at least half a second.
   */
  async waitForVideo(userID, timeout = STATE_TIMEOUT) {
    const sel = `#view-${userID} video`;
    try {
      await this.page.waitForFunction(
        (s) => { const v = document.querySelector(s); return v && v.videoWidth > 0 && v.currentTime > 0; },
        sel,
        { timeout, polling: VIDEO_POLL_MS },
      );
      const t0 = await this.page.evaluate((s) => document.querySelector(s).currentTime, sel);
      await this.page.waitForFunction(
        ([s, t]) => { const v = document.querySelector(s); return v && v.videoWidth > 0 && v.currentTime > t + 0.5; },
        [sel, t0],
        { timeout, polling: VIDEO_POLL_MS },
      );
    } catch (err) {
      const state = await this.page.evaluate((s) => {
        const v = document.querySelector(s);
        return v ? { videoWidth: v.videoWidth, currentTime: v.currentTime, paused: v.paused, readyState: v.readyState } : null;
      }, sel).catch(() => 'page gone');
      throw new Error(`${this.userID}: no advancing video for ${userID} (${JSON.stringify(state)})\n${err.message}`);
    }
  }

  /** Number of <video> elements in the page (the SDK must remove its own after a call). */
  videoCount() {
    return this.page.locator('video').count();
  }

  async shot(step) {
    const file = path.join(OUTPUT, `${this.scenario}-${step}-${this.userID}.png`);
    // Finish CSS animations first, so a toast is captured as the user reads it, not mid-fade.
    await this.page.screenshot({ path: file, animations: 'disabled' });
    return file;
  }

  /** The page's console, for diagnosing a failure. */
  dumpLogs() {
    return `--- console of ${this.userID} ---\n${this.logs.slice(-60).join('\n')}`;
  }

  async close() {
    await this.context?.close().catch(() => {});
  }
}

/**
 * Runs `body` with people signed in; on failure prints their consoles and saves a
 * screenshot of each page as it was, then closes every context either way.
 */
export async function withPeople(browser, scenario, specs, body) {
  // A spec is [userID, viewport] or [userID, viewport, {browser, baseUrl, query}].
  const people = specs.map(([id, viewport, opts = {}]) => {
    const person = new Person(opts.browser ?? browser, id, viewport, scenario, opts.baseUrl);
    person.query = opts.query ?? '';
    return person;
  });
  try {
    await Promise.all(people.map((p) => p.open()));
    await Promise.all(people.map((p) => p.signIn()));
    await body(...people);
  } catch (err) {
    for (const p of people) {
      if (p.page) await p.shot('FAILED').catch(() => {});
      console.error(p.dumpLogs());
    }
    throw err;
  } finally {
    await Promise.all(people.map((p) => p.close()));
  }
}
