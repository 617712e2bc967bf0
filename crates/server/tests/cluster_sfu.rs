//! Group calls through the SFU in a cluster: every node runs one (`--sfu-udp`, `--redis`), a
//! call's SFU session lives on one of them, whichever node its members' sockets are on, and
//! moves to a live node when that one dies, whose members are told to join again. Real nodes and Redis; media peers (str0m, over
//! 127.0.0.1) signalling over their users' WebSockets as the SDK does.

mod cluster_support;
mod process;
mod redis_server;
mod sfu_support;

use calling_protocol::{ClientMessage, ErrorCode, MemberLeft, RoomId, ServerMessage};
use cluster_support::{cluster, Cluster};
use sfu_support::peer::Peer;
use sfu_support::{an_offer, group_call, metric, pairs, Observer, User};

/// Frames a receiver must get from a sender to count as receiving it (a second of video).
const ENOUGH: usize = 30;

/// Each node's SFU on its own free loopback port; a dead node is taken for dead after 2 s.
const FLAGS: [&str; 4] = ["--sfu-udp", "127.0.0.1:0", "--node-timeout", "2"];

/// How many participants node `node`'s SFU serves (none before its first).
async fn participants(cluster: &Cluster, node: usize) -> f64 {
    metric(cluster.nodes[node].addr, "calling_sfu_participants")
        .await
        .unwrap_or(0.0)
}

/// alice on node 0, bob and cat on node 1, in one group call, alice the first to join the SFU
/// (so node 0's serves the call): each receives both others.
async fn three_across_two_nodes(cluster: &Cluster) -> (Vec<User>, Vec<Peer>, Observer, RoomId) {
    let mut alice = User::login(cluster.nodes[0].addr, "alice").await;
    let mut bob = User::login(cluster.nodes[1].addr, "bob").await;
    let mut cat = User::login(cluster.nodes[1].addr, "cat").await;
    assert!(
        alice.sfu_offered && bob.sfu_offered,
        "every node runs an SFU"
    );
    let room = group_call(&mut alice, &mut [&mut bob, &mut cat]).await;
    let mut observer = Observer::new();
    let mut peers = Vec::new();
    for user in [&mut alice, &mut bob, &mut cat] {
        peers.push(user.start_media(room, observer.sender()).await);
    }
    observer
        .until("everyone receives both others", |o| {
            o.all_receive(&pairs(&["alice", "bob", "cat"]), ENOUGH)
        })
        .await;
    (vec![alice, bob, cat], peers, observer, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_different_nodes_share_one_sfu_and_one_who_hangs_up_leaves_it() {
    let cluster = cluster(2, &FLAGS).await;
    let (users, peers, mut observer, room) = three_across_two_nodes(&cluster).await;
    assert_eq!(
        (
            participants(&cluster, 0).await,
            participants(&cluster, 1).await
        ),
        (3.0, 0.0),
        "the call's SFU session is node 0's alone, bob's and cat's included"
    );
    for user in &users {
        assert_eq!(
            user.offers_before_answer
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{}: an offer of the SFU overtook the answer to its own offer",
            user.name
        );
    }

    // cat, on node 1, hangs up: node 0's SFU lets it go.
    users[2].send(ClientMessage::Hangup { room_id: room });
    observer
        .until("cat's audio and video stopped at alice and bob", |o| {
            o.ended("alice", "cat") == 2 && o.ended("bob", "cat") == 2
        })
        .await;
    observer.go_on_receiving("alice", "bob", ENOUGH).await;
    assert_eq!(participants(&cluster, 0).await, 2.0);
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_node_serving_a_call_dies_its_members_rejoin_the_sfu_of_a_live_one() {
    let cluster = cluster(2, &FLAGS).await;
    let (mut users, _peers, _observer, room) = three_across_two_nodes(&cluster).await;
    assert_eq!(participants(&cluster, 0).await, 3.0);

    // Node 0 dies with alice's socket and the call's SFU session. Once it is taken for dead,
    // bob and cat are told to join again, and alice (not resumable) leaves the call.
    cluster.nodes[0].signal("KILL");
    for user in &mut users[1..] {
        let rejoin = user.until(|m| matches!(m, ServerMessage::Error(_))).await;
        assert!(
            matches!(&rejoin, ServerMessage::Error(e) if e.code == ErrorCode::SfuRejoin && e.request_id.is_none()),
            "{}: {rejoin:?}",
            user.name
        );
        user.until(|m| matches!(m, ServerMessage::MemberLeft(MemberLeft { user_id, .. }) if user_id == "alice"))
            .await;
    }
    // An ICE restart of the lost connection reaches node 1, which takes the call over: its SFU
    // has no such connection, and says so.
    users[1].renegotiate_sfu(room, an_offer());
    assert_eq!(users[1].error().await, ErrorCode::SfuRejoin);
    // bob and cat connect to the SFU again with new connections, as the SDK then does.
    let mut observer = Observer::new();
    let mut peers = Vec::new();
    for user in &mut users[1..] {
        user.replace_media_peer();
        peers.push(user.start_media(room, observer.sender()).await);
    }
    observer
        .until("bob and cat receive each other through node 1's SFU", |o| {
            o.all_receive(&pairs(&["bob", "cat"]), ENOUGH)
        })
        .await;
    assert_eq!(participants(&cluster, 1).await, 2.0);
    for peer in peers {
        peer.stop().await;
    }
}
