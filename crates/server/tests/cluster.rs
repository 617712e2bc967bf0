//! Several `calling-server` processes sharing one Redis (`--redis`): every flow works with the
//! parties on different nodes, and outcomes raced from two nodes are decided once.
//!
//! Each test starts its own `redis-server` (on a Unix socket in a temporary directory) and its
//! own nodes, the real binary. Messages are read as JSON values, as any client sees them.

mod cluster_support;
mod process;
mod redis_server;

use std::time::{Duration, Instant};

use cluster_support::*;
use process::*;
use serde_json::Value;

#[tokio::test]
async fn a_call_between_users_on_two_nodes_rings_connects_relays_and_ends() {
    let cluster = cluster(3, &[]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    let mut carol = cluster.login(2, "carol").await;
    let room = connect(&mut alice, &mut bob).await;
    // Every node counts the cluster's calls, the third one's too.
    gauge_becomes(cluster.nodes[2].addr, "calling_calls", 1).await;

    send(&mut alice, &offer(room, "bob", "v=0 offer")).await;
    let relayed = expect(&mut bob, "signal").await;
    assert_eq!(relayed["from"], "alice");
    assert_eq!(relayed["signal"]["sdp"], "v=0 offer");
    send(&mut bob, &offer(room, "alice", "v=0 answer")).await;
    assert_eq!(expect(&mut alice, "signal").await["from"], "bob");

    // Relay only between members of the same call: carol (on a third node) is in no call,
    // and alice cannot relay to her.
    send(&mut carol, &offer(room, "bob", "intruder")).await;
    assert_eq!(expect(&mut carol, "error").await["code"], "notInCall");
    send(&mut alice, &offer(room, "carol", "stray")).await;
    assert_eq!(expect(&mut alice, "error").await["code"], "notAParticipant");

    send(&mut alice, &hangup(room)).await;
    // bob's next messages are the end of the call: nothing of carol's reached him.
    let left = expect(&mut bob, "memberLeft").await;
    assert_eq!(left["userId"], "alice");
    let ended = expect(&mut bob, "callEnded").await;
    assert_eq!(ended["userId"], "alice");
    assert_eq!(ended["reason"], "hangup");
    assert_eq!(room_of(&ended), room);
    gauge_becomes(cluster.nodes[2].addr, "calling_calls", 0).await;
}

#[tokio::test]
async fn a_login_on_another_node_kicks_the_first_session_and_calls_reach_the_new_one() {
    let cluster = cluster(3, &[]).await;
    let mut first = cluster.login(0, "alice").await;
    let mut second = cluster.login(1, "alice").await;
    expect(&mut first, "kicked").await;
    assert_eq!(
        first.closed_within(DEADLINE).await,
        Some(Closed::Code(1000)),
        "the first session is closed"
    );
    let mut bob = cluster.login(2, "bob").await;
    ring(&mut bob, &mut second).await;
}

#[tokio::test]
async fn a_user_in_a_call_on_one_node_is_busy_for_a_caller_on_another() {
    let cluster = cluster(3, &[]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    let mut carol = cluster.login(2, "carol").await;
    let room = connect(&mut alice, &mut bob).await;

    send(&mut carol, &invite(5, &["bob"])).await;
    expect(&mut carol, "inviteSent").await;
    let busy = expect(&mut carol, "busy").await;
    assert_eq!(busy["userId"], "bob");
    let ended = expect(&mut carol, "callEnded").await;
    assert_eq!(ended["reason"], "busy");
    // bob was not disturbed: the next thing he gets is alice's offer.
    send(&mut alice, &offer(room, "bob", "after the busy")).await;
    assert_eq!(
        expect(&mut bob, "signal").await["signal"]["sdp"],
        "after the busy"
    );
}

#[tokio::test]
async fn a_ring_timeout_is_delivered_by_another_node_when_the_callers_node_died() {
    let cluster = cluster(2, &["--ring-timeout", "1"]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    let (room, invite_id) = ring(&mut alice, &mut bob).await;
    gauge_becomes(cluster.nodes[1].addr, "calling_invitations_ringing", 1).await;
    cluster.nodes[0].signal("KILL");
    let timeout = expect(&mut bob, "inviteTimeout").await;
    assert_eq!(invite_id_of(&timeout), invite_id);
    assert_eq!(room_of(&timeout), room);
    gauge_becomes(cluster.nodes[1].addr, "calling_invitations_ringing", 0).await;
}

/// Rounds of each race: enough to see both orders on two cores.
const ROUNDS: usize = 30;

#[tokio::test]
async fn a_cancel_racing_an_accept_on_another_node_has_one_outcome() {
    let cluster = cluster(2, &[]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    let (mut accepted, mut cancelled) = (0, 0);
    for _ in 0..ROUNDS {
        let (room, invite_id) = ring(&mut alice, &mut bob).await;
        // Both leave at once; neither waits for the other.
        let (cancel, answer) = (hangup(room), accept(2, &invite_id));
        tokio::join!(send(&mut alice, &cancel), send(&mut bob, &answer));
        let first = bob.recv().await;
        match first["type"].as_str() {
            // The accept won: bob joined, then alice's hangup ended the call.
            Some("joined") => {
                expect(&mut bob, "memberLeft").await;
                let ended = expect(&mut bob, "callEnded").await;
                assert_eq!(ended["reason"], "hangup");
                // alice heard of the accept before her hangup was decided.
                expect(&mut alice, "accepted").await;
                expect(&mut alice, "inviteeList").await;
                accepted += 1;
            }
            // The cancel won: the invitation is gone when the accept is decided.
            Some("cancelled") => {
                let refused = expect(&mut bob, "error").await;
                assert_eq!(refused["code"], "noSuchInvitation");
                cancelled += 1;
            }
            _ => panic!("bob: unexpected {first}"),
        }
    }
    eprintln!("accept won {accepted} times, cancel won {cancelled} times");
    assert_eq!(accepted + cancelled, ROUNDS);
    // The cluster's counts came back to nothing through all those races.
    gauge_becomes(cluster.nodes[1].addr, "calling_calls", 0).await;
    gauge_becomes(cluster.nodes[1].addr, "calling_invitations_ringing", 0).await;
}

#[tokio::test]
async fn two_invitees_accepting_on_two_nodes_at_once_both_join_one_after_the_other() {
    let cluster = cluster(3, &[]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    let mut carol = cluster.login(2, "carol").await;
    for _ in 0..ROUNDS {
        send(&mut alice, &invite(1, &["bob", "carol"])).await;
        let sent = expect(&mut alice, "inviteSent").await;
        let room = room_of(&sent);
        expect(&mut alice, "inviteeList").await;
        let invite_id = invite_id_of(&expect(&mut bob, "invited").await);
        assert_eq!(
            invite_id_of(&expect(&mut carol, "invited").await),
            invite_id
        );
        let answer = accept(2, &invite_id);
        tokio::join!(send(&mut bob, &answer), send(&mut carol, &answer));
        let bob_joined = expect(&mut bob, "joined").await;
        let carol_joined = expect(&mut carol, "joined").await;
        // Decided one after the other: exactly one of them found the other already a member
        // (two decisions on the same stale call would both see only alice, and lose a member).
        let members = |joined: &Value| joined["members"].as_array().map_or(0, Vec::len);
        let mut seen = [members(&bob_joined), members(&carol_joined)];
        seen.sort();
        assert_eq!(seen, [1, 2], "bob {bob_joined}, carol {carol_joined}");
        for _ in 0..2 {
            expect(&mut alice, "accepted").await;
            expect(&mut alice, "inviteeList").await;
        }
        // The second one to join was told of the first; the first hears of the second.
        let (first, second) = if members(&bob_joined) == 1 {
            (&mut bob, "carol")
        } else {
            (&mut carol, "bob")
        };
        assert_eq!(expect(first, "accepted").await["userId"], second);
        expect(first, "inviteeList").await;

        // All three are members: alice leaving keeps the call for the other two.
        send(&mut alice, &hangup(room)).await;
        for c in [&mut bob, &mut carol] {
            assert_eq!(expect(c, "memberLeft").await["userId"], "alice");
        }
        send(&mut bob, &hangup(room)).await;
        assert_eq!(expect(&mut carol, "memberLeft").await["userId"], "bob");
        assert_eq!(expect(&mut carol, "callEnded").await["userId"], "bob");
    }
    gauge_becomes(cluster.nodes[0].addr, "calling_calls", 0).await;
    gauge_becomes(cluster.nodes[0].addr, "calling_invitations_ringing", 0).await;
}

#[tokio::test]
async fn a_node_whose_redis_is_unreachable_refuses_to_start() {
    // It must not decide outcomes alone while others may be deciding them in Redis.
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_calling-server"))
            .args(["--listen", "127.0.0.1:0"])
            .args(["--redis", "redis+unix:///nonexistent/redis.sock"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status(),
    )
    .await
    .expect("exits within the deadline")
    .expect("runs");
    assert!(!refused.success());
}

#[tokio::test]
async fn signals_crossing_between_two_resumable_sessions_on_two_nodes_arrive_all_in_order() {
    let cluster = cluster(2, &[]).await;
    let (mut alice, _) = login_resumable(&cluster, 0, "alice").await;
    let (mut bob, _) = login_resumable(&cluster, 1, "bob").await;
    let room = connect(&mut alice, &mut bob).await;
    // Both trickle at once (under the per-connection rate limit), as ICE candidates do.
    const EACH: usize = 40;
    let (alice_offers, bob_offers): (Vec<_>, Vec<_>) = (0..EACH)
        .map(|n| {
            (
                text(&offer(room, "bob", &format!("a{n}"))),
                text(&offer(room, "alice", &format!("b{n}"))),
            )
        })
        .unzip();
    tokio::join!(
        send_all(&mut alice, alice_offers),
        send_all(&mut bob, bob_offers)
    );
    for (c, from) in [(&mut alice, "b"), (&mut bob, "a")] {
        let mut last_seq = None;
        for n in 0..EACH {
            let msg = expect(c, "signal").await;
            assert_eq!(msg["signal"]["sdp"], format!("{from}{n}"), "in order");
            let seq = seq_of(&msg);
            if let Some(last) = last_seq {
                assert_eq!(seq, last + 1, "numbered without gaps");
            }
            last_seq = Some(seq);
        }
    }
}

#[tokio::test]
async fn a_node_counts_its_redis_round_trips_decisions_and_conflicts() {
    let cluster = cluster(2, &[]).await;
    let nodes = [cluster.nodes[0].addr, cluster.nodes[1].addr];
    // The heartbeat and the deadline poll are timed as they run.
    let first = metric(nodes[0], "calling_redis_round_trip_seconds").await;
    let deadline = Instant::now() + DEADLINE;
    while metric(nodes[0], "calling_redis_round_trip_seconds").await < first + 2.0 {
        assert!(Instant::now() < deadline, "round trips are not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each request a node decides in Redis is timed there.
    let decided = metric(nodes[0], "calling_redis_decision_seconds").await;
    let (mut alice, _) = login_resumable(&cluster, 0, "alice").await;
    let (mut bob, _) = login_resumable(&cluster, 1, "bob").await;
    let room = connect(&mut alice, &mut bob).await;
    // alice's login and invite at least, on node 0.
    assert!(metric(nodes[0], "calling_redis_decision_seconds").await >= decided + 2.0);

    // Signals crossing between two resumable sessions write both users' records (their
    // numbering), so transactions on the two nodes undo each other and run again.
    const EACH: usize = 40;
    let (alice_offers, bob_offers): (Vec<_>, Vec<_>) = (0..EACH)
        .map(|n| {
            (
                text(&offer(room, "bob", &format!("a{n}"))),
                text(&offer(room, "alice", &format!("b{n}"))),
            )
        })
        .unzip();
    tokio::join!(
        send_all(&mut alice, alice_offers),
        send_all(&mut bob, bob_offers)
    );
    for c in [&mut alice, &mut bob] {
        for _ in 0..EACH {
            expect(c, "signal").await;
        }
    }
    let conflicts = metric(nodes[0], "calling_redis_conflicts_total").await
        + metric(nodes[1], "calling_redis_conflicts_total").await;
    assert!(conflicts > 0.0, "no conflict counted");
    for node in nodes {
        assert_eq!(metric(node, "calling_redis_errors_total").await, 0.0);
    }
}
