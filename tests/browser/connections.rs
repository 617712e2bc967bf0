//! The page's peer connections, for tests about what they carry: every `RTCPeerConnection`
//! the page creates is recorded (the constructor is wrapped), with its senders' tracks, what
//! left on it, and what it decoded.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use wasm_bindgen_futures::JsFuture;

use crate::common::{call_options, ok, wait_until, Client, DEADLINE_MS};

#[wasm_bindgen(inline_js = "
const Original = window.RTCPeerConnection;
const made = [];
window.RTCPeerConnection = class extends Original {
  constructor(...args) { super(...args); made.push(this); }
};
const open = () => made.filter((pc) => pc.signalingState !== 'closed');
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
