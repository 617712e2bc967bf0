//! Devices in the browser: the device lists, a camera chosen before a call used for it, a
//! camera switched mid-call without the peer losing frames and without renegotiating (no SDP
//! offer goes out on the signaling socket), and the fallback to another device
//! when the one in use goes away (`DEVICE_CHANGED`). Chromium runs with three fake cameras
//! (`webdriver.json`: `device-count=3`). The tests use `fake_device_0` and `fake_device_2`:
//! `fake_device_1` delivers Y16 (depth) frames, which WebRTC does not encode, so a peer would
//! receive no frames from it whatever the SDK does.

use crate::common::*;
use crate::connections::sender_tracks;
use crate::video::*;
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::{MediaStreamTrack, MediaStreamTrackState};

#[wasm_bindgen::prelude::wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    /// What the page sees when a device is unplugged without its track ending first: it
    /// drops out of `enumerateDevices` and `devicechange` fires.
    #[wasm_bindgen(js_name = unlistDevice)]
    fn unlist_device(id: &str);
    /// Every device of `kind` ("videoinput") drops out of `enumerateDevices`.
    #[wasm_bindgen(js_name = unlistKind)]
    fn unlist_kind(kind: &str);
    /// Undoes [`unlist_device`] and [`unlist_kind`].
    #[wasm_bindgen(js_name = relistDevices)]
    fn relist_devices();
    /// From now on, records every frame the page's WebSockets send (the signaling).
    #[wasm_bindgen(js_name = recordSent)]
    fn record_sent();
    #[wasm_bindgen(js_name = sentCount)]
    fn sent_count() -> u32;
    /// SDP offers among the frames sent since the `from`-th: a renegotiation sends one.
    #[wasm_bindgen(js_name = offersSince)]
    fn offers_since(from: u32) -> u32;
}

/// (deviceId, label) of each device in a `getCameras`/`getMicrophones` result.
fn ids_and_labels(list: &JsValue) -> Vec<(String, String)> {
    Array::from(list)
        .iter()
        .map(|d| (get_str(&d, "deviceId"), get_str(&d, "label")))
        .collect()
}

/// The live local track of `kind` the SDK captured.
fn live_track(c: &Client, kind: &str) -> MediaStreamTrack {
    c.sdk
        .local_tracks()
        .iter()
        .map(|t| t.unchecked_into::<MediaStreamTrack>())
        .find(|t| t.kind() == kind && t.ready_state() == MediaStreamTrackState::Live)
        .unwrap_or_else(|| panic!("{}: no live local {kind} track", c.user))
}

fn switch_options(kind: &str, id: &str) -> JsValue {
    json(&format!(r#"{{"deviceType":"{kind}","deviceId":"{id}"}}"#))
}

/// What a browser does when the device behind `track` is unplugged: the track ends by
/// itself and fires `ended` (`stop()` alone fires nothing).
fn unplug(track: &MediaStreamTrack) {
    track.stop();
    let ended = web_sys::Event::new("ended").expect("an ended event");
    track.dispatch_event(&ended).expect("dispatch ended");
}

/// (deviceId, label) of the fake cameras `fake_device_0` and `fake_device_2`.
async fn two_cameras(c: &Client) -> [(String, String); 2] {
    let cameras = ids_and_labels(&ok(c.sdk.get_cameras(), "getCameras").await);
    for (id, label) in &cameras {
        assert!(
            !id.is_empty() && !label.is_empty(),
            "camera without id/label: {cameras:?}"
        );
    }
    let find = |label: &str| {
        cameras
            .iter()
            .find(|(_, l)| l == label)
            .cloned()
            .unwrap_or_else(|| panic!("no camera {label} in {cameras:?}"))
    };
    [find("fake_device_0"), find("fake_device_2")]
}

#[wasm_bindgen_test]
async fn device_lists_need_login_and_list_each_kind() {
    let c = Client::new(&unique("alice"));
    let err = fails(c.sdk.get_cameras(), "getCameras before login").await;
    assert!(
        get_str(&err, "message").contains("login"),
        "{}",
        canonical(&err)
    );
    let c = Client::login(&unique("alice")).await;
    let mics = Array::from(&ok(c.sdk.get_microphones(), "getMicrophones").await);
    assert!(mics.length() >= 1);
    for m in mics.iter() {
        assert_eq!(get_str(&m, "kind"), "audioinput");
    }
    let cams = Array::from(&ok(c.sdk.get_cameras(), "getCameras").await);
    for m in cams.iter() {
        assert_eq!(get_str(&m, "kind"), "videoinput");
    }
    let bad = fails(
        c.sdk.switch_device(switch_options("screen", "x")),
        "switchDevice with a bad type",
    )
    .await;
    assert_eq!(get_num(&bad, "code"), 65535.0, "{}", canonical(&bad));
    c.logout().await;
}

#[wasm_bindgen_test]
async fn camera_chosen_before_the_call_then_switched_mid_call_without_a_gap() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let [first, second] = two_cameras(&a).await;
    record_sent();
    let from_login = sent_count();

    // Chosen before the call: the call captures that camera.
    ok(
        a.sdk.switch_device(switch_options("video", &second.0)),
        "switchDevice before the call",
    )
    .await;
    let view = unique("b-sees-a");
    make_div(&view);
    ok(
        b.sdk.start_remote_view(view_options(&a.user, &view)),
        "startRemoteView",
    )
    .await;
    connect(&a, &b, 2).await;
    assert_eq!(
        live_track(&a, "video").label(),
        second.1,
        "the call did not use the camera chosen before it"
    );
    assert_playing(&view).await;

    // Switched mid-call: the sender's track is the other camera, the peer keeps getting frames
    // and hears nothing of it (no event: the track is replaced, nothing renegotiated).
    assert!(
        offers_since(from_login) > 0,
        "no SDP offer seen while connecting: the frame recorder is blind"
    );
    let before_switch = sent_count();
    let before = live_track(&a, "video");
    let (stall, seen) = longest_stall(
        &[&view],
        a.sdk.switch_device(switch_options("video", &first.0)),
        2000.0,
    )
    .await;
    // The fake camera gives 20 fps (a frame each 50 ms; 40-125 ms gaps measured across a
    // switch); a dead track stalls the whole 2 s watched after it. The bound leaves room for
    // a loaded machine.
    assert!(
        stall < 1000.0 && seen >= 10,
        "bob's view of alice stalled {stall} ms during the switch ({seen} frame updates)"
    );
    assert_eq!(
        offers_since(before_switch),
        0,
        "the camera switch renegotiated"
    );
    let after = live_track(&a, "video");
    assert_eq!(after.label(), first.1, "the captured camera did not change");
    wait_until(
        &format!(
            "alice's video sender carrying the new camera track {}, not {}",
            after.id(),
            before.id()
        ),
        || {
            let on_senders = sender_tracks("video");
            on_senders.contains(&after.id()) && !on_senders.contains(&before.id())
        },
    )
    .await;
    assert_eq!(
        before.ready_state(),
        MediaStreamTrackState::Ended,
        "the old camera track is still live"
    );
    assert_playing(&view).await;

    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(CONNECT_EVENTS);
    assert_event_set(&a, &caller);
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(CONNECT_EVENTS);
    assert_event_set(&b, &callee);

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn lost_camera_and_microphone_fall_back_to_another_device() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let [first, second] = two_cameras(&a).await;
    // On fake_device_2, the fallback is the first other camera listed: fake_device_0.
    ok(
        a.sdk.switch_device(switch_options("video", &second.0)),
        "switchDevice before the call",
    )
    .await;
    let view = unique("b-sees-a");
    make_div(&view);
    ok(
        b.sdk.start_remote_view(view_options(&a.user, &view)),
        "startRemoteView",
    )
    .await;
    connect(&a, &b, 2).await;
    assert_playing(&view).await;

    // The camera in use goes away: another camera takes over and the app is told.
    let lost = live_track(&a, "video");
    assert_eq!(lost.label(), second.1);
    unplug(&lost);
    let changed = a.wait_for("onDeviceChanged").await;
    let (other_id, other_label) = first;
    assert_js_eq(
        &changed,
        &json(&format!(
            r#"{{"deviceType":"video","deviceId":"{other_id}","label":"{other_label}",
                "reason":"deviceLost"}}"#
        )),
        "DEVICE_CHANGED for the camera",
    );
    assert_eq!(live_track(&a, "video").label(), other_label);
    assert_playing(&view).await;

    // The same for the microphone.
    let mic = live_track(&a, "audio");
    let mic_label = mic.label();
    unplug(&mic);
    let changed = a.wait_for("onDeviceChanged").await;
    assert_eq!(get_str(&changed, "deviceType"), "audio");
    assert_eq!(get_str(&changed, "reason"), "deviceLost");
    let new_mic = live_track(&a, "audio");
    assert_ne!(new_mic.id(), mic.id());
    assert_eq!(get_str(&changed, "label"), new_mic.label());
    assert_ne!(
        get_str(&changed, "deviceId"),
        "",
        "no device id for the new microphone (was {mic_label})"
    );

    // Neither side saw anything else: no error, the call goes on.
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(CONNECT_EVENTS);
    caller.extend(["onDeviceChanged", "onDeviceChanged"]);
    assert_event_set(&a, &caller);
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(CONNECT_EVENTS);
    assert_event_set(&b, &callee);
    assert_eq!(b.sdk.get_call_status(), "connected");

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn camera_gone_from_the_device_list_is_replaced() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let [first, second] = two_cameras(&a).await;
    ok(
        a.sdk.switch_device(switch_options("video", &second.0)),
        "switchDevice before the call",
    )
    .await;
    let view = unique("b-sees-a");
    make_div(&view);
    ok(
        b.sdk.start_remote_view(view_options(&a.user, &view)),
        "startRemoteView",
    )
    .await;
    connect(&a, &b, 2).await;
    let lost = live_track(&a, "video");
    assert_eq!(lost.label(), second.1);

    unlist_device(&second.0);
    let changed = a.wait_for("onDeviceChanged").await;
    relist_devices();
    assert_js_eq(
        &changed,
        &json(&format!(
            r#"{{"deviceType":"video","deviceId":"{}","label":"{}","reason":"deviceLost"}}"#,
            first.0, first.1
        )),
        "DEVICE_CHANGED after devicechange",
    );
    assert_eq!(
        lost.ready_state(),
        MediaStreamTrackState::Ended,
        "the unlisted camera's track is still live"
    );
    assert_eq!(live_track(&a, "video").label(), first.1);
    assert_playing(&view).await;
    // Only alice's camera was gone: bob's instance, which heard the same devicechange, kept his.
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(CONNECT_EVENTS);
    assert_event_set(&b, &callee);

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn last_camera_lost_is_an_error_and_the_peer_sees_the_camera_off() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 2).await;
    let lost = live_track(&a, "video");
    unlist_kind("videoinput");
    unplug(&lost);
    let error = a.wait_for("onError").await;
    relist_devices();
    assert_eq!(get_num(&error, "code"), 60004.0, "{}", canonical(&error));
    assert!(
        get_str(&error, "msg").contains("camera in use went away"),
        "{}",
        canonical(&error)
    );
    assert_js_eq(
        &b.wait_for("onUserVideoAvailable").await,
        &json(&format!(
            r#"{{"userID":"{}","isVideoAvailable":false}}"#,
            a.user
        )),
        "bob told alice's camera is off",
    );
    assert_eq!(a.sdk.get_call_status(), "connected");
    assert!(a.payloads("onDeviceChanged").is_empty());

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}
