//! Video calls end to end: remote video renders with moving frames on both sides (including a
//! view asked for before the media arrived, and a call accepted while the offer was still being
//! applied), and camera/microphone toggles reach the peer.

use crate::common::*;
use crate::connections::{audio_at_peers_of, sender_tracks};
use crate::video::*;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

#[wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    /// Calls `f` once, as soon as a page's connection starts applying a remote offer (before
    /// that completes); the browser's own method still does the work.
    #[wasm_bindgen(js_name = onNextOfferApplying)]
    fn on_next_offer_applying(f: &Closure<dyn FnMut()>);
}

#[wasm_bindgen_test]
async fn a_call_accepted_while_the_offer_is_being_applied_sends_video_both_ways() {
    let a = Client::login(&unique("alice")).await;
    let b = Rc::new(Client::login(&unique("bob")).await);
    let tag = unique("race");
    let (a_remote, b_remote) = (format!("{tag}-a-remote"), format!("{tag}-b-remote"));
    make_div(&a_remote);
    make_div(&b_remote);
    // The callee's connection is made, and the caller's offer applied, while it rings: bob
    // accepts in the middle of that, before the connection has the offer's transceivers.
    let accepting: Rc<RefCell<Option<(f64, js_sys::Promise)>>> = Rc::default();
    let (slot, callee) = (accepting.clone(), b.clone());
    let accept_now = Closure::<dyn FnMut()>::new(move || {
        *slot.borrow_mut() = Some((js_sys::Date::now(), callee.sdk.accept()));
    });
    on_next_offer_applying(&accept_now);
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    wait_until("bob accepting while the offer is applied", || {
        accepting.borrow().is_some()
    })
    .await;
    let (before, accept) = accepting.borrow_mut().take().expect("accept() called");
    ok(accept, "accept").await;
    b.accepted_at(before);
    // Bob's camera reaches alice: nothing of the ringing-time warm-up holds it back.
    show_each_other(&a, &a_remote, &b, &b_remote).await;
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
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

/// (width, height) of the live local video track the SDK captured.
fn local_video_size(c: &Client) -> (f64, f64) {
    let track = c
        .sdk
        .local_tracks()
        .iter()
        .map(|t| t.unchecked_into::<web_sys::MediaStreamTrack>())
        .find(|t| t.kind() == "video" && t.ready_state() == web_sys::MediaStreamTrackState::Live)
        .expect("a live local video track");
    let get_settings: js_sys::Function = get(&track, "getSettings").unchecked_into();
    let settings = get_settings.call0(&track).expect("getSettings");
    (get_num(&settings, "width"), get_num(&settings, "height"))
}

/// The sound energy per second of audio received by the connection at the other end of the
/// one sending the track `id`, over the next `seconds` of audio it receives (its own clock of
/// received samples, so a loaded machine only makes the wait longer).
async fn sound_rate(id: &str, seconds: f64) -> f64 {
    let received = || async {
        let pair = JsFuture::from(audio_at_peers_of(id))
            .await
            .map(|v| js_sys::Array::from(&v))
            .ok();
        let at = |i| {
            pair.as_ref()
                .and_then(|p| p.get(i).as_f64())
                .unwrap_or_default()
        };
        (at(0), at(1))
    };
    let (energy_from, from) = received().await;
    let began = js_sys::Date::now();
    loop {
        let (energy, now) = received().await;
        if now - from >= seconds {
            return (energy - energy_from) / (now - from);
        }
        assert!(
            js_sys::Date::now() - began < DEADLINE_MS as f64,
            "the peer of {id} received {:.2} s of audio in {DEADLINE_MS} ms, not {seconds} s",
            now - from
        );
        let _ = JsFuture::from(delay(50)).await;
    }
}

/// The peer hears the microphone `after` that replaced `before`: once what was buffered before
/// the switch has played out, sound keeps arriving at no less than a tenth of the energy the
/// old microphone gave (a silent or stopped track gives next to none).
async fn assert_sound_arrives(before_rate: f64, after: &str) {
    sound_rate(after, 0.5).await;
    let rate = sound_rate(after, 1.0).await;
    assert!(
        before_rate > 0.0 && rate >= before_rate / 10.0,
        "the peer hears the new microphone {after} at {rate:e} energy/s, the old one at {before_rate:e}"
    );
}

/// The live local audio track's id.
fn local_audio_id(c: &Client) -> String {
    c.sdk
        .local_tracks()
        .iter()
        .map(|t| t.unchecked_into::<web_sys::MediaStreamTrack>())
        .find(|t| t.kind() == "audio" && t.ready_state() == web_sys::MediaStreamTrackState::Live)
        .map(|t| t.id())
        .expect("a live local audio track")
}

#[wasm_bindgen_test]
async fn camera_and_microphone_toggles_reach_the_peer() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ok(b.sdk.set_video_quality("360p".into()), "setVideoQuality").await;
    connect(&a, &b, 2).await;
    assert_eq!(local_video_size(&a), (640.0, 480.0), "default profile 480p");
    assert_eq!(local_video_size(&b), (640.0, 360.0), "profile 360p");

    // Switching the microphone mid-call swaps the track on the sender without the peer
    // noticing (no event), and the peer keeps receiving sound from it.
    let mics = js_sys::Array::from(&ok(a.sdk.get_microphones(), "getMicrophones").await);
    let other_mic = mics
        .iter()
        .map(|m| get_str(&m, "deviceId"))
        .find(|id| id != "default" && !id.is_empty())
        .expect("a second fake microphone");
    let before = local_audio_id(&a);
    let before_rate = sound_rate(&before, 1.0).await;
    let switch = json(&format!(
        r#"{{"deviceType":"audio","deviceId":"{other_mic}"}}"#
    ));
    ok(a.sdk.switch_device(switch), "switchDevice").await;
    let after = local_audio_id(&a);
    assert_ne!(after, before, "switchDevice kept the old microphone track");
    // The sender's track is replaced asynchronously (replaceTrack), after switchDevice settled.
    wait_until(
        &format!("alice's audio sender carrying the new microphone {after}, not {before}"),
        || {
            let on_senders = sender_tracks("audio");
            on_senders.contains(&after) && !on_senders.contains(&before)
        },
    )
    .await;
    assert_sound_arrives(before_rate, &after).await;

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
    callee.extend(CONNECT_EVENTS);
    callee.extend([
        "onUserVideoAvailable",
        "onUserVideoAvailable",
        "onUserAudioAvailable",
        "onUserAudioAvailable",
    ]);
    assert_event_set(&b, &callee);
    // The toggling side hears nothing about itself.
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(CONNECT_EVENTS);
    assert_event_set(&a, &caller);

    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn switch_to_audio_then_back_to_video() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 2).await;
    let changed = |t: u8| json(&format!(r#"{{"callType":{t}}}"#));
    let video_of = |u: &Client, on: bool| {
        json(&format!(
            r#"{{"userID":"{}","isVideoAvailable":{on}}}"#,
            u.user
        ))
    };

    ok(a.sdk.switch_to_audio_call(), "switchToAudioCall").await;
    for (me, other) in [(&a, &b), (&b, &a)] {
        assert_js_eq(
            &me.wait_for("onCallTypeChanged").await,
            &changed(1),
            "to audio",
        );
        assert_js_eq(
            &me.wait_for("onUserVideoAvailable").await,
            &video_of(other, false),
            "video off after the switch",
        );
        wait_until("call type audio", || me.sdk.get_call_type() == 1).await;
    }
    for c in [&a, &b] {
        let live_video = c.sdk.local_tracks().iter().any(|t| {
            let t: web_sys::MediaStreamTrack = t.unchecked_into();
            t.kind() == "video" && t.ready_state() == web_sys::MediaStreamTrackState::Live
        });
        assert!(
            !live_video,
            "{}: camera still live in an audio call",
            c.user
        );
    }

    ok(b.sdk.switch_to_video_call(), "switchToVideoCall").await;
    for (me, other) in [(&a, &b), (&b, &a)] {
        assert_js_eq(
            &me.wait_for("onCallTypeChanged").await,
            &changed(2),
            "to video",
        );
        assert_js_eq(
            &me.wait_for("onUserVideoAvailable").await,
            &video_of(other, true),
            "video on after the switch",
        );
        wait_until("call type video", || me.sdk.get_call_type() == 2).await;
    }
    assert_eq!(local_video_size(&a), (640.0, 480.0));

    let mut tail = CONNECT_EVENTS.to_vec();
    tail.extend([
        "onCallTypeChanged",
        "onUserVideoAvailable",
        "onCallTypeChanged",
        "onUserVideoAvailable",
    ]);
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(tail.iter().copied());
    assert_event_set(&a, &caller);
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(tail.iter().copied());
    assert_event_set(&b, &callee);
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}
