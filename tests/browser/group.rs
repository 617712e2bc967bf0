//! Group calls in the browser: three participants in a full mesh where each renders both
//! others' video, a camera switch reaching every connection, one leaving while the other two
//! carry on, and the call ending when only one is left; per-invitee outcomes (reject, busy,
//! no answer) reported to the caller; a 1:1 call grown into a group. The nine-person mesh is
//! pinned natively (calling-core's `tests/group.rs`, the cap in calling-server's
//! `tests/calls.rs`): nine SDKs in one page put 36 connections on one renderer's WebRTC
//! threads, which on two shared cores stalls the page itself.

use crate::common::*;
use crate::connections::sender_tracks;
use crate::video::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

/// `GROUP_CALL_INVITEE_LIST_UPDATE`'s payload.
fn list_update(users: &[&str]) -> wasm_bindgen::JsValue {
    json(&format!(r#"{{"userIDList":{}}}"#, id_list(users)))
}

/// The id of the container where `me` shows `other`.
fn dom(tag: &str, me: &Client, other: &Client) -> String {
    format!("{tag}-{}-{}", me.user, other.user)
}

/// Waits until `me` saw `other`'s media arrive with audio and video available.
async fn assert_entered(me: &Client, other: &Client) {
    let user = &other.user;
    let mut seen = Vec::new();
    for name in [
        "onUserEnter",
        "onUserAudioAvailable",
        "onUserVideoAvailable",
    ] {
        // Events for the other participant may interleave: wait until one about `other` shows.
        wait_until(&format!("{}: {name} for {user}", me.user), || {
            me.payloads(name)
                .iter()
                .any(|p| get(p, "userID").as_string().as_deref() == Some(user))
        })
        .await;
        seen.push(name);
    }
    let audio = me
        .payloads("onUserAudioAvailable")
        .into_iter()
        .find(|p| get(p, "userID").as_string().as_deref() == Some(user));
    let video = me
        .payloads("onUserVideoAvailable")
        .into_iter()
        .find(|p| get(p, "userID").as_string().as_deref() == Some(user));
    assert_js_eq(
        &audio.unwrap_or_default(),
        &json(&format!(r#"{{"userID":"{user}","isAudioAvailable":true}}"#)),
        "USER_AUDIO_AVAILABLE in the group",
    );
    assert_js_eq(
        &video.unwrap_or_default(),
        &json(&format!(r#"{{"userID":"{user}","isVideoAvailable":true}}"#)),
        "USER_VIDEO_AVAILABLE in the group",
    );
}

#[wasm_bindgen_test]
async fn three_party_video_group_call_full_mesh_then_leave_one_by_one() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let c = Client::login(&unique("carol")).await;
    let tag = unique("g");
    let all = [&a, &b, &c];
    for me in all {
        for other in all {
            if me.user != other.user {
                make_div(&dom(&tag, me, other));
                // Asked for before the call: each renders once that user's media arrives.
                ok(
                    me.sdk
                        .start_remote_view(view_options(&other.user, &dom(&tag, me, other))),
                    "startRemoteView",
                )
                .await;
            }
        }
    }

    let reply = ok(
        a.sdk.group_call(group_options(&[&b.user, &c.user], 2)),
        "groupCall",
    )
    .await;
    assert_eq!(
        get_num(&reply, "code"),
        0.0,
        "groupCall result {}",
        canonical(&reply)
    );
    assert!(a.sdk.is_group_call());
    assert_js_eq(
        &a.wait_for("onGroupCallInviteeListUpdate").await,
        &list_update(&[&b.user, &c.user]),
        "invitee list after groupCall",
    );
    for invitee in [&b, &c] {
        let invited = invitee.wait_for("onInvited").await;
        assert_eq!(get_str(&invited, "sponsor"), a.user);
        assert_eq!(get(&invited, "isFromGroup").as_bool(), Some(true));
        assert_js_eq(
            &get(&invited, "userIDList"),
            &json(&format!(r#"["{}","{}"]"#, b.user, c.user)),
            "INVITED userIDList",
        );
        assert_eq!(get_num(&get(&invited, "inviteData"), "callType"), 2.0);
        assert!(invitee.sdk.is_group_call());
    }

    ok(b.sdk.accept(), "bob accepts").await;
    assert_js_eq(
        &a.wait_for("onUserAccept").await,
        &user_payload(&b.user),
        "USER_ACCEPT bob",
    );
    assert_js_eq(
        &a.wait_for("onGroupCallInviteeListUpdate").await,
        &list_update(&[&c.user]),
        "invitee list after bob accepted",
    );
    assert_entered(&a, &b).await;
    assert_entered(&b, &a).await;

    ok(c.sdk.accept(), "carol accepts").await;
    for member in [&a, &b] {
        wait_until(&format!("{}: USER_ACCEPT carol", member.user), || {
            member
                .payloads("onUserAccept")
                .iter()
                .any(|p| get_str(p, "userID") == c.user)
        })
        .await;
    }
    for (me, other) in [(&a, &c), (&b, &c), (&c, &a), (&c, &b)] {
        assert_entered(me, other).await;
    }
    for me in all {
        assert_eq!(me.sdk.get_call_status(), "connected", "{}", me.user);
        assert_eq!(me.sdk.get_invitee_list().len(), 0, "{}", me.user);
    }
    // The full mesh: every participant renders both others with frames advancing.
    for me in all {
        for other in all {
            if me.user != other.user {
                assert_playing(&dom(&tag, me, other)).await;
            }
        }
    }

    // alice switches camera: the new track goes to both connections, neither view stalls.
    let cameras = js_sys::Array::from(&ok(a.sdk.get_cameras(), "getCameras").await);
    // fake_device_1 sends Y16 frames WebRTC cannot encode (see tests/devices.rs).
    let other = cameras
        .iter()
        .find(|d| get_str(d, "label") == "fake_device_2")
        .map(|d| get_str(&d, "deviceId"))
        .expect("the fake camera fake_device_2");
    let switch = json(&format!(r#"{{"deviceType":"video","deviceId":"{other}"}}"#));
    let (stall, seen) = longest_stall(
        &[&dom(&tag, &b, &a), &dom(&tag, &c, &a)],
        a.sdk.switch_device(switch),
        2000.0,
    )
    .await;
    assert!(
        stall < 1000.0 && seen >= 10,
        "a view of alice stalled {stall} ms during her camera switch ({seen} frame updates)"
    );
    let camera = a
        .sdk
        .local_tracks()
        .iter()
        .map(|t| t.unchecked_into::<web_sys::MediaStreamTrack>())
        .find(|t| t.kind() == "video" && t.ready_state() == web_sys::MediaStreamTrackState::Live);
    assert_eq!(
        camera.as_ref().map(|t| t.label()).as_deref(),
        Some("fake_device_2")
    );
    // Both of alice's connections send it: the page's video senders carry it twice.
    let new_id = camera.map(|t| t.id()).unwrap_or_default();
    wait_until("alice's new camera on both her connections", || {
        sender_tracks("video")
            .iter()
            .filter(|id| **id == new_id)
            .count()
            == 2
    })
    .await;

    // carol leaves: alice and bob hear of it and carry on with each other.
    ok(c.sdk.hangup(), "carol hangs up").await;
    let end = c.wait_for("onCallEnd").await;
    assert_eq!(get_str(&end, "userID"), c.user);
    assert_eq!(c.sdk.get_call_status(), "idle");
    c.assert_released();
    for me in [&a, &b] {
        assert_js_eq(
            &me.wait_for("onUserLeave").await,
            &user_payload(&c.user),
            "USER_LEAVE carol",
        );
        assert!(
            video_in(&dom(&tag, me, &c)).is_none(),
            "{}: carol's view stays after she left",
            me.user
        );
        assert_eq!(me.sdk.get_call_status(), "connected", "{}", me.user);
    }
    assert_playing(&dom(&tag, &a, &b)).await;
    assert_playing(&dom(&tag, &b, &a)).await;
    assert!(
        a.payloads("onCallEnd").is_empty(),
        "alice's call ended early"
    );
    assert!(b.payloads("onCallEnd").is_empty(), "bob's call ended early");

    // bob leaves: alice is the last one, the call ends for her too.
    ok(b.sdk.hangup(), "bob hangs up").await;
    assert_js_eq(
        &a.wait_for("onUserLeave").await,
        &user_payload(&b.user),
        "USER_LEAVE bob",
    );
    for me in [&a, &b] {
        let end = me.wait_for("onCallEnd").await;
        assert_eq!(get_str(&end, "userID"), b.user, "CALL_END at {}", me.user);
        assert!(get_num(&end, "callEnd") >= 0.0);
        assert_eq!(me.sdk.get_call_status(), "idle");
        me.assert_released();
    }
    assert_eq!(
        sdk_elements(),
        0,
        "elements the SDK created remain after the call"
    );
    for me in all {
        assert!(
            me.payloads("onError").is_empty(),
            "{}: errors {:?}",
            me.user,
            me.payloads("onError")
                .iter()
                .map(canonical)
                .collect::<Vec<_>>()
        );
        me.logout().await;
    }
}

#[wasm_bindgen_test]
async fn each_invitees_outcome_reaches_the_caller() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let c = Client::login(&unique("carol")).await;
    let d = Client::login(&unique("dave")).await;
    let e = Client::login(&unique("erin")).await;

    // dave is busy ringing erin: the group caller hears LINE_BUSY for him, REJECT for bob
    // and NO_RESP for carol, who lets it ring out.
    ok(e.sdk.call(call_options(&d.user, 1)), "erin calls dave").await;
    d.wait_for("onInvited").await;
    ok(
        a.sdk
            .group_call(group_options(&[&b.user, &c.user, &d.user], 1)),
        "groupCall",
    )
    .await;
    assert_js_eq(
        &a.wait_for("onLineBusy").await,
        &json(&format!(
            r#"{{"userID":"{}","sponsor":"{}"}}"#,
            d.user, a.user
        )),
        "LINE_BUSY dave",
    );
    b.wait_for("onInvited").await;
    ok(b.sdk.reject(), "bob rejects").await;
    assert_js_eq(
        &a.wait_for("onReject").await,
        &user_payload(&b.user),
        "REJECT bob",
    );
    c.wait_for("onInvited").await;
    let no_resp = a.wait_for("onNoResp").await;
    assert_js_eq(
        &no_resp,
        &json(&format!(
            r#"{{"userID":"{}","sponsor":"{}","userIDList":["{}"]}}"#,
            c.user, a.user, c.user
        )),
        "NO_RESP carol",
    );
    c.wait_for("onCallingTimeout").await;
    // Nobody is left to invite and nobody joined: the call is over for alice.
    let end = a.wait_for("onCallEnd").await;
    assert_eq!(get_num(&end, "callEnd"), 0.0, "{}", canonical(&end));
    assert_eq!(a.sdk.get_call_status(), "idle");
    c.wait_for("onCallEnd").await;
    assert_eq!(c.sdk.get_call_status(), "idle");
    // erin's call to dave rang out meanwhile (the test server rings for 3 s).
    e.wait_for("onNoResp").await;
    d.wait_for("onCallEnd").await;
    assert_eq!(d.sdk.get_call_status(), "idle");
    for me in [&a, &b, &c, &d, &e] {
        me.logout().await;
    }
}

#[wasm_bindgen_test]
async fn a_one_to_one_call_grows_into_a_group() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let c = Client::login(&unique("carol")).await;
    // A 1:1 audio call becomes a group when bob invites carol.
    connect(&a, &b, 1).await;
    assert!(!a.sdk.is_group_call());
    ok(
        b.sdk.group_call(group_options(&[&c.user], 1)),
        "bob invites carol",
    )
    .await;
    let invited = c.wait_for("onInvited").await;
    assert_eq!(get_str(&invited, "sponsor"), b.user);
    ok(c.sdk.accept(), "carol accepts").await;
    for (me, other) in [(&a, &c), (&b, &c), (&c, &a), (&c, &b)] {
        wait_until(&format!("{}: USER_ENTER {}", me.user, other.user), || {
            me.payloads("onUserEnter")
                .iter()
                .any(|p| get_str(p, "userID") == other.user)
        })
        .await;
    }
    for me in [&a, &b, &c] {
        assert_eq!(me.sdk.get_call_status(), "connected", "{}", me.user);
        assert!(me.sdk.is_group_call(), "{}: not a group call", me.user);
    }

    // alice (the original caller) leaves; bob and carol stay until bob leaves too.
    ok(a.sdk.hangup(), "alice hangs up").await;
    a.wait_for("onCallEnd").await;
    for me in [&b, &c] {
        let left = me.wait_for("onUserLeave").await;
        assert_js_eq(&left, &user_payload(&a.user), "USER_LEAVE alice");
        assert_eq!(me.sdk.get_call_status(), "connected");
    }
    ok(b.sdk.hangup(), "bob hangs up").await;
    for me in [&b, &c] {
        me.wait_for("onCallEnd").await;
        assert_eq!(me.sdk.get_call_status(), "idle");
        me.assert_released();
    }
    for me in [&a, &b, &c] {
        me.logout().await;
    }
}
