//! Phase "relay": what both servers share — passing a signaling message from one client to
//! another. Pairs of clients (for calling-server, the two members of a call) send ICE
//! candidates one way, paced and with a bounded window of messages in flight; the receiver
//! stamps each arrival. A few pairs with one message in flight give the light-load relay
//! latency; many pairs give throughput and latency under load.

use crate::conn::{self, ConnError, Endpoint, Ws};
use crate::procfs;
use crate::stats::Latency;
use crate::target::Target;
use calling_protocol::{
    CallType, ClientMessage, IceCandidate, Invited, RelayedSignal, ServerMessage, Signal,
};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Settings of one relay run.
#[derive(Debug, Clone)]
pub struct RelayPlan {
    pub pairs: u32,
    pub window: u32,
    /// Stop sending after this long …
    pub duration: Duration,
    /// … or after this many messages per pair, whichever comes first.
    pub max_per_pair: u64,
    /// Messages per second each sender stays under (calling-server limits every connection to
    /// a sustained 50/s; the same pacing applies to both servers).
    pub rate_per_pair: Option<f64>,
    /// The server process, to measure the CPU time it spends per relayed message.
    pub servers: procfs::Processes,
}

/// What one relay run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    pub server: &'static str,
    pub pairs: usize,
    pub window: u32,
    /// Offered load: pairs × per-pair rate (absent when unpaced).
    pub offered_per_sec: Option<f64>,
    pub sent: u64,
    pub received: u64,
    pub secs: f64,
    pub messages_per_sec: f64,
    pub latency: Latency,
    /// Pairs whose window stayed full for 5 s (messages dropped or refused by the server).
    pub stalled_pairs: usize,
    /// Error frames the senders received (for calling-server e.g. `rateLimited`).
    pub sender_errors: u64,
    pub pair_setup_failures: usize,
    /// Server CPU time while relaying, and per message received.
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_us_per_message: Option<f64>,
}

/// A pair ready to relay: `a` sends to `b_id` (in `room` for calling-server).
struct Pair {
    a: Ws,
    b: Ws,
    b_id: String,
    room: u32,
}

#[derive(Default)]
struct PairResult {
    sent: u64,
    received: u64,
    stalled: bool,
    sender_errors: u64,
    latency: Vec<Duration>,
    last_arrival: Option<Instant>,
}

/// Runs one relay measurement against `target`.
pub async fn run(target: &Target, ep: &Endpoint, plan: &RelayPlan, tag: &str) -> RelayReport {
    let mut setups = Vec::new();
    for i in 0..plan.pairs {
        let (target, ep, tag) = (target.clone(), ep.clone(), tag.to_owned());
        setups.push(tokio::spawn(async move {
            setup(&target, &ep, i, &tag).await.ok()
        }));
    }
    let mut pairs = Vec::new();
    let mut pair_setup_failures = 0;
    for s in setups {
        match s.await.ok().flatten() {
            Some(p) => pairs.push(p),
            None => pair_setup_failures += 1,
        }
    }
    let cpu_before = plan.servers.cpu_secs();
    let base = Instant::now();
    let end = base + plan.duration;
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|p| tokio::spawn(run_pair(target.clone(), p, base, end, plan.clone())))
        .collect();
    let n = tasks.len();
    let mut total = PairResult::default();
    let mut stalled_pairs = 0;
    for t in tasks {
        if let Ok(r) = t.await {
            total.sent += r.sent;
            total.received += r.received;
            total.sender_errors += r.sender_errors;
            stalled_pairs += usize::from(r.stalled);
            total.latency.extend(r.latency);
            total.last_arrival = total.last_arrival.max(r.last_arrival);
        }
    }
    let server_cpu_secs = plan.servers.cpu_used(cpu_before);
    let secs = total
        .last_arrival
        .map(|t| (t - base).as_secs_f64())
        .unwrap_or(0.0);
    RelayReport {
        server: target.name(),
        pairs: n,
        window: plan.window,
        offered_per_sec: plan.rate_per_pair.map(|r| r * n as f64),
        sent: total.sent,
        received: total.received,
        secs,
        messages_per_sec: if secs > 0.0 {
            total.received as f64 / secs
        } else {
            0.0
        },
        latency: Latency::of(&mut total.latency),
        stalled_pairs,
        sender_errors: total.sender_errors,
        pair_setup_failures,
        server_cpu_secs,
        server_cpu_us_per_message: server_cpu_secs
            .filter(|_| total.received > 0)
            .map(|s| s * 1e6 / total.received as f64),
    }
}

/// Logs both clients in; for calling-server also puts them in one call (invite, accept), since
/// it relays only between participants of a call.
async fn setup(target: &Target, ep: &Endpoint, i: u32, tag: &str) -> Result<Pair, ConnError> {
    let within = Duration::from_secs(20);
    let (a_id, b_id) = (format!("{tag}a{i}"), format!("{tag}b{i}"));
    let mut a = target.login(ep, 2 * i, &a_id, within).await?;
    let mut b = target.login(ep, 2 * i + 1, &b_id, within).await?;
    let mut room = 0;
    if let Target::Ours(_) = target {
        let deadline = Instant::now() + within;
        let invite = ClientMessage::Invite {
            request_id: 1,
            user_ids: vec![b_id.clone()],
            call_type: CallType::Audio,
            is_group: false,
            group_id: None,
            room_id: None,
        };
        conn::ours::send(&mut a, &invite).await?;
        let (invite_id, room_id) =
            conn::ours::recv_until(&mut b, deadline, "invited", |m| match m {
                ServerMessage::Invited(Invited {
                    invite_id, room_id, ..
                }) => Some((invite_id, room_id)),
                _ => None,
            })
            .await?;
        conn::ours::send(
            &mut b,
            &ClientMessage::Accept {
                request_id: 2,
                invite_id,
            },
        )
        .await?;
        conn::ours::recv_until(&mut a, deadline, "accepted", |m| {
            matches!(m, ServerMessage::Accepted(_)).then_some(())
        })
        .await?;
        room = room_id;
    }
    Ok(Pair { a, b, b_id, room })
}

fn candidate(target: &Target, p_room: u32, to: &str, stamp: u128) -> Result<String, ConnError> {
    Ok(match target {
        Target::Ours(_) => serde_json::to_string(&ClientMessage::Relay {
            room_id: p_room,
            to: to.to_owned(),
            signal: Signal::Candidate(IceCandidate {
                candidate: conn::candidate_line(stamp),
                sdp_mid: Some("0".to_owned()),
                sdp_m_line_index: Some(0),
            }),
        })?,
        Target::PeerJs { .. } => conn::peerjs::candidate(to, stamp),
    })
}

/// A fraction in [0, 1) derived from a user id, to spread the pairs' sending phases.
fn plan_phase(id: &str) -> f64 {
    let h = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    f64::from(h % 1000) / 1000.0
}

/// The stamp of a relayed candidate, or `None` for any other frame.
fn stamp_of(target: &Target, text: &str) -> Option<u128> {
    match target {
        Target::Ours(_) => match serde_json::from_str::<ServerMessage>(text).ok()? {
            ServerMessage::Signal(RelayedSignal {
                signal: Signal::Candidate(c),
                ..
            }) => conn::stamp_of_line(&c.candidate),
            _ => None,
        },
        Target::PeerJs { .. } => conn::peerjs::stamp_of(text),
    }
}

fn is_error(target: &Target, text: &str) -> bool {
    match target {
        Target::Ours(_) => matches!(
            serde_json::from_str::<ServerMessage>(text),
            Ok(ServerMessage::Error(_))
        ),
        Target::PeerJs { .. } => text.contains("\"ERROR\""),
    }
}

async fn run_pair(
    target: Target,
    p: Pair,
    base: Instant,
    end: Instant,
    plan: RelayPlan,
) -> PairResult {
    let (mut a_tx, mut a_rx) = p.a.split();
    let (mut b_tx, mut b_rx) = p.b.split();
    // The in-flight window: a bounded channel holding one token per message not yet received;
    // the sender waits when it is full, the receiver takes a token per arrival.
    let (in_flight, mut arrived) = mpsc::channel::<()>(plan.window.max(1) as usize);
    let (sent_tx, mut sent_rx) = oneshot::channel::<(u64, bool)>();

    // Sender: keep `window` candidates in flight until the time or count bound.
    let sender = {
        let (target, to) = (target.clone(), p.b_id.clone());
        tokio::spawn(async move {
            let (mut sent, mut stalled) = (0u64, false);
            let gap = plan
                .rate_per_pair
                .map(|r| Duration::from_secs_f64(1.0 / r.max(0.001)));
            // Pairs start spread over one gap so the load is even rather than in waves.
            let mut next =
                Instant::now() + gap.map(|g| g.mul_f64(plan_phase(&to))).unwrap_or_default();
            while Instant::now() < end && sent < plan.max_per_pair {
                if let Some(gap) = gap {
                    tokio::time::sleep_until(next).await;
                    next = (next + gap).max(Instant::now());
                }
                match tokio::time::timeout(Duration::from_secs(5), in_flight.send(())).await {
                    Ok(Ok(())) => {}
                    _ => {
                        stalled = true;
                        break;
                    }
                }
                let Ok(text) = candidate(&target, p.room, &to, base.elapsed().as_nanos()) else {
                    break;
                };
                if a_tx.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            let _ = sent_tx.send((sent, stalled));
            a_tx
        })
    };
    // The sender's incoming frames: drained so the server never backs up, errors counted.
    let errors = Arc::new(AtomicU64::new(0));
    let drain = {
        let (target, errors) = (target.clone(), errors.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = a_rx.next().await {
                if let Message::Text(t) = m {
                    if is_error(&target, t.as_str()) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // The receiver only listens, so it sends heartbeats to stay logged in.
    let beat = target.heartbeat().ok();
    let every = target.heartbeat_every();
    let pinger = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        while let Some(text) = beat.clone() {
            tick.tick().await;
            if b_tx.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });

    let mut r = PairResult::default();
    let mut total: Option<(u64, bool)> = None;
    let grace = end + Duration::from_secs(7);
    loop {
        if let Some((sent, _)) = total {
            if r.received >= sent {
                break;
            }
        }
        tokio::select! {
            got = &mut sent_rx, if total.is_none() => {
                total = Some(got.unwrap_or((0, true)));
            }
            frame = tokio::time::timeout_at(grace, b_rx.next()) => {
                let text = match frame {
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(_))) => continue,
                    _ => break,
                };
                if let Some(stamp) = stamp_of(&target, text.as_str()) {
                    let now = base.elapsed();
                    r.latency.push(now.saturating_sub(Duration::from_nanos(stamp as u64)));
                    r.last_arrival = Some(Instant::now());
                    r.received += 1;
                    let _ = arrived.try_recv();
                }
            }
        }
    }
    let (sent, stalled) = match total {
        Some(t) => t,
        None => sent_rx.await.unwrap_or((0, true)),
    };
    r.sent = sent;
    r.stalled = stalled;
    pinger.abort();
    if let Ok(mut a_tx) = sender.await {
        let _ = a_tx.close().await;
    }
    drain.abort();
    r.sender_errors = errors.load(Ordering::Relaxed);
    r
}
