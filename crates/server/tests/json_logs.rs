//! `--log-format json`: the real binary logs one JSON object per line; each line about a call
//! names its room; no line holds the app's secret key, a UserSig, the TURN secret or a TURN
//! credential. `CALLING_METRICS_LISTEN`
//! moves `/metrics` to a listener of its own.

mod process;

use std::net::SocketAddr;
use std::process::Stdio;

use calling_protocol::PROTOCOL_VERSION;
use calling_server::usersig;
use process::{Client, APP, DEADLINE, KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// The secret shared with the TURN server (never logged, nor the credentials minted from it).
const TURN_SECRET: &str = "turn-secret-of-the-json-log-test";

/// Messages of the lines that are about a call or one of its invitations.
const CALL_LINES: &[&str] = &[
    "call started",
    "invitation ringing",
    "invitation accepted",
    "invitation rejected",
    "invitee busy",
    "invitation timed out",
    "member left",
    "call ended",
    "call cancelled",
];

/// The next log line, within the deadline.
async fn next_line(lines: &mut mpsc::UnboundedReceiver<String>, all: &mut Vec<String>) -> Value {
    let line = tokio::time::timeout(DEADLINE, lines.recv())
        .await
        .expect("a log line within the deadline")
        .expect("the server is still running");
    all.push(line.clone());
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Reads log lines until one has `message`; returns it.
async fn line_with(
    lines: &mut mpsc::UnboundedReceiver<String>,
    all: &mut Vec<String>,
    message: &str,
) -> Value {
    loop {
        let line = next_line(lines, all).await;
        if line["message"] == message {
            return line;
        }
    }
}

/// Logs in as `user` with a UserSig of its own; returns the client, the sig and the TURN
/// credential it was given.
async fn login(addr: SocketAddr, user: &str) -> (Client, String, String) {
    let sig = usersig::generate(APP, KEY, user, process::now_unix(), 3600, None);
    let mut client = Client::connect(addr).await;
    client
        .send_text(
            &json!({"type": "login", "sdkAppId": APP, "userId": user, "userSig": sig, "protocolVersion": PROTOCOL_VERSION})
                .to_string(),
        )
        .await;
    let ok = client.recv().await;
    assert_eq!(ok["type"], "loginOk", "{ok}");
    let credential = ok["iceServers"][0]["credential"]
        .as_str()
        .unwrap_or_else(|| panic!("a TURN credential in {ok}"))
        .to_string();
    (client, sig, credential)
}

async fn invite(alice: &mut Client, to: &str) -> (u64, String) {
    alice
        .send_text(
            &json!({"type": "invite", "requestId": 1, "userIds": [to], "callType": "audio", "isGroup": false})
                .to_string(),
        )
        .await;
    let sent = recv_type(alice, "inviteSent").await;
    (
        sent["roomId"].as_u64().unwrap(),
        sent["inviteId"].as_str().unwrap().to_string(),
    )
}

/// A plain HTTP GET; the whole response.
async fn get(addr: SocketAddr, path: &str) -> String {
    tokio::time::timeout(DEADLINE, async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        response
    })
    .await
    .expect("an answer within the deadline")
}

async fn recv_type(client: &mut Client, kind: &str) -> Value {
    loop {
        let msg = client.recv().await;
        if msg["type"] == kind {
            return msg;
        }
    }
}

#[tokio::test]
async fn json_lines_name_the_room_of_each_call_and_hold_no_secret() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(["--listen", "127.0.0.1:0", "--app", &format!("{APP}={KEY}")])
        .env("CALLING_LOG_FORMAT", "json")
        .env("CALLING_METRICS_LISTEN", "127.0.0.1:0")
        .env("CALLING_TURN_SECRET", TURN_SECRET)
        .env("CALLING_TURN_URIS", "turn:127.0.0.1:3478")
        .env(
            "RUST_LOG",
            "info,calling_server=debug,calling_registry=debug",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("calling-server starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let (tx, mut lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let _ = tx.send(line);
        }
    });
    let mut all = Vec::new();
    let listening = line_with(&mut lines, &mut all, "calling-server listening").await;
    let addr: SocketAddr = listening["listen"].as_str().unwrap().parse().unwrap();
    assert_eq!(listening["level"], "INFO");
    let metrics = line_with(&mut lines, &mut all, "metrics listening").await;
    let metrics: SocketAddr = metrics["listen"].as_str().unwrap().parse().unwrap();

    // A call: invited, accepted, a signal relayed, hung up; then an invitation rejected.
    let (mut alice, alice_sig, alice_turn) = login(addr, "alice").await;
    let (mut bob, bob_sig, bob_turn) = login(addr, "bob").await;
    let (room1, invite1) = invite(&mut alice, "bob").await;
    recv_type(&mut bob, "invited").await;
    bob.send_text(&json!({"type": "accept", "requestId": 2, "inviteId": invite1}).to_string())
        .await;
    recv_type(&mut bob, "joined").await;
    alice
        .send_text(
            &json!({"type": "relay", "roomId": room1, "to": "bob", "signal": {"kind": "offer", "sdp": "v=0"}})
                .to_string(),
        )
        .await;
    recv_type(&mut bob, "signal").await;
    alice
        .send_text(&json!({"type": "hangup", "roomId": room1}).to_string())
        .await;
    recv_type(&mut bob, "callEnded").await;
    let ended = line_with(&mut lines, &mut all, "call ended").await;
    assert_eq!(ended["room"], room1);

    let (room2, invite2) = invite(&mut alice, "bob").await;
    recv_type(&mut bob, "invited").await;
    bob.send_text(&json!({"type": "reject", "inviteId": invite2}).to_string())
        .await;
    recv_type(&mut alice, "rejected").await;
    let rejected = line_with(&mut lines, &mut all, "invitation rejected").await;
    assert_eq!(rejected["room"], room2);
    line_with(&mut lines, &mut all, "call ended").await;
    // The metrics are on their own listener, and not on the main one.
    let scraped = get(metrics, "/metrics").await;
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    let outcomes = [("accepted", 1), ("rejected", 1), ("busy", 0)];
    for (outcome, n) in outcomes {
        let line = format!("calling_invitation_outcomes_total{{outcome=\"{outcome}\"}} {n}\n");
        assert!(scraped.contains(&line), "{line} in {scraped}");
    }
    assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 404"));
    drop((alice, bob));
    child.kill().await.expect("the server stops");
    while let Some(line) = lines.recv().await {
        all.push(line);
    }

    let mut call_lines = 0;
    for line in &all {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
        assert!(value["message"].is_string(), "{line}");
        if CALL_LINES.contains(&value["message"].as_str().unwrap_or_default()) {
            call_lines += 1;
            let room = value["room"].as_u64();
            assert!(
                room == Some(room1) || room == Some(room2),
                "a call line without its room: {line}"
            );
        }
        assert!(!line.contains(KEY), "the secret key in: {line}");
        assert!(
            !line.contains(&KEY[..16]),
            "part of the secret key in: {line}"
        );
        assert!(!line.contains(TURN_SECRET), "the TURN secret in: {line}");
        for credential in [&alice_turn, &bob_turn] {
            assert!(
                !line.contains(credential.as_str()),
                "a TURN credential in: {line}"
            );
        }
        for sig in [&alice_sig, &bob_sig] {
            assert!(!line.contains(sig.as_str()), "a UserSig in: {line}");
            assert!(!line.contains(&sig[..24]), "part of a UserSig in: {line}");
        }
    }
    // call started, ringing, accepted, call ended; call started, ringing, rejected, call ended.
    assert!(
        call_lines >= 8,
        "{call_lines} call lines in:\n{}",
        all.join("\n")
    );
}
