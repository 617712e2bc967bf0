//! Several `calling-server` processes sharing one Redis (`--redis`): every flow works with the
//! parties on different nodes, and outcomes raced from two nodes are decided once.
//!
//! Each test starts its own `redis-server` (on a Unix socket in a temporary directory) and its
//! own nodes, the real binary. Messages are read as JSON values, as any client sees them.

mod process;
mod redis_server;

use std::time::Duration;

use std::net::SocketAddr;
use std::time::Instant;

use calling_protocol::{CallType, ClientMessage, RoomId, Signal, PROTOCOL_VERSION};
use process::*;
use redis::AsyncCommands;
use redis_server::RedisServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Redis and `n` nodes using it.
struct Cluster {
    nodes: Vec<ServerProcess>,
    redis: RedisServer,
}

async fn cluster(n: usize, flags: &[&str]) -> Cluster {
    cluster_on(RedisServer::start().await, n, flags).await
}

async fn cluster_on(redis: RedisServer, n: usize, flags: &[&str]) -> Cluster {
    let url = redis.url();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let mut args = vec!["--redis", url.as_str()];
        args.extend_from_slice(flags);
        nodes.push(ServerProcess::start(&args).await);
    }
    Cluster { nodes, redis }
}

impl Cluster {
    /// `user` logged in on node `node`.
    async fn login(&self, node: usize, user: &str) -> Client {
        Client::login(self.nodes[node].addr, user).await
    }
}

fn text(msg: &ClientMessage) -> String {
    serde_json::to_string(msg).expect("client message serializes")
}

async fn send(c: &mut Client, msg: &ClientMessage) {
    c.send_text(&text(msg)).await;
}

/// The next message, which must be of type `kind`.
async fn expect(c: &mut Client, kind: &str) -> Value {
    let msg = c.recv().await;
    assert_eq!(msg["type"], kind, "{}: {msg}", c.name);
    msg
}

fn invite(request_id: u32, users: &[&str]) -> ClientMessage {
    ClientMessage::Invite {
        request_id,
        user_ids: users.iter().map(|u| u.to_string()).collect(),
        call_type: CallType::Video,
        is_group: users.len() > 1,
        group_id: None,
        room_id: None,
    }
}

fn accept(request_id: u32, invite_id: &str) -> ClientMessage {
    ClientMessage::Accept {
        request_id,
        invite_id: invite_id.into(),
    }
}

fn hangup(room_id: RoomId) -> ClientMessage {
    ClientMessage::Hangup { room_id }
}

fn offer(room_id: RoomId, to: &str, sdp: &str) -> ClientMessage {
    ClientMessage::Relay {
        room_id,
        to: to.into(),
        signal: Signal::Offer { sdp: sdp.into() },
    }
}

fn room_of(msg: &Value) -> RoomId {
    msg["roomId"]
        .as_u64()
        .and_then(|r| RoomId::try_from(r).ok())
        .unwrap_or_else(|| panic!("no roomId in {msg}"))
}

fn invite_id_of(msg: &Value) -> String {
    msg["inviteId"]
        .as_str()
        .unwrap_or_else(|| panic!("no inviteId in {msg}"))
        .to_string()
}

/// `caller` invites `callee` (each on its own node) and `callee` is rung; returns the room and
/// the invitation id.
async fn ring(caller: &mut Client, callee: &mut Client) -> (RoomId, String) {
    let callee_name = callee.name.clone();
    send(caller, &invite(1, &[callee_name.as_str()])).await;
    let sent = expect(caller, "inviteSent").await;
    let listed = expect(caller, "inviteeList").await;
    assert_eq!(listed["userIds"], serde_json::json!([callee_name]));
    let invited = expect(callee, "invited").await;
    assert_eq!(invited["sponsor"], caller.name.as_str());
    assert_eq!(invite_id_of(&invited), invite_id_of(&sent));
    assert_eq!(room_of(&invited), room_of(&sent));
    (room_of(&sent), invite_id_of(&sent))
}

/// `caller` calls `callee` and `callee` accepts; returns the room.
async fn connect(caller: &mut Client, callee: &mut Client) -> RoomId {
    let (room, invite_id) = ring(caller, callee).await;
    send(callee, &accept(2, &invite_id)).await;
    let joined = expect(callee, "joined").await;
    assert_eq!(joined["members"], serde_json::json!([caller.name]));
    let accepted = expect(caller, "accepted").await;
    assert_eq!(accepted["userId"], callee.name.as_str());
    expect(caller, "inviteeList").await;
    room
}

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

/// The status code and body of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// The status code of `GET /healthz`.
async fn health(addr: SocketAddr) -> u16 {
    get(addr, "/healthz").await.0
}

/// Waits until the gauge `name` in `/metrics` reads `value`, within the deadline.
async fn gauge_becomes(addr: SocketAddr, name: &str, value: u64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, text) = get(addr, "/metrics").await;
        let now = text.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        });
        if now == Some(value) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {now:?}, not {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `GET /healthz` answers `status`, within `within`.
async fn health_becomes(addr: SocketAddr, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = health(addr).await;
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}: /healthz still {now}, not {status}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // them for the next; apart from those it holds one for reading its stream. Unbounded, it
    // opened a connection per close (about 200 here).
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
    assert!(connected <= 32 + 3, "{connected} connections to Redis");
}

/// `user` logged in on node `node` with resumption; returns the client and its resume token.
async fn login_resumable(cluster: &Cluster, node: usize, user: &str) -> (Client, String) {
    let mut c = Client::connect(cluster.nodes[node].addr).await;
    c.name = user.into();
    let login = ClientMessage::Login {
        sdk_app_id: APP,
        user_id: user.into(),
        user_sig: calling_server::usersig::generate(APP, KEY, user, now_unix(), 3600, None),
        protocol_version: PROTOCOL_VERSION,
        resumable: true,
    };
    send(&mut c, &login).await;
    let ok = expect(&mut c, "loginOk").await;
    let token = ok["resume"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no resume token in {ok}"))
        .to_string();
    (c, token)
}

/// A new connection to node `node` resuming `user`'s session after `last_seq`.
async fn resume(cluster: &Cluster, node: usize, user: &str, token: &str, last_seq: u64) -> Client {
    let mut c = Client::connect(cluster.nodes[node].addr).await;
    c.name = user.into();
    let resume = ClientMessage::Resume {
        sdk_app_id: APP,
        user_id: user.into(),
        token: token.into(),
        last_seq,
        protocol_version: PROTOCOL_VERSION,
    };
    send(&mut c, &resume).await;
    c
}

async fn send_all(c: &mut Client, texts: Vec<String>) {
    for t in texts {
        c.send_text(&t).await;
    }
}

/// A call between alice, resumable, and bob, who accepted it.
struct ResumableCall {
    alice: Client,
    /// alice's resume token.
    token: String,
    bob: Client,
    room: RoomId,
    /// The seq of the last message alice received.
    last_seq: u64,
}

/// alice (resumable, on node `alice_node`) calls bob (on `bob_node`), who accepts.
async fn resumable_call(cluster: &Cluster, alice_node: usize, bob_node: usize) -> ResumableCall {
    let (mut alice, token) = login_resumable(cluster, alice_node, "alice").await;
    let mut bob = cluster.login(bob_node, "bob").await;
    let (room, invite_id) = ring(&mut alice, &mut bob).await;
    send(&mut bob, &accept(2, &invite_id)).await;
    expect(&mut bob, "joined").await;
    expect(&mut alice, "accepted").await;
    let last_seq = seq_of(&expect(&mut alice, "inviteeList").await);
    ResumableCall {
        alice,
        token,
        bob,
        room,
        last_seq,
    }
}

fn seq_of(msg: &Value) -> u64 {
    msg["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {msg}"))
}

/// alice resumes on node `node` and gets, first, the signal with `sdp` that she missed.
async fn resumed_with(
    cluster: &Cluster,
    node: usize,
    token: &str,
    last_seq: u64,
    sdp: &str,
) -> (Client, Value) {
    let mut alice = resume(cluster, node, "alice", token, last_seq).await;
    expect(&mut alice, "resumed").await;
    let missed = expect(&mut alice, "signal").await;
    assert_eq!(missed["signal"]["sdp"], sdp);
    (alice, missed)
}

/// `leaving` hangs up, and the call ends for `staying` as usual.
async fn hang_up(leaving: &mut Client, staying: &mut Client, room: RoomId) {
    send(leaving, &hangup(room)).await;
    expect(staying, "memberLeft").await;
    assert_eq!(
        expect(staying, "callEnded").await["userId"],
        leaving.name.as_str()
    );
}

#[tokio::test]
async fn a_session_whose_socket_dropped_resumes_and_gets_what_the_other_node_sent_meanwhile() {
    let cluster = cluster(2, &[]).await;
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    // The socket drops without a close frame; bob, on the other node, goes on signaling.
    drop(alice);
    send(&mut bob, &offer(room, "alice", "while away")).await;

    let (mut alice, missed) = resumed_with(&cluster, 0, &token, last_seq, "while away").await;
    assert_eq!(seq_of(&missed), last_seq + 1);
    // bob noticed nothing: the next thing he gets is alice's answer, not her leaving.
    send(&mut alice, &offer(room, "bob", "back")).await;
    assert_eq!(expect(&mut bob, "signal").await["signal"]["sdp"], "back");
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
async fn a_session_resumes_on_another_node_with_what_it_missed_and_its_call_goes_on() {
    let cluster = cluster(2, &[]).await;
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    drop(alice);
    send(&mut bob, &offer(room, "alice", "while away")).await;
    // Back through the other node (a load balancer may send it anywhere).
    let (mut alice, missed) = resumed_with(&cluster, 1, &token, last_seq, "while away").await;
    assert_eq!(seq_of(&missed), last_seq + 1);
    send(&mut alice, &offer(room, "bob", "back")).await;
    assert_eq!(expect(&mut bob, "signal").await["signal"]["sdp"], "back");
    // Numbering goes on where it was, and the call ends for both as usual.
    send(&mut bob, &offer(room, "alice", "again")).await;
    assert_eq!(seq_of(&expect(&mut alice, "signal").await), last_seq + 2);
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

#[tokio::test]
async fn a_session_resumed_too_late_for_its_socket_is_away_and_its_grace_ends_it() {
    // Node 0 reads its stream of deliveries through a front that can hold the answers back.
    let redis = RedisServer::start().await;
    let stall = redis.read_stall().await;
    let flags = |url: String| async move {
        ServerProcess::start(&["--redis", url.as_str(), "--resume-grace", "1"]).await
    };
    let nodes = vec![flags(stall.url()).await, flags(redis.url()).await];
    let cluster = Cluster { nodes, redis };
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;

    // alice's socket drops and her SDK resumes on node 0, but the takeover reaches node 0
    // only after the new socket stopped waiting for it: the SDK is told to resume again…
    drop(alice);
    stall.hold();
    let mut alice = resume(&cluster, 0, "alice", &token, last_seq).await;
    let refused = alice.recv_within(Duration::from_secs(15)).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");
    // …and never does (the tab was closed).
    drop(alice);
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
    let redis = RedisServer::start().await;
    let stall = redis.read_stall().await;
    let flags = |url: String| async move {
        ServerProcess::start(&["--redis", url.as_str(), "--resume-grace", "1"]).await
    };
    let nodes = vec![flags(stall.url()).await, flags(redis.url()).await];
    let cluster = Cluster { nodes, redis };
    let ResumableCall {
        alice,
        token,
        mut bob,
        room,
        last_seq,
    } = resumable_call(&cluster, 0, 1).await;
    let mut store = redis::Client::open(cluster.redis.url().as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis-server");
    let record = format!("calling:u:{APP}:alice");

    // As above, a first resume on node 0 gives up waiting for its takeover…
    drop(alice);
    stall.hold();
    let mut first = resume(&cluster, 0, "alice", &token, last_seq).await;
    let refused = first.recv_within(Duration::from_secs(15)).await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    drop(first);
    // …and the SDK resumes again on node 0 at once, which the cluster records (the record
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

/// A counter's value, or a histogram's count, in `/metrics` of the node at `addr` (read with
/// a Prometheus text-format parser).
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, text) = get(addr, "/metrics").await;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses");
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v) => *v,
        // The +Inf bucket: every observation.
        prometheus_parse::Value::Histogram(buckets) => {
            buckets.iter().map(|b| b.count).fold(0.0, f64::max)
        }
        other => panic!("{name}: {other:?}"),
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
