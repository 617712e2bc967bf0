//! Connections made while an invitation rings: ICE and DTLS complete during the ring, and the
//! video encoders are kept warm on a canvas track, yet no device opens on the callee's side, no
//! device track is put on a sender and not a byte of media goes out before the callee accepts
//! (the page's `getUserMedia` calls are recorded for the whole ring, and its connections
//! sampled throughout);
//! after accept, frames flow both ways; a ring that ends closes those connections. Every
//! `RTCPeerConnection` the page creates is recorded (`connections`).

use crate::common::*;
use crate::connections::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

/// The video encoders on both sides are warm (they encoded the canvas's frames, which the
/// gate dropped), with the canvas on both video senders.
async fn assert_warm() {
    let warm = JsFuture::from(wait_for_warm_encoders(2, DEADLINE_MS))
        .await
        .unwrap_or_default();
    assert_eq!(warm.as_bool(), Some(true), "both video encoders warm");
    assert_eq!(senders_with_track(), 2, "the canvas on both video senders");
}

/// Neither side saw the other enter: nothing arrived while ringing.
fn assert_nobody_entered(a: &Client, b: &Client) {
    for c in [a, b] {
        assert!(
            !c.names().iter().any(|n| n == "onUserEnter"),
            "{}: USER_ENTER before any media: {:?}",
            c.user,
            c.names()
        );
    }
}

#[wasm_bindgen_test]
async fn ringing_connects_without_media_and_accept_sends_both_ways() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let watch = RingWatch::start();
    ring_connected(&a, &b).await;
    assert_warm().await;
    watch.assert_nothing_captured_or_sent(&a).await;
    assert_nobody_entered(&a, &b);

    b.accept().await;
    assert_both_entered(&a, &b).await;
    assert_video_both_ways().await;
    assert_eq!(open_peers(), 2, "the ringing connections carry the call");
    assert_eq!(
        live_canvas_tracks(),
        0,
        "the warm-up canvas outlived the ring"
    );
    hang_up(&a, &b).await;
    wait_closed_without_canvas().await;
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn cancel_while_ringing_closes_both_connections() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let watch = RingWatch::start();
    ring_connected(&a, &b).await;
    assert_warm().await;
    watch.assert_nothing_captured_or_sent(&a).await;
    assert_nobody_entered(&a, &b);
    ok(a.sdk.hangup(), "hangup").await;
    b.wait_for("onCallingCancel").await;
    wait_closed_without_canvas().await;
    for c in [&a, &b] {
        assert_eq!(c.sdk.get_call_status(), "idle");
        c.assert_released();
    }
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn reject_while_ringing_closes_both_connections() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let watch = RingWatch::start();
    ring_connected(&a, &b).await;
    assert_warm().await;
    watch.assert_nothing_captured_or_sent(&a).await;
    assert_nobody_entered(&a, &b);
    ok(b.sdk.reject(), "reject").await;
    a.wait_for("onReject").await;
    // The caller's line is free with the REJECT itself, not only after the server's end of call.
    assert_eq!(a.sdk.get_call_status(), "idle");
    wait_closed_without_canvas().await;
    for c in [&a, &b] {
        c.assert_released();
    }
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn without_encoded_transforms_nothing_is_warmed_and_accept_still_sends_both_ways() {
    hide_encoded_transforms();
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let watch = RingWatch::start();
    ring_connected(&a, &b).await;
    assert_eq!(senders_with_track(), 0, "no canvas without a gate");
    watch.assert_nothing_captured_or_sent(&a).await;
    assert_nobody_entered(&a, &b);
    b.accept().await;
    assert_video_both_ways().await;
    hang_up(&a, &b).await;
    wait_closed_without_canvas().await;
    restore_encoded_transforms();
    a.logout().await;
    b.logout().await;
}

/// A TURN server nothing can reach (over TCP to a closed port, so that the browser gives up
/// at once): relay candidates never come.
pub fn unreachable_relay() -> wasm_bindgen::JsValue {
    json(r#"[{"urls":"turn:127.0.0.1:9?transport=tcp","username":"u","credential":"c"}]"#)
}

/// The open connections' `{policy, gathering, candidateTypes}`, in the order made.
fn exposure() -> Vec<(String, String, Vec<String>)> {
    connection_exposure()
        .iter()
        .map(|c| {
            let types = js_sys::Array::from(&get(&c, "candidateTypes"));
            let types = types.iter().filter_map(|t| t.as_string()).collect();
            (get_str(&c, "policy"), get_str(&c, "gathering"), types)
        })
        .collect()
}

/// With a relay configured, the ringing callee's connection gathers relay candidates only:
/// its caller learns no address of the callee's before the accept (here the relay is
/// unreachable, so the callee offers nothing at all). Accepting opens it to every candidate
/// and the call connects directly.
#[wasm_bindgen_test]
async fn with_a_relay_the_ringing_callee_reveals_no_address_of_its_own() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_with(&unique("bob"), &[("iceServers", unreachable_relay())]).await;
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    b.wait_for("onInvited").await;
    // The caller's connection is made first, the callee's second.
    wait_until("the callee's connection gathered all it will", || {
        exposure()
            .get(1)
            .is_some_and(|(_, gathering, _)| gathering == "complete")
    })
    .await;
    let ringing = exposure();
    assert_eq!(ringing[0].0, "all", "the caller's connection");
    assert_eq!(ringing[1].0, "relay", "the ringing callee's connection");
    assert!(
        ringing[1].2.iter().all(|t| t == "relay"),
        "the callee offered non-relay candidates while ringing: {:?}",
        ringing[1].2
    );
    assert_eq!(b.sdk.get_call_status(), "calling");

    b.accept().await;
    assert_both_entered(&a, &b).await;
    assert_video_both_ways().await;
    let accepted = exposure();
    assert_eq!(
        accepted[1].0, "all",
        "opened to every candidate after accept"
    );
    for c in [&a, &b] {
        assert!(
            c.payloads("onError").is_empty(),
            "{}: {:?}",
            c.user,
            c.names()
        );
    }
    assert!(
        accepted[1].2.iter().any(|t| t == "host"),
        "{:?}",
        accepted[1].2
    );
    hang_up(&a, &b).await;
    wait_closed_without_canvas().await;
    a.logout().await;
    b.logout().await;
}

/// `preconnect: false`: the ringing callee makes no connection at all; accepting makes it,
/// and the offer that came while ringing carries the call.
#[wasm_bindgen_test]
async fn with_pre_connecting_off_the_callee_connects_only_once_it_accepts() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login_with(&unique("bob"), &[("preconnect", false.into())]).await;
    let made = peers_created();
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    b.wait_for("onInvited").await;
    wait_until("the caller's offer fully gathered", || {
        offers_gathered() == 1
    })
    .await;
    // Anything the callee does with the offer is done by the time its next message arrives.
    next_task().await;
    assert_eq!(peers_created() - made, 1, "only the caller's connection");

    b.accept().await;
    assert_both_entered(&a, &b).await;
    assert_video_both_ways().await;
    assert_eq!(peers_created() - made, 2);
    hang_up(&a, &b).await;
    wait_closed_without_canvas().await;
    a.logout().await;
    b.logout().await;
}
