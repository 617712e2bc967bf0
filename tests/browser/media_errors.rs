//! Media failures as SPEC §5 maps them: getUserMedia's DOMException names become error codes
//! (permission denied 60005, no microphone 60003, no camera 60004), and a browser without
//! WebRTC is refused at login (60006). The failures are injected by replacing the browser's
//! functions in this page, then restored. A missing device is told apart by the device list,
//! so those tests take the one kind out of `enumerateDevices` and check it was consulted.

use crate::common::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

#[wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    #[wasm_bindgen(js_name = failMedia)]
    fn fail_media(name: &str, unlisted: Option<String>);
    #[wasm_bindgen(js_name = timesListed)]
    fn times_listed() -> u32;
    fn restore();
    #[wasm_bindgen(js_name = removeWebRtc)]
    fn remove_web_rtc();
}

/// `b` accepts a call of `call_type` while getUserMedia fails with `name` (and, with
/// `unlisted`, no device of that kind is listed): the accept promise rejects with `code`; `accept` reached the server before the devices failed, so the caller
/// hears USER_ACCEPT then the call ending (no media ever arrived); both end idle with nothing
/// captured.
async fn accept_fails(name: &str, unlisted: Option<&str>, call_type: u8, code: f64) {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ok(a.sdk.call(call_options(&b.user, call_type)), "call").await;
    b.wait_for("onInvited").await;
    // The caller's own capture must not be the one that fails.
    wait_until("the caller's media", || a.sdk.local_tracks().length() > 0).await;
    fail_media(name, unlisted.map(str::to_owned));
    let e = fails(b.sdk.accept(), "accept").await;
    let listed = times_listed();
    restore();
    if unlisted.is_some() {
        assert!(listed > 0, "{name}: the device list was not consulted");
    }
    assert_eq!(get_num(&e, "code"), code, "{name}: {}", error_text(&e));
    assert!(
        get_str(&e, "message").contains("injected failure"),
        "{}",
        error_text(&e)
    );
    assert_js_eq(
        &a.wait_for("onUserAccept").await,
        &user_payload(&b.user),
        "USER_ACCEPT",
    );
    let end = a.wait_for("onCallEnd").await;
    assert_eq!(
        get_str(&end, "userID"),
        b.user,
        "CALL_END {}",
        canonical(&end)
    );
    assert!(
        !a.names()
            .iter()
            .any(|n| n == "onUserEnter" || n == "onReject"),
        "{:?}",
        a.names()
    );
    for c in [&a, &b] {
        wait_until(&format!("{} idle", c.user), || {
            c.sdk.get_call_status() == "idle"
        })
        .await;
        c.assert_released();
    }
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn permission_denied_is_60005() {
    accept_fails("NotAllowedError", None, 2, 60005.0).await;
}

#[wasm_bindgen_test]
async fn other_capture_failures_are_60005_with_the_browser_message() {
    accept_fails("NotReadableError", None, 1, 60005.0).await;
}

#[wasm_bindgen_test]
async fn missing_microphone_in_a_video_call_is_60003() {
    // Cameras are listed, microphones are not: a video call asks for both, and only the list
    // can say the microphone is the one missing.
    accept_fails("NotFoundError", Some("audioinput"), 2, 60003.0).await;
}

#[wasm_bindgen_test]
async fn missing_camera_in_a_video_call_is_60004() {
    // Microphones are listed, cameras are not.
    accept_fails("NotFoundError", Some("videoinput"), 2, 60004.0).await;
}

#[wasm_bindgen_test]
async fn login_without_webrtc_is_60006() {
    let user = unique("old");
    let c = Client::new(&user);
    let sig = user_sig(&user).await;
    remove_web_rtc();
    let e = fails(c.sdk.login(login_options(&user, &sig)), "login").await;
    restore();
    assert_eq!(get_num(&e, "code"), 60006.0, "{}", error_text(&e));
    assert!(c.sdk.get_user_id().is_none());
}
