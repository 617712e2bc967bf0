//! Audio calls end to end: accepted, then hung up by the caller or by the callee.

mod common;

use common::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn audio_call_accepted_then_caller_hangs_up() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 1).await;
    // Audio plays without any view: the SDK's hidden <audio> for the peer exists on each side.
    assert_eq!(sdk_elements(), 2, "one hidden <audio> per side");
    hang_up(&a, &b).await;
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(connect_events(false));
    caller.push("onCallEnd");
    assert_event_set(&a, &caller);
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(connect_events(false));
    callee.extend(["onUserLeave", "onCallEnd"]);
    assert_event_set(&b, &callee);
    // trtc-calling-js apps call hangup() again after CALL_END: it resolves while idle.
    assert_js_eq(
        &ok(a.sdk.hangup(), "hangup while idle").await,
        &json(r#"{"code":0,"msg":"ok"}"#),
        "idle hangup",
    );
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn audio_call_accepted_then_callee_hangs_up() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 1).await;
    hang_up(&b, &a).await;
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(connect_events(false));
    caller.extend(["onUserLeave", "onCallEnd"]);
    assert_event_set(&a, &caller);
    a.logout().await;
    b.logout().await;
}
