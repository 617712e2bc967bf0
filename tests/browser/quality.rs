//! `setVideoQuality`: each profile sets the size the camera is captured at for the next call,
//! and the peer's view of it plays (its decoded size follows the bandwidth estimate, so it is
//! not compared).

use crate::common::*;
use crate::video::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{MediaStreamTrack, MediaStreamTrackState};

/// (width, height) of the live local camera track.
fn camera_size(c: &Client) -> (f64, f64) {
    let track = c
        .sdk
        .local_tracks()
        .iter()
        .map(|t| t.unchecked_into::<MediaStreamTrack>())
        .find(|t| t.kind() == "video" && t.ready_state() == MediaStreamTrackState::Live)
        .expect("a live local camera track");
    let get_settings: js_sys::Function = get(&track, "getSettings").unchecked_into();
    let settings = get_settings.call0(&track).expect("getSettings");
    (get_num(&settings, "width"), get_num(&settings, "height"))
}

#[wasm_bindgen_test]
async fn each_profile_sets_the_capture_size_of_the_next_call() {
    for (profile, size) in [
        ("240p", (320.0, 240.0)),
        ("360p", (640.0, 360.0)),
        ("480p", (640.0, 480.0)),
        ("720p", (1280.0, 720.0)),
        ("1080p", (1920.0, 1080.0)),
    ] {
        // Fresh users each time: `connect` checks every event since login.
        let a = Client::login(&unique("alice")).await;
        let b = Client::login(&unique("bob")).await;
        ok(a.sdk.set_video_quality(profile.into()), "setVideoQuality").await;
        let view = unique("b-sees-a");
        make_div(&view);
        ok(
            b.sdk.start_remote_view(view_options(&a.user, &view)),
            "startRemoteView",
        )
        .await;
        connect(&a, &b, 2).await;
        assert_eq!(camera_size(&a), size, "capture size for {profile}");
        assert_playing(&view).await;
        hang_up(&a, &b).await;
        a.logout().await;
        b.logout().await;
    }
}
