//! A cluster of three calling-server nodes sharing Redis behind a load balancer
//! (`tests/cluster-control.mjs`), under SDKs that know only the balancer's address. Which node
//! holds which socket is the balancer's choice, so each test acts on every node in turn.
//!
//! A rolling restart (each node drained with SIGTERM, started again, then the next) moves every
//! SDK to another node, mid-call and mid-ring: the call's video keeps playing, the invitation
//! still rings and can be accepted, no app hears anything of it, and hangups end both calls
//! with `CALL_END`. A node killed outright loses nothing either: the SDKs it held reconnect
//! through the balancer and resume on another node. Nor does a node frozen past the node
//! timeout, whose sessions the others reap: back, it closes their sockets and the SDKs resume.
//! Nor does a Redis restart: the nodes say they cannot decide anything meanwhile, and carry on
//! once it is back.

use crate::common::*;
use crate::video::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

const NODES: usize = 3;

/// Sends `command` (`restart?node=I`, `kill?node=I`, `freeze?node=I`, `restart-redis?downMs=N`)
/// to the cluster's control; its answer.
async fn control(command: &str) -> JsValue {
    let url = format!("http://{CLUSTER_CONTROL}/{command}");
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let window = web_sys::window().expect("window");
    let resp: web_sys::Response = ok(window.fetch_with_str_and_init(&url, &init), &url)
        .await
        .unchecked_into();
    let body = ok(resp.json().expect("json()"), &url).await;
    assert!(
        resp.ok(),
        "POST {url}: HTTP {} {}",
        resp.status(),
        canonical(&body)
    );
    body
}

/// Each node's entry in the cluster control's `/state`.
async fn node_states() -> js_sys::Array {
    let state = fetch_json(&format!("http://{CLUSTER_CONTROL}/state")).await;
    js_sys::Array::from(&get(&state, "nodes"))
}

/// Sockets the balancer carries to nodes now, all nodes together.
async fn balanced_sockets() -> f64 {
    node_states()
        .await
        .iter()
        .map(|n| get_num(&n, "connections"))
        .sum()
}

/// Four SDKs logged in through the balancer: `a` in a video call with `b` (each showing the
/// other), `c`'s video invitation ringing at `d`. The element ids of a's and b's views.
async fn a_call_and_a_ringing_invitation(tag: &str) -> ([Client; 4], String, String) {
    let mut clients = Vec::new();
    for name in ["ada", "bo", "cy", "di"] {
        clients.push(Client::login_on(&unique(name), CLUSTER_LB).await);
    }
    let [a, b, c, d]: [Client; 4] = clients.try_into().unwrap_or_else(|_| unreachable!());
    let (a_remote, b_remote) = (format!("{tag}-a-remote"), format!("{tag}-b-remote"));
    make_div(&a_remote);
    make_div(&b_remote);
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    b.wait_for("onInvited").await;
    b.accept().await;
    show_each_other(&a, &a_remote, &b, &b_remote).await;
    ok(c.sdk.call(call_options(&d.user, 2)), "call").await;
    d.wait_for("onInvited").await;
    ([a, b, c, d], a_remote, b_remote)
}

/// `c` is not reconnecting (its last reconnect event, if any, is a `RECONNECTED`), and each
/// of its reconnects resumed the session.
fn all_reconnects_resumed(c: &Client) -> bool {
    let names = c.names();
    let last = names
        .iter()
        .rev()
        .find(|n| *n == "onReconnecting" || *n == "onReconnected");
    last.is_none_or(|n| n == "onReconnected")
        && c.payloads("onReconnected")
            .iter()
            .all(|r| get(r, "resumed").as_bool() == Some(true))
}

/// Nothing of a call ending, nor an error or a kick-out, reached `c`.
fn assert_nothing_ended(c: &Client) {
    for name in ["onUserLeave", "onCallEnd", "onError", "onKickedOut"] {
        assert!(
            c.payloads(name).is_empty(),
            "{}: {name} in {:?}",
            c.user,
            c.names()
        );
    }
}

/// Both calls went on: a and b still connected with video playing both ways, and hung up,
/// both sides hearing `CALL_END`; d's invitation still ringing (once), accepted now, with
/// video both ways, and hung up too.
async fn both_calls_went_on(clients: [Client; 4], a_remote: &str, b_remote: &str, tag: &str) {
    let [a, b, c, d] = clients;
    assert_eq!(a.sdk.get_call_status(), "connected");
    assert_eq!(b.sdk.get_call_status(), "connected");
    assert_playing(a_remote).await;
    assert_playing(b_remote).await;
    // (One call at a time in the page when it ends: the hangup checks that nothing the SDK
    // made is left in the page.)
    hang_up(&a, &b).await;

    assert_eq!(d.sdk.get_call_status(), "calling", "still ringing");
    assert_eq!(
        d.payloads("onInvited").len(),
        1,
        "rang once: {:?}",
        d.names()
    );
    let (c_remote, d_remote) = (format!("{tag}-c-remote"), format!("{tag}-d-remote"));
    make_div(&c_remote);
    make_div(&d_remote);
    d.accept().await;
    show_each_other(&c, &c_remote, &d, &d_remote).await;
    hang_up(&d, &c).await;
    for client in [a, b, c, d] {
        client.logout().await;
    }
}

#[wasm_bindgen_test]
async fn a_rolling_restart_loses_neither_a_running_call_nor_a_ringing_invitation() {
    let tag = unique("rolling");
    let (clients, a_remote, b_remote) = a_call_and_a_ringing_invitation(&tag).await;

    for node in 0..NODES {
        let restarted = control(&format!("restart?node={node}")).await;
        // It exits by itself once its SDKs have moved: not at the drain timeout, which would
        // close their sockets (1001) and make them reconnect.
        assert_eq!(
            get_num(&restarted, "exit"),
            0.0,
            "node {node}: {}",
            canonical(&restarted)
        );
    }

    // Every SDK sat on a node that was drained: each was told to move, and did (a new socket
    // resumed its session), without its app hearing a thing.
    for c in &clients {
        assert!(
            frames_received_by_all(&c.user, "goAway") >= 1,
            "{}: no goAway",
            c.user
        );
        assert!(
            session_sockets(&c.user) >= 2,
            "{}: never moved ({} socket)",
            c.user,
            session_sockets(&c.user)
        );
        assert!(
            c.payloads("onReconnecting").is_empty() && c.payloads("onReconnected").is_empty(),
            "{}: a move is not a reconnect the app hears of: {:?}",
            c.user,
            c.names()
        );
        assert_nothing_ended(c);
    }
    both_calls_went_on(clients, &a_remote, &b_remote, &tag).await;
}

/// Waits until the SDKs whose sockets `what` (done to node `node`) ended have come back
/// through the balancer, and every reconnect resumed its session.
async fn all_back_and_resumed(clients: &[Client], node: usize, what: &str) {
    let deadline = js_sys::Date::now() + f64::from(DEADLINE_MS);
    loop {
        let sockets = balanced_sockets().await;
        if sockets == clients.len() as f64 && clients.iter().all(all_reconnects_resumed) {
            return;
        }
        assert!(
            js_sys::Date::now() < deadline,
            "after {what} node {node}: {sockets} sockets through the balancer; {:?}",
            clients.iter().map(Client::names).collect::<Vec<_>>()
        );
        let _ = JsFuture::from(delay(50)).await;
    }
}

/// At least one SDK reconnected (one sat on a node the test acted on), and no app heard of
/// anything ending.
fn reconnected_and_nothing_ended(clients: &[Client], what: &str) {
    let reconnected: usize = clients
        .iter()
        .map(|c| c.payloads("onReconnected").len())
        .sum();
    assert!(reconnected >= 1, "no SDK was on a {what} node");
    for c in clients {
        assert_nothing_ended(c);
    }
}

#[wasm_bindgen_test]
async fn a_node_killed_mid_call_and_mid_ring_loses_neither() {
    let tag = unique("killed");
    let (clients, a_remote, b_remote) = a_call_and_a_ringing_invitation(&tag).await;

    for node in 0..NODES {
        let killed = control(&format!("kill?node={node}")).await;
        assert_eq!(get_str(&killed, "exit"), "SIGKILL");
        // The SDKs whose socket it held (its links are gone from the balancer by now) come back
        // through the balancer and resume.
        all_back_and_resumed(&clients, node, "killing").await;
    }
    reconnected_and_nothing_ended(&clients, "killed");
    both_calls_went_on(clients, &a_remote, &b_remote, &tag).await;
}

#[wasm_bindgen_test]
async fn a_node_frozen_past_the_node_timeout_mid_call_and_mid_ring_loses_neither() {
    let tag = unique("frozen");
    let (clients, a_remote, b_remote) = a_call_and_a_ringing_invitation(&tag).await;

    let mut reaped = 0.0;
    for node in 0..NODES {
        // Answers once the other nodes took it for dead and reaped its sessions, and it runs
        // again: it still holds their sockets, which nothing reaches any more. It closes them,
        // and their SDKs resume (on any node), well before they would have found their
        // sockets silent by themselves.
        reaped += get_num(&control(&format!("freeze?node={node}")).await, "reaped");
        all_back_and_resumed(&clients, node, "freezing").await;
    }
    assert!(reaped >= 1.0, "no session was reaped");
    reconnected_and_nothing_ended(&clients, "frozen");
    both_calls_went_on(clients, &a_remote, &b_remote, &tag).await;
}

#[wasm_bindgen_test]
async fn a_redis_restart_mid_call_and_mid_ring_loses_neither_and_nobody_hears_of_it() {
    let tag = unique("redis");
    let (clients, a_remote, b_remote) = a_call_and_a_ringing_invitation(&tag).await;
    // Answers once every node said it could not reach Redis (503), Redis stayed down 3 s more,
    // and every node said it can reach it again. The SDKs' heartbeats go on meanwhile.
    control("restart-redis?downMs=3000").await;
    for c in &clients {
        assert!(
            c.payloads("onReconnecting").is_empty(),
            "{}: the sockets stay up through it: {:?}",
            c.user,
            c.names()
        );
        assert_nothing_ended(c);
    }
    both_calls_went_on(clients, &a_remote, &b_remote, &tag).await;
}

/// The SFU participants of each node (a node that is down has none).
async fn sfu_participants() -> Vec<f64> {
    node_states()
        .await
        .iter()
        .map(|n| get(&n, "sfuParticipants").as_f64().unwrap_or_default())
        .collect()
}

/// The id of the element where `me` shows `other`.
fn view_of(tag: &str, me: &Client, other: &Client) -> String {
    format!("{tag}-{}-{}", me.user, other.user)
}

/// Every participant renders every other with frames advancing.
async fn all_see_all(clients: &[Client], tag: &str) {
    for me in clients {
        for other in clients.iter().filter(|o| o.user != me.user) {
            assert_playing(&view_of(tag, me, other)).await;
        }
    }
}

/// Which node's SFU serves all three of a call's participants (the others serve none).
async fn serving_node() -> usize {
    let each = sfu_participants().await;
    let serving = each.iter().position(|n| *n == 3.0);
    match serving.filter(|_| each.iter().sum::<f64>() == 3.0) {
        Some(node) => node,
        None => panic!("not one node's SFU serving all three: {each:?}"),
    }
}

#[wasm_bindgen_test]
async fn a_group_call_through_the_sfu_outlives_each_node_killed_the_one_serving_it_included() {
    let tag = unique("sfu-killed");
    let mut clients = Vec::new();
    for name in ["ana", "ben", "cid"] {
        clients.push(Client::login_on(&unique(name), CLUSTER_LB).await);
    }
    for me in &clients {
        for other in clients.iter().filter(|o| o.user != me.user) {
            let dom = view_of(&tag, me, other);
            make_div(&dom);
            ok(
                me.sdk.start_remote_view(view_options(&other.user, &dom)),
                "startRemoteView",
            )
            .await;
        }
    }
    let (a, others) = clients.split_first().expect("three clients");
    let invitees: Vec<&str> = others.iter().map(|c| c.user.as_str()).collect();
    ok(a.sdk.group_call(group_options(&invitees, 2)), "groupCall").await;
    for invitee in others {
        invitee.wait_for("onInvited").await;
        invitee.accept().await;
    }
    all_see_all(&clients, &tag).await;
    // One node's SFU serves the whole call, whichever nodes the three sockets are on (the
    // balancer spreads them over all three).
    let first = serving_node().await;

    // Each node killed in turn, the serving one last. The SDKs a node held reconnect through
    // the balancer and resume on a live node. Killing the serving node loses every
    // participant's connection to its SFU: once it is taken for dead, the members are told to
    // join again, and their new connections join a live node's SFU, which serves the call now.
    let order: Vec<usize> = (0..NODES).filter(|n| *n != first).chain([first]).collect();
    for node in order {
        let killed = control(&format!("kill?node={node}")).await;
        assert_eq!(get_str(&killed, "exit"), "SIGKILL");
        all_back_and_resumed(&clients, node, "killing").await;
        all_see_all(&clients, &tag).await;
        let serving = serving_node().await;
        if node == first {
            assert_ne!(serving, first, "the call moved to a live node's SFU");
        } else {
            assert_eq!(serving, first, "after killing node {node}");
        }
    }
    reconnected_and_nothing_ended(&clients, "killed");
    for c in &clients {
        assert_eq!(c.sdk.get_call_status(), "connected", "{}", c.user);
    }
    // A hangup through any node reaches the serving node's SFU: the member leaves it.
    let serving = serving_node().await;
    ok(clients[2].sdk.hangup(), "hangup").await;
    let deadline = js_sys::Date::now() + f64::from(DEADLINE_MS);
    while sfu_participants().await[serving] != 2.0 {
        assert!(
            js_sys::Date::now() < deadline,
            "the member who hung up is still in the SFU"
        );
        let _ = JsFuture::from(delay(50)).await;
    }
    for c in &clients[..2] {
        ok(c.sdk.hangup(), "hangup").await;
    }
    for c in clients {
        c.logout().await;
    }
}
