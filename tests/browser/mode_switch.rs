//! A 1:1 video call switched to audio and back: while in audio neither side sends video (no
//! live camera track) and both views stop getting frames; back in video, both sides' remote
//! views show advancing frames again.

use crate::common::*;
use crate::video::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{MediaStreamTrack, MediaStreamTrackState};

fn live_camera(c: &Client) -> bool {
    c.sdk.local_tracks().iter().any(|t| {
        let t: MediaStreamTrack = t.unchecked_into();
        t.kind() == "video" && t.ready_state() == MediaStreamTrackState::Live
    })
}

#[wasm_bindgen_test]
async fn video_plays_again_on_both_sides_after_audio_and_back() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let tag = unique("m");
    let (a_sees_b, b_sees_a) = (format!("{tag}-a"), format!("{tag}-b"));
    for (me, other, dom) in [(&a, &b, &a_sees_b), (&b, &a, &b_sees_a)] {
        make_div(dom);
        ok(
            me.sdk.start_remote_view(view_options(&other.user, dom)),
            "startRemoteView",
        )
        .await;
    }
    connect(&a, &b, 2).await;
    assert_playing(&a_sees_b).await;
    assert_playing(&b_sees_a).await;

    ok(a.sdk.switch_to_audio_call(), "switchToAudioCall").await;
    for c in [&a, &b] {
        c.wait_for("onCallTypeChanged").await;
        c.wait_for("onUserVideoAvailable").await;
        wait_until(
            &format!("{}: camera released in audio mode", c.user),
            || !live_camera(c),
        )
        .await;
    }
    // With no camera on either side, the views stop presenting frames.
    for dom in [&a_sees_b, &b_sees_a] {
        let mut last = (frames(dom), js_sys::Date::now());
        wait_until(&format!("#{dom} frozen for 1 s in audio mode"), || {
            let f = frames(dom);
            if f != last.0 {
                last = (f, js_sys::Date::now());
            }
            js_sys::Date::now() - last.1 > 1000.0
        })
        .await;
    }

    ok(b.sdk.switch_to_video_call(), "switchToVideoCall").await;
    for c in [&a, &b] {
        let changed = c.wait_for("onCallTypeChanged").await;
        assert_eq!(get_num(&changed, "callType"), 2.0);
        let video = c.wait_for("onUserVideoAvailable").await;
        assert_eq!(get(&video, "isVideoAvailable").as_bool(), Some(true));
        wait_until(&format!("{}: camera back in video mode", c.user), || {
            live_camera(c)
        })
        .await;
    }
    assert_playing(&a_sees_b).await;
    assert_playing(&b_sees_a).await;

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}
