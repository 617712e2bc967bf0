//! The journal a cluster keeps in Redis for each resumable session is bounded like a single
//! process's: the last 512 messages and at most `--outbox-bytes` of them (the newest always
//! kept). A resume whose gap goes back past what is kept is refused, never replayed with a
//! hole; one within it replays exactly what was missed.
//!
//! Each test starts its own `redis-server` (on a Unix socket in a temporary directory) and two
//! nodes, the real binary, and reads the journal straight from Redis to check its size.

mod cluster_support;
mod process;
mod redis_server;

use std::time::{Duration, Instant};

use calling_protocol::{CallType, ClientMessage, RoomId, Signal, PROTOCOL_VERSION};
use cluster_support::{expect, send, seq_of};
use process::*;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_server::RedisServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The nodes' `--outbox-bytes`: room for a few of the offers below only.
const CAP: usize = 4_000;

/// An SDP large enough that a handful of offers outweigh [`CAP`].
fn sdp(n: usize) -> String {
    format!("{n:04}:{}", "x".repeat(600))
}

/// A Redis, two nodes using it with [`CAP`], and a connection to the Redis for reading it.
struct Cluster {
    nodes: Vec<ServerProcess>,
    redis: MultiplexedConnection,
    server: RedisServer,
}

async fn cluster() -> Cluster {
    cluster_on(RedisServer::start().await).await
}

async fn cluster_on(server: RedisServer) -> Cluster {
    let url = server.url();
    let cap = CAP.to_string();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(ServerProcess::start(&["--redis", &url, "--outbox-bytes", &cap]).await);
    }
    let redis = redis::Client::open(url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis-server");
    Cluster {
        nodes,
        redis,
        server,
    }
}

fn offer(room_id: RoomId, to: &str, sdp: String) -> ClientMessage {
    ClientMessage::Relay {
        room_id,
        to: to.into(),
        signal: Signal::Offer { sdp },
    }
}

/// A connection to node `node` whose first frame is `first` (a login or a resume).
async fn open(cluster: &Cluster, node: usize, user: &str, first: ClientMessage) -> Client {
    let mut c = Client::connect(cluster.nodes[node].addr).await;
    c.name = user.into();
    send(&mut c, &first).await;
    c
}

/// A call between alice (resumable, on node 0) and bob (on node 1), who accepted it: alice,
/// her resume token, bob, the room, and the seq of the last message alice received.
async fn resumable_call(cluster: &Cluster) -> (Client, String, Client, RoomId, u64) {
    let login = ClientMessage::Login {
        sdk_app_id: APP,
        user_id: "alice".into(),
        user_sig: calling_server::usersig::generate(APP, KEY, "alice", now_unix(), 3600, None),
        protocol_version: PROTOCOL_VERSION,
        resumable: true,
    };
    let mut alice = open(cluster, 0, "alice", login).await;
    let ok = expect(&mut alice, "loginOk").await;
    let token = ok["resume"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no resume token in {ok}"))
        .to_string();
    let mut bob = Client::login(cluster.nodes[1].addr, "bob").await;
    let invite = ClientMessage::Invite {
        request_id: 1,
        user_ids: vec!["bob".into()],
        call_type: CallType::Video,
        is_group: false,
        group_id: None,
        room_id: None,
    };
    send(&mut alice, &invite).await;
    expect(&mut alice, "inviteSent").await;
    expect(&mut alice, "inviteeList").await;
    let invited = expect(&mut bob, "invited").await;
    let room = invited["roomId"]
        .as_u64()
        .and_then(|r| RoomId::try_from(r).ok())
        .unwrap_or_else(|| panic!("no roomId in {invited}"));
    let accept = ClientMessage::Accept {
        request_id: 2,
        invite_id: invited["inviteId"].as_str().unwrap_or_default().into(),
    };
    send(&mut bob, &accept).await;
    expect(&mut bob, "joined").await;
    expect(&mut alice, "accepted").await;
    let last_seq = seq_of(&expect(&mut alice, "inviteeList").await);
    (alice, token, bob, room, last_seq)
}

fn resume_msg(token: &str, last_seq: u64) -> ClientMessage {
    ClientMessage::Resume {
        sdk_app_id: APP,
        user_id: "alice".into(),
        token: token.into(),
        last_seq,
        protocol_version: PROTOCOL_VERSION,
    }
}

/// Waits until every node's `GET /healthz` answers `status`, within the deadline.
async fn health_becomes(cluster: &Cluster, status: u16) {
    for node in &cluster.nodes {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let mut tcp = tokio::net::TcpStream::connect(node.addr)
                .await
                .expect("connect");
            let request = "GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n";
            tcp.write_all(request.as_bytes()).await.expect("request");
            let mut response = String::new();
            tcp.read_to_string(&mut response).await.expect("response");
            let now = response.split_whitespace().nth(1).unwrap_or_default();
            if now == status.to_string() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "/healthz still {now}, not {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// alice's record in Redis.
async fn alice_record(redis: &mut MultiplexedConnection) -> Value {
    let key = format!("calling:u:{APP}:alice");
    let json: Option<String> = redis.get(&key).await.expect("GET alice's record");
    let json = json.unwrap_or_else(|| panic!("no {key}"));
    serde_json::from_str(&json).expect("alice's record is JSON")
}

/// Waits until alice's session has been numbered up to `seq` (everything bob sent her has
/// been decided and journaled), within the deadline; returns her session id.
async fn numbered_up_to(redis: &mut MultiplexedConnection, seq: u64) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let record = alice_record(redis).await;
        if record["seq"].as_u64() == Some(seq) {
            return record["session"]
                .as_u64()
                .unwrap_or_else(|| panic!("no session in {record}"));
        }
        assert!(
            Instant::now() < deadline,
            "alice's seq is {}, not {seq}",
            record["seq"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The journal of `session` as kept in Redis: its texts, oldest first, and the byte counter
/// kept next to it (`None`: absent).
async fn journal(redis: &mut MultiplexedConnection, session: u64) -> (Vec<String>, Option<u64>) {
    let texts: Vec<String> = redis
        .lrange(format!("calling:j:{session}"), 0, -1)
        .await
        .expect("LRANGE the journal");
    let bytes: Option<u64> = redis
        .get(format!("calling:jb:{session}"))
        .await
        .expect("GET the journal's bytes");
    (texts, bytes)
}

/// Checks that `texts` weigh no more than [`CAP`] (unless one text alone does), that the
/// counter says what they weigh, and that they are the newest messages up to `newest`,
/// numbered without a gap. Returns the seq of the oldest kept.
fn check_bounded(texts: &[String], bytes: Option<u64>, newest: u64) -> u64 {
    let total: usize = texts.iter().map(String::len).sum();
    assert!(
        total <= CAP || texts.len() == 1,
        "{} texts weigh {total} bytes, over the cap of {CAP}",
        texts.len()
    );
    assert_eq!(bytes, Some(total as u64), "the byte counter");
    let seqs: Vec<u64> = texts
        .iter()
        .map(|t| seq_of(&serde_json::from_str(t).expect("a journaled text is JSON")))
        .collect();
    let oldest = newest + 1 - texts.len() as u64;
    assert_eq!(
        seqs,
        (oldest..=newest).collect::<Vec<_>>(),
        "the newest, in order"
    );
    oldest
}

#[tokio::test]
async fn a_resume_within_the_byte_cap_replays_what_is_kept_and_one_older_is_refused_as_a_leave() {
    let mut cluster = cluster().await;
    let (alice, token, mut bob, room, last_seq) = resumable_call(&cluster).await;

    // The socket drops; bob, on the other node, sends more than the cap keeps.
    drop(alice);
    const SENT: u64 = 12;
    for n in 0..SENT {
        send(&mut bob, &offer(room, "alice", sdp(n as usize))).await;
    }
    let newest = last_seq + SENT;
    let session = numbered_up_to(&mut cluster.redis, newest).await;
    let (texts, bytes) = journal(&mut cluster.redis, session).await;
    let oldest = check_bounded(&texts, bytes, newest);
    assert!(oldest > last_seq + 1, "the byte cap forgot the oldest");
    // The offers weigh about the same: one more would not have fitted.
    let total: usize = texts.iter().map(String::len).sum();
    let lightest = texts.iter().map(String::len).min().unwrap_or(0);
    assert!(total + lightest > CAP, "as many kept as fit: {total} bytes");

    // Resuming from just before the oldest kept replays all that is kept, once, in order.
    let mut alice = open(&cluster, 1, "alice", resume_msg(&token, oldest - 1)).await;
    expect(&mut alice, "resumed").await;
    for seq in oldest..=newest {
        let missed = expect(&mut alice, "signal").await;
        assert_eq!(seq_of(&missed), seq);
        let n = (seq - last_seq - 1) as usize;
        assert_eq!(missed["signal"]["sdp"], sdp(n));
    }

    // Away again, with as much sent: a resume naming what it last got is now too old.
    drop(alice);
    for n in 0..SENT {
        send(&mut bob, &offer(room, "alice", sdp(n as usize))).await;
    }
    numbered_up_to(&mut cluster.redis, newest + SENT).await;
    let mut late = open(&cluster, 0, "alice", resume_msg(&token, newest)).await;
    assert_eq!(expect(&mut late, "error").await["code"], "resumeRefused");
    // The session could not go on consistently: it is gone, bob hears alice leave, and its
    // journal goes with it.
    assert_eq!(expect(&mut bob, "memberLeft").await["userId"], "alice");
    let (texts, bytes) = journal(&mut cluster.redis, session).await;
    assert_eq!((texts.len(), bytes), (0, None), "the journal is deleted");
}

#[tokio::test]
async fn the_journal_in_redis_stays_under_the_byte_cap_and_keeps_a_larger_message_alone() {
    let mut cluster = cluster().await;
    let (alice, _token, mut bob, room, last_seq) = resumable_call(&cluster).await;
    drop(alice);

    // Offers of growing sizes: the journal holds the newest that fit after each.
    let mut newest = last_seq;
    for n in 0..10 {
        let sdp = "y".repeat(100 + 150 * n);
        send(&mut bob, &offer(room, "alice", sdp)).await;
        newest += 1;
        let session = numbered_up_to(&mut cluster.redis, newest).await;
        let (texts, bytes) = journal(&mut cluster.redis, session).await;
        check_bounded(&texts, bytes, newest);
    }

    // One message larger than the cap is kept, alone.
    send(&mut bob, &offer(room, "alice", "z".repeat(CAP + 500))).await;
    newest += 1;
    let session = numbered_up_to(&mut cluster.redis, newest).await;
    let (texts, bytes) = journal(&mut cluster.redis, session).await;
    check_bounded(&texts, bytes, newest);
    assert_eq!(texts.len(), 1);

    // A journal without its counter (written before the counter existed) is weighed once.
    let _: () = cluster
        .redis
        .del(format!("calling:jb:{session}"))
        .await
        .expect("DEL the counter");
    for n in 0..3 {
        send(&mut bob, &offer(room, "alice", sdp(n))).await;
    }
    newest += 3;
    numbered_up_to(&mut cluster.redis, newest).await;
    let (texts, bytes) = journal(&mut cluster.redis, session).await;
    check_bounded(&texts, bytes, newest);
    assert_eq!(
        texts.len(),
        3,
        "the large message went once the counter was summed"
    );
}

#[tokio::test]
async fn a_journal_written_on_both_sides_of_a_redis_restart_replays_whole() {
    // Redis keeps everything across the restart (as `appendonly yes` does), but not the scripts
    // it was given: a node must not count on the journal's script being loaded already.
    let mut cluster = cluster_on(RedisServer::start_durable().await).await;
    let (alice, token, mut bob, room, last_seq) = resumable_call(&cluster).await;
    drop(alice);
    send(&mut bob, &offer(room, "alice", sdp(0))).await;
    numbered_up_to(&mut cluster.redis, last_seq + 1).await;

    cluster.server.kill().await;
    health_becomes(&cluster, 503).await;
    cluster.server.restart().await;
    health_becomes(&cluster, 200).await;
    cluster.redis = redis::Client::open(cluster.server.url().as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the restarted redis-server");
    send(&mut bob, &offer(room, "alice", sdp(1))).await;
    let session = numbered_up_to(&mut cluster.redis, last_seq + 2).await;
    let (texts, bytes) = journal(&mut cluster.redis, session).await;
    check_bounded(&texts, bytes, last_seq + 2);

    let mut alice = open(&cluster, 1, "alice", resume_msg(&token, last_seq)).await;
    expect(&mut alice, "resumed").await;
    for n in 0..2 {
        let missed = expect(&mut alice, "signal").await;
        assert_eq!(seq_of(&missed), last_seq + 1 + n);
        assert_eq!(missed["signal"]["sdp"], sdp(n as usize));
    }
}
