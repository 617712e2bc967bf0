// What the namespace suites read from a page, from outside the SDK: every RTCPeerConnection
// the page creates (for getStats(): the selected candidate pair, the remote candidates, the
// video RTP streams received and sent; and its connection state), the
// wall-clock time of every video frame a remote <video> presents, and the demo's journal of
// SDK events (window.demoEvents, kept by www/js/app.js).

/** Runs in the page before its scripts: records peer connections, offers the readers below. */
function pageProbe() {
  const connections = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      connections.push(this);
    }
  };

  // The times (Date.now(), comparable with the test's clock) at which each user's <video>
  // presented a frame: every video that appears in a view (`#view-<userID>`) is watched from
  // its first frame on, so a call's first frame is not missed.
  const frames = {};
  const watch = (video) => {
    const view = video.closest('[id^="view-"]');
    if (!view || video.dataset.probed || !video.requestVideoFrameCallback) return;
    video.dataset.probed = 'true';
    const times = (frames[view.id.slice('view-'.length)] ??= []);
    const onFrame = () => {
      times.push(Date.now());
      if (times.length > 4000) times.splice(0, 2000);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  new MutationObserver(() => document.querySelectorAll('video').forEach(watch))
    .observe(document, { childList: true, subtree: true });
  /** How many frames of `userID` were presented after `since`, and when the first was. */
  window.probeFramesSince = (userID, since) => {
    const after = (frames[userID] || []).filter((t) => t > since);
    return { count: after.length, first: after[0] ?? null };
  };

  /** Every `userID` frame time after `since`, oldest first (for the gaps between them). */
  window.probeFrameTimes = (userID, since) => (frames[userID] || []).filter((t) => t > since);

  /** The connectionState of every connection the page made, oldest first (closed ones too). */
  window.probeConnectionStates = () => connections.map((pc) => pc.connectionState);

  const live = () => connections.filter((pc) => pc.connectionState !== 'closed');

  /**
   * Every live connection's video RTP streams: what is received (with `user`, the stream ID
   * the remote description gives its m-line, `a=msid:<stream> <track>`: on a connection to the
   * SFU, the sender's user ID) and what is sent (each simulcast encoding by its rid).
   */
  window.probeVideoRtp = async () => {
    const out = [];
    for (const pc of live()) {
      const streamOfMid = new Map();
      for (const section of (pc.remoteDescription?.sdp || '').split(/\r?\nm=/).slice(1)) {
        const mid = section.match(/^a=mid:(\S+)/m)?.[1];
        const stream = section.match(/^a=msid:(\S+)/m)?.[1];
        if (mid && stream) streamOfMid.set(mid, stream);
      }
      const inbound = [];
      const outbound = [];
      (await pc.getStats()).forEach((r) => {
        if (r.kind !== 'video') return;
        if (r.type === 'inbound-rtp') {
          inbound.push({
            user: streamOfMid.get(r.mid) ?? null, mid: r.mid, ssrc: r.ssrc,
            frameWidth: r.frameWidth, frameHeight: r.frameHeight, framesDecoded: r.framesDecoded, bytesReceived: r.bytesReceived,
          });
        }
        if (r.type === 'outbound-rtp') {
          outbound.push({
            rid: r.rid, frameWidth: r.frameWidth, frameHeight: r.frameHeight, framesEncoded: r.framesEncoded,
            bytesSent: r.bytesSent, active: r.active, qualityLimitationReason: r.qualityLimitationReason,
          });
        }
      });
      out.push({ inbound, outbound });
    }
    return out;
  };
  /** The candidates of each live connection's selected pair, and every remote candidate. */
  window.probeStats = async () => {
    const out = [];
    for (const pc of live()) {
      const report = await pc.getStats();
      const byId = new Map();
      report.forEach((r) => byId.set(r.id, r));
      let pair = null;
      report.forEach((r) => {
        if (r.type === 'transport' && r.selectedCandidatePairId) pair = byId.get(r.selectedCandidatePairId);
      });
      const cand = (id) => {
        const c = byId.get(id);
        return c ? { type: c.candidateType, address: c.address, port: c.port, relayProtocol: c.relayProtocol } : null;
      };
      const remotes = [];
      let framesDecoded = 0;
      report.forEach((r) => {
        if (r.type === 'remote-candidate') remotes.push({ type: r.candidateType, address: r.address });
        if (r.type === 'inbound-rtp' && r.kind === 'video') framesDecoded += r.framesDecoded || 0;
      });
      out.push({
        connectionState: pc.connectionState,
        selected: pair ? { local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId) } : null,
        remotes,
        framesDecoded,
      });
    }
    return out;
  };
}

/** Installs the probe in `person`'s page (already open): it applies from a reload on. */
export async function installProbe(person) {
  await person.context.addInitScript(pageProbe);
  await person.page.reload();
  await person.waitFor('body[data-screen="login"]');
}

/** Waits until `person` has presented `n` frames of `userID` after `since`; the first one's time. */
export async function waitForFramesSince(person, userID, since, n, timeout) {
  try {
    await person.page.waitForFunction(([id, t, k]) => window.probeFramesSince(id, t).count >= k, [userID, since, n], { timeout, polling: 20 });
  } catch (err) {
    const seen = await person.page.evaluate(([id, t]) => window.probeFramesSince(id, t), [userID, since]).catch(() => 'page gone');
    throw new Error(`${person.userID}: fewer than ${n} frames of ${userID} within ${timeout} ms (${JSON.stringify(seen)})\n${err.message}`);
  }
  return (await person.page.evaluate(([id, t]) => window.probeFramesSince(id, t), [userID, since])).first;
}

/** The times (Date.now()) of every frame of `userID` that `person` presented after `since`. */
export function frameTimesSince(person, userID, since) {
  return person.page.evaluate(([id, t]) => window.probeFrameTimes(id, t), [userID, since]);
}

/** The connectionState of every peer connection `person`'s page made, oldest first. */
export function connectionStates(person) {
  return person.page.evaluate(() => window.probeConnectionStates());
}

/** `person`'s live peer connections' video RTP streams, as probeVideoRtp() reports them. */
export function videoRtp(person) {
  return person.page.evaluate(() => window.probeVideoRtp());
}

/** The page's live peer connections as probeStats() reports them. */
export function stats(person) {
  return person.page.evaluate(() => window.probeStats());
}

/** The demo's journal of SDK events, optionally only those named `name`. */
export async function events(person, name) {
  const all = await person.page.evaluate(() => window.demoEvents);
  return name ? all.filter((e) => e.name === name) : all;
}

/** Waits until the journal holds `count` events named `name` of `userID`; returns them. */
export async function waitForEvents(person, name, userID, count, timeout) {
  try {
    await person.page.waitForFunction(
      ([n, u, k]) => window.demoEvents.filter((e) => e.name === n && e.userID === u).length >= k,
      [name, userID, count],
      { timeout },
    );
  } catch (err) {
    const seen = await events(person).catch(() => 'page gone');
    throw new Error(`${person.userID}: not ${count} × ${name} of ${userID} within ${timeout} ms; heard ${JSON.stringify(seen)}\n${err.message}`);
  }
  return (await events(person, name)).filter((e) => e.userID === userID);
}
