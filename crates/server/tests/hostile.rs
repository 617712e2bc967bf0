//! Hostile clients against the real binary: each attack is closed or refused in time, the
//! server's memory stays bounded, and a logged-in user's pings stay fast meanwhile.

mod process;

use std::time::{Duration, Instant};

use calling_protocol::{CallType, ClientMessage, Signal, MAX_FRAME_BYTES};
use futures_util::future::join_all;
use process::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Clients per attack: enough to show the cost per client, few enough for a test machine.
const ATTACKERS: usize = 100;

/// One attack at a time: the latency each test measures is the server's under that attack,
/// not under all of them at once.
/// An async lock, so a test holds it across its awaits and a failed test does not poison it.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn connections_that_never_log_in_are_closed_at_the_login_deadline() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&["--login-timeout", "1"]).await;
    let addr = server.addr;
    let probe = Probe::start(addr, "alice").await;
    let attack = tokio::spawn(async move {
        let started = Instant::now();
        let clients = (0..ATTACKERS).map(|i| async move {
            let mut c = Client::connect_from(loopback(2 + (i % 8) as u8), addr).await;
            // Frames that used to count as life: WebSocket pings and refused requests.
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            let closed = loop {
                pace.tick().await;
                c.try_send(Message::Ping(vec![1].into())).await;
                c.try_send(Message::text(ping_msg())).await;
                if let Some(closed) = c.closed_within(Duration::from_millis(1)).await {
                    break closed;
                }
                if started.elapsed() > Duration::from_secs(4) {
                    panic!("a client that never logged in is still open after 4 s");
                }
            };
            assert_eq!(closed, Closed::Code(1008));
        });
        join_all(clients).await;
        started.elapsed()
    });
    let took = attack.await.unwrap();
    let probe = probe.finish();
    eprintln!("{ATTACKERS} clients without login closed after {took:?}");
    probe.assert_fast("pings while clients linger before login");
}

#[tokio::test]
async fn a_message_over_the_frame_limit_closes_with_1009_even_in_fragments() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&[]).await;
    let chunk = vec![b'x'; MAX_FRAME_BYTES / 2 + 1];
    // Two unfinished fragments, together just over the limit.
    let mut c = Client::connect(server.addr).await;
    c.send_raw(&raw_frame(OP_TEXT, false, &chunk, chunk.len()))
        .await;
    c.send_raw(&raw_frame(OP_CONTINUATION, false, &chunk, chunk.len()))
        .await;
    assert_eq!(c.closed_within(DEADLINE).await, Some(Closed::Code(1009)));
    // One frame whose header announces 2 MiB: refused on the header, before its payload.
    let mut c = Client::login(server.addr, "alice").await;
    c.send_raw(&raw_frame(OP_TEXT, true, b"{", 2 << 20)).await;
    assert_eq!(c.closed_within(DEADLINE).await, Some(Closed::Code(1009)));
}

#[tokio::test]
async fn unfinished_fragmented_messages_cannot_pin_memory() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&[]).await;
    let addr = server.addr;
    let probe = Probe::start(addr, "alice").await;
    let (_, peak_before) = server.memory_kib();
    let attack = tokio::spawn(async move {
        let clients = (0..ATTACKERS).map(|i| async move {
            let mut c = Client::connect_from(loopback(2 + (i % 8) as u8), addr).await;
            // Up to 960 KiB of one message, never finished.
            let chunk = vec![b'x'; 60 * 1024];
            c.send_raw(&raw_frame(OP_TEXT, false, &chunk, chunk.len()))
                .await;
            for _ in 0..15 {
                if !c
                    .send_raw(&raw_frame(OP_CONTINUATION, false, &chunk, chunk.len()))
                    .await
                {
                    break;
                }
            }
            // Refused at the frame limit: a close, or a reset if the rest was still arriving.
            c.closed_within(DEADLINE)
                .await
                .expect("an oversized unfinished message closes the connection");
        });
        join_all(clients).await;
    });
    attack.await.unwrap();
    let probe = probe.finish();
    let (_, peak_after) = server.memory_kib();
    let grown_mib = peak_after.saturating_sub(peak_before) / 1024;
    eprintln!("{ATTACKERS} unfinished 960 KiB messages: server peak memory grew {grown_mib} MiB");
    // At the transport's old 1 MiB limit this attack pinned about 100 MiB.
    assert!(grown_mib < 40, "peak memory grew {grown_mib} MiB");
    probe.assert_fast("pings while unfinished messages arrive");
}

/// An invite frame naming as many distinct (valid) user IDs as fit in one frame.
fn huge_invite(request_id: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut user_ids = Vec::new();
    let mut text = String::new();
    for n in 0.. {
        let id: String = [n / 3844, n / 62 % 62, n % 62]
            .iter()
            .map(|&d| DIGITS[d] as char)
            .collect();
        user_ids.push(id);
        if user_ids.len() % 500 == 0 {
            let msg = ClientMessage::Invite {
                request_id,
                user_ids: user_ids.clone(),
                call_type: CallType::Video,
                is_group: true,
                group_id: None,
                room_id: None,
            };
            let next = serde_json::to_string(&msg).unwrap();
            if next.len() > MAX_FRAME_BYTES {
                break;
            }
            text = next;
        }
    }
    assert!(text.len() > MAX_FRAME_BYTES / 2);
    text
}

#[tokio::test]
async fn invites_naming_thousands_of_users_do_not_stall_others() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&[]).await;
    let addr = server.addr;
    let probe = Probe::start(addr, "alice").await;
    let invite = huge_invite(7);
    let attack = tokio::spawn(async move {
        // One attacker: in this debug build, decoding one such frame takes one core ~50 ms, and
        // with every core decoding, anyone waits for a core, lock or no lock. Under the old
        // quadratic dedupe one attacker was enough to hold the registry's lock for seconds.
        let attackers = (0..1).map(|i| {
            let invite = invite.clone();
            async move {
                let mut c = Client::login(addr, &format!("mallory{i}")).await;
                let started = Instant::now();
                for _ in 0..20 {
                    c.send_text(&invite).await;
                    let reply = c.recv().await;
                    assert_eq!(reply["type"], "error", "{reply}");
                    assert_eq!(reply["code"], "invalidParam", "{reply}");
                    assert_eq!(reply["requestId"], 7, "{reply}");
                }
                eprintln!("mallory{i}: 20 invites refused in {:?}", started.elapsed());
            }
        });
        join_all(attackers).await;
    });
    attack.await.unwrap();
    let probe = probe.finish();
    probe.assert_fast("pings while invites name thousands of users");
}

#[tokio::test]
async fn half_sent_http_requests_time_out_and_health_stays_up() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&["--header-timeout", "1"]).await;
    let addr = server.addr;
    let started = Instant::now();
    let mut idle = Vec::new();
    for i in 0..ATTACKERS {
        let mut tcp = tcp_from(loopback(2 + (i % 8) as u8), addr).await.unwrap();
        if i % 2 == 0 {
            // Half a request; the other half send nothing at all.
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(tcp);
    }
    // Meanwhile the health check is answered.
    let health = health(addr).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    for mut tcp in idle {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(4), tcp.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "a half-sent request was still open after {:?}",
            started.elapsed()
        );
    }
    eprintln!(
        "{ATTACKERS} idle HTTP connections closed after {:?}",
        started.elapsed()
    );
    // A kept-alive connection that stays silent after its request is closed the same way.
    let mut tcp = tcp_from(loopback(1), addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(4), tcp.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "a kept-alive connection was never closed");
    assert!(reply.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn a_client_that_stops_reading_a_response_is_dropped_at_the_idle_timeout() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // A static file far larger than the socket buffers between the server and the client.
    let www = std::env::temp_dir().join(format!("calling-idle-{}", std::process::id()));
    std::fs::create_dir_all(&www).unwrap();
    const SIZE: usize = 16 << 20;
    std::fs::write(www.join("big.bin"), vec![7u8; SIZE]).unwrap();
    let server =
        ServerProcess::start(&["--idle-timeout", "1", "--www", www.to_str().unwrap()]).await;
    let before = server.open_sockets();
    let mut tcp = tcp_with(loopback(1), server.addr, Some(4096))
        .await
        .unwrap();
    tcp.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    while server.open_sockets() == before {
        assert!(
            started.elapsed() < DEADLINE,
            "the server never took the connection"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The client reads nothing: the server's writes stall once the buffers are full, and
    // after a second without progress it lets the connection go.
    while server.open_sockets() > before {
        assert!(
            started.elapsed() < DEADLINE,
            "a client that stopped reading still held its connection after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("stalled download dropped after {:?}", started.elapsed());
    // What it reads now ends short of the file: the server gave up, it did not just pause.
    let mut got = Vec::new();
    let read = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the dropped connection never ended");
    assert!(
        got.len() < SIZE,
        "the whole file arrived: {} bytes",
        got.len()
    );
    let _ = std::fs::remove_dir_all(&www);
}

/// `GET /healthz` on a fresh connection from 127.0.0.1; the raw reply.
async fn health(addr: std::net::SocketAddr) -> String {
    let mut tcp = tcp_from(loopback(1), addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut reply))
        .await
        .expect("healthz answered in time")
        .unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

/// Opens a connection from `from` and reads what the server says first, if anything, within
/// a short wait (an admitted connection says nothing until asked).
async fn refusal(from: std::net::IpAddr, addr: std::net::SocketAddr) -> Option<String> {
    let mut tcp = tcp_from(from, addr).await.unwrap();
    let mut reply = Vec::new();
    match tokio::time::timeout(Duration::from_millis(500), tcp.read_to_end(&mut reply)).await {
        Ok(_) => Some(String::from_utf8_lossy(&reply).into_owned()),
        Err(_) => None,
    }
}

/// Logs in `n` users, each from its own address starting at 127.0.0.`first`.
async fn log_in_many(addr: std::net::SocketAddr, first: u8, n: u8) -> Vec<Client> {
    let mut users = Vec::new();
    for i in 0..n {
        let c = Client::connect_when_admitted(loopback(first + i), addr).await;
        users.push(c.logged_in_as(&format!("user{}", first + i)).await);
    }
    users
}

#[tokio::test]
async fn connection_caps_refuse_with_a_reason() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&[
        "--max-connections-per-address",
        "10",
        "--max-pending-logins",
        "20",
        "--max-connections",
        "40",
    ])
    .await;
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(tcp_from(loopback(2), addr).await.unwrap());
    }
    let refused = refusal(loopback(2), addr).await.expect("refused at once");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.ends_with("too many connections from your address\n"),
        "{refused}"
    );
    // Other addresses are still served, up to the cap on connections not logged in.
    for _ in 0..10 {
        held.push(tcp_from(loopback(3), addr).await.unwrap());
    }
    let refused = refusal(loopback(4), addr).await.expect("refused at once");
    assert!(
        refused.ends_with("too many connections that have not logged in\n"),
        "{refused}"
    );
    // Logged-in sessions do not count against that cap (19 pending + 10 logged in, then one
    // more pending fits), only against the total.
    held.pop();
    let mut users = log_in_many(addr, 100, 10).await;
    assert_eq!(refusal(loopback(4), addr).await, None, "admitted");
    held.truncate(10);
    users.extend(log_in_many(addr, 150, 20).await);
    // 30 logged in + 10 pending: the total cap.
    let refused = refusal(loopback(5), addr).await.expect("refused at once");
    assert!(
        refused.ends_with("the server has too many connections\n"),
        "{refused}"
    );
    // Closing frees the slots, as soon as the server has seen the connections close.
    drop(held);
    let started = Instant::now();
    loop {
        let health = health(addr).await;
        if health.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "slots not freed: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn websocket_pings_count_against_the_rate_limit() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&[]).await;
    let mut c = Client::login(server.addr, "mallory").await;
    for _ in 0..1000 {
        if !c.try_send(Message::Ping(vec![0].into())).await {
            break;
        }
    }
    assert_eq!(c.closed_within(DEADLINE).await, Some(Closed::Code(1008)));
    // A well-behaved user is untouched.
    let mut alice = Client::login(server.addr, "alice").await;
    alice.ping_rtt().await;
}

#[tokio::test]
async fn a_session_that_stops_reading_is_dropped_at_its_outbox_budget() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = ServerProcess::start(&["--outbox-bytes", "1048576"]).await;
    let addr = server.addr;
    let mut alice = Client::login(addr, "alice").await;
    // bob's socket takes little into its kernel buffers, and soon bob reads nothing.
    let mut bob = Client::connect_with(loopback(2), addr, Some(4096))
        .await
        .logged_in_as("bob")
        .await;
    alice
        .send_text(
            &serde_json::to_string(&ClientMessage::Invite {
                request_id: 1,
                user_ids: vec!["bob".into()],
                call_type: CallType::Audio,
                is_group: false,
                group_id: None,
                room_id: None,
            })
            .unwrap(),
        )
        .await;
    let sent = alice.recv().await;
    assert_eq!(sent["type"], "inviteSent", "{sent}");
    let room = sent["roomId"].as_u64().unwrap();
    let invite_id = sent["inviteId"].as_str().unwrap().to_string();
    assert_eq!(alice.recv().await["type"], "inviteeList");
    assert_eq!(bob.recv().await["type"], "invited");
    bob.send_text(
        &serde_json::to_string(&ClientMessage::Accept {
            request_id: 2,
            invite_id,
        })
        .unwrap(),
    )
    .await;
    assert_eq!(bob.recv().await["type"], "joined");
    assert_eq!(alice.recv().await["type"], "accepted");
    assert_eq!(alice.recv().await["type"], "inviteeList");
    // 150 relays of ~60 KiB (9 MiB) to bob, who reads none of it.
    let sdp = "x".repeat(60 * 1024);
    let relay = serde_json::to_string(&ClientMessage::Relay {
        room_id: room.try_into().unwrap(),
        to: "bob".into(),
        signal: Signal::Offer { sdp },
    })
    .unwrap();
    let started = Instant::now();
    for _ in 0..150 {
        alice.send_text(&relay).await;
    }
    // bob is dropped as too slow, so the call ends for alice.
    loop {
        let msg = alice.recv().await;
        if msg["type"] == "callEnded" || msg["type"] == "memberLeft" {
            break;
        }
        assert_eq!(msg["type"], "error", "{msg}");
    }
    let took = started.elapsed();
    eprintln!("a session that stopped reading was dropped {took:?} after the flood began");
    assert!(took < Duration::from_secs(3), "dropped only after {took:?}");
    drop(bob);
}
