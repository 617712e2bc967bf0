//! Connections made while an invitation rings: ICE and DTLS complete during the ring, and the
//! video encoders are kept warm on a canvas track, yet no device opens on the callee's side, no
//! device track is put on a sender and not a byte of media goes out before the callee accepts;
//! after accept, frames flow both ways; a ring that ends closes those connections. Every
//! `RTCPeerConnection` the page creates is recorded (`connections`).

use crate::common::*;
use crate::connections::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

/// Nothing may have been captured by the callee nor sent by anyone; the video encoders on
/// both sides are warm (they encoded the canvas's frames, which the gate dropped).
async fn assert_warm_and_nothing_sent(a: &Client, b: &Client) {
    let warm = JsFuture::from(wait_for_warm_encoders(2, DEADLINE_MS))
        .await
        .unwrap_or_default();
    assert_eq!(warm.as_bool(), Some(true), "both video encoders warm");
    assert_eq!(senders_with_track(), 2, "the canvas on both video senders");
    assert_no_media_out(a, b).await;
}

/// No device open on the callee, none on a sender, no media sent, none received.
async fn assert_no_media_out(a: &Client, b: &Client) {
    assert_eq!(
        b.sdk.local_tracks().length(),
        0,
        "the callee opened a device before accepting"
    );
    assert_eq!(
        senders_with_device(),
        0,
        "a device track was put on a sender before accept"
    );
    let sent = JsFuture::from(media_sent()).await.unwrap_or_default();
    assert_eq!(
        sent.as_f64(),
        Some(0.0),
        "media packets or bytes sent while ringing"
    );
    let frames = JsFuture::from(frames_decoded()).await.unwrap_or_default();
    assert_eq!(canonical(&frames), "[0,0]", "frames decoded while ringing");
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
    ring_connected(&a, &b).await;
    assert_warm_and_nothing_sent(&a, &b).await;

    ok(b.sdk.accept(), "accept").await;
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
    ring_connected(&a, &b).await;
    assert_warm_and_nothing_sent(&a, &b).await;
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
    ring_connected(&a, &b).await;
    assert_warm_and_nothing_sent(&a, &b).await;
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
    ring_connected(&a, &b).await;
    assert_eq!(senders_with_track(), 0, "no canvas without a gate");
    assert_no_media_out(&a, &b).await;
    ok(b.sdk.accept(), "accept").await;
    assert_video_both_ways().await;
    hang_up(&a, &b).await;
    wait_closed_without_canvas().await;
    restore_encoded_transforms();
    a.logout().await;
    b.logout().await;
}
