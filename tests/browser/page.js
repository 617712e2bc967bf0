// The JavaScript the browser tests use, in one module: every `inline_js` would be a module of
// its own, and the test page loads better with few (see scripts/browser-test.sh). Each part
// belongs to the test module named in its heading.

// ---- api ----
export function load(url) { return import(url); }

// ---- blocked_worker ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, deadlineMs, cond) {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await sleep(20);
  }
}

// A same-origin iframe whose own CSP forbids workers, with recorders installed before any
// of the package's code runs in it.
async function blockedPage() {
  const frame = document.createElement('iframe');
  frame.srcdoc = `<!doctype html><meta http-equiv="Content-Security-Policy" content="worker-src 'none'"><body></body>`;
  const loaded = new Promise((r) => frame.addEventListener('load', r, { once: true }));
  document.body.appendChild(frame);
  await loaded;
  const w = frame.contentWindow;
  const seen = { violations: [], workers: 0, workerThrew: 0, workerErrors: 0, workerMessages: 0, peers: [] };
  w.document.addEventListener('securitypolicyviolation', (e) => seen.violations.push(e.effectiveDirective));
  const RealWorker = w.Worker;
  w.Worker = class extends RealWorker {
    constructor(...args) {
      seen.workers += 1;
      try {
        super(...args);
      } catch (e) {
        seen.workerThrew += 1;
        throw e;
      }
      this.addEventListener('error', () => { seen.workerErrors += 1; });
      this.addEventListener('message', () => { seen.workerMessages += 1; });
    }
  };
  const RealPeer = w.RTCPeerConnection;
  w.RTCPeerConnection = class extends RealPeer {
    constructor(...args) { super(...args); seen.peers.push(this); }
  };
  return { frame, w, seen };
}

async function decodedFrames(pc) {
  let n = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0;
  });
  return n;
}

// Runs a 1:1 video call between two instances of the package inside the blocked page and
// reports what happened; any step that does not happen by the deadline rejects.
export async function callInBlockedPage(pkgUrl, server, appId, deadlineMs) {
  const { frame, w, seen } = await blockedPage();
  try {
    const module = await new w.Function('url', 'return import(url)')(`${pkgUrl}/index.js`);
    const TRTCCalling = module.default;
    const stamp = Math.floor(Math.random() * 1e9);
    const make = async (name) => {
      const userID = `${name}_${stamp}`;
      const sdk = new TRTCCalling({ SDKAppID: appId, signalingUrl: `ws://${server}/ws` });
      const events = [];
      for (const e of new Set(Object.values(TRTCCalling.EVENT))) sdk.on(e, () => events.push(e));
      const sig = await (await fetch(`http://${server}/dev/usersig?sdkAppID=${appId}&userID=${userID}`)).json();
      await sdk.login({ userID, userSig: sig.userSig });
      return { userID, sdk, events };
    };
    const a = await make('alice');
    const b = await make('bob');
    const open = () => seen.peers.filter((pc) => pc.signalingState !== 'closed');
    const senders = () => open().flatMap((pc) => pc.getSenders());

    await a.sdk.call({ userID: b.userID, type: 2 });
    await until('INVITED in the blocked page', deadlineMs, () => b.events.includes('onInvited'));
    await until('both connections up while ringing', deadlineMs,
      () => open().filter((pc) => pc.connectionState === 'connected').length === 2);
    await until("the caller's camera and microphone", deadlineMs, () => a.sdk.__localTracks().length === 2);
    const sendersWithTrackWhileRinging = senders().filter((s) => s.track !== null).length;

    await b.sdk.accept();
    await until('video frames decoded both ways', deadlineMs,
      async () => (await Promise.all(open().map(decodedFrames))).every((n) => n > 0) && open().length === 2);
    const sendersWithDevice = senders().filter((s) => s.track
      && !(s.track instanceof w.CanvasCaptureMediaStreamTrack)).length;

    await a.sdk.hangup();
    await until('CALL_END at the callee', deadlineMs, () => b.events.includes('onCallEnd'));
    await until('both connections closed', deadlineMs, () => open().length === 0);
    await a.sdk.logout();
    await b.sdk.logout();
    return {
      violations: seen.violations,
      workers: seen.workers,
      workerThrew: seen.workerThrew,
      workerErrors: seen.workerErrors,
      workerMessages: seen.workerMessages,
      sendersWithTrackWhileRinging,
      sendersWithDevice,
    };
  } finally {
    frame.remove();
  }
}

// ---- call_video ----
export function onNextOfferApplying(f) {
  const proto = RTCPeerConnection.prototype;
  const apply = proto.setRemoteDescription;
  proto.setRemoteDescription = function (description) {
    const applied = apply.apply(this, arguments);
    if (description && description.type === 'offer') {
      proto.setRemoteDescription = apply;
      // Right after this task, while the browser is still applying the offer.
      queueMicrotask(f);
    }
    return applied;
  };
}

// ---- common ----
export function canonical(v) {
  return JSON.stringify(v, (k, x) => x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : x);
}
export function delay(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
export function sdkElements() { return document.querySelectorAll('[data-trtc-calling]').length; }
// Every WebSocket the page opens records the frames it sends and receives, so a test can wait
// for a server message to have reached a client (installed once, when the tests load).
const RealSocket = window.WebSocket;
const sockets = [];
const records = new WeakMap();
window.WebSocket = class extends RealSocket {
  constructor(...args) {
    super(...args);
    const record = { sent: [], received: [] };
    sockets.push(record);
    records.set(this, record);
    this.addEventListener('message', (e) => record.received.push(String(e.data)));
  }
  send(data) {
    records.get(this)?.sent.push(String(data));
    return super.send(data);
  }
};
// The frames of `type` received by the latest socket that logged in as `user` (or resumed its
// session after a reconnect).
export function framesReceived(user, type) {
  const record = socketsOf(user).pop();
  return record ? record.received.filter(ofType(type)).length : 0;
}
// Every socket that logged in as `user` or resumed its session, oldest first.
function socketsOf(user) {
  const login = (f) => (f.includes('"type":"login"') || f.includes('"type":"resume"')) &&
    f.includes(`"userId":${JSON.stringify(user)}`);
  return sockets.filter((r) => r.sent.some(login));
}
const ofType = (type) => (frame) => frame.includes(`"type":${JSON.stringify(type)}`);
// How many sockets have logged in as `user` or resumed its session: 1 until it first moves or
// reconnects.
export function sessionSockets(user) { return socketsOf(user).length; }
// The frames of `type` every socket of `user` received, all sockets together.
export function framesReceivedByAll(user, type) {
  return socketsOf(user).reduce((n, r) => n + r.received.filter(ofType(type)).length, 0);
}
export function makeDiv(id) {
  const d = document.createElement('div');
  d.id = id;
  document.body.appendChild(d);
  return d;
}

// ---- connections ----
const Original = window.RTCPeerConnection;
const made = [];
window.RTCPeerConnection = class extends Original {
  constructor(...args) { super(...args); made.push(this); }
};
const open = () => made.filter((pc) => pc.signalingState !== 'closed');
export function peersCreated() { return made.length; }
// Every getUserMedia call: settled or not, failed or not, and the ids of the tracks it gave.
const captures = [];
const getUserMedia = MediaDevices.prototype.getUserMedia;
MediaDevices.prototype.getUserMedia = function (...args) {
  const capture = { settled: false, failed: false, tracks: [], live: [] };
  captures.push(capture);
  const result = getUserMedia.apply(this, args);
  result.then(
    (stream) => Object.assign(capture, {
      settled: true, tracks: stream.getTracks().map((t) => t.id), live: stream.getTracks(),
    }),
    () => Object.assign(capture, { settled: true, failed: true }),
  );
  return result;
};
export function capturesMade() { return captures.length; }
// Of the calls since the `from`-th: how many are pending, plus how many tracks they gave are
// still live. 0 means every device those calls opened is off again.
export function capturesOpenSince(from) {
  return captures.slice(from)
    .reduce((n, c) => n + (c.settled ? c.live.filter((t) => t.readyState === 'live').length : 1), 0);
}
// Calls since the `from`-th that are pending, failed, or gave a track not in `allowed` (ids).
export function capturesBeyond(from, allowed) {
  return captures.slice(from)
    .filter((c) => !c.settled || c.failed || c.tracks.some((id) => !allowed.includes(id))).length;
}
// Samples every 50 ms, from `startRingWatch` to `stopRingWatch`, what a ring must not do:
// media leaving, a device on a sender, frames decoded. Reports the worst of each, and how
// many samples were taken with both connections up (when media could flow).
let watch;
export function startRingWatch() {
  const w = { samples: 0, connectedSamples: 0, maxSent: 0, maxDeviceSenders: 0, maxFrames: 0, busy: false,
    peersAtStart: made.length };
  w.timer = setInterval(async () => {
    if (w.busy) return;
    w.busy = true;
    try {
      const sent = await mediaSent();
      const frames = (await framesDecoded()).reduce((a, b) => a + b, 0);
      w.maxSent = Math.max(w.maxSent, sent);
      w.maxDeviceSenders = Math.max(w.maxDeviceSenders, sendersWithDevice());
      w.maxFrames = Math.max(w.maxFrames, frames);
      w.samples += 1;
      if (connectedPeers() === 2) w.connectedSamples += 1;
    } finally {
      w.busy = false;
    }
  }, 50);
  watch = w;
}
export function connectedSamples() { return watch.connectedSamples; }
export function stopRingWatch() {
  clearInterval(watch.timer);
  const { samples, connectedSamples, maxSent, maxDeviceSenders, maxFrames } = watch;
  return { samples, connectedSamples, maxSent, maxDeviceSenders, maxFrames,
    peersCreated: made.length - watch.peersAtStart };
}
export function openPeers() { return open().length; }
// Each open connection, in the order made: its `iceTransportPolicy`, its gathering state and
// the type of every candidate in its local description (what it can reveal to the other side).
export function connectionExposure() {
  return open().map((pc) => ({
    policy: pc.getConfiguration().iceTransportPolicy,
    gathering: pc.iceGatheringState,
    candidateTypes: ((pc.localDescription && pc.localDescription.sdp) || '').split('\r\n')
      .filter((l) => l.startsWith('a=candidate:')).map((l) => l.split(' ')[7]),
  }));
}
// Connections whose offer is set and fully gathered: everything they will relay was sent.
export function offersGathered() {
  return open().filter((pc) => pc.signalingState === 'have-local-offer'
    && pc.iceGatheringState === 'complete').length;
}
export function connectedPeers() { return open().filter((pc) => pc.connectionState === 'connected').length; }
// Every canvas capture track the page makes (the SDK's warm-up canvas among them).
const canvasTracks = [];
const capture = HTMLCanvasElement.prototype.captureStream;
HTMLCanvasElement.prototype.captureStream = function (...args) {
  const stream = capture.apply(this, args);
  canvasTracks.push(...stream.getVideoTracks());
  return stream;
};
export function liveCanvasTracks() { return canvasTracks.filter((t) => t.readyState === 'live').length; }
const senders = () => open().flatMap((pc) => pc.getSenders());
export function sendersWithTrack() { return senders().filter((s) => s.track !== null).length; }
// Senders carrying a microphone or camera: any track but a canvas capture.
export function sendersWithDevice() {
  return senders().filter((s) => s.track && !(s.track instanceof CanvasCaptureMediaStreamTrack)).length;
}
async function outbound() {
  const all = [];
  for (const pc of open()) (await pc.getStats()).forEach((r) => r.type === 'outbound-rtp' && all.push(r));
  return all;
}
// RTP packets and payload bytes that left on every open connection. (Not `framesSent`:
// Chromium counts a frame there when the encoder hands it on, before the gate drops it.)
export async function mediaSent() {
  return (await outbound()).reduce((n, r) => n + (r.packetsSent || 0) + (r.bytesSent || 0), 0);
}
// Resolves true once `count` video senders encoded frames, false at the deadline.
export async function waitForWarmEncoders(count, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const warm = (await outbound()).filter((r) => r.kind === 'video' && r.framesEncoded > 0);
    if (warm.length >= count) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
// Hides encoded transforms from the SDK, as in a browser without them; `restore` undoes it.
const Transform = window.RTCRtpScriptTransform;
export function hideEncodedTransforms() { window.RTCRtpScriptTransform = undefined; }
export function restoreEncodedTransforms() { window.RTCRtpScriptTransform = Transform; }
async function decoded(pc) {
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames;
}
// Ids of the tracks on the senders of `kind` of every open connection (none: null).
export function senderTracks(kind) {
  return senders().filter((s) => s.track && s.track.kind === kind).map((s) => s.track.id);
}
async function audioReceived(pc) {
  let energy = 0, seconds = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      energy += r.totalAudioEnergy || 0;
      seconds += r.totalSamplesDuration || 0;
    }
  });
  return [energy, seconds];
}
// [sound energy, seconds of audio] received so far by the open connections that do not send
// the track `id`: in a 1:1 call, the peer's connection when `id` is one side's microphone.
export async function audioAtPeersOf(id) {
  const peers = open().filter((pc) => !pc.getSenders().some((s) => s.track && s.track.id === id));
  return (await Promise.all(peers.map(audioReceived))).reduce(([e, s], [f, t]) => [e + f, s + t], [0, 0]);
}
// Video frames decoded so far on each open connection.
export async function framesDecoded() { return Promise.all(open().map(decoded)); }
// Resolves true once every open connection (at least `count`) decoded a video frame, false at
// the deadline.
export async function waitForFrames(count, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const frames = await framesDecoded();
    if (frames.length >= count && frames.every((f) => f > 0)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

// ---- devices ----
export function unlistDevice(id) {
  const devices = navigator.mediaDevices;
  const all = MediaDevices.prototype.enumerateDevices;
  devices.enumerateDevices = async () => (await all.call(devices)).filter((d) => d.deviceId !== id);
  devices.dispatchEvent(new Event('devicechange'));
}
export function unlistKind(kind) {
  const devices = navigator.mediaDevices;
  const all = MediaDevices.prototype.enumerateDevices;
  devices.enumerateDevices = async () => (await all.call(devices)).filter((d) => d.kind !== kind);
}
export function relistDevices() { delete navigator.mediaDevices.enumerateDevices; }
export function recordSent() {
  if (window.sentFrames) return;
  window.sentFrames = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    window.sentFrames.push(String(data));
    return send.call(this, data);
  };
}
export function sentCount() { return window.sentFrames.length; }
export function offersSince(from) {
  return window.sentFrames.slice(from).filter((f) => f.includes('"kind":"offer"')).length;
}

// ---- media_errors ----
const md = navigator.mediaDevices;
// What `removeWebRtc` took away: the constructor in place then (the page-wide recorder's).
const saved = {};
let listed = 0;
// getUserMedia fails with `name`; with `unlisted` (audioinput / videoinput), every device
// of that kind is also gone from the device list, as when none is plugged in.
export function failMedia(name, unlisted) {
  md.getUserMedia = () => Promise.reject(new DOMException('injected failure', name));
  if (unlisted) {
    const all = MediaDevices.prototype.enumerateDevices;
    md.enumerateDevices = async () => {
      listed += 1;
      return (await all.call(md)).filter((d) => d.kind !== unlisted);
    };
  }
  listed = 0;
}
// How often the device list was read since `failMedia`.
export function timesListed() { return listed; }
export function restore() {
  delete md.getUserMedia;
  delete md.enumerateDevices;
  if (saved.pc) window.RTCPeerConnection = saved.pc;
}
export function removeWebRtc() {
  saved.pc = window.RTCPeerConnection;
  delete window.RTCPeerConnection;
}
