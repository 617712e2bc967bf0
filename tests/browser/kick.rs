//! Kick-out: a third instance logging in as a user already in a call ends the older session,
//! which leaves the call (the peer sees it leave) and gets KICKED_OUT.

use crate::common::*;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
async fn second_login_kicks_the_first_out_of_its_call() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    connect(&a, &b, 2).await;

    let a2 = Client::login(&a.user).await;
    assert_js_eq(&a.wait_for("onKickedOut").await, &json("{}"), "KICKED_OUT");
    assert_js_eq(
        &b.wait_for("onUserLeave").await,
        &user_payload(&a.user),
        "USER_LEAVE",
    );
    let end = b.wait_for("onCallEnd").await;
    assert_eq!(get_str(&end, "userID"), a.user, "CALL_END names who left");

    for c in [&a, &b] {
        assert_eq!(c.sdk.get_call_status(), "idle");
        c.assert_released();
    }
    assert_eq!(sdk_elements(), 0, "elements the SDK created remain");
    // The kicked instance is logged out: methods reject.
    fails(a.sdk.call(call_options(&b.user, 1)), "call after kick-out").await;
    assert!(a.sdk.get_user_id().is_none());
    assert_events(&a2, &["sdkReady"]);
    let mut kicked = vec!["sdkReady", "onUserAccept"];
    kicked.extend(CONNECT_EVENTS);
    kicked.push("onKickedOut");
    assert_event_set(&a, &kicked);
    let mut peer = vec!["sdkReady", "onInvited"];
    peer.extend(CONNECT_EVENTS);
    peer.extend(["onUserLeave", "onCallEnd"]);
    assert_event_set(&b, &peer);
    assert_before(&b, "onUserLeave", "onCallEnd");

    // The new session works: it can call and be called.
    b.logout().await;
    let b2 = Client::login(&b.user).await;
    connect(&a2, &b2, 1).await;
    hang_up(&a2, &b2).await;
    a2.logout().await;
    b2.logout().await;
}
