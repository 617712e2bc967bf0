//! The graceful drain, on the real binary (signals are process-wide): from SIGTERM on,
//! `/healthz` and new WebSockets answer 503, logged-in sockets are told `goAway`, a call in
//! progress keeps working, and the process exits as soon as its last socket has gone, at the
//! drain timeout, or at a second signal.

mod process;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use calling_protocol::{CallType, ClientMessage, Signal, PROTOCOL_VERSION};
use calling_server::usersig;
use process::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;

/// A plain HTTP GET on a connection of its own: (status, headers and body as text).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut reply = String::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_string(&mut reply))
        .await
        .expect("reply within the deadline")
        .expect("read");
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"));
    (status, reply)
}

/// Polls `path` until it answers `status`, within [`DEADLINE`] (the signal is handled
/// asynchronously); returns that answer.
async fn answers(addr: SocketAddr, path: &str, status: u16) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (got, reply) = get(addr, path).await;
        if got == status {
            return reply;
        }
        assert!(Instant::now() < deadline, "{path} still answers {reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(msg: &ClientMessage) -> String {
    serde_json::to_string(msg).unwrap()
}

/// Logs in `user` asking for a resumable session (what the SDK does).
async fn login_resumable(addr: SocketAddr, user: &str) -> Client {
    let mut c = Client::connect(addr).await;
    c.name = user.into();
    c.send_text(&text(&ClientMessage::Login {
        sdk_app_id: APP,
        user_id: user.into(),
        user_sig: usersig::generate(APP, KEY, user, now_unix(), 3600, None),
        protocol_version: PROTOCOL_VERSION,
        resumable: true,
    }))
    .await;
    let ok = c.recv().await;
    assert_eq!(ok["type"], "loginOk", "{ok}");
    assert!(ok["resume"]["token"].is_string(), "{ok}");
    c
}

/// The next message of type `kind`, skipping the membership news a call setup or end brings.
async fn expect(c: &mut Client, kind: &str) -> Value {
    loop {
        let msg = c.recv().await;
        if msg["type"] == kind {
            return msg;
        }
        assert!(
            msg["type"] == "inviteeList" || msg["type"] == "memberLeft",
            "{}: {msg} while waiting for {kind}",
            c.name
        );
    }
}

/// `goAway` with the spread the drain timeout implies, and (like `iceServers`) no `seq`.
async fn told_to_move(c: &mut Client, within_ms: u64) {
    let msg = expect(c, "goAway").await;
    assert_eq!(msg["withinMs"], within_ms, "{msg}");
    assert!(msg.get("seq").is_none(), "goAway is never numbered: {msg}");
}

/// Alice calls Bob, Bob accepts: (room, alice, bob) with every reply read.
async fn call(addr: SocketAddr) -> (u64, Client, Client) {
    let mut alice = login_resumable(addr, "alice").await;
    let mut bob = login_resumable(addr, "bob").await;
    alice
        .send_text(&text(&ClientMessage::Invite {
            request_id: 1,
            user_ids: vec!["bob".into()],
            call_type: CallType::Audio,
            is_group: false,
            group_id: None,
            room_id: None,
        }))
        .await;
    let sent = expect(&mut alice, "inviteSent").await;
    let room = sent["roomId"].as_u64().unwrap();
    let invited = expect(&mut bob, "invited").await;
    bob.send_text(&text(&ClientMessage::Accept {
        request_id: 2,
        invite_id: invited["inviteId"].as_str().unwrap().into(),
    }))
    .await;
    expect(&mut bob, "joined").await;
    expect(&mut alice, "accepted").await;
    (room, alice, bob)
}

#[tokio::test]
async fn from_sigterm_on_healthz_and_new_websockets_answer_503() {
    let server = ServerProcess::start(&["--drain-timeout", "20"]).await;
    let addr = server.addr;
    let (status, reply) = get(addr, "/healthz").await;
    assert_eq!(status, 200, "{reply}");
    assert!(get(addr, "/metrics")
        .await
        .1
        .contains("\ncalling_draining 0"));
    // A logged-in client keeps the server draining rather than gone.
    let mut alice = Client::login(addr, "alice").await;

    server.signal("TERM");
    let reply = answers(addr, "/healthz", 503).await;
    assert!(reply.ends_with("draining\n"), "{reply}");
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=20).contains(&retry), "Retry-After {retry}");
        }
        other => panic!("a new WebSocket while draining: {other:?}"),
    }
    assert!(get(addr, "/metrics")
        .await
        .1
        .contains("\ncalling_draining 1"));
    // The socket already here still works.
    told_to_move(&mut alice, 5000).await;
    assert!(alice.ping_rtt().await < DEADLINE);
}

#[tokio::test]
async fn logged_in_sockets_are_told_to_move_and_the_others_closed_1001() {
    let server = ServerProcess::start(&["--drain-timeout", "3"]).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = login_resumable(server.addr, "bob").await;
    let mut stranger = Client::connect(server.addr).await;

    server.signal("TERM");
    // Half the timeout: 1.5 s.
    told_to_move(&mut alice, 1500).await;
    told_to_move(&mut bob, 1500).await;
    assert_eq!(
        stranger.closed_within(DEADLINE).await,
        Some(Closed::Code(1001))
    );
}

#[tokio::test]
async fn a_call_keeps_working_while_the_server_drains() {
    let mut server = ServerProcess::start(&["--drain-timeout", "30"]).await;
    let (room, mut alice, mut bob) = call(server.addr).await;

    server.signal("TERM");
    told_to_move(&mut alice, 5000).await;
    told_to_move(&mut bob, 5000).await;
    let room_id = u32::try_from(room).unwrap();
    alice
        .send_text(&text(&ClientMessage::Relay {
            room_id,
            to: "bob".into(),
            signal: Signal::Offer { sdp: "v=0".into() },
        }))
        .await;
    let relayed = expect(&mut bob, "signal").await;
    assert_eq!(relayed["from"], "alice", "{relayed}");
    assert_eq!(relayed["signal"]["sdp"], "v=0", "{relayed}");
    bob.send_text(&text(&ClientMessage::Hangup { room_id }))
        .await;
    let ended = expect(&mut alice, "callEnded").await;
    assert_eq!(ended["userId"], "bob", "{ended}");
    assert!(!server.has_exited(), "two sockets are still here");

    alice.close().await;
    bob.close().await;
    let status = server.exit_within(DEADLINE).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit once the sockets have gone: {status:?}"
    );
}

#[tokio::test]
async fn the_process_exits_as_soon_as_the_last_socket_has_gone() {
    let mut server = ServerProcess::start(&["--drain-timeout", "60"]).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = login_resumable(server.addr, "bob").await;
    // Plain HTTP connections (a health checker's) do not hold the drain up.
    let mut checker = TcpStream::connect(server.addr).await.expect("connect");
    checker
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();

    server.signal("TERM");
    told_to_move(&mut alice, 5000).await;
    told_to_move(&mut bob, 5000).await;
    alice.close().await;
    assert!(!server.has_exited(), "bob is still here");
    let started = Instant::now();
    // The SDK moves by dropping its socket as lost; that ends the drain too.
    drop(bob);
    let status = server.exit_within(DEADLINE).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(started.elapsed() < DEADLINE, "far from the 60 s timeout");
}

#[tokio::test]
async fn at_the_drain_timeout_the_sockets_left_are_closed_1001_and_the_process_exits() {
    let mut server = ServerProcess::start(&["--drain-timeout", "1.5"]).await;
    let mut lingering = Client::login(server.addr, "alice").await;

    let signalled = Instant::now();
    server.signal("TERM");
    told_to_move(&mut lingering, 750).await;
    // It ignores the message: the timeout closes it.
    assert_eq!(
        lingering.closed_within(DEADLINE).await,
        Some(Closed::Code(1001))
    );
    let waited = signalled.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "closed after {waited:?}"
    );
    let status = server.exit_within(DEADLINE).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let mut server = ServerProcess::start(&["--drain-timeout", "60"]).await;
    let mut alice = Client::login(server.addr, "alice").await;

    server.signal("TERM");
    told_to_move(&mut alice, 5000).await;
    server.signal("INT");
    let status = server.exit_within(DEADLINE).await;
    let status = status.expect("exits at the second signal, not after 60 s");
    assert!(!status.success(), "a drain cut short: {status:?}");
}

#[tokio::test]
async fn a_drain_timeout_of_zero_exits_at_once() {
    let mut server = ServerProcess::start(&["--drain-timeout", "0"]).await;
    let _alice = Client::login(server.addr, "alice").await;
    server.signal("INT");
    let status = server.exit_within(DEADLINE).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
