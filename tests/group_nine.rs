//! Nine participants, the most a call holds, in a full mesh of audio, and a tenth refused up
//! front. A page of its own: nine SDK instances and their 36 connections in one renderer are the
//! heaviest load any test puts on one page, so no earlier test's leftovers may share it.

mod common;

use common::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn nine_participants_connect_in_a_full_mesh_and_a_tenth_is_refused() {
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(Client::login(&unique(&format!("p{i}"))).await);
    }
    let (host, rest) = clients.split_at(1);
    let (members, extra) = rest.split_at(8);
    let host = &host[0];
    let ids: Vec<&str> = members.iter().map(|c| c.user.as_str()).collect();
    // Nine with the caller is the most a call holds: one more is refused up front.
    let mut too_many = ids.clone();
    too_many.push(&extra[0].user);
    let refused = fails(
        host.sdk.group_call(group_options(&too_many, 1)),
        "groupCall for ten",
    )
    .await;
    assert!(
        get_str(&refused, "message").contains("at most 9"),
        "{}",
        canonical(&refused)
    );
    assert_eq!(host.sdk.get_call_status(), "idle");

    ok(
        host.sdk.group_call(group_options(&ids, 1)),
        "groupCall for nine",
    )
    .await;
    for m in members {
        m.wait_for("onInvited").await;
        ok(m.sdk.accept(), "accept").await;
    }
    // Every participant's media arrives at every other one: 36 connections.
    let everyone: Vec<&Client> = clients.iter().take(9).collect();
    for me in &everyone {
        for other in &everyone {
            if me.user != other.user {
                wait_until(&format!("{}: USER_ENTER {}", me.user, other.user), || {
                    me.payloads("onUserEnter")
                        .iter()
                        .any(|p| get_str(p, "userID") == other.user)
                })
                .await;
            }
        }
        assert_eq!(me.sdk.get_call_status(), "connected", "{}", me.user);
    }
    // The last but one to leave ends the call for the last.
    for (i, me) in everyone.iter().enumerate().take(8) {
        ok(me.sdk.hangup(), "hangup").await;
        me.wait_for("onCallEnd").await;
        for later in &everyone[i + 1..] {
            wait_until(&format!("{}: USER_LEAVE {}", later.user, me.user), || {
                later
                    .payloads("onUserLeave")
                    .iter()
                    .any(|p| get_str(p, "userID") == me.user)
            })
            .await;
        }
    }
    let last = everyone[8];
    let end = last.wait_for("onCallEnd").await;
    assert_eq!(get_str(&end, "userID"), everyone[7].user);
    for me in &everyone {
        assert_eq!(me.sdk.get_call_status(), "idle", "{}", me.user);
        me.assert_released();
    }
    for c in &clients {
        c.logout().await;
    }
}
