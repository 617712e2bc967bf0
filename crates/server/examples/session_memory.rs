//! Opens many logged-in WebSocket sessions against a running `calling-server` and reports the
//! server's resident memory per session (read from /proc), then keeps them alive with pings.
//!
//! Start the server first with the app below, e.g.
//! `calling-server --listen 127.0.0.1:18090 --app 1400000001=<KEY below>`, then
//! `cargo run --release -p calling-server --example session_memory -- 127.0.0.1:18090 SERVER_PID 5000`.
//! Loopback only; mind `ulimit -n` (two descriptors per session on one machine).

use std::time::{Duration, Instant};

use calling_protocol::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const APP: u64 = 1_400_000_001;
const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let pid = args
        .next()
        .ok_or("usage: session_memory ADDR SERVER_PID [SESSIONS]")?;
    let sessions: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let before = rss_kib(&pid);
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut sockets = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
        let user = format!("mem{i}");
        let login = ClientMessage::Login {
            sdk_app_id: APP,
            user_sig: calling_server::usersig::generate(APP, KEY, &user, now, 3600, None),
            user_id: user,
            protocol_version: PROTOCOL_VERSION,
            resumable: false,
        };
        ws.send(Message::text(serde_json::to_string(&login)?))
            .await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let reply: ServerMessage = serde_json::from_str(t.as_str())?;
                if !matches!(reply, ServerMessage::LoginOk(_)) {
                    return Err(format!("login {i}: {reply:?}").into());
                }
            }
            other => return Err(format!("login {i}: {other:?}").into()),
        }
        sockets.push(ws);
    }
    let elapsed = started.elapsed();
    let after = rss_kib(&pid);
    println!(
        "{sessions} sessions connected and logged in in {elapsed:?} ({:.0}/s)",
        sessions as f64 / elapsed.as_secs_f64()
    );
    println!(
        "server RSS {before} KiB -> {after} KiB: {:.1} KiB per session",
        after.saturating_sub(before) as f64 / sessions as f64
    );
    // One heartbeat round over every session, to see they are all still served.
    let beat = Instant::now();
    let ping = serde_json::to_string(&ClientMessage::Ping)?;
    for ws in &mut sockets {
        ws.send(Message::text(ping.clone())).await?;
    }
    for ws in &mut sockets {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => {}
            other => return Err(format!("no pong: {other:?}").into()),
        }
    }
    println!("one ping round over all sessions took {:?}", beat.elapsed());
    Ok(())
}
