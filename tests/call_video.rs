//! Video calls end to end: remote video renders with moving frames on both sides (including a
//! view asked for before the media arrived), and camera/microphone toggles reach the peer.

mod common;

use common::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::HtmlVideoElement;

wasm_bindgen_test_configure!(run_in_browser);

fn view_options(user: &str, dom: &str) -> wasm_bindgen::JsValue {
    json(&format!(
        r#"{{"userID":"{user}","videoViewDomID":"{dom}"}}"#
    ))
}

/// The `<video>` the SDK created inside the element `dom`.
fn video_in(dom: &str) -> Option<HtmlVideoElement> {
    let doc = web_sys::window()?.document()?;
    doc.get_element_by_id(dom)?
        .query_selector("video")
        .ok()??
        .dyn_into()
        .ok()
}

/// Waits until the video in `dom` shows frames and its time advances.
async fn assert_playing(dom: &str) {
    wait_until(&format!("a <video> with frames in #{dom}"), || {
        video_in(dom).is_some_and(|v| v.video_width() > 0 && v.current_time() > 0.0)
    })
    .await;
    let t0 = video_in(dom).map(|v| v.current_time()).unwrap_or_default();
    wait_until(&format!("the video in #{dom} advancing"), || {
        video_in(dom).is_some_and(|v| v.current_time() > t0 + 0.2)
    })
    .await;
}

#[wasm_bindgen_test]
async fn video_call_renders_remote_video_on_both_sides() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let tag = unique("v");
    let (a_local, a_remote, b_remote) = (
        format!("{tag}-a-local"),
        format!("{tag}-a-remote"),
        format!("{tag}-b-remote"),
    );
    for id in [&a_local, &a_remote, &b_remote] {
        make_div(id);
    }
    // Both asked for before any media exists: they render once it does.
    ok(
        a.sdk.start_local_view(view_options(&a.user, &a_local)),
        "startLocalView",
    )
    .await;
    ok(
        a.sdk.start_remote_view(view_options(&b.user, &a_remote)),
        "startRemoteView early",
    )
    .await;

    connect(&a, &b, 2).await;
    ok(
        b.sdk.start_remote_view(view_options(&a.user, &b_remote)),
        "startRemoteView",
    )
    .await;

    assert_playing(&a_remote).await;
    assert_playing(&b_remote).await;
    assert_playing(&a_local).await;
    let local = video_in(&a_local).expect("local view");
    assert!(local.muted(), "the local view must be muted");
    assert!(local.has_attribute("playsinline"));

    // Stopping a view removes its element but never the call's media.
    ok(
        b.sdk.stop_remote_view(view_options(&a.user, &b_remote)),
        "stopRemoteView",
    )
    .await;
    assert!(
        video_in(&b_remote).is_none(),
        "stopRemoteView left its <video>"
    );
    assert_eq!(b.sdk.get_call_status(), "connected");

    hang_up(&b, &a).await;
    for id in [&a_local, &a_remote, &b_remote] {
        assert!(video_in(id).is_none(), "#{id} still holds a <video>");
    }
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn camera_and_microphone_toggles_reach_the_peer() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 2).await;

    let video = |on: bool| {
        json(&format!(
            r#"{{"userID":"{}","isVideoAvailable":{on}}}"#,
            a.user
        ))
    };
    let audio = |on: bool| {
        json(&format!(
            r#"{{"userID":"{}","isAudioAvailable":{on}}}"#,
            a.user
        ))
    };

    ok(a.sdk.close_camera(), "closeCamera").await;
    assert_js_eq(
        &b.wait_for("onUserVideoAvailable").await,
        &video(false),
        "camera off",
    );
    ok(a.sdk.open_camera(), "openCamera").await;
    assert_js_eq(
        &b.wait_for("onUserVideoAvailable").await,
        &video(true),
        "camera on",
    );
    ok(a.sdk.set_mic_mute(true.into()), "setMicMute(true)").await;
    assert_js_eq(
        &b.wait_for("onUserAudioAvailable").await,
        &audio(false),
        "mic muted",
    );
    ok(a.sdk.set_mic_mute(false.into()), "setMicMute(false)").await;
    assert_js_eq(
        &b.wait_for("onUserAudioAvailable").await,
        &audio(true),
        "mic unmuted",
    );

    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(connect_events(true));
    callee.extend([
        "onUserVideoAvailable",
        "onUserVideoAvailable",
        "onUserAudioAvailable",
        "onUserAudioAvailable",
    ]);
    assert_event_set(&b, &callee);
    // The toggling side hears nothing about itself.
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(connect_events(true));
    assert_event_set(&a, &caller);

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}
