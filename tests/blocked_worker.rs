//! A page whose policy keeps the SDK's encoded-frame worker from running (a CSP without
//! `worker-src blob:`): the worker here fails to start, as such a page's does, so no sender is
//! gated or warmed, and calls connect and carry video exactly as without the warm-up.

mod common;
mod connections;

use common::*;
use connections::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

// Installed when the test module loads, before any login: every Worker is a real one whose
// script never runs (it does not exist), as with a CSP that blocks it.
#[wasm_bindgen(inline_js = "
const RealWorker = window.Worker;
window.Worker = class extends RealWorker {
  constructor() { super('/no-such-worker.js'); }
};
export function workerBlocked() { return true; }
")]
extern "C" {
    #[wasm_bindgen(js_name = workerBlocked)]
    fn worker_blocked() -> bool;
}

#[wasm_bindgen_test]
async fn with_the_worker_blocked_nothing_is_gated_and_calls_still_carry_video() {
    assert!(worker_blocked());
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ring_connected(&a, &b).await;
    assert_eq!(senders_with_track(), 0, "no canvas without a running gate");
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
    a.logout().await;
    b.logout().await;
}
