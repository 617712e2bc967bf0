//! `calling-loadgen`: drives calling-server (or PeerJS's `peer` server) over loopback with real
//! WebSocket clients and writes what it measured as JSON.
//!
//! Phases, each bounded in count and time: `hold` (concurrent logged-in sessions and server
//! memory per session), `cycles` (invite → accept → hangup at a target rate; calling-server
//! only), `relay` (signaling relay latency and throughput, which both servers do) and
//! `failover` (a calling-server cluster only: a node killed under resumable sessions, which
//! resume on the others).

use calling_loadgen::{conn, cycle, failover, hold, procfs, relay, target};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "calling-loadgen",
    about = "Load generator for calling-server and PeerJS's server (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    server: Server,
}

#[derive(Subcommand)]
enum Server {
    /// Load calling-server.
    Ours {
        /// WebSocket URL of the server (a loopback address); for a cluster, every node's,
        /// comma-separated: clients are spread over them, the two of each pair on different
        /// nodes.
        #[arg(long, value_delimiter = ',', default_value = "ws://127.0.0.1:8080/ws")]
        url: Vec<String>,
        /// The app the clients log in to, as the server was given it: SDKAPPID=SECRETKEY.
        #[arg(long)]
        app: String,
        /// Target invitations per second in the cycles phase: one step per rate, in order (the
        /// first is the target; lower ones show the rate the server sustains within latency).
        #[arg(long, value_delimiter = ',', default_value = "10000,7500,5000,2500")]
        rates: Vec<f64>,
        /// Pairs of sessions running invitation cycles.
        /// (Each pair waits for its cycle to end before the next, so the pairs must be many
        /// enough that one cycle's latency does not cap the rate.)
        #[arg(long, default_value_t = 2_000)]
        cycle_pairs: u32,
        /// Seconds each step of the cycles phase runs.
        #[arg(long, default_value_t = 6.0)]
        cycle_secs: f64,
        /// Resumable sessions on the first node in the failover phase (which kills that node:
        /// the first --server-pid).
        #[arg(long, default_value_t = 1_000)]
        failover_sessions: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Load PeerJS's `peer` server (what both servers share: connections held, relay).
    Peerjs {
        /// WebSocket URL of the server's socket endpoint (a loopback address).
        #[arg(long, default_value = "ws://127.0.0.1:9000/peerjs")]
        url: String,
        /// The server's connection key.
        #[arg(long, default_value = "peerjs")]
        key: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// Process id of the server, to read its memory, CPU time and open-file limit from /proc;
    /// for a cluster, every node's, comma-separated (figures are then theirs together).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Concurrent logged-in sessions to reach in the hold phase (capped by open-file limits).
    #[arg(long, default_value_t = 50_000)]
    sessions: u32,
    /// Longest time the hold phase may spend logging sessions in.
    #[arg(long, default_value_t = 45.0)]
    ramp_secs: f64,
    /// Seconds to hold the sessions (longer than the heartbeat timeout proves they stay up).
    #[arg(long, default_value_t = 12.0)]
    hold_secs: f64,
    /// Logins in flight at once while ramping.
    #[arg(long, default_value_t = 256)]
    concurrent_logins: usize,
    /// Source addresses to spread clients over (127.0.0.2 upwards); 0 = kernel's choice.
    #[arg(long, default_value_t = 4)]
    sources: u32,
    /// Clients per source address.
    #[arg(long, default_value_t = 20_000)]
    per_source: u32,
    /// Pairs in the relay throughput run.
    #[arg(long, default_value_t = 1_000)]
    relay_pairs: u32,
    /// Messages per second each relay sender stays under (calling-server's per-connection
    /// limit is 50/s sustained).
    #[arg(long, default_value_t = 40.0)]
    relay_rate: f64,
    /// Messages in flight per pair in the relay throughput run.
    #[arg(long, default_value_t = 16)]
    relay_window: u32,
    /// Seconds of the relay throughput run.
    #[arg(long, default_value_t = 8.0)]
    relay_secs: f64,
    /// Pairs in the light-load relay latency run (one message in flight each, paced like the
    /// throughput run).
    #[arg(long, default_value_t = 10)]
    latency_pairs: u32,
    /// Seconds of the light-load relay latency run.
    #[arg(long, default_value_t = 5.0)]
    latency_secs: f64,
    /// Phases to run, comma-separated: hold, cycles, relay, failover (not by default).
    #[arg(long, default_value = "hold,cycles,relay")]
    phases: String,
    /// Write the JSON report here (it is printed to stdout as well).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Common {
    fn servers(&self) -> procfs::Processes {
        procfs::Processes(self.server_pid.clone())
    }
}

/// The whole JSON report.
#[derive(Serialize)]
struct Report {
    server: &'static str,
    hold: Option<hold::HoldReport>,
    /// One entry per rate step.
    cycles: Vec<cycle::CycleReport>,
    relay_latency: Option<relay::RelayReport>,
    relay_throughput: Option<relay::RelayReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failover: Option<failover::FailoverReport>,
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error("{0}")]
    Conn(#[from] conn::ConnError),
    #[error("--app must be SDKAPPID=SECRETKEY")]
    App,
    #[error("the failover phase needs two or more --url (nodes) and the first one's --server-pid")]
    Failover,
    #[error("runtime: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calling-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), MainError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut failover_sessions = 0;
    let (target, url, common, cycles) = match cli.server {
        Server::Ours {
            url,
            app,
            rates,
            cycle_pairs,
            cycle_secs,
            failover_sessions: sessions,
            common,
        } => {
            failover_sessions = sessions;
            let (id, key) = app.split_once('=').ok_or(MainError::App)?;
            let app = conn::ours::App {
                id: id.trim().parse().map_err(|_| MainError::App)?,
                key: key.to_owned(),
            };
            let plans = rates
                .into_iter()
                .filter(|r| *r > 0.0)
                .map(|rate| cycle::CyclePlan {
                    pairs: cycle_pairs,
                    rate,
                    duration: Duration::from_secs_f64(cycle_secs),
                    step_timeout: Duration::from_secs(5),
                    servers: common.servers(),
                })
                .collect();
            (target::Target::Ours(app), url, common, plans)
        }
        Server::Peerjs { url, key, common } => (
            target::Target::PeerJs { key },
            vec![url],
            common,
            Vec::new(),
        ),
    };
    let ep = conn::Endpoint::new(&url, common.sources, common.per_source)?;
    let wants = |p: &str| common.phases.split(',').any(|x| x.trim() == p);
    // Distinct user ids per run and phase, so nothing collides with sessions of an earlier run,
    // nor of another load generator running at the same time (the same user logging in again
    // would kick the first session).
    let run_tag = format!(
        "{:x}p{}",
        conn::unix_now() % 0x00ff_ffff,
        std::process::id()
    );
    let out = common.out.as_deref();
    let report = runtime.block_on(async {
        let mut report = Report {
            server: target.name(),
            hold: None,
            cycles: Vec::new(),
            relay_latency: None,
            relay_throughput: None,
            failover: None,
        };
        if wants("hold") {
            let plan = hold::HoldPlan {
                target_sessions: common.sessions,
                concurrent_logins: common.concurrent_logins,
                ramp_limit: Duration::from_secs_f64(common.ramp_secs),
                hold: Duration::from_secs_f64(common.hold_secs),
                servers: common.servers(),
            };
            eprintln!(
                "[loadgen] {}: hold phase, target {} sessions",
                target.name(),
                plan.target_sessions
            );
            report.hold = Some(hold::run(&target, &ep, &plan, &format!("h{run_tag}_")).await);
            save(&report, out)?;
        }
        if let (true, target::Target::Ours(app)) = (wants("cycles"), &target) {
            for (step, plan) in cycles.iter().enumerate() {
                eprintln!(
                    "[loadgen] {}: cycles, {} invitations/s for {:?}",
                    target.name(),
                    plan.rate,
                    plan.duration
                );
                settle(&common).await;
                let tag = format!("c{run_tag}s{step}_");
                report.cycles.push(cycle::run(app, &ep, plan, &tag).await);
                save(&report, out)?;
            }
        }
        if wants("relay") {
            eprintln!("[loadgen] {}: relay phase", target.name());
            settle(&common).await;
            let latency = relay::RelayPlan {
                pairs: common.latency_pairs,
                window: 1,
                duration: Duration::from_secs_f64(common.latency_secs),
                max_per_pair: u64::MAX,
                rate_per_pair: Some(common.relay_rate),
                servers: common.servers(),
            };
            report.relay_latency =
                Some(relay::run(&target, &ep, &latency, &format!("l{run_tag}_")).await);
            save(&report, out)?;
            settle(&common).await;
            let throughput = relay::RelayPlan {
                pairs: common.relay_pairs,
                window: common.relay_window,
                duration: Duration::from_secs_f64(common.relay_secs),
                max_per_pair: u64::MAX,
                rate_per_pair: Some(common.relay_rate),
                servers: common.servers(),
            };
            report.relay_throughput =
                Some(relay::run(&target, &ep, &throughput, &format!("r{run_tag}_")).await);
            save(&report, out)?;
        }
        if let (true, target::Target::Ours(app)) = (wants("failover"), &target) {
            let plan = failover::FailoverPlan {
                sessions: failover_sessions,
                victim_pid: *common.server_pid.first().ok_or(MainError::Failover)?,
                nodes: u32::try_from(url.len()).unwrap_or(u32::MAX),
                concurrent_logins: common.concurrent_logins,
            };
            if plan.nodes < 2 {
                return Err(MainError::Failover);
            }
            settle(&common).await;
            let tag = format!("f{run_tag}_");
            report.failover = Some(failover::run(app, &ep, &plan, &tag).await);
            save(&report, out)?;
        }
        Ok::<_, MainError>(report)
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Lets the server finish the previous phase's work before the next is measured.
async fn settle(common: &Common) {
    if !common.servers().settle(Duration::from_secs(15)).await {
        eprintln!("[loadgen] the server did not go idle within 15 s; measuring anyway");
    }
}

/// Writes the report so far, so a run cut short by its time bound still leaves its figures.
fn save(report: &Report, out: Option<&Path>) -> Result<(), MainError> {
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_string_pretty(report)?)?;
    }
    Ok(())
}
