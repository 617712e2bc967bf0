//! The page's peer connections and captures, for tests about what they carry: every
//! `RTCPeerConnection` the page creates is recorded (the constructor is wrapped), with its
//! senders' tracks, what left on it, and what it received; every `getUserMedia` call is
//! recorded too (the browser's own function is wrapped), pending or not, with the tracks it
//! gave. Both recorders are installed once, when the tests load.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use wasm_bindgen_futures::JsFuture;

use crate::common::{call_options, canonical, get_num, ok, wait_until, Client, DEADLINE_MS};

#[wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    #[wasm_bindgen(js_name = openPeers)]
    pub fn open_peers() -> u32;
    /// Each open connection, in the order made: `{policy, gathering, candidateTypes}`.
    #[wasm_bindgen(js_name = connectionExposure)]
    pub fn connection_exposure() -> js_sys::Array;
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
    /// `[totalAudioEnergy, totalSamplesDuration]` received so far by the connections that do
    /// not send the track `id`.
    #[wasm_bindgen(js_name = audioAtPeersOf)]
    pub fn audio_at_peers_of(id: &str) -> Promise;
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
