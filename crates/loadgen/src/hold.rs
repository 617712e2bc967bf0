//! Phase "hold": log in as many concurrent sessions as asked (or as the open-file limits allow),
//! keep them alive with heartbeats, prove after the hold that every one still answers, and read
//! the server's resident memory before and after to get memory per session.

use crate::conn::Endpoint;
use crate::login_gate::{LoginGate, LoginResult};
use crate::procfs;
use crate::target::Target;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Settings of the phase.
#[derive(Debug, Clone)]
pub struct HoldPlan {
    pub target_sessions: u32,
    pub concurrent_logins: usize,
    pub ramp_limit: Duration,
    pub hold: Duration,
    pub servers: procfs::Processes,
}

/// What the phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct HoldReport {
    pub server: &'static str,
    pub target_sessions: u32,
    /// Sessions attempted after capping the target to what both processes' open-file limits allow.
    pub attempted: u32,
    pub capped_by: Option<String>,
    /// Why the ramp ended before `attempted` reached the (capped) target, if it did.
    pub stopped_by: Option<String>,
    pub logged_in: usize,
    pub login_failures: usize,
    pub failure_kinds: BTreeMap<String, usize>,
    pub ramp_secs: f64,
    pub logins_per_sec: f64,
    pub hold_secs: f64,
    /// Sessions that answered an echo round trip at the end of the hold: the number held.
    pub held: usize,
    pub dropped_during_hold: usize,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub server_bytes_per_session: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Hold,
    Verify,
    Stop,
}

/// Caps the target to the open-file limits of this process and of the server, keeping a margin
/// for listeners, epoll and files; returns the cap's reason when it applied.
fn capped(target: u32, servers: &procfs::Processes) -> (u32, Option<String>) {
    let margin = 64;
    let own = procfs::open_files_limit("self");
    let srv = servers.open_files_limit();
    let limit = match (own, srv) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(limit) = limit else {
        return (target, None);
    };
    let allowed = limit.saturating_sub(margin).min(u64::from(u32::MAX)) as u32;
    if allowed >= target {
        return (target, None);
    }
    let whose: Vec<&str> = [(own, "load generator's"), (srv, "server's")]
        .into_iter()
        .filter(|(l, _)| *l == Some(limit))
        .map(|(_, who)| who)
        .collect();
    (
        allowed,
        Some(format!("{} open-file limit {limit}", whose.join(" and "))),
    )
}

/// Runs the phase; every client task ends before this returns.
pub async fn run(target: &Target, ep: &Endpoint, plan: &HoldPlan, tag: &str) -> HoldReport {
    let (attempted, capped_by) = capped(plan.target_sessions, &plan.servers);
    let rss_before = plan.servers.rss_bytes();
    let (stage_tx, stage_rx) = watch::channel(Stage::Hold);
    let (login_tx, mut login_rx) = mpsc::unbounded_channel::<LoginResult>();
    let (check_tx, mut check_rx) = mpsc::unbounded_channel::<bool>();
    let dropped = Arc::new(AtomicUsize::new(0));
    let gate = LoginGate::new(plan.concurrent_logins);
    let failures: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let started = Instant::now();
    let ramp_deadline = started + plan.ramp_limit;
    let mut tasks = Vec::new();
    let (mut ok, mut failed) = (0usize, 0usize);
    let give_up_after = 100 + attempted as usize / 100;

    let mut spawned = 0u32;
    while spawned < attempted && Instant::now() < ramp_deadline && failed < give_up_after {
        let turn = gate.turn().await;
        // Collect results that are in so the failure bound applies while ramping.
        while let Ok(r) = login_rx.try_recv() {
            tally(r, &mut ok, &mut failed, &failures);
        }
        let (target, ep) = (target.clone(), ep.clone());
        let (login_tx, check_tx, mut stage) =
            (login_tx.clone(), check_tx.clone(), stage_rx.clone());
        let dropped = dropped.clone();
        let user_id = format!("{tag}{spawned}");
        let index = spawned;
        let login_within = plan.ramp_limit.min(Duration::from_secs(20));
        tasks.push(tokio::spawn(async move {
            let login = target.login(&ep, index, &user_id, login_within);
            let Ok(mut ws) = turn.login(login, &login_tx).await else {
                return;
            };
            let Ok(beat) = target.heartbeat() else { return };
            let mut tick = tokio::time::interval(target.heartbeat_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if crate::conn::send_text(&mut ws, beat.clone()).await.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    r = crate::conn::recv_text(&mut ws) => {
                        if r.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    changed = stage.changed() => {
                        let now = if changed.is_ok() { *stage.borrow_and_update() } else { Stage::Stop };
                        match now {
                            Stage::Hold => {}
                            Stage::Verify => {
                                let alive = target.echo(&mut ws, &user_id, Duration::from_secs(15)).await.is_ok();
                                let _ = check_tx.send(alive);
                            }
                            Stage::Stop => {
                                let _ = ws.close(None).await;
                                return;
                            }
                        }
                    }
                }
            }
        }));
        spawned += 1;
    }
    let stopped_by = if spawned >= attempted {
        None
    } else if failed >= give_up_after {
        Some(format!("{failed} failed logins"))
    } else {
        Some(format!("ramp time limit of {:?}", plan.ramp_limit))
    };
    drop(login_tx);
    drop(check_tx);
    // Every spawned login reports exactly once.
    while (ok + failed) < spawned as usize {
        match tokio::time::timeout_at(ramp_deadline + Duration::from_secs(25), login_rx.recv())
            .await
        {
            Ok(Some(r)) => tally(r, &mut ok, &mut failed, &failures),
            _ => break,
        }
    }
    let ramp = started.elapsed();

    tokio::time::sleep(plan.hold).await;
    let dropped_during_hold = dropped.load(Ordering::Relaxed);
    let _ = stage_tx.send(Stage::Verify);
    let mut held = 0usize;
    let expected = ok.saturating_sub(dropped_during_hold);
    let verify_deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = 0usize;
    while answered < expected {
        match tokio::time::timeout_at(verify_deadline, check_rx.recv()).await {
            Ok(Some(alive)) => {
                answered += 1;
                held += usize::from(alive);
            }
            _ => break,
        }
    }
    let rss_after = plan.servers.rss_bytes();
    let _ = stage_tx.send(Stage::Stop);
    let stop_deadline = Instant::now() + Duration::from_secs(20);
    for t in tasks {
        if tokio::time::timeout_at(stop_deadline, t).await.is_err() {
            break;
        }
    }
    let per_session = match (rss_before, rss_after) {
        (Some(b), Some(a)) if held > 0 => Some((a as f64 - b as f64) / held as f64),
        _ => None,
    };
    let failure_kinds = failures.lock().map(|m| m.clone()).unwrap_or_default();
    HoldReport {
        server: target.name(),
        target_sessions: plan.target_sessions,
        attempted: spawned,
        capped_by,
        stopped_by,
        logged_in: ok,
        login_failures: failed,
        failure_kinds,
        ramp_secs: ramp.as_secs_f64(),
        logins_per_sec: ok as f64 / ramp.as_secs_f64().max(1e-9),
        hold_secs: plan.hold.as_secs_f64(),
        held,
        dropped_during_hold,
        server_rss_before_bytes: rss_before,
        server_rss_after_bytes: rss_after,
        server_bytes_per_session: per_session,
    }
}

fn tally(
    r: LoginResult,
    ok: &mut usize,
    failed: &mut usize,
    kinds: &Mutex<BTreeMap<String, usize>>,
) {
    match r {
        Ok(()) => *ok += 1,
        Err(e) => {
            *failed += 1;
            // Group failures by the start of their message (details such as ports vary).
            let key: String = e.chars().take(60).collect();
            if let Ok(mut m) = kinds.lock() {
                *m.entry(key).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_within_the_open_file_limit_are_not_capped() {
        assert_eq!(capped(10, &procfs::Processes::default()), (10, None));
    }

    #[test]
    fn targets_beyond_it_are_capped_and_say_why() {
        let limit = procfs::open_files_limit("self").expect("limit");
        let (n, why) = capped(u32::MAX, &procfs::Processes(vec![std::process::id()]));
        assert_eq!(u64::from(n), limit - 64);
        assert_eq!(
            why,
            Some(format!(
                "load generator's and server's open-file limit {limit}"
            ))
        );
    }
}
