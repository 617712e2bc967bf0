//! A page whose policy keeps the SDK's encoded-frame worker from running (a CSP without
//! `worker-src blob:`): the worker here fails to start, as such a page's does, so no sender is
//! gated or warmed, and calls connect and carry video exactly as without the warm-up.

mod common;
mod connections;

use common::*;
use connections::*;
use wasm_bindgen::prelude::*;
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
    assert_video_both_ways().await;
    hang_up(&a, &b).await;
    wait_closed_without_canvas().await;
    a.logout().await;
    b.logout().await;
}
