//! Audio calls end to end: accepted, then hung up by the caller or by the callee.

use crate::common::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
async fn audio_call_accepted_then_caller_hangs_up() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 1).await;
    // Audio plays without any view: the SDK's hidden <audio> for the peer exists on each side.
    assert_eq!(sdk_elements(), 2, "one hidden <audio> per side");
    wait_until("both hidden <audio> elements playing", || {
        audio_elements()
            .iter()
            .all(|a| !a.paused() && a.current_time() > 0.5)
    })
    .await;
    assert_voice_volume(&a, &b).await;
    assert_voice_volume(&b, &a).await;
    hang_up(&a, &b).await;
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(CONNECT_EVENTS);
    caller.push("onCallEnd");
    assert_event_set(&a, &caller);
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(CONNECT_EVENTS);
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
    caller.extend(CONNECT_EVENTS);
    caller.extend(["onUserLeave", "onCallEnd"]);
    assert_event_set(&a, &caller);
    a.logout().await;
    b.logout().await;
}

/// `me` gets `USER_VOICE_VOLUME` with itself first, then `other`; the fake microphone's beeps
/// make `other`'s level rise above 0 within the deadline.
async fn assert_voice_volume(me: &Client, other: &Client) {
    let start = js_sys::Date::now();
    loop {
        let report = me.wait_for("onUserVoiceVolume").await;
        let map = js_sys::Array::from(&get(&report, "volumeMap"));
        assert_eq!(map.length(), 2, "volumeMap {}", canonical(&report));
        assert_eq!(get_str(&map.get(0), "userId"), me.user);
        assert_eq!(get_str(&map.get(1), "userId"), other.user);
        let levels: Vec<f64> = map.iter().map(|e| get_num(&e, "audioVolume")).collect();
        assert!(
            levels.iter().all(|l| (0.0..=100.0).contains(l)),
            "levels {levels:?}"
        );
        if levels[1] > 0.0 {
            return;
        }
        assert!(
            js_sys::Date::now() - start < DEADLINE_MS as f64,
            "{}: {}'s voice volume stayed 0",
            me.user,
            other.user
        );
    }
}

/// The `<audio>` elements the SDK created.
fn audio_elements() -> Vec<web_sys::HtmlMediaElement> {
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .expect("document");
    let list = doc
        .query_selector_all("audio[data-trtc-calling]")
        .expect("querySelectorAll");
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into().ok())
        .collect()
}
