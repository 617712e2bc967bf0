//! A cluster losing parts of itself: a node killed, frozen or drained, Redis down or restarted
//! without its data, a socket dropped, a takeover read late. Resumable sessions resume on any
//! node with what they missed, the others leave their calls, and nothing is left held by no one.
//!
//! Each test starts its own `redis-server` (on a Unix socket in a temporary directory) and its
//! own nodes, the real binary.

mod cluster_support;
mod process;
mod redis_server;

use std::time::{Duration, Instant};

use cluster_support::*;
use process::*;
use redis::AsyncCommands;
use redis_server::{ReadStall, RedisServer};
use serde_json::Value;

#[tokio::test]
async fn the_sessions_of_a_node_killed_mid_call_and_mid_ring_are_lost_with_it() {
    let cluster = cluster(2, &["--node-timeout", "1"]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut dave = cluster.login(0, "dave").await;
    let mut bob = cluster.login(1, "bob").await;
    let mut carol = cluster.login(1, "carol").await;
    let room = connect(&mut alice, &mut bob).await;
    // carol, on the node that stays, rings dave on the node that dies.
    let (_, invite_id) = ring(&mut carol, &mut dave).await;
    let killed = Instant::now();
    cluster.nodes[0].signal("KILL");
    // Silent for the node timeout, the node is dead: alice's session is lost with it, so she leaves the
    // call; dave's invitation rings on (he may log in again elsewhere).
    let left = bob.recv_within(Duration::from_secs(15)).await;
    assert_eq!(left["type"], "memberLeft", "{left}");
    assert_eq!(left["userId"], "alice");
    let ended = expect(&mut bob, "callEnded").await;
    assert_eq!(room_of(&ended), room);
    eprintln!("node killed → callEnded after {:?}", killed.elapsed());
    let mut dave = cluster.login(1, "dave").await;
    assert_eq!(invite_id_of(&expect(&mut dave, "invited").await), invite_id);
    // alice, reaped, is free again: bob can call her where she logs in next.
    drop(alice);
    let mut alice = cluster.login(1, "alice").await;
    ring(&mut bob, &mut alice).await;
}

#[tokio::test]
async fn while_redis_is_down_nodes_say_so_and_decide_nothing_then_carry_on_when_it_is_back() {
    let mut cluster = cluster_on(
        RedisServer::start_durable().await,
        2,
        &["--node-timeout", "1"],
    )
    .await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    assert_eq!(health(cluster.nodes[0].addr).await, 200);

    cluster.redis.kill().await;
    // A node notices within its deadline poll (50 ms); allow for loaded machines.
    for node in &cluster.nodes {
        health_becomes(node.addr, 503, DEADLINE).await;
    }
    send(&mut alice, &invite(9, &["bob"])).await;
    let refused = expect(&mut alice, "error").await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["requestId"], 9);
    // Each node counts the commands that did not reach Redis.
    for node in &cluster.nodes {
        let deadline = Instant::now() + DEADLINE;
        while metric(node.addr, "calling_redis_errors_total").await == 0.0 {
            assert!(Instant::now() < deadline, "no Redis error counted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The outage outlasts the time after which a silent node counts as dead (1 s here): no
    // node heartbeat reached Redis meanwhile, yet none of them died.
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.redis.restart().await;
    for node in &cluster.nodes {
        health_becomes(node.addr, 200, DEADLINE).await;
    }
    // Two heartbeats: when a node wrongly taking the others' silence for death would reap them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Nothing was lost or decided meanwhile: no session was reaped, both are still logged in,
    // and a call connects.
    for node in &cluster.nodes {
        assert_eq!(
            metric(node.addr, "calling_redis_sessions_reaped_total").await,
            0.0
        );
    }
    connect(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn a_redis_that_lost_its_data_has_every_node_close_its_sockets_and_number_new_nodes_anew() {
    let mut cluster = cluster(2, &[]).await;
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    connect(&mut alice, &mut bob).await;

    // Redis restarts without persistence: every session and call it held is gone. The nodes
    // close their sockets rather than act for sessions nobody knows.
    cluster.redis.kill().await;
    cluster.redis.restart().await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            client.closed_within(DEADLINE).await,
            Some(Closed::Code(1012)),
            "{}",
            client.name
        );
    }
    // A node joining now does not take the number of one still running.
    let url = cluster.redis.url();
    cluster
        .nodes
        .push(ServerProcess::start(&["--redis", url.as_str()]).await);
    let numbers: std::collections::BTreeSet<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.node.expect("a node logs its number"))
        .collect();
    assert_eq!(numbers.len(), 3, "node numbers {numbers:?}");
    // Logged in again, on any node, users call each other as before.
    let mut alice = cluster.login(0, "alice").await;
    let mut bob = cluster.login(2, "bob").await;
    let room = connect(&mut alice, &mut bob).await;
    hang_up(&mut alice, &mut bob, room).await;
}

#[tokio::test]
async fn a_burst_of_closes_waits_its_turn_for_redis_instead_of_opening_a_connection_each() {
    let cluster = cluster(1, &["--max-connections-per-address", "0"]).await;
    const SOCKETS: usize = 200;
    let mut clients = Vec::new();
    for n in 0..SOCKETS {
        clients.push(cluster.login(0, &format!("user{n}")).await);
    }
    // Every socket closes at once: as many sessions to take out of Redis, at the same moment.
    drop(clients);
    gauge_becomes(
        cluster.nodes[0].addr,
        &format!("calling_sessions{{app=\"{APP}\"}}"),
        0,
    )
    .await;
    // The node decides at most 32 at a time, each on a connection of its own, and keeps
    // them for the next; apart from those it holds one for reading its stream, and its
    // liveness and expiry tasks may each hold one at the same moment. Unbounded, it opened a
    // connection per close (about 200 here).
    let mut redis = redis::Client::open(cluster.redis.url().as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis-server");
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut redis)
        .await
        .expect("INFO clients");
    let connected: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connected_clients in {info}"));
    // This test's own connection counts too.
    assert!(connected <= 32 + 3 + 1, "{connected} connections to Redis");
}

#[tokio::test]
async fn a_session_not_resumed_within_its_grace_leaves_its_call_whichever_node_notices() {
    let cluster = cluster(2, &["--resume-grace", "1"]).await;
    let (mut alice, token) = login_resumable(&cluster, 0, "alice").await;
    let mut bob = cluster.login(1, "bob").await;
    let room = connect(&mut alice, &mut bob).await;
    let last_seq = 0;
    drop(alice);
    assert_eq!(expect(&mut bob, "memberLeft").await["userId"], "alice");
    let ended = expect(&mut bob, "callEnded").await;
    assert_eq!(room_of(&ended), room);
    // The session is over: resuming it is refused, and logging in again works.
    let mut late = resume(&cluster, 0, "alice", &token, last_seq).await;
    assert_eq!(expect(&mut late, "error").await["code"], "resumeRefused");
    cluster.login(1, "alice").await;
}

#[tokio::test]
async fn a_session_whose_socket_dropped_resumes_on_either_node_with_what_it_missed() {
    let cluster = cluster(2, &[]).await;
    let ResumableCall {
        mut alice,
        token,
        mut bob,
        room,
        mut last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    // The socket drops without a close frame, and bob, on the other node, goes on signaling;
    // alice comes back through the same node, then through the other (a load balancer may
    // send her anywhere).
    for node in [0, 1] {
        drop(alice);
        send(&mut bob, &offer(room, "alice", "while away")).await;
        let missed;
        (alice, missed) = resumed_with(&cluster, node, &token, last_seq, "while away").await;
        assert_eq!(seq_of(&missed), last_seq + 1);
        // bob noticed nothing: the next thing he gets is alice's answer, not her leaving.
        send(&mut alice, &offer(room, "bob", "back")).await;
        assert_eq!(expect(&mut bob, "signal").await["signal"]["sdp"], "back");
        last_seq += 1;
    }
    // Numbering goes on where it was, and the call ends for both as usual.
    send(&mut bob, &offer(room, "alice", "again")).await;
    assert_eq!(seq_of(&expect(&mut alice, "signal").await), last_seq + 1);
    send(&mut bob, &hangup(room)).await;
    expect(&mut alice, "memberLeft").await;
    assert_eq!(expect(&mut alice, "callEnded").await["userId"], "bob");
}

#[tokio::test]
async fn a_session_whose_node_was_killed_mid_call_resumes_on_another_and_the_call_goes_on() {
    let cluster = cluster(2, &["--node-timeout", "1"]).await;
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    cluster.nodes[0].signal("KILL");
    drop(alice);
    // Past the node timeout its sessions are reaped: alice's is kept for a resume, and what
    // bob sends her meanwhile is kept too.
    gauge_becomes(
        cluster.nodes[1].addr,
        "calling_redis_sessions_reaped_total",
        1,
    )
    .await;
    send(&mut bob, &offer(room, "alice", "while her node was gone")).await;
    let (mut alice, _) =
        resumed_with(&cluster, 1, &token, last_seq, "while her node was gone").await;
    // bob noticed nothing: the next thing he gets is alice's answer, then her hangup.
    send(&mut alice, &offer(room, "bob", "back")).await;
    assert_eq!(expect(&mut bob, "signal").await["signal"]["sdp"], "back");
    hang_up(&mut alice, &mut bob, room).await;
}

#[tokio::test]
async fn a_node_frozen_past_the_node_timeout_closes_the_sockets_of_its_reaped_sessions_which_resume(
) {
    let cluster = cluster(2, &["--node-timeout", "1"]).await;
    let ResumableCall {
        mut alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    // Node 0 freezes (as a node starved of CPU does) past the node timeout: node 1 takes it
    // for dead and reaps alice's session, which waits for a resume; what bob sends her goes to
    // her journal.
    cluster.nodes[0].signal("STOP");
    gauge_becomes(
        cluster.nodes[1].addr,
        "calling_redis_sessions_reaped_total",
        1,
    )
    .await;
    send(&mut bob, &offer(room, "alice", "while her node was frozen")).await;
    // Back, node 0 learns her session was reaped and closes her socket, which nothing would
    // reach any more, rather than leave her SDK waiting on it.
    cluster.nodes[0].signal("CONT");
    assert_eq!(
        alice.closed_within(DEADLINE).await,
        Some(Closed::Code(1012))
    );
    gauge_becomes(
        cluster.nodes[0].addr,
        "calling_redis_sessions_lost_total",
        1,
    )
    .await;
    // Her SDK resumes, here on the same node, and gets what she missed; bob noticed nothing.
    let (mut alice, _) =
        resumed_with(&cluster, 0, &token, last_seq, "while her node was frozen").await;
    send(&mut alice, &offer(room, "bob", "back")).await;
    assert_eq!(expect(&mut bob, "signal").await["signal"]["sdp"], "back");
    hang_up(&mut alice, &mut bob, room).await;
}

/// Two nodes with a resume grace of 1 s, node 0 reading its stream of deliveries through a
/// front that can hold the answers back, and alice (resumable, on node 0) in a call with bob
/// (on node 1).
async fn a_call_on_a_node_whose_reads_can_stall() -> (Cluster, ReadStall, ResumableCall) {
    let redis = RedisServer::start().await;
    let stall = redis.read_stall().await;
    let start = |url: String| async move {
        ServerProcess::start(&["--redis", url.as_str(), "--resume-grace", "1"]).await
    };
    let nodes = vec![start(stall.url()).await, start(redis.url()).await];
    let cluster = Cluster { nodes, redis };
    let call = resumable_call(&cluster, 0, 1).await;
    (cluster, stall, call)
}

/// alice's socket drops and her SDK resumes on node 0 while its reads are held: the takeover
/// reaches node 0 only after the new socket stopped waiting for it, and the SDK is told to
/// resume again. Its socket closes; the reads stay held.
async fn a_resume_that_gave_up(
    cluster: &Cluster,
    stall: &ReadStall,
    alice: Client,
    token: &str,
    last_seq: u64,
) {
    drop(alice);
    stall.hold();
    let mut alice = resume(cluster, 0, "alice", token, last_seq).await;
    let refused = alice.recv_within(Duration::from_secs(15)).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");
}

#[tokio::test]
async fn a_session_resumed_too_late_for_its_socket_is_away_and_its_grace_ends_it() {
    let (cluster, stall, call) = a_call_on_a_node_whose_reads_can_stall().await;
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = call;
    // The SDK never resumes again (the tab was closed).
    a_resume_that_gave_up(&cluster, &stall, alice, &token, last_seq).await;
    stall.release();
    // Held by no socket, her session is away: nobody resumes it within its grace, so it
    // ends, and bob's call with it.
    let left = bob.recv_within(Duration::from_secs(15)).await;
    assert_eq!(left["type"], "memberLeft", "{left}");
    assert_eq!(left["userId"], "alice");
    let ended = expect(&mut bob, "callEnded").await;
    assert_eq!(room_of(&ended), room);
}

#[tokio::test]
async fn a_late_takeover_does_not_suspend_the_session_a_second_resume_on_the_node_holds() {
    let (cluster, stall, call) = a_call_on_a_node_whose_reads_can_stall().await;
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = call;
    let mut store = redis::Client::open(cluster.redis.url().as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis-server");
    let record = format!("calling:u:{APP}:alice");

    a_resume_that_gave_up(&cluster, &stall, alice, &token, last_seq).await;
    // Its SDK resumes again on node 0 at once, which the cluster records (the record
    // names the second socket) before node 0 reads of either takeover.
    let held_by =
        |json: String| serde_json::from_str::<Value>(&json).expect("record")["link"].clone();
    let first_link = held_by(store.get(&record).await.expect("GET"));
    let mut alice = resume(&cluster, 0, "alice", &token, last_seq).await;
    let deadline = Instant::now() + DEADLINE;
    while held_by(store.get(&record).await.expect("GET")) == first_link {
        assert!(
            Instant::now() < deadline,
            "the second resume was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stall.release();
    expect(&mut alice, "resumed").await;
    // The first takeover, read now, finds its socket gone, but the session is the second
    // socket's: it is not suspended. Past the grace a suspend would have run out, the call
    // goes on.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    send(&mut bob, &offer(room, "alice", "still here")).await;
    assert_eq!(
        expect(&mut alice, "signal").await["signal"]["sdp"],
        "still here"
    );
    hang_up(&mut alice, &mut bob, room).await;
}

#[tokio::test]
async fn a_resume_of_a_session_a_login_on_another_node_replaced_is_told_kicked() {
    let cluster = cluster(2, &[]).await;
    let (first, token) = login_resumable(&cluster, 0, "alice").await;
    drop(first);
    let _second = cluster.login(1, "alice").await;
    let mut late = resume(&cluster, 1, "alice", &token, 0).await;
    expect(&mut late, "kicked").await;
}

#[tokio::test]
async fn a_close_the_old_node_sees_late_leaves_a_session_resumed_elsewhere_alone() {
    let cluster = cluster(3, &["--resume-grace", "1"]).await;
    let ResumableCall {
        mut alice,
        token,
        mut bob,
        room,
        mut last_seq,
    } = resumable_call(&cluster, 0, 2).await;

    // alice moves between nodes 0 and 1 (as drains ask) while the node she leaves is frozen:
    // it learns that her old socket closed only after her session was resumed on the other.
    // Which of that close and the news of the resume the node then handles first varies, so
    // a few rounds.
    for (from, to) in [(0, 1), (1, 0), (0, 1), (1, 0)] {
        cluster.nodes[from].signal("STOP");
        drop(alice);
        alice = resume(&cluster, to, "alice", &token, last_seq).await;
        expect(&mut alice, "resumed").await;
        cluster.nodes[from].signal("CONT");
        gauge_becomes(
            cluster.nodes[from].addr,
            &format!("calling_sessions{{app=\"{APP}\"}}"),
            0,
        )
        .await;
        // Wait out the grace a late close taken for hers would have started (1 s, polled
        // every 50 ms): her session and call are still there.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        send(&mut bob, &offer(room, "alice", "after the move")).await;
        let signal = expect(&mut alice, "signal").await;
        assert_eq!(signal["signal"]["sdp"], "after the move");
        last_seq = seq_of(&signal);
    }
    hang_up(&mut alice, &mut bob, room).await;
}

#[tokio::test]
async fn a_drained_node_tells_its_sdks_the_session_is_shared_and_one_that_stayed_resumes_elsewhere()
{
    let mut cluster = cluster(2, &["--drain-timeout", "1"]).await;
    let ResumableCall {
        mut alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    cluster.nodes[0].signal("TERM");
    let go_away = expect(&mut alice, "goAway").await;
    assert_eq!(go_away["sessionShared"], true, "{go_away}");
    // alice does not move (an SDK without the cluster's word would keep its call here): the
    // drain timeout closes her socket, and node 0 exits.
    assert_eq!(
        alice.closed_within(DEADLINE).await,
        Some(Closed::Code(1001))
    );
    let exit = cluster.nodes[0].exit_within(DEADLINE).await;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    // Her session was kept for her: she resumes on node 1, call and all; bob noticed nothing.
    let mut alice = resume(&cluster, 1, "alice", &token, last_seq).await;
    expect(&mut alice, "resumed").await;
    send(&mut bob, &offer(room, "alice", "after the drain")).await;
    assert_eq!(
        expect(&mut alice, "signal").await["signal"]["sdp"],
        "after the drain"
    );
    hang_up(&mut alice, &mut bob, room).await;
}
