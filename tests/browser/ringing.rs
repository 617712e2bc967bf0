//! Invitations that never connect: reject, busy, caller cancel and ring timeout (the test
//! command starts the server with a short `--ring-timeout`).

use crate::common::*;
use wasm_bindgen_test::*;

/// `a` calls `b`; returns (inviteID, roomID) after `b` got INVITED.
async fn ring(a: &Client, b: &Client, call_type: u8) -> (String, f64) {
    let reply = ok(a.sdk.call(call_options(&b.user, call_type)), "call").await;
    let invited = b.wait_for("onInvited").await;
    assert_eq!(get_str(&invited, "sponsor"), a.user);
    assert_eq!(get_str(&invited, "inviteID"), get_str(&reply, "inviteID"));
    (get_str(&reply, "inviteID"), get_num(&reply, "roomID"))
}

/// Every client idle (the caller may still be closing the call when its event arrives: the
/// server's end-of-call message follows REJECT/LINE_BUSY), nothing captured, no element left.
async fn assert_idle(clients: &[&Client]) {
    for c in clients {
        wait_until(&format!("{} idle", c.user), || {
            c.sdk.get_call_status() == "idle"
        })
        .await;
        c.assert_released();
    }
    assert_eq!(sdk_elements(), 0, "elements the SDK created remain");
}

#[wasm_bindgen_test]
async fn reject() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    ring(&a, &b, 2).await;
    assert_js_eq(
        &ok(b.sdk.reject(), "reject").await,
        &json(r#"{"code":0}"#),
        "reject result",
    );
    assert_js_eq(
        &a.wait_for("onReject").await,
        &user_payload(&b.user),
        "REJECT",
    );
    assert_idle(&[&a, &b]).await;
    // Nothing pending any more: accept and reject resolve undefined.
    assert!(ok(b.sdk.accept(), "accept with nothing pending")
        .await
        .is_undefined());
    assert!(ok(b.sdk.reject(), "reject with nothing pending")
        .await
        .is_undefined());
    assert_events(&a, &["sdkReady", "onReject"]);
    assert_events(&b, &["sdkReady", "onInvited"]);
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn busy() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let c = Client::login(&unique("carol")).await;
    ring(&a, &b, 1).await;
    ok(c.sdk.call(call_options(&b.user, 1)), "second call").await;
    let busy = c.wait_for("onLineBusy").await;
    assert_js_eq(
        &busy,
        &json(&format!(
            r#"{{"userID":"{}","sponsor":"{}"}}"#,
            b.user, c.user
        )),
        "LINE_BUSY",
    );
    assert_idle(&[&c]).await;
    // The busy user was not disturbed: still ringing with the first invitation only.
    assert_eq!(b.sdk.get_call_status(), "calling");
    ok(a.sdk.hangup(), "cancel").await;
    b.wait_for("onCallingCancel").await;
    assert_idle(&[&a, &b, &c]).await;
    assert_events(&b, &["sdkReady", "onInvited", "onCallingCancel"]);
    assert_events(&c, &["sdkReady", "onLineBusy"]);
    for x in [&a, &b, &c] {
        x.logout().await;
    }
}

#[wasm_bindgen_test]
async fn caller_cancels() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let (invite_id, _) = ring(&a, &b, 2).await;
    // One call at a time: a second call() while ringing rejects and says why.
    let e = fails(a.sdk.call(call_options(&b.user, 1)), "call while ringing").await;
    assert!(
        get_str(&e, "message").len() > 10,
        "unclear: {}",
        error_text(&e)
    );
    ok(a.sdk.hangup(), "hangup while ringing").await;
    let cancel = b.wait_for("onCallingCancel").await;
    assert_js_eq(
        &cancel,
        &json(&format!(
            r#"{{"inviteID":"{invite_id}","sponsor":"{}"}}"#,
            a.user
        )),
        "CALLING_CANCEL",
    );
    assert_idle(&[&a, &b]).await;
    assert_events(&a, &["sdkReady"]);
    assert_events(&b, &["sdkReady", "onInvited", "onCallingCancel"]);
    a.logout().await;
    b.logout().await;
}

#[wasm_bindgen_test]
async fn ring_timeout() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::login(&unique("bob")).await;
    let (invite_id, _) = ring(&a, &b, 1).await;
    let no_resp = a.wait_for("onNoResp").await;
    assert_js_eq(
        &no_resp,
        &json(&format!(
            r#"{{"userID":"{b}","sponsor":"{a}","userIDList":["{b}"]}}"#,
            a = a.user,
            b = b.user
        )),
        "NO_RESP",
    );
    let timeout = b.wait_for("onCallingTimeout").await;
    assert_js_eq(
        &timeout,
        &json(&format!(
            r#"{{"inviteID":"{invite_id}","sponsor":"{}"}}"#,
            a.user
        )),
        "CALLING_TIMEOUT",
    );
    for c in [&a, &b] {
        let end = c.wait_for("onCallEnd").await;
        assert_eq!(
            get_num(&end, "callEnd"),
            0.0,
            "CALL_END after timeout: {}",
            canonical(&end)
        );
    }
    assert_idle(&[&a, &b]).await;
    assert_events(&a, &["sdkReady", "onNoResp", "onCallEnd"]);
    assert_events(
        &b,
        &["sdkReady", "onInvited", "onCallingTimeout", "onCallEnd"],
    );
    a.logout().await;
    b.logout().await;
}
