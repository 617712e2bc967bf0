//! Connections made while an invitation rings: ICE and DTLS complete during the ring, and the
//! video encoders are kept warm on a canvas track, yet no device opens on the callee's side, no
//! device track is put on a sender and not a byte of media goes out before the callee accepts;
//! after accept, frames flow both ways; a ring that ends closes those connections. Every
//! `RTCPeerConnection` the page creates is recorded (the constructor is wrapped below).

mod common;

use common::*;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = "
const Original = window.RTCPeerConnection;
const made = [];
window.RTCPeerConnection = class extends Original {
  constructor(...args) { super(...args); made.push(this); }
};
const open = () => made.filter((pc) => pc.signalingState !== 'closed');
export function openPeers() { return open().length; }
export function connectedPeers() { return open().filter((pc) => pc.connectionState === 'connected').length; }
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
    fn open_peers() -> u32;
    #[wasm_bindgen(js_name = connectedPeers)]
    fn connected_peers() -> u32;
    #[wasm_bindgen(js_name = sendersWithTrack)]
    fn senders_with_track() -> u32;
    #[wasm_bindgen(js_name = sendersWithDevice)]
    fn senders_with_device() -> u32;
    #[wasm_bindgen(js_name = mediaSent)]
    fn media_sent() -> Promise;
    #[wasm_bindgen(js_name = waitForWarmEncoders)]
    fn wait_for_warm_encoders(count: u32, deadline_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = hideEncodedTransforms)]
    fn hide_encoded_transforms();
    #[wasm_bindgen(js_name = restoreEncodedTransforms)]
    fn restore_encoded_transforms();
    #[wasm_bindgen(js_name = framesDecoded)]
    fn frames_decoded() -> Promise;
    #[wasm_bindgen(js_name = waitForFrames)]
    fn wait_for_frames(count: u32, deadline_ms: u32) -> Promise;
}

/// `a` calls `b` (video); returns once `b` rings and both connections are up, with `a`'s own
/// camera and microphone open (so an empty sender means "not attached", not "nothing yet").
async fn ring_connected(a: &Client, b: &Client) {
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

/// Nothing may have been captured by the callee nor sent by anyone; the video encoders on
/// both sides are warm (they encoded the canvas's frames, which the gate dropped).
async fn assert_warm_and_nothing_sent(a: &Client, b: &Client) {
    let warm = JsFuture::from(wait_for_warm_encoders(2, DEADLINE_MS))
        .await
        .unwrap_or_default();
    assert_eq!(warm.as_bool(), Some(true), "both video encoders warm");
    assert_eq!(senders_with_track(), 2, "the canvas on both video senders");
    assert_no_media_out(a, b).await;
}

/// No device open on the callee, none on a sender, no media sent, none received.
async fn assert_no_media_out(a: &Client, b: &Client) {
    assert_eq!(
        b.sdk.local_tracks().length(),
        0,
        "the callee opened a device before accepting"
    );
    assert_eq!(
        senders_with_device(),
        0,
        "a device track was put on a sender before accept"
    );
    let sent = JsFuture::from(media_sent()).await.unwrap_or_default();
    assert_eq!(
        sent.as_f64(),
        Some(0.0),
        "media packets or bytes sent while ringing"
    );
    let frames = JsFuture::from(frames_decoded()).await.unwrap_or_default();
    assert_eq!(canonical(&frames), "[0,0]", "frames decoded while ringing");
    for c in [a, b] {
        assert!(
            !c.names().iter().any(|n| n == "onUserEnter"),
            "{}: USER_ENTER before any media: {:?}",
            c.user,
            c.names()
        );
    }
}

#[wasm_bindgen_test]
async fn ringing_connects_without_media_and_accept_sends_both_ways() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ring_connected(&a, &b).await;
    assert_warm_and_nothing_sent(&a, &b).await;

    ok(b.sdk.accept(), "accept").await;
    assert_js_eq(
        &a.wait_for("onUserEnter").await,
        &user_payload(&b.user),
        "USER_ENTER at caller",
    );
    assert_js_eq(
        &b.wait_for("onUserEnter").await,
        &user_payload(&a.user),
        "USER_ENTER at callee",
    );
    let flowing = JsFuture::from(wait_for_frames(2, DEADLINE_MS))
        .await
        .unwrap_or_default();
    assert_eq!(flowing.as_bool(), Some(true), "video frames both ways");
    assert_eq!(
        senders_with_device(),
        4,
        "microphone and camera on both connections"
    );
    assert_eq!(open_peers(), 2, "the ringing connections carry the call");
    hang_up(&a, &b).await;
    wait_until("both connections closed", || open_peers() == 0).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn cancel_while_ringing_closes_both_connections() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ring_connected(&a, &b).await;
    assert_warm_and_nothing_sent(&a, &b).await;
    ok(a.sdk.hangup(), "hangup").await;
    b.wait_for("onCallingCancel").await;
    wait_until("both connections closed", || open_peers() == 0).await;
    for c in [&a, &b] {
        assert_eq!(c.sdk.get_call_status(), "idle");
        c.assert_released();
    }
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn reject_while_ringing_closes_both_connections() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ring_connected(&a, &b).await;
    assert_warm_and_nothing_sent(&a, &b).await;
    ok(b.sdk.reject(), "reject").await;
    a.wait_for("onReject").await;
    // The caller's line is free with the REJECT itself, not only after the server's end of call.
    assert_eq!(a.sdk.get_call_status(), "idle");
    wait_until("both connections closed", || open_peers() == 0).await;
    for c in [&a, &b] {
        c.assert_released();
    }
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn without_encoded_transforms_nothing_is_warmed_and_accept_still_sends_both_ways() {
    hide_encoded_transforms();
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ring_connected(&a, &b).await;
    assert_eq!(senders_with_track(), 0, "no canvas without a gate");
    assert_no_media_out(&a, &b).await;
    ok(b.sdk.accept(), "accept").await;
    let flowing = JsFuture::from(wait_for_frames(2, DEADLINE_MS))
        .await
        .unwrap_or_default();
    assert_eq!(flowing.as_bool(), Some(true), "video frames both ways");
    assert_eq!(
        senders_with_device(),
        4,
        "microphone and camera on both connections"
    );
    hang_up(&a, &b).await;
    wait_until("both connections closed", || open_peers() == 0).await;
    restore_encoded_transforms();
    a.logout().await;
    b.logout().await;
}
