//! Phase "cycles" (calling-server only): pairs of logged-in sessions run invite → accept →
//! hangup at a target aggregate rate for a fixed time. Measures ring latency (invite sent →
//! invitee's `invited` received), the rate achieved, and the outcome of every invitation.

use crate::conn::ours::{recv_until, send, App};
use crate::conn::{ConnError, Endpoint, Ws};
use crate::procfs;
use crate::stats::Latency;
use crate::target::Target;
use calling_protocol::{
    Accepted, Busy, CallEnded, CallType, ClientMessage, ErrorReply, InviteSent, Invited, Joined,
    NoResponse, Rejected, ServerMessage,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Settings of the phase.
#[derive(Debug, Clone)]
pub struct CyclePlan {
    pub pairs: u32,
    pub rate: f64,
    pub duration: Duration,
    /// Longest wait for any one step before the invitation counts as lost.
    pub step_timeout: Duration,
    /// The server process, to measure the CPU time it spends per invitation.
    pub servers: procfs::Processes,
}

/// What the phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub pairs: usize,
    pub target_rate: f64,
    pub duration_secs: f64,
    pub invitations: usize,
    pub achieved_rate: f64,
    /// Outcome of each invitation as the inviter saw it (`accepted`, `rejected`, `busy`,
    /// `noResponse`, `error`, or `lost` when none arrived in time).
    pub outcomes: BTreeMap<String, usize>,
    /// Invitations that reached an outcome (all of them, when the server keeps up).
    pub with_outcome: usize,
    /// Accepted calls whose hangup reached the other member as `callEnded`.
    pub ended: usize,
    pub ring: Latency,
    /// `accept` sent → inviter's `accepted` received.
    pub accept: Latency,
    /// `hangup` sent → the other member's `callEnded` received.
    pub hangup: Latency,
    pub pair_login_failures: usize,
    /// Server CPU time while the cycles ran, and per invitation: a figure other work on the
    /// machine skews far less than rates and latencies.
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_us_per_invitation: Option<f64>,
    /// The load generator's own CPU time per invitation: it shares the machine's cores.
    pub loadgen_cpu_us_per_invitation: Option<f64>,
}

#[derive(Default)]
struct PairResult {
    invitations: usize,
    outcomes: BTreeMap<String, usize>,
    ended: usize,
    ring: Vec<Duration>,
    accept: Vec<Duration>,
    hangup: Vec<Duration>,
}

impl PairResult {
    fn absorb(&mut self, r: PairResult) {
        self.invitations += r.invitations;
        for (k, v) in r.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.ended += r.ended;
        self.ring.extend(r.ring);
        self.accept.extend(r.accept);
        self.hangup.extend(r.hangup);
    }
}

/// When the measured run starts and ends, as every shard is told it.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// What every shard needs to run its pairs.
#[derive(Clone)]
struct ShardPlan {
    target: Target,
    ep: Endpoint,
    plan: CyclePlan,
    tag: String,
    /// Time between two invitations of one pair.
    interval: Duration,
}

/// Runs the phase.
///
/// The pairs are split over one thread per CPU core, each with its own single-threaded
/// runtime that logs its pairs in and runs them: a pair's sockets, timers and task stay on one
/// thread, so a message never wakes a task on another thread. (On a multi-threaded runtime the
/// hand-offs between workers were a large share of the load generator's own CPU time, which
/// the server under test shares the machine with.) What is measured is the same.
pub async fn run(app: &App, ep: &Endpoint, plan: &CyclePlan, tag: &str) -> CycleReport {
    // Each pair must speak at least every ping interval, so it cycles at least that often.
    let min_pair_rate = 1.0 / f64::from(calling_protocol::PING_INTERVAL_SECS);
    let pairs = plan
        .pairs
        .clamp(1, ((plan.rate / min_pair_rate).floor() as u32).max(1));
    let shard_plan = ShardPlan {
        target: Target::Ours(app.clone()),
        ep: ep.clone(),
        plan: plan.clone(),
        tag: tag.to_owned(),
        interval: Duration::from_secs_f64(f64::from(pairs) / plan.rate),
    };
    let shards = std::thread::available_parallelism()
        .map_or(1, |n| n.get() as u32)
        .clamp(1, pairs);
    let (logged_in_tx, mut logged_in) = mpsc::unbounded_channel();
    let (window_tx, window) = watch::channel(None);
    let mut done = Vec::new();
    for shard in 0..shards {
        let indices: Vec<u32> = (shard..pairs).step_by(shards as usize).collect();
        done.push(spawn_shard(
            shard,
            indices,
            shard_plan.clone(),
            logged_in_tx.clone(),
            window.clone(),
        ));
    }
    drop(logged_in_tx);
    // Every shard reports its logins (or its end) before the clock starts.
    let mut active = 0;
    let mut pair_login_failures = 0;
    while let Some((ok, failed)) = logged_in.recv().await {
        active += ok;
        pair_login_failures += failed;
    }
    let start = Instant::now() + Duration::from_millis(200);
    let cpu_before = plan.servers.cpu_secs();
    let own = procfs::Processes(vec![std::process::id()]);
    let own_before = own.cpu_secs();
    let _ = window_tx.send(Some(Window {
        start,
        end: start + plan.duration,
    }));
    let mut total = PairResult::default();
    for shard in done {
        if let Ok(r) = shard.await {
            total.absorb(r);
        }
    }
    let server_cpu_secs = plan.servers.cpu_used(cpu_before);
    let own_cpu_secs = own.cpu_used(own_before);
    let per_invitation = |secs: Option<f64>| {
        secs.filter(|_| total.invitations > 0)
            .map(|s| s * 1e6 / total.invitations as f64)
    };
    let with_outcome = total
        .outcomes
        .iter()
        .filter(|(k, _)| k.as_str() != "lost")
        .map(|(_, v)| v)
        .sum();
    CycleReport {
        pairs: active,
        target_rate: plan.rate,
        duration_secs: plan.duration.as_secs_f64(),
        invitations: total.invitations,
        achieved_rate: total.invitations as f64 / plan.duration.as_secs_f64(),
        outcomes: total.outcomes,
        with_outcome,
        ended: total.ended,
        ring: Latency::of(&mut total.ring),
        accept: Latency::of(&mut total.accept),
        hangup: Latency::of(&mut total.hangup),
        pair_login_failures,
        server_cpu_secs,
        server_cpu_us_per_invitation: per_invitation(server_cpu_secs),
        loadgen_cpu_us_per_invitation: per_invitation(own_cpu_secs),
    }
}

/// Starts one shard's thread: it logs in the pairs `indices`, reports (logged in, failed) on
/// `logged_in`, waits for the window and runs them; the result arrives on the returned channel
/// (a shard that could not start reports all its pairs failed and no result).
fn spawn_shard(
    shard: u32,
    indices: Vec<u32>,
    sp: ShardPlan,
    logged_in: mpsc::UnboundedSender<(usize, usize)>,
    mut window: watch::Receiver<Option<Window>>,
) -> oneshot::Receiver<PairResult> {
    let (done_tx, done_rx) = oneshot::channel();
    let count = indices.len();
    let failed = logged_in.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("cycles-{shard}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(_) => {
                    let _ = logged_in.send((0, count));
                    return;
                }
            };
            let result = runtime.block_on(async move {
                let logins = login_pairs(&sp.target, &sp.ep, &indices, &sp.tag).await;
                let ok = logins.iter().filter(|(_, p)| p.is_some()).count();
                let _ = logged_in.send((ok, logins.len() - ok));
                drop(logged_in);
                let Ok(Some(w)) = window.wait_for(Option::is_some).await.map(|w| *w) else {
                    return PairResult::default();
                };
                run_shard(logins, &sp, w).await
            });
            let _ = done_tx.send(result);
        });
    if spawned.is_err() {
        let _ = failed.send((0, count));
    }
    done_rx
}

/// Runs one shard's pairs on the current (single-threaded) runtime.
async fn run_shard(logins: Vec<(u32, Option<Pair>)>, sp: &ShardPlan, w: Window) -> PairResult {
    let mut tasks = Vec::new();
    for (i, pair) in logins {
        let Some(pair) = pair else { continue };
        let first = w.start + Duration::from_secs_f64(f64::from(i) / sp.plan.rate);
        tasks.push(tokio::spawn(run_pair(
            pair,
            i,
            first,
            sp.interval,
            w.end,
            sp.plan.clone(),
        )));
    }
    let mut total = PairResult::default();
    for t in tasks {
        if let Ok(r) = t.await {
            total.absorb(r);
        }
    }
    total
}

/// Logs in the pairs `indices` (concurrently); each comes back with its index.
async fn login_pairs(
    target: &Target,
    ep: &Endpoint,
    indices: &[u32],
    tag: &str,
) -> Vec<(u32, Option<Pair>)> {
    let mut handles = Vec::new();
    for &i in indices {
        let (target, ep, tag) = (target.clone(), ep.clone(), tag.to_owned());
        handles.push((
            i,
            tokio::spawn(async move {
                let within = Duration::from_secs(20);
                let b_id = format!("{tag}b{i}");
                let a = target
                    .login(&ep, 2 * i, &format!("{tag}a{i}"), within)
                    .await
                    .ok()?;
                let b = target.login(&ep, 2 * i + 1, &b_id, within).await.ok()?;
                Some(Pair { a, b, b_id })
            }),
        ));
    }
    let mut out = Vec::new();
    for (i, h) in handles {
        out.push((i, h.await.ok().flatten()));
    }
    out
}

/// Two logged-in sessions: `a` invites, `b` (user `b_id`) answers.
struct Pair {
    a: Ws,
    b: Ws,
    b_id: String,
}

async fn run_pair(
    mut p: Pair,
    index: u32,
    first: Instant,
    interval: Duration,
    end: Instant,
    plan: CyclePlan,
) -> PairResult {
    let mut r = PairResult::default();
    let mut next = first;
    let mut request_id = index.wrapping_mul(1_000_000);
    while next < end {
        tokio::time::sleep_until(next).await;
        request_id = request_id.wrapping_add(1);
        r.invitations += 1;
        match one_cycle(&mut p, request_id, plan.step_timeout, &mut r).await {
            Ok(outcome) => *r.outcomes.entry(outcome.to_owned()).or_default() += 1,
            Err(_) => {
                // The pair's state is unknown after a lost step: count it and retire the pair.
                *r.outcomes.entry("lost".to_owned()).or_default() += 1;
                break;
            }
        }
        next += interval;
        // No catching up in bursts: a server that falls behind shows as a lower achieved rate.
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
    let _ = p.a.close(None).await;
    let _ = p.b.close(None).await;
    r
}

/// What the inviter learnt about its invitation.
enum InviterSaw {
    Sent,
    Outcome(&'static str),
}

/// One invite → accept → hangup; returns the invitation's outcome as the inviter saw it.
async fn one_cycle(
    p: &mut Pair,
    request_id: u32,
    step: Duration,
    r: &mut PairResult,
) -> Result<&'static str, ConnError> {
    let invite = ClientMessage::Invite {
        request_id,
        user_ids: vec![p.b_id.clone()],
        call_type: CallType::Video,
        is_group: false,
        group_id: None,
        room_id: None,
    };
    let sent_at = Instant::now();
    send(&mut p.a, &invite).await?;
    let (invite_id, room_id) = recv_until(&mut p.b, sent_at + step, "invited", |m| match m {
        ServerMessage::Invited(Invited {
            invite_id, room_id, ..
        }) => Some((invite_id, room_id)),
        _ => None,
    })
    .await?;
    r.ring.push(sent_at.elapsed());

    let accept_at = Instant::now();
    send(
        &mut p.b,
        &ClientMessage::Accept {
            request_id,
            invite_id: invite_id.clone(),
        },
    )
    .await?;
    // The inviter sees `inviteSent` first, then the outcome.
    loop {
        let saw = recv_until(
            &mut p.a,
            accept_at + step,
            "invitation outcome",
            |m| match m {
                ServerMessage::InviteSent(InviteSent { request_id: id, .. })
                    if id == request_id =>
                {
                    Some(InviterSaw::Sent)
                }
                ServerMessage::Accepted(Accepted { invite_id: id, .. }) if id == invite_id => {
                    Some(InviterSaw::Outcome("accepted"))
                }
                ServerMessage::Rejected(Rejected { invite_id: id, .. }) if id == invite_id => {
                    Some(InviterSaw::Outcome("rejected"))
                }
                ServerMessage::Busy(Busy { invite_id: id, .. }) if id == invite_id => {
                    Some(InviterSaw::Outcome("busy"))
                }
                ServerMessage::NoResponse(NoResponse { invite_id: id, .. }) if id == invite_id => {
                    Some(InviterSaw::Outcome("noResponse"))
                }
                ServerMessage::Error(ErrorReply {
                    request_id: Some(id),
                    ..
                }) if id == request_id => Some(InviterSaw::Outcome("error")),
                _ => None,
            },
        )
        .await?;
        match saw {
            InviterSaw::Sent => continue,
            InviterSaw::Outcome("accepted") => break,
            InviterSaw::Outcome(other) => return Ok(other),
        }
    }
    r.accept.push(accept_at.elapsed());
    recv_until(&mut p.b, accept_at + step, "joined", |m| match m {
        ServerMessage::Joined(Joined { request_id: id, .. }) if id == request_id => Some(Ok(())),
        ServerMessage::Error(ErrorReply {
            request_id: Some(id),
            code,
            ..
        }) if id == request_id => Some(Err(code)),
        _ => None,
    })
    .await?
    .map_err(|code| ConnError::Refused(format!("accept: {code:?}")))?;

    let hangup_at = Instant::now();
    send(&mut p.a, &ClientMessage::Hangup { room_id }).await?;
    recv_until(&mut p.b, hangup_at + step, "callEnded", |m| match m {
        ServerMessage::CallEnded(CallEnded { room_id: id, .. }) if id == room_id => Some(()),
        _ => None,
    })
    .await?;
    r.hangup.push(hangup_at.elapsed());
    r.ended += 1;
    Ok("accepted")
}
