//! Phase "failover" (a calling-server cluster only): resumable sessions logged in on the first
//! node, whose process the load generator then kills (SIGKILL, a crash). Each client sees its
//! socket end and at once resumes its session on another node (the others in turn), as an SDK
//! reconnecting through a load balancer would. Measures, from the kill, the time until each
//! session is resumed elsewhere.

use crate::conn::ours::{login_resumable, resume, App};
use crate::conn::{recv_text, ConnError, Endpoint};
use crate::login_gate::{LoginGate, LoginResult};
use crate::stats::Latency;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Settings of the phase.
#[derive(Debug, Clone)]
pub struct FailoverPlan {
    /// Resumable sessions on the first node.
    pub sessions: u32,
    /// The first node's process, killed once they are all logged in.
    pub victim_pid: u32,
    /// How many nodes the endpoint has (at least 2).
    pub nodes: u32,
    /// Logins in flight at once.
    pub concurrent_logins: usize,
}

/// What the phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub sessions: u32,
    pub logged_in: usize,
    pub resumed: usize,
    /// Why sessions were not resumed (or not logged in), by error.
    pub failures: BTreeMap<String, usize>,
    /// The kill → `resumed` on another node, per session.
    pub kill_to_resumed: Latency,
}

/// Longest any one step (a login, a resume) may take.
const STEP: Duration = Duration::from_secs(30);

/// Runs the phase; every client task ends before this returns.
pub async fn run(app: &App, ep: &Endpoint, plan: &FailoverPlan, tag: &str) -> FailoverReport {
    let nodes = plan.nodes.max(2);
    let (killed_tx, killed_rx) = watch::channel(None::<Instant>);
    let gate = LoginGate::new(plan.concurrent_logins);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<LoginResult>();
    let mut tasks = Vec::new();
    for i in 0..plan.sessions {
        let (app, ep, gate, ready, mut killed) = (
            app.clone(),
            ep.clone(),
            gate.clone(),
            ready_tx.clone(),
            killed_rx.clone(),
        );
        let user = format!("{tag}f{i}");
        // Client index i·nodes is on the first node; i·nodes + k on node k.
        let on_first = i * nodes;
        let elsewhere = on_first + 1 + i % (nodes - 1);
        tasks.push(tokio::spawn(async move {
            let login = login_resumable(&ep, on_first, &app, &user, STEP);
            let (mut ws, token) = match gate.turn().await.login(login, &ready).await {
                Ok(ok) => ok,
                Err(e) => return Err(format!("login: {e}")),
            };
            drop(ready);
            // The socket ends when the node dies (nothing is sent to an idle session before).
            while recv_text(&mut ws).await.is_ok() {}
            let killed_at = loop {
                if let Some(at) = *killed.borrow_and_update() {
                    break at;
                }
                if killed.changed().await.is_err() {
                    return Err("the node was never killed".into());
                }
            };
            resume(&ep, elsewhere, &app, &user, &token, STEP)
                .await
                .map(|_ws| killed_at.elapsed())
                .map_err(|e: ConnError| format!("resume: {e}"))
        }));
    }
    drop(ready_tx);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut logged_in = 0;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => logged_in += 1,
            Err(e) => *failures.entry(format!("login: {e}")).or_default() += 1,
        }
    }
    eprintln!("[loadgen] failover: {logged_in} resumable sessions on the first node; killing it");
    // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
    let killed = unsafe { libc::kill(plan.victim_pid as libc::pid_t, libc::SIGKILL) } == 0;
    let _ = killed_tx.send(Some(Instant::now()));
    if !killed {
        *failures
            .entry(format!("kill: {}", std::io::Error::last_os_error()))
            .or_default() += 1;
    }
    let mut times = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(took)) => times.push(took),
            Ok(Err(e)) if e.starts_with("login") => {}
            Ok(Err(e)) => *failures.entry(e).or_default() += 1,
            Err(e) => *failures.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    FailoverReport {
        sessions: plan.sessions,
        logged_in,
        resumed: times.len(),
        failures,
        kill_to_resumed: Latency::of(&mut times),
    }
}
