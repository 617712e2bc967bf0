//! Calls that survive the network: one side's signaling connection goes through a proxy the
//! test cuts (`tests/cut-proxy.mjs`), as a Wi-Fi blip or a dropped proxy would. Within the
//! server's resume grace (4 s in the test command) the SDK resumes by itself and the other side
//! sees nothing; past it, the SDK logs in again by itself and both sides hear the call end once.
//! Each test asserts the exact reconnect events and that media still flows.

use crate::common::*;
use crate::video::*;
use wasm_bindgen_test::*;

/// A video call from `a` ringing at `b`, with an element made for each side's view of the
/// other (their ids returned).
async fn ring_video(a: &Client, b: &Client, tag: &str) -> (String, String) {
    let (a_remote, b_remote) = (format!("{tag}-a-remote"), format!("{tag}-b-remote"));
    make_div(&a_remote);
    make_div(&b_remote);
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    b.wait_for("onInvited").await;
    (a_remote, b_remote)
}

/// A 1:1 video call from `a` to `b`, accepted, with each side rendering the other.
async fn video_call(a: &Client, b: &Client, tag: &str) -> (String, String) {
    let (a_remote, b_remote) = ring_video(a, b, tag).await;
    b.accept().await;
    show_each_other(a, &a_remote, b, &b_remote).await;
    (a_remote, b_remote)
}

/// `b`'s reconnect after a cut shorter than the grace: one RECONNECTING per attempt, then one
/// RECONNECTED that resumed.
async fn assert_resumed(b: &Client) {
    let first = b.wait_for("onReconnecting").await;
    assert_eq!(get_num(&first, "attempt"), 1.0, "{}", canonical(&first));
    let back = b.wait_for("onReconnected").await;
    assert_js_eq(&back, &json(r#"{"resumed":true}"#), "RECONNECTED");
}

/// Nothing of a call ending reached `c`.
fn assert_nothing_ended(c: &Client) {
    for name in ["onUserLeave", "onCallEnd", "onError", "onKickedOut"] {
        let payloads = c.payloads(name);
        assert!(
            payloads.is_empty(),
            "{}: {name} {} in {:?}",
            c.user,
            payloads
                .iter()
                .map(canonical)
                .collect::<Vec<_>>()
                .join(", "),
            c.names()
        );
    }
}

#[wasm_bindgen_test]
async fn a_signaling_cut_mid_call_is_resumed_and_the_other_side_notices_nothing() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    let (a_remote, b_remote) = video_call(&a, &b, &unique("cut")).await;
    proxy("cut?ms=1000").await;
    assert_resumed(&b).await;
    assert_nothing_ended(&a);
    assert_nothing_ended(&b);
    assert!(a.payloads("onReconnecting").is_empty());
    assert_eq!(b.sdk.get_call_status(), "connected");
    // Media went peer to peer all along; it still plays on both sides.
    assert_playing(&a_remote).await;
    assert_playing(&b_remote).await;
    // And signaling works again: a hangup crosses it, and each side hears CALL_END once.
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn a_callee_cut_off_while_ringing_resumes_and_can_accept_with_media_both_ways() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    let (a_remote, b_remote) = ring_video(&a, &b, &unique("ring")).await;
    proxy("cut?ms=1000").await;
    assert_resumed(&b).await;
    assert_eq!(b.sdk.get_call_status(), "calling", "still ringing");
    b.accept().await;
    show_each_other(&a, &a_remote, &b, &b_remote).await;
    assert_eq!(b.payloads("onInvited").len(), 1, "INVITED once");
    hang_up(&b, &a).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn an_accept_made_while_the_callee_is_cut_off_goes_through_once_it_is_back() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    let (a_remote, b_remote) = ring_video(&a, &b, &unique("accept")).await;
    proxy("cut?ms=1500").await;
    // The accept goes out on a connection that is gone (or about to be noticed gone): the
    // resumed session carries it, once.
    let before = js_sys::Date::now();
    let accepted = ok(b.sdk.accept(), "accept during the cut").await;
    b.accepted_at(before);
    assert_eq!(get_num(&accepted, "code"), 0.0, "{}", canonical(&accepted));
    assert_resumed(&b).await;
    show_each_other(&a, &a_remote, &b, &b_remote).await;
    assert_eq!(a.payloads("onUserAccept").len(), 1, "USER_ACCEPT once");
    assert_nothing_ended(&a);
    assert_nothing_ended(&b);
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

/// The ringing callee's connection is relay-only and its relay unreachable, so the only way
/// the call connects is the ICE restart its accept starts; signaling is cut just as that
/// restart's offer and answer must cross, and the resumed session carries them.
#[wasm_bindgen_test]
async fn an_ice_restart_whose_signaling_is_cut_completes_once_the_session_resumes() {
    let a = Client::login(&unique("alice")).await;
    let relay = [("iceServers", crate::preconnect::unreachable_relay())];
    let b = Client::login_through_proxy_with(&unique("bob"), &relay).await;
    let (a_remote, b_remote) = ring_video(&a, &b, &unique("restart")).await;
    b.accept().await;
    proxy("cut?ms=1500").await;
    assert_resumed(&b).await;
    show_each_other(&a, &a_remote, &b, &b_remote).await;
    assert_nothing_ended(&a);
    assert_nothing_ended(&b);
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn an_invitation_made_while_the_callee_is_cut_off_rings_once_when_it_is_back() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    proxy("cut").await;
    b.wait_for("onReconnecting").await;
    // The server still holds bob's session: the call goes out and rings for him.
    ok(a.sdk.call(call_options(&b.user, 1)), "call").await;
    proxy("heal").await;
    let back = b.wait_for("onReconnected").await;
    assert_js_eq(&back, &json(r#"{"resumed":true}"#), "RECONNECTED");
    let invited = b.wait_for("onInvited").await;
    assert_eq!(get_str(&invited, "sponsor"), a.user);
    b.accept().await;
    a.wait_for("onUserEnter").await;
    b.wait_for("onUserEnter").await;
    assert_eq!(b.payloads("onInvited").len(), 1, "INVITED once");
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn a_dead_path_that_nobody_closed_is_noticed_and_resumed() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    let (a_remote, b_remote) = video_call(&a, &b, &unique("stall")).await;
    // Bytes stop both ways and nobody is told: only silence gives it away.
    proxy("stall?ms=9000").await;
    b.wait_for_within("onReconnecting", 20_000).await;
    let back = b.wait_for_within("onReconnected", 20_000).await;
    assert_js_eq(&back, &json(r#"{"resumed":true}"#), "RECONNECTED");
    assert_nothing_ended(&a);
    assert_nothing_ended(&b);
    assert_playing(&a_remote).await;
    assert_playing(&b_remote).await;
    hang_up(&a, &b).await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn a_cut_longer_than_the_grace_ends_the_call_once_on_both_sides_and_logs_in_again() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    video_call(&a, &b, &unique("long")).await;
    proxy("cut?ms=6000").await;
    b.wait_for("onReconnecting").await;
    // Past the grace the server ends bob's session: alice hears him leave and the call end.
    let leave = a.wait_for("onUserLeave").await;
    assert_eq!(get_str(&leave, "userID"), b.user);
    a.wait_for("onCallEnd").await;
    // Bob's SDK gets back in by itself, hears the call ended, and is usable at once.
    let back = b.wait_for_within("onReconnected", 25_000).await;
    assert_js_eq(&back, &json(r#"{"resumed":false}"#), "RECONNECTED");
    b.wait_for("onCallEnd").await;
    for c in [&a, &b] {
        assert_eq!(
            c.payloads("onCallEnd").len(),
            1,
            "{}: CALL_END once",
            c.user
        );
        assert_eq!(c.sdk.get_call_status(), "idle", "{}", c.user);
    }
    assert!(b.payloads("onKickedOut").is_empty());
    ok(
        b.sdk.call(call_options(&a.user, 1)),
        "a call after logging in again",
    )
    .await;
    a.wait_for("onInvited").await;
    ok(b.sdk.hangup(), "hangup").await;
    a.logout().await;
    b.logout().await;
}

/// `logout()` while the SDK waits to reconnect ends the session on the server at once (a
/// throwaway socket resumes it and logs it out): the other side hears the call end now, not
/// when the server's resume grace (4 s here) runs out.
#[wasm_bindgen_test]
async fn a_logout_while_reconnecting_ends_the_call_for_the_other_side_at_once() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_through_proxy(&unique("bob")).await;
    video_call(&a, &b, &unique("bye")).await;
    let cut_at = js_sys::Date::now();
    proxy("cut").await;
    // Attempt 1 (at once) was refused; attempt 2 starts after 0.5 s and is refused too, and
    // attempt 3 waits about a second more: the network comes back in between.
    loop {
        let next = b.wait_for("onReconnecting").await;
        if get_num(&next, "attempt") >= 2.0 {
            break;
        }
    }
    proxy("heal").await;
    ok(b.sdk.logout(), "logout while reconnecting").await;
    let leave = a.wait_for("onUserLeave").await;
    assert_eq!(get_str(&leave, "userID"), b.user);
    a.wait_for("onCallEnd").await;
    let after = js_sys::Date::now() - cut_at;
    assert!(
        after < 3_000.0,
        "alice heard the call end {after} ms after the cut: at the grace's end, not the logout"
    );
    assert!(
        b.payloads("onReconnected").is_empty(),
        "bob stayed logged out"
    );
    a.logout().await;
}
