//! The page's peer connections and captures, for tests about what they carry: every
//! `RTCPeerConnection` the page creates is recorded (the constructor is wrapped), with its
//! senders' tracks, what left on it, and what it received; every `getUserMedia` call is
//! recorded too (the browser's own function is wrapped), pending or not, with the tracks it
//! gave. Both recorders are installed once, when the tests load.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use wasm_bindgen_futures::JsFuture;

use crate::common::{call_options, canonical, get_num, ok, wait_until, Client, DEADLINE_MS};

#[wasm_bindgen(inline_js = "
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
  const capture = { settled: false, failed: false, tracks: [] };
  captures.push(capture);
  const result = getUserMedia.apply(this, args);
  result.then(
    (stream) => Object.assign(capture, { settled: true, tracks: stream.getTracks().map((t) => t.id) }),
    () => Object.assign(capture, { settled: true, failed: true }),
  );
  return result;
};
export function capturesMade() { return captures.length; }
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
async function audioEnergy(pc) {
  let energy = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') energy += r.totalAudioEnergy || 0;
  });
  return energy;
}
// Audio energy received so far by the open connections that do not send the track `id`: in a
// 1:1 call, the peer's connection when `id` is one side's microphone.
export async function audioEnergyAtPeersOf(id) {
  const peers = open().filter((pc) => !pc.getSenders().some((s) => s.track && s.track.id === id));
  return (await Promise.all(peers.map(audioEnergy))).reduce((a, b) => a + b, 0);
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
")]
extern "C" {
    #[wasm_bindgen(js_name = openPeers)]
    pub fn open_peers() -> u32;
    #[wasm_bindgen(js_name = offersGathered)]
    pub fn offers_gathered() -> u32;
    #[wasm_bindgen(js_name = peersCreated)]
    pub fn peers_created() -> u32;
    #[wasm_bindgen(js_name = capturesMade)]
    pub fn captures_made() -> u32;
    #[wasm_bindgen(js_name = capturesBeyond)]
    fn captures_beyond(from: u32, allowed: Vec<String>) -> u32;
    #[wasm_bindgen(js_name = startRingWatch)]
    fn start_ring_watch();
    #[wasm_bindgen(js_name = connectedSamples)]
    fn connected_samples() -> u32;
    #[wasm_bindgen(js_name = stopRingWatch)]
    fn stop_ring_watch() -> JsValue;
    /// Ids of the tracks on the senders of `kind` ("audio", "video") of every open connection.
    #[wasm_bindgen(js_name = senderTracks)]
    pub fn sender_tracks(kind: &str) -> Vec<String>;
    /// Audio energy received so far (`totalAudioEnergy`) by the connections that do not send
    /// the track `id`.
    #[wasm_bindgen(js_name = audioEnergyAtPeersOf)]
    pub fn audio_energy_at_peers_of(id: &str) -> Promise;
    #[wasm_bindgen(js_name = liveCanvasTracks)]
    pub fn live_canvas_tracks() -> u32;
    #[wasm_bindgen(js_name = connectedPeers)]
    pub fn connected_peers() -> u32;
    #[wasm_bindgen(js_name = sendersWithTrack)]
    pub fn senders_with_track() -> u32;
    #[wasm_bindgen(js_name = sendersWithDevice)]
    pub fn senders_with_device() -> u32;
    #[wasm_bindgen(js_name = mediaSent)]
    pub fn media_sent() -> Promise;
    #[wasm_bindgen(js_name = waitForWarmEncoders)]
    pub fn wait_for_warm_encoders(count: u32, deadline_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = hideEncodedTransforms)]
    pub fn hide_encoded_transforms();
    #[wasm_bindgen(js_name = restoreEncodedTransforms)]
    pub fn restore_encoded_transforms();
    #[wasm_bindgen(js_name = framesDecoded)]
    pub fn frames_decoded() -> Promise;
    #[wasm_bindgen(js_name = waitForFrames)]
    pub fn wait_for_frames(count: u32, deadline_ms: u32) -> Promise;
}

/// `a` calls `b` (video); returns once `b` rings and both connections are up, with `a`'s own
/// camera and microphone open (so an empty sender means "not attached", not "nothing yet").
pub async fn ring_connected(a: &Client, b: &Client) {
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    b.wait_for("onInvited").await;
    wait_until("both connections up while ringing", || {
        connected_peers() == 2
    })
    .await;
    wait_until("the caller's camera and microphone", || {
        a.sdk.local_tracks().length() == 2
    })
    .await;
    assert_eq!(a.sdk.get_call_status(), "calling");
    assert_eq!(b.sdk.get_call_status(), "calling");
}

/// After an accept: video frames decoded on both connections, which carry the microphone and
/// camera of both sides.
pub async fn assert_video_both_ways() {
    let flowing = JsFuture::from(wait_for_frames(2, DEADLINE_MS))
        .await
        .unwrap_or_default();
    assert_eq!(flowing.as_bool(), Some(true), "video frames both ways");
    assert_eq!(
        senders_with_device(),
        4,
        "microphone and camera on both connections"
    );
}

/// Once a call or ring ended: both connections closed, and no warm-up canvas left running.
pub async fn wait_closed_without_canvas() {
    wait_until("both connections closed", || open_peers() == 0).await;
    assert_eq!(live_canvas_tracks(), 0, "the warm-up canvas still live");
}

/// A watch over a ring, from before `call()` to just before the ring ends: every
/// `getUserMedia` call made meanwhile, and what the connections did, sampled throughout.
pub struct RingWatch {
    captures_at_start: u32,
}

impl RingWatch {
    pub fn start() -> RingWatch {
        start_ring_watch();
        RingWatch {
            captures_at_start: captures_made(),
        }
    }

    /// Keeps the ring going until 10 samples (half a second) were taken with both connections
    /// up, then stops watching and asserts the ring opened no device but the caller's own
    /// (`caller`'s tracks), put no device on a sender, sent no media, decoded no frame, and
    /// created exactly one connection per side.
    pub async fn assert_nothing_captured_or_sent(self, caller: &Client) {
        wait_until("10 samples of the ring with both connections up", || {
            connected_samples() >= 10
        })
        .await;
        let report = stop_ring_watch();
        let n = |key: &str| get_num(&report, key);
        let what = canonical(&report);
        let own: Vec<String> = caller
            .sdk
            .local_tracks()
            .iter()
            .map(|t| t.unchecked_into::<web_sys::MediaStreamTrack>().id())
            .collect();
        assert!(
            captures_made() > self.captures_at_start,
            "the caller's own getUserMedia was not seen: the capture recorder is blind"
        );
        assert_eq!(
            captures_beyond(self.captures_at_start, own),
            0,
            "a getUserMedia call during the ring that is not the caller's (pending, failed, or \
             giving a track the caller does not hold): the callee opened a device"
        );
        assert_eq!(
            n("maxSent"),
            0.0,
            "media packets or bytes sent while ringing: {what}"
        );
        assert_eq!(
            n("maxDeviceSenders"),
            0.0,
            "a device track was on a sender while ringing: {what}"
        );
        assert_eq!(n("maxFrames"), 0.0, "frames decoded while ringing: {what}");
        assert_eq!(
            n("peersCreated"),
            2.0,
            "connections created for one 1:1 ring: {what}"
        );
    }
}
