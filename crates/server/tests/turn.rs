//! TURN credentials over real sockets: minted per session at login, renewed by the server
//! before they expire with an `iceServers` message, fresh again right after every resume, and
//! never sent when TURN is not configured. The secret stays out of every log line and error
//! of the real binary.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use calling_protocol::{
    ClientMessage, IceServer, IceServersUpdate, LoginOk, Resumed, ServerMessage, Signal,
};
use calling_server::turn::{mint, TurnConfig};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "north-wind-42-do-not-log";
const TURN_UDP: &str = "turn:turn.example.com:3478?transport=udp";
const TURNS: &str = "turns:turn.example.com:5349?transport=tcp";
const STATIC_STUN: &str = "stun:stun.example.com:3478";

fn turn_config(ttl_secs: u64) -> calling_server::Config {
    let mut c = config();
    c.ice_servers = vec![IceServer {
        urls: vec![STATIC_STUN.into()],
        username: None,
        credential: None,
    }];
    c.turn = TurnConfig::from_flags(
        Some(SECRET.into()),
        &[TURN_UDP.into(), TURNS.into()],
        ttl_secs,
    )
    .unwrap();
    c
}

/// Checks `servers` is the static STUN entry then one TURN entry with credentials for `user`
/// minted from the secret; returns their expiry.
fn check_servers(servers: &[IceServer], user: &str, ttl_secs: u64) -> u64 {
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[0].urls, [STATIC_STUN]);
    assert_eq!(servers[0].username, None);
    let turn = &servers[1];
    assert_eq!(turn.urls, [TURN_UDP, TURNS]);
    let username = turn.username.as_deref().expect("a TURN username");
    let (expiry, name) = username.split_once(':').expect("expiry:user");
    assert_eq!(name, user);
    let expiry: u64 = expiry.parse().expect("a unix time");
    let now = now_unix();
    assert!(
        expiry <= now + ttl_secs && expiry + 5 >= now + ttl_secs,
        "expiry {expiry} for now {now} and ttl {ttl_secs}"
    );
    assert_eq!(turn.credential, Some(mint(SECRET, user, expiry).1));
    expiry
}

fn updated_servers(msg: ServerMessage) -> Vec<IceServer> {
    match msg {
        ServerMessage::IceServers(IceServersUpdate { ice_servers }) => ice_servers,
        other => panic!("expected iceServers, got {other:?}"),
    }
}

async fn login_ok(addr: std::net::SocketAddr, user: &str) -> (Client, LoginOk) {
    let mut c = Client::connect(addr).await;
    c.name = user.into();
    c.send(&login_msg(user)).await;
    match c.recv().await {
        ServerMessage::LoginOk(ok) => (c, ok),
        other => panic!("expected loginOk, got {other:?}"),
    }
}

#[tokio::test]
async fn login_hands_out_credentials_minted_for_the_user() {
    let server = start(turn_config(600)).await;
    let (mut alice, ok) = login_ok(server.addr, "alice").await;
    check_servers(&ok.ice_servers, "alice", 600);
    let (_bob, ok) = login_ok(server.addr, "bob").await;
    check_servers(&ok.ice_servers, "bob", 600);
    // Nothing else follows a login (the renewal is 450 s away).
    alice.expect_nothing().await;
}

#[tokio::test]
async fn the_server_renews_credentials_at_three_quarters_of_their_life() {
    let server = start(turn_config(2)).await;
    let logged_in = Instant::now();
    let (mut alice, ok) = login_ok(server.addr, "alice").await;
    let first = check_servers(&ok.ice_servers, "alice", 2);
    // A call goes on meanwhile: renewals do not disturb it, and it does not delay them.
    let mut bob = Client::login(server.addr, "bob").await;
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    assert_eq!(bob.invited().await, invite_id);

    let renewed = updated_servers(alice.recv().await);
    let after = logged_in.elapsed();
    assert!(
        after >= Duration::from_millis(1_400),
        "renewed after {after:?}"
    );
    let second = check_servers(&renewed, "alice", 2);
    assert!(second > first, "{second} after {first}");
    // And again, 1.5 s after the renewal: one timer per session, re-armed.
    let renewed = updated_servers(alice.recv().await);
    assert!(logged_in.elapsed() >= Duration::from_millis(2_900));
    assert!(check_servers(&renewed, "alice", 2) > second);
    bob.relay(
        room,
        "alice",
        Signal::Media {
            audio: true,
            video: false,
        },
    )
    .await;
    loop {
        match alice.recv().await {
            ServerMessage::Signal(_) => break,
            // The next renewal may come first under load.
            ServerMessage::IceServers(_) => continue,
            other => panic!("expected bob's signal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_resume_gets_fresh_credentials_right_after_resumed() {
    let server = start(turn_config(600)).await;
    let (alice, grant) = Client::login_resumable(server.addr, "alice").await;
    let (mut bob, _) = login_ok(server.addr, "bob").await;
    alice.vanish();
    // Something alice missed, for the replay.
    bob.invite(&["alice"], None).await;

    let mut alice = Client::resume(server.addr, "alice", &grant.token, 0).await;
    assert_eq!(
        alice.recv_numbered().await,
        (None, ServerMessage::Resumed(Resumed { received: 0 }))
    );
    let (seq, fresh) = alice.recv_numbered().await;
    assert_eq!(seq, None, "iceServers carries no seq");
    check_servers(&updated_servers(fresh), "alice", 600);
    let (seq, invited) = alice.recv_numbered().await;
    assert_eq!(seq, Some(1));
    assert!(matches!(invited, ServerMessage::Invited(_)), "{invited:?}");
    alice.expect_nothing().await;
}

#[tokio::test]
async fn without_turn_no_session_ever_gets_ice_servers_updates() {
    let mut c = config();
    c.ice_servers = vec![IceServer {
        urls: vec![STATIC_STUN.into()],
        username: None,
        credential: None,
    }];
    let server = start(c).await;
    let (alice, grant) = Client::login_resumable(server.addr, "alice").await;
    alice.vanish();
    let mut alice = Client::resume(server.addr, "alice", &grant.token, 0).await;
    assert_eq!(
        alice.recv_numbered().await,
        (None, ServerMessage::Resumed(Resumed { received: 0 }))
    );
    alice.expect_nothing().await;
    let (_, ok) = login_ok(server.addr, "bob").await;
    assert_eq!(ok.ice_servers.len(), 1);
    assert_eq!(ok.ice_servers[0].urls, [STATIC_STUN]);
}

/// The real binary with TURN and every log level on: a login, a renewal and a resume, then
/// its whole log is searched for the secret.
#[tokio::test]
async fn the_secret_never_appears_in_the_log() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(["--listen", "127.0.0.1:0", "--app", &format!("{APP}={KEY}")])
        .args(["--turn-uri", TURN_UDP, "--turn-ttl", "2"])
        .env("CALLING_TURN_SECRET", SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut log = Vec::new();
    let addr = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stderr.read(&mut buf).await.unwrap();
            assert!(n > 0, "exited: {}", String::from_utf8_lossy(&log));
            log.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&log);
            if let Some(rest) = text.split("listen=").nth(1) {
                if let Some(addr) = rest.split_whitespace().next() {
                    if let Ok(addr) = addr.parse::<std::net::SocketAddr>() {
                        return addr;
                    }
                }
            }
        }
    })
    .await
    .expect("listening");

    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let mut ws = ws;
    let mut login = serde_json::to_value(login_msg("alice")).unwrap();
    login["resumable"] = true.into();
    ws.send(Message::text(login.to_string())).await.unwrap();
    let mut token = None;
    let mut renewed = false;
    tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            match value["type"].as_str() {
                Some("loginOk") => token = value["resume"]["token"].as_str().map(String::from),
                Some("iceServers") => {
                    renewed = true;
                    break;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("renewed within the deadline");
    assert!(renewed);
    drop(ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let resume = ClientMessage::Resume {
        sdk_app_id: APP,
        user_id: "alice".into(),
        token: token.expect("a resume token"),
        last_seq: 0,
        protocol_version: calling_protocol::PROTOCOL_VERSION,
    };
    ws.send(Message::text(serde_json::to_string(&resume).unwrap()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(text) = msg {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                seen.push(value["type"].as_str().unwrap_or_default().to_string());
                if value["type"] == "iceServers" {
                    break;
                }
            }
        }
    })
    .await
    .expect("fresh credentials after the resume");
    assert_eq!(seen, ["resumed", "iceServers"]);
    ws.close(None).await.unwrap();
    // The server logs the session's end; then stop it and read everything it wrote.
    let _ = tokio::time::timeout(DEADLINE, ws.next()).await;
    child.kill().await.unwrap();
    stderr.read_to_end(&mut log).await.unwrap();
    stdout.read_to_end(&mut log).await.unwrap();
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("session resumed"), "{log}");
    assert!(log.contains("TURN"), "{log}");
    assert!(!log.contains(SECRET), "the secret leaked:\n{log}");
}

#[tokio::test]
async fn start_up_errors_name_the_flag_and_never_the_secret() {
    let run = |args: &'static [&'static str]| async move {
        let output = tokio::time::timeout(
            DEADLINE,
            Command::new(env!("CARGO_BIN_EXE_calling-server"))
                .args(["--listen", "127.0.0.1:0"])
                .args(args)
                .env("CALLING_TURN_SECRET", SECRET)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("exits at once")
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
        (output.status.code(), text)
    };
    let (code, text) = run(&[]).await;
    assert_eq!(code, Some(2));
    assert!(text.contains("--turn-uri"), "{text}");
    let (code, text) = run(&["--turn-uri", "turn:turn.example.com:99999"]).await;
    assert_eq!(code, Some(2));
    assert!(
        text.contains("--turn-uri") && text.contains("port"),
        "{text}"
    );
    let (code, text) = run(&["--turn-uri", "turn:t.example", "--turn-ttl", "0"]).await;
    assert_eq!(code, Some(2));
    assert!(text.contains("--turn-ttl"), "{text}");
    // The help shows that the variable exists, not its value.
    let (code, text) = run(&["--help"]).await;
    assert_eq!(code, Some(0));
    assert!(text.contains("CALLING_TURN_SECRET"), "{text}");
}

#[tokio::test]
async fn a_turn_uri_without_a_secret_is_refused() {
    let output = tokio::time::timeout(
        DEADLINE,
        Command::new(env!("CARGO_BIN_EXE_calling-server"))
            .args(["--listen", "127.0.0.1:0", "--turn-uri", TURN_UDP])
            .env_remove("CALLING_TURN_SECRET")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--turn-secret"), "{stderr}");
}
