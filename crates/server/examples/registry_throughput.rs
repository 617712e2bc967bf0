//! Measures the registry alone (no sockets): how many invitation round trips per second one
//! core sustains with many sessions logged in, and the memory they hold.
//!
//! `cargo run --release -p calling-server --example registry_throughput [SESSIONS] [CALLS]`

use std::time::{Duration, Instant};

use calling_protocol::CallType;
use calling_server::ids::RandomIds;
use calling_server::registry::{InviteRequest, Registry};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sessions: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let calls: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let app = 1_400_000_000;
    let mut reg = Registry::new(Duration::from_secs(30), RandomIds);
    let before = rss_kib();
    let t0 = Instant::now();
    for s in 0..sessions {
        reg.login(s, app, &format!("user{s}"), t0);
    }
    let login_time = t0.elapsed();
    let after_login = rss_kib();

    // Each round: a caller invites a callee, the callee accepts, then hangs up.
    let started = Instant::now();
    let mut delivered = 0usize;
    for i in 0..calls {
        let caller = (2 * i) % sessions;
        let callee = (2 * i + 1) % sessions;
        let now = Instant::now();
        let req = InviteRequest {
            request_id: 1,
            user_ids: vec![format!("user{callee}")],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
            room_id: None,
        };
        let Ok(out) = reg.invite(caller, req, now) else {
            panic!("invite {i} refused")
        };
        delivered += out.deliveries.len();
        let (room, invite_id) = out
            .deliveries
            .iter()
            .find_map(|(_, m)| match m {
                calling_protocol::ServerMessage::InviteSent(calling_protocol::InviteSent {
                    room_id,
                    invite_id,
                    ..
                }) => Some((*room_id, invite_id.clone())),
                _ => None,
            })
            .unwrap_or_default();
        delivered += reg
            .accept(callee, 2, &invite_id, now)
            .map_or(0, |o| o.deliveries.len());
        delivered += reg
            .hangup(callee, room, now)
            .map_or(0, |o| o.deliveries.len());
    }
    let elapsed = started.elapsed();
    println!(
        "{sessions} sessions logged in in {login_time:?}; registry memory ≈ {} KiB ({} bytes/session)",
        after_login.saturating_sub(before),
        after_login.saturating_sub(before) * 1024 / sessions.max(1)
    );
    println!(
        "{calls} invite+accept+hangup rounds in {elapsed:?}: {:.0} rounds/s on one core, {delivered} deliveries",
        calls as f64 / elapsed.as_secs_f64()
    );
}
