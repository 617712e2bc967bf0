//! A server that drains (SIGTERM) under SDKs, through `tests/drain-control.mjs`, which starts,
//! stops and restarts a calling-server of its own on one port. An idle SDK is told `goAway`,
//! moves, and once the server has restarted logs in there by itself, with no `ERROR` or
//! `KICKED_OUT`, ready to be called. A call keeps its socket on the draining server: it goes on
//! untouched while the server is up, and both sides move once it is over.

use crate::common::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

/// The drain timeout of the call test: its `goAway` window is 5 s (half of it, 5 s at most).
const CALL_DRAIN_TIMEOUT_S: u32 = 20;
const CALL_WINDOW_MS: u32 = 5_000;

/// Tells the drain control to `command` (`start?drainTimeout=S`, `stop`).
async fn control(command: &str) {
    post(&format!("http://{DRAIN_CONTROL}/{command}")).await;
}

/// Waits until the drain server has exited by itself; its exit status.
async fn server_exit(within_ms: u32) -> f64 {
    let start = js_sys::Date::now();
    loop {
        let state = fetch_json(&format!("http://{DRAIN_CONTROL}/state")).await;
        if !get(&state, "running").as_bool().unwrap_or(true) {
            let exits: js_sys::Array = get(&state, "exits").unchecked_into();
            return exits.pop().as_f64().unwrap_or(-1.0);
        }
        assert!(
            js_sys::Date::now() - start < f64::from(within_ms),
            "the draining server did not exit within {within_ms} ms"
        );
        let _ = JsFuture::from(delay(50)).await;
    }
}

async fn server_running() -> bool {
    let state = fetch_json(&format!("http://{DRAIN_CONTROL}/state")).await;
    get(&state, "running").as_bool().unwrap_or(false)
}

/// None of these reached `c`.
fn assert_none(c: &Client, names: &[&str]) {
    for name in names {
        assert!(
            c.payloads(name).is_empty(),
            "{}: {name} in {:?}",
            c.user,
            c.names()
        );
    }
}

#[wasm_bindgen_test]
async fn an_idle_sdk_moves_and_is_logged_in_on_the_restarted_server_ready_to_be_called() {
    control("start?drainTimeout=4").await;
    let a = Client::login_on(&unique("ann"), DRAIN_SERVER).await;

    control("stop").await;
    // Told to move within 2 s, the SDK drops its socket; the draining server refuses its new
    // one and exits as soon as no socket is left, long before its 4 s timeout.
    let status = server_exit(DEADLINE_MS).await;
    assert_eq!(status, 0.0, "a drain ends with status 0");
    assert_eq!(frames_received(&a.user, "goAway"), 1);
    // No server takes the move: the app is told it is reconnecting.
    a.wait_for("onReconnecting").await;

    control("start?drainTimeout=4").await;
    // The restarted server holds no sessions: the resume is refused and the SDK logs in again.
    let back = a.wait_for_within("onReconnected", 30_000).await;
    assert_js_eq(&back, &json(r#"{"resumed":false}"#), "RECONNECTED");
    assert_none(&a, &["onError", "onKickedOut", "onCallEnd"]);

    let b = Client::login_on(&unique("ben"), DRAIN_SERVER).await;
    ok(b.sdk.call(call_options(&a.user, 1)), "call the moved SDK").await;
    let invited = a.wait_for("onInvited").await;
    assert_eq!(get_str(&invited, "sponsor"), b.user);
    b.logout().await;
    a.logout().await;
    control("stop").await;
    assert_eq!(server_exit(DEADLINE_MS).await, 0.0);
}

#[wasm_bindgen_test]
async fn a_call_on_a_draining_server_goes_on_untouched_and_both_sides_move_once_it_is_over() {
    control(&format!("start?drainTimeout={CALL_DRAIN_TIMEOUT_S}")).await;
    let a = Client::login_on(&unique("amy"), DRAIN_SERVER).await;
    let b = Client::login_on(&unique("bill"), DRAIN_SERVER).await;
    connect(&a, &b, 1).await;

    control("stop").await;
    wait_until("goAway at both sides", || {
        frames_received(&a.user, "goAway") == 1 && frames_received(&b.user, "goAway") == 1
    })
    .await;
    // Past the whole window, neither side has moved: a move would have cut its socket.
    let _ = JsFuture::from(delay(CALL_WINDOW_MS + 1_000)).await;
    assert!(server_running().await, "the server waits for the call");
    ok(a.sdk.set_mic_mute(true.into()), "setMicMute(true)").await;
    let muted = b.wait_for("onUserAudioAvailable").await;
    assert_js_eq(
        &muted,
        &json(&format!(
            r#"{{"userID":"{}","isAudioAvailable":false}}"#,
            a.user
        )),
        "signaling still goes through the draining server",
    );
    for c in [&a, &b] {
        assert_none(
            c,
            &[
                "onReconnecting",
                "onReconnected",
                "onUserLeave",
                "onCallEnd",
                "onError",
            ],
        );
    }

    let hung_up = js_sys::Date::now();
    hang_up(&a, &b).await;
    // Now both move, and the server exits as soon as their sockets are gone: well before
    // its timeout.
    let status = server_exit(DEADLINE_MS).await;
    assert_eq!(status, 0.0);
    let waited = js_sys::Date::now() - hung_up;
    assert!(
        waited < f64::from(CALL_DRAIN_TIMEOUT_S * 1000) - 5_000.0,
        "the server exited {waited} ms after the hangup"
    );
    a.logout().await;
    b.logout().await;
}
