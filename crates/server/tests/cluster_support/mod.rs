//! What the cluster tests share: a Redis and nodes of the real binary using it, clients that
//! read messages as JSON values (as any client sees them), and the steps most tests take (ring,
//! connect, a resumable call, a resume, a hangup).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use calling_protocol::{CallType, ClientMessage, RoomId, Signal, PROTOCOL_VERSION};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::process::*;
use super::redis_server::RedisServer;

/// A Redis and `n` nodes using it.
pub struct Cluster {
    pub nodes: Vec<ServerProcess>,
    pub redis: RedisServer,
}

pub async fn cluster(n: usize, flags: &[&str]) -> Cluster {
    cluster_on(RedisServer::start().await, n, flags).await
}

pub async fn cluster_on(redis: RedisServer, n: usize, flags: &[&str]) -> Cluster {
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
    pub async fn login(&self, node: usize, user: &str) -> Client {
        Client::login(self.nodes[node].addr, user).await
    }
}

pub fn text(msg: &ClientMessage) -> String {
    serde_json::to_string(msg).expect("client message serializes")
}

pub async fn send(c: &mut Client, msg: &ClientMessage) {
    c.send_text(&text(msg)).await;
}

/// The next message, which must be of type `kind`.
pub async fn expect(c: &mut Client, kind: &str) -> Value {
    let msg = c.recv().await;
    assert_eq!(msg["type"], kind, "{}: {msg}", c.name);
    msg
}

pub fn invite(request_id: u32, users: &[&str]) -> ClientMessage {
    ClientMessage::Invite {
        request_id,
        user_ids: users.iter().map(|u| u.to_string()).collect(),
        call_type: CallType::Video,
        is_group: users.len() > 1,
        group_id: None,
        room_id: None,
    }
}

pub fn accept(request_id: u32, invite_id: &str) -> ClientMessage {
    ClientMessage::Accept {
        request_id,
        invite_id: invite_id.into(),
    }
}

pub fn hangup(room_id: RoomId) -> ClientMessage {
    ClientMessage::Hangup { room_id }
}

pub fn offer(room_id: RoomId, to: &str, sdp: &str) -> ClientMessage {
    ClientMessage::Relay {
        room_id,
        to: to.into(),
        signal: Signal::Offer { sdp: sdp.into() },
    }
}

pub fn room_of(msg: &Value) -> RoomId {
    msg["roomId"]
        .as_u64()
        .and_then(|r| RoomId::try_from(r).ok())
        .unwrap_or_else(|| panic!("no roomId in {msg}"))
}

pub fn invite_id_of(msg: &Value) -> String {
    msg["inviteId"]
        .as_str()
        .unwrap_or_else(|| panic!("no inviteId in {msg}"))
        .to_string()
}

/// `caller` invites `callee` (each on its own node) and `callee` is rung; returns the room and
/// the invitation id.
pub async fn ring(caller: &mut Client, callee: &mut Client) -> (RoomId, String) {
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
pub async fn connect(caller: &mut Client, callee: &mut Client) -> RoomId {
    let (room, invite_id) = ring(caller, callee).await;
    send(callee, &accept(2, &invite_id)).await;
    let joined = expect(callee, "joined").await;
    assert_eq!(joined["members"], serde_json::json!([caller.name]));
    let accepted = expect(caller, "accepted").await;
    assert_eq!(accepted["userId"], callee.name.as_str());
    expect(caller, "inviteeList").await;
    room
}

/// The status code and body of `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
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
pub async fn health(addr: SocketAddr) -> u16 {
    get(addr, "/healthz").await.0
}

/// Waits until the gauge `name` in `/metrics` reads `value`, within the deadline.
pub async fn gauge_becomes(addr: SocketAddr, name: &str, value: u64) {
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
pub async fn health_becomes(addr: SocketAddr, status: u16, within: Duration) {
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

/// `user` logged in on node `node` with resumption; returns the client and its resume token.
pub async fn login_resumable(cluster: &Cluster, node: usize, user: &str) -> (Client, String) {
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
pub async fn resume(
    cluster: &Cluster,
    node: usize,
    user: &str,
    token: &str,
    last_seq: u64,
) -> Client {
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

pub async fn send_all(c: &mut Client, texts: Vec<String>) {
    for t in texts {
        c.send_text(&t).await;
    }
}

/// A call between alice, resumable, and bob, who accepted it.
pub struct ResumableCall {
    pub alice: Client,
    /// alice's resume token.
    pub token: String,
    pub bob: Client,
    pub room: RoomId,
    /// The seq of the last message alice received.
    pub last_seq: u64,
}

/// alice (resumable, on node `alice_node`) calls bob (on `bob_node`), who accepts.
pub async fn resumable_call(
    cluster: &Cluster,
    alice_node: usize,
    bob_node: usize,
) -> ResumableCall {
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

pub fn seq_of(msg: &Value) -> u64 {
    msg["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {msg}"))
}

/// alice resumes on node `node` and gets, first, the signal with `sdp` that she missed.
pub async fn resumed_with(
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
pub async fn hang_up(leaving: &mut Client, staying: &mut Client, room: RoomId) {
    send(leaving, &hangup(room)).await;
    expect(staying, "memberLeft").await;
    assert_eq!(
        expect(staying, "callEnded").await["userId"],
        leaving.name.as_str()
    );
}

/// A counter's value, or a histogram's count, in `/metrics` of the node at `addr` (read with
/// a Prometheus text-format parser).
pub async fn metric(addr: SocketAddr, name: &str) -> f64 {
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
