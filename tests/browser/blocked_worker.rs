//! A page whose Content-Security-Policy forbids workers (`worker-src 'none'`), so the SDK's
//! encoded-frame worker cannot start: no sender is gated or warmed, and calls connect and carry
//! video exactly as without the warm-up.
//!
//! The SDK starts its worker once per page, so the policy needs a page of its own: an iframe
//! whose document carries the CSP and loads the built npm package (its own module instance).
//! The iframe records every policy violation and every worker its code constructs, so the test
//! proves the worker was refused, not only that the policy was written.

use crate::common::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    #[wasm_bindgen(js_name = callInBlockedPage)]
    fn call_in_blocked_page(
        pkg_url: &str,
        server: &str,
        app_id: u32,
        deadline_ms: u32,
    ) -> js_sys::Promise;
}

#[wasm_bindgen_test::wasm_bindgen_test]
async fn with_workers_forbidden_nothing_is_gated_and_calls_still_carry_video() {
    let report = ok(
        call_in_blocked_page(PKG_URL, SERVER, SDK_APP_ID, DEADLINE_MS),
        "a call in a page that forbids workers",
    )
    .await;
    let n = |key: &str| get_num(&report, key);
    let what = canonical(&report);
    // The SDK tried to start its worker and the page's policy refused it: it never ran.
    assert!(
        n("workers") >= 1.0,
        "the SDK never constructed a worker: {what}"
    );
    assert!(
        js_sys::Array::from(&get(&report, "violations"))
            .iter()
            .any(|d| d.as_string().as_deref() == Some("worker-src")),
        "no worker-src violation: {what}"
    );
    assert!(
        n("workerThrew") + n("workerErrors") >= 1.0,
        "the worker did not fail: {what}"
    );
    assert_eq!(n("workerMessages"), 0.0, "the worker ran: {what}");
    // Without a running gate nothing is warmed: no canvas on any sender while it rings.
    assert_eq!(
        n("sendersWithTrackWhileRinging"),
        0.0,
        "a sender carried a track while ringing: {what}"
    );
    assert_eq!(
        n("sendersWithDevice"),
        4.0,
        "microphone and camera on both connections: {what}"
    );
}
