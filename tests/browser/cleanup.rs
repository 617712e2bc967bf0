//! Cleanup never throws: `hangup()` and `logout()` resolve in every state (before login, twice
//! in a row, after KICKED_OUT), and `off()` of a listener never added is a no-op.

use crate::common::*;
use crate::connections::captures_made;
use js_sys::Function;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

const IDLE_HANGUP: &str = r#"{"code":0,"msg":"ok"}"#;
const LOGGED_OUT: &str = r#"{"code":0}"#;

/// `hangup()` then `logout()`, each twice, all resolving with trtc-calling-js's values.
async fn clean_up_twice(c: &Client, when: &str) {
    for round in 1..=2 {
        assert_js_eq(
            &ok(c.sdk.hangup(), &format!("hangup {when} #{round}")).await,
            &json(IDLE_HANGUP),
            &format!("hangup {when} #{round}"),
        );
    }
    for round in 1..=2 {
        assert_js_eq(
            &ok(c.sdk.logout(), &format!("logout {when} #{round}")).await,
            &json(LOGGED_OUT),
            &format!("logout {when} #{round}"),
        );
    }
}

#[wasm_bindgen_test]
async fn hangup_and_logout_resolve_before_login() {
    let c = Client::new(&unique("early"));
    clean_up_twice(&c, "before login").await;
    assert_eq!(c.sdk.get_call_status(), "idle");
    // Nothing was left half-open: the instance still logs in.
    let sig = user_sig(&c.user).await;
    ok(
        c.sdk.login(login_options(&c.user, &sig)),
        "login after cleanup",
    )
    .await;
    c.wait_for("sdkReady").await;
    c.logout().await;
}

#[wasm_bindgen_test]
async fn hangup_and_logout_resolve_after_logout_and_after_kick_out() {
    let a = Client::login(&unique("kicked")).await;
    a.logout().await;
    clean_up_twice(&a, "after logout").await;

    let a = Client::login(&unique("kicked")).await;
    let a2 = Client::login(&a.user).await;
    a.wait_for("onKickedOut").await;
    clean_up_twice(&a, "after KICKED_OUT").await;
    // The session that took over is untouched by the old one's cleanup.
    assert_eq!(a2.sdk.get_user_id().as_deref(), Some(a2.user.as_str()));
    a2.logout().await;
}

#[wasm_bindgen_test]
async fn off_of_an_unknown_listener_is_a_no_op() {
    let c = Client::new(&unique("off"));
    let never_added = Function::new_no_args("throw new Error('never added, never called')");
    // A name no event uses, a known name with a callback never added, and non-functions.
    c.sdk.off(
        "noSuchEvent".into(),
        never_added.clone().into(),
        JsValue::UNDEFINED,
    );
    c.sdk
        .off("sdkReady".into(), never_added.into(), JsValue::UNDEFINED);
    c.sdk
        .off("sdkReady".into(), JsValue::NULL, JsValue::UNDEFINED);
    c.sdk
        .off(JsValue::UNDEFINED, JsValue::UNDEFINED, JsValue::UNDEFINED);
    // The listeners that were added still hear their events.
    let sig = user_sig(&c.user).await;
    ok(c.sdk.login(login_options(&c.user, &sig)), "login").await;
    c.wait_for("sdkReady").await;
    c.logout().await;
}

/// An app that drops its instance while the camera is still opening (a component unmounts
/// mid-call) leaves no device on: whatever that capture opens is stopped when it settles.
#[wasm_bindgen_test]
async fn a_capture_that_settles_after_the_instance_is_dropped_is_stopped() {
    let b = Client::login(&unique("bob")).await;
    let a = Client::login(&unique("alice")).await;
    let from = captures_made();
    let call = a.sdk.call(call_options(&b.user, 2));
    wait_until("alice's capture started", || captures_made() > from).await;
    drop(call);
    drop(a);
    wait_until("every device alice's capture opened is off", || {
        captures_open_since(from) == 0
    })
    .await;
    b.logout().await;
}
