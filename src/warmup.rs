//! Making the first remote frame come fast after accept, with nothing leaving before it.
//!
//! **Warm encoders.** A browser configures a sender's encoder, and only then gives it a
//! bitrate, when the first frame of a new track reaches it; that frame is dropped, so a camera
//! attached on accept shows on the other side only with its second frame (one frame interval
//! later: 50 ms at 20 fps). While a call rings, each video sender therefore carries a tiny
//! painted canvas track behind a closed gate: an encoded-frame transform
//! (`RTCRtpScriptTransform`, in a worker) that drops every frame, so not a byte of media leaves.
//! On accept the gate opens and the camera replaces the canvas; its first frame is a key frame
//! (the size changed) and goes out at once. Where the browser lacks encoded transforms (or a CSP
//! forbids `blob:` workers) none of this happens and tracks are attached on accept as before.
//!
//! **Start bitrate.** A browser paces the first key frame out at the bitrate its congestion
//! controller starts from (Chromium: 300 kbps), which takes some 25 ms for a few kilobytes even
//! on loopback. Chromium reads a higher start from the `x-google-start-bitrate` parameter of the
//! codec it sends with, which comes from the remote description; other browsers ignore it, and
//! the estimate adapts to the real link within the first seconds. 1000 kbps is about what the
//! default 480p needs.
//!
//! All of it is JS (`warmup.js`), which also owns the canvas track (64×48, repainted 5 times a
//! second: an encoder given no frame for 2 s gives its bitrate back) shared by all closed gates:
//! the gate must run in a worker, and the canvas and the description edit are a few lines there
//! but kilobytes of wasm here (string searching and formatting), in a package held to 80 KB.
//! The edit is unit-tested by `warmup.test.mjs`.

use wasm_bindgen::prelude::*;
use web_sys::{RtcRtpReceiver, RtcRtpSender};

#[wasm_bindgen(module = "/src/warmup.js")]
extern "C" {
    /// Starts the gates' worker (at login, so it runs by the first call); resolves once it
    /// runs, failed to, or after a second.
    #[wasm_bindgen(js_name = startGates)]
    pub fn start_gates() -> js_sys::Promise;
    /// A closed gate on `sender` (before its first negotiation), which then carries the shared
    /// canvas track; the gate's port, or undefined (no encoded transforms, or the worker has not
    /// started: a CSP without `worker-src blob:`).
    #[wasm_bindgen(js_name = closeGate)]
    fn close_gate(sender: &RtcRtpSender) -> JsValue;
    /// Opens the gate, or gives it up; the canvas stops with the last closed gate.
    #[wasm_bindgen(js_name = endGate)]
    fn end_gate(port: &JsValue, open: bool);
    /// A pass-through transform on `receiver` whose port asks the sender for a key frame; the
    /// port, or undefined (no encoded transforms, or no worker).
    #[wasm_bindgen(js_name = keyFrameRequester)]
    fn key_frame_requester(receiver: &RtcRtpReceiver) -> JsValue;
    #[wasm_bindgen(js_name = requestKeyFrame)]
    fn request_key_frame(port: &JsValue);
    /// `sdp` with `x-google-start-bitrate=1000` on each video codec (see the module docs).
    #[wasm_bindgen(js_name = withStartBitrate)]
    pub fn with_start_bitrate(sdp: &str) -> String;
}

/// The gate on one video sender; dropping it (the connection closes) gives it up.
pub struct Gate(JsValue);

impl Gate {
    /// Closes a gate on `sender` and feeds it the canvas; `None` where the browser has no
    /// encoded transforms.
    pub fn close(sender: &RtcRtpSender) -> Option<Gate> {
        let port = close_gate(sender);
        (!port.is_undefined()).then_some(Gate(port))
    }

    /// From now on frames of the sender's next track go out.
    pub fn open(&self) {
        end_gate(&self.0, true);
    }
}

/// Asks the sender of one received video for key frames (its connection is back after an
/// interruption: the decoder waits for one). Its frames pass through the gates' worker untouched.
pub struct KeyFrameRequester(JsValue);

impl KeyFrameRequester {
    pub fn attach(receiver: &RtcRtpReceiver) -> Option<KeyFrameRequester> {
        let port = key_frame_requester(receiver);
        (!port.is_undefined()).then_some(KeyFrameRequester(port))
    }

    pub fn request(&self) {
        request_key_frame(&self.0);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        end_gate(&self.0, false);
    }
}
