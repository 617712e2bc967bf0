//! The server's Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! Built on the `prometheus` crate: every counter and histogram is registered once at start and
//! kept as a handle, so the hot paths (a relayed signal, an invitation) cost an atomic add and
//! never format a label or look one up. Gauges of the registry's state (sessions, calls,
//! invitations ringing) are read at scrape time under the hub's lock, not tracked per message.
//! Labels are bounded: an outcome or limit kind from a fixed list, or a configured SDKAppID;
//! never a user ID or a room ID.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calling_protocol::ServerMessage;
use calling_registry::Outcome;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Latency buckets in seconds: 0.1 ms to 5 s (a ring is sent within a lock hold; an accept
/// waits for a human, which `+Inf` and the sum cover).
const RING_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// The label of each invitation outcome, in the order of `Handles::outcomes`.
const OUTCOMES: [&str; 5] = ["accepted", "rejected", "busy", "cancelled", "timed_out"];

const ACCEPT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Every cap or timeout that refuses or drops something; each site one label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--max-connections` refused a connection.
    Connections,
    /// `--max-pending-logins` refused a connection.
    PendingLogins,
    /// `--max-connections-per-address` refused a connection.
    PerAddress,
    /// `--header-timeout` ended a connection that was slow to send its headers.
    HeaderTimeout,
    /// `--idle-timeout` ended a connection whose reads or writes made no progress.
    IdleTimeout,
    /// `--login-timeout` closed a WebSocket that had not logged in.
    LoginTimeout,
    /// A frame over the protocol's size limit closed its connection (1009).
    FrameTooBig,
    /// The per-connection rate limit dropped a message.
    RateLimited,
    /// A connection that kept flooding was closed (1008).
    Flood,
    /// A silent session was dropped by the heartbeat timeout.
    HeartbeatTimeout,
    /// A session that did not read what it was sent (`--outbox-bytes`, or a write that made no
    /// progress) was dropped.
    TooSlow,
}

impl Limit {
    const ALL: [Limit; 11] = [
        Limit::Connections,
        Limit::PendingLogins,
        Limit::PerAddress,
        Limit::HeaderTimeout,
        Limit::IdleTimeout,
        Limit::LoginTimeout,
        Limit::FrameTooBig,
        Limit::RateLimited,
        Limit::Flood,
        Limit::HeartbeatTimeout,
        Limit::TooSlow,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::PendingLogins => "max_pending_logins",
            Limit::PerAddress => "max_connections_per_address",
            Limit::HeaderTimeout => "header_timeout",
            Limit::IdleTimeout => "idle_timeout",
            Limit::LoginTimeout => "login_timeout",
            Limit::FrameTooBig => "frame_too_big",
            Limit::RateLimited => "rate_limited",
            Limit::Flood => "flood",
            Limit::HeartbeatTimeout => "heartbeat_timeout",
            Limit::TooSlow => "too_slow",
        }
    }
}

/// When each invitation of the last ring timeout was received (oldest first, and by id), for
/// the accept latency: an invitation cannot be accepted after its ring timed out, so older
/// entries are dropped as new ones come, and the map stays as small as the invitations of one
/// ring timeout.
pub struct InviteTimes {
    order: VecDeque<(Instant, Arc<str>)>,
    by_id: HashMap<Arc<str>, Instant>,
    ring_timeout: Duration,
}

impl InviteTimes {
    pub fn new(ring_timeout: Duration) -> Self {
        InviteTimes {
            order: VecDeque::new(),
            by_id: HashMap::new(),
            ring_timeout,
        }
    }

    fn sent(&mut self, invite_id: &str, at: Instant) {
        while let Some((old_at, old)) = self.order.front() {
            if at.saturating_duration_since(*old_at) <= self.ring_timeout {
                break;
            }
            self.by_id.remove(old);
            self.order.pop_front();
        }
        let id: Arc<str> = Arc::from(invite_id);
        self.by_id.insert(id.clone(), at);
        self.order.push_back((at, id));
    }

    fn received(&self, invite_id: &str) -> Option<Instant> {
        self.by_id.get(invite_id).copied()
    }
}

/// The metrics of a cluster node's use of Redis (registered only on a cluster node).
#[derive(Clone)]
pub struct RedisMetrics {
    /// One command's round trip: the heartbeat and the deadline poll, each a single one.
    pub round_trip: Histogram,
    /// What a request waits on Redis to be decided: its reads and EXEC, every attempt.
    pub decision: Histogram,
    /// Commands that did not reach Redis (or got an error from it).
    pub errors: IntCounter,
    /// Transactions undone by a concurrent change to what they read, and run again.
    pub conflicts: IntCounter,
    /// Sessions of nodes taken for dead that this node reaped.
    pub reaped: IntCounter,
    /// Sessions of this node that others reaped while they took it for dead (their sockets
    /// were closed once it reached Redis again).
    pub lost: IntCounter,
}

/// The metrics of the embedded SFU (registered only when the server runs one).
#[derive(Clone)]
pub struct SfuMetrics {
    /// Members of calls with a participant in the SFU now.
    pub participants: IntGauge,
    /// Members who joined the SFU (each membership once, however often it renegotiates).
    pub joins: IntCounter,
    /// `sfu` and `sfuViews` messages refused (no SFU, not a member, unusable SDP, nothing to
    /// answer, too many views).
    pub refusals: IntCounter,
}

impl SfuMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(SfuMetrics {
            participants: reg(
                registry,
                IntGauge::new(
                    "calling_sfu_participants",
                    "Members of calls with a participant in the SFU",
                ),
            )?,
            joins: reg(
                registry,
                IntCounter::new("calling_sfu_joins_total", "Members who joined the SFU"),
            )?,
            refusals: reg(
                registry,
                IntCounter::new(
                    "calling_sfu_refusals_total",
                    "sfu and sfuViews messages refused (not a member, unusable SDP, no offer to answer, too many views)",
                ),
            )?,
        })
    }
}

/// The metrics of one server. Their definitions are fixed (a unit test registers them); were
/// registering them to fail anyway, the server logs it and serves without metrics.
pub struct Metrics(Option<Handles>);

/// A handle for every metric and label value.
struct Handles {
    registry: Registry,
    sessions: IntGaugeVec,
    pending_connections: IntGauge,
    calls: IntGauge,
    ringing: IntGauge,
    /// By outcome, in [`OUTCOMES`]' order.
    outcomes: [IntCounter; 5],
    ring_latency: Histogram,
    accept_latency: Histogram,
    relayed_messages: IntCounter,
    relayed_bytes: IntCounter,
    limits: [IntCounter; Limit::ALL.len()],
    resumed: IntCounter,
    resume_refused: IntCounter,
    logins: IntCounter,
    draining: IntGauge,
}

/// What the hub reports at scrape time.
pub struct Snapshot<'a> {
    /// Every configured SDKAppID (each gets a series, 0 when nobody is logged in).
    pub apps: &'a mut dyn Iterator<Item = u64>,
    /// The SDKAppID of each session logged in.
    pub sessions: &'a mut dyn Iterator<Item = u64>,
    pub pending_connections: usize,
    pub calls: usize,
    pub ringing: usize,
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn new() -> Self {
        match Handles::register() {
            Ok(handles) => Metrics(Some(handles)),
            Err(err) => {
                tracing::error!(%err, "metrics could not be registered; /metrics stays empty");
                Metrics(None)
            }
        }
    }

    pub fn limit_hit(&self, limit: Limit) {
        if let Some(h) = &self.0 {
            // ALL lists every variant once, in declaration order.
            h.limits[limit as usize].inc();
        }
    }

    pub fn ring_latency(&self, seconds: f64) {
        if let Some(h) = &self.0 {
            h.ring_latency.observe(seconds);
        }
    }

    pub fn accept_latency(&self, seconds: f64) {
        if let Some(h) = &self.0 {
            h.accept_latency.observe(seconds);
        }
    }

    /// One signal relayed, `bytes` long as sent to its recipient.
    pub fn relayed(&self, bytes: usize) {
        if let Some(h) = &self.0 {
            h.relayed_messages.inc();
            h.relayed_bytes
                .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        }
    }

    pub fn resume(&self, resumed: bool) {
        if let Some(h) = &self.0 {
            if resumed {
                h.resumed.inc()
            } else {
                h.resume_refused.inc()
            }
        }
    }

    /// The server began draining (it never stops: the process exits at its end).
    pub fn set_draining(&self, draining: bool) {
        if let Some(h) = &self.0 {
            h.draining.set(i64::from(draining));
        }
    }

    pub fn login(&self) {
        if let Some(h) = &self.0 {
            h.logins.inc();
        }
    }

    /// Counts what one registry request did to invitations: the outcomes it decided (each
    /// counts whether or not anyone online hears of it), and from the messages it delivers the
    /// latencies. `received` is when the client request that made them arrived, if one did:
    /// the ring latency runs from it to `invited`, and the accept latency from an invitation's
    /// to its acceptance's.
    pub fn count(&self, outcome: &Outcome, received: Option<Instant>, invites: &mut InviteTimes) {
        let Some(h) = &self.0 else {
            return;
        };
        let d = outcome.decided;
        let decided = [d.accepted, d.rejected, d.busy, d.cancelled, d.timed_out];
        for (counter, n) in h.outcomes.iter().zip(decided) {
            if n > 0 {
                counter.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
        let mut joined = false;
        let mut accepted_invite = None;
        for (_, msg) in &outcome.deliveries {
            match msg {
                ServerMessage::InviteSent(sent) => {
                    if let Some(at) = received {
                        invites.sent(&sent.invite_id, at);
                    }
                }
                ServerMessage::Invited(_) => {
                    if let Some(at) = received {
                        h.ring_latency.observe(at.elapsed().as_secs_f64());
                    }
                }
                ServerMessage::Joined(_) => joined = true,
                ServerMessage::Accepted(answer) => accepted_invite = Some(&answer.invite_id),
                _ => {}
            }
        }
        if let (true, Some(invite)) = (joined, accepted_invite) {
            if let Some(at) = invites.received(invite) {
                h.accept_latency.observe(at.elapsed().as_secs_f64());
            }
        }
    }

    /// Sets the gauges from `snapshot`.
    pub fn set(&self, snapshot: Snapshot<'_>) {
        if let Some(h) = &self.0 {
            h.set(snapshot);
        }
    }

    /// Registers the metrics of a cluster node's Redis; None where metrics are off.
    pub fn redis(&self) -> Option<RedisMetrics> {
        let h = self.0.as_ref()?;
        match RedisMetrics::register(&h.registry) {
            Ok(redis) => Some(redis),
            Err(err) => {
                tracing::error!(%err, "the Redis metrics could not be registered");
                None
            }
        }
    }

    /// Registers the metrics of the embedded SFU; None where metrics are off.
    pub fn sfu(&self) -> Option<SfuMetrics> {
        let h = self.0.as_ref()?;
        match SfuMetrics::register(&h.registry) {
            Ok(sfu) => Some(sfu),
            Err(err) => {
                tracing::error!(%err, "the SFU metrics could not be registered");
                None
            }
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let Some(h) = &self.0 else {
            return Ok(String::new());
        };
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&h.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers a metric and hands it back: every handle is made this way.
fn reg<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<C, prometheus::Error>,
) -> Result<C, prometheus::Error> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl RedisMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let histogram = |name: &str, help: &str| {
            reg(
                registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(RING_BUCKETS.to_vec())),
            )
        };
        Ok(RedisMetrics {
            round_trip: histogram(
                "calling_redis_round_trip_seconds",
                "One command's round trip to Redis (the heartbeat's and the deadline poll's)",
            )?,
            decision: histogram(
                "calling_redis_decision_seconds",
                "What a request waits to be decided in Redis: its turn, its reads and EXEC, retries included",
            )?,
            errors: reg(
                registry,
                IntCounter::new(
                    "calling_redis_errors_total",
                    "Redis commands that failed (Redis unreachable or answering an error)",
                ),
            )?,
            conflicts: reg(
                registry,
                IntCounter::new(
                    "calling_redis_conflicts_total",
                    "Transactions undone by a concurrent change (another node) and run again",
                ),
            )?,
            reaped: reg(
                registry,
                IntCounter::new(
                    "calling_redis_sessions_reaped_total",
                    "Sessions of nodes silent past the node timeout that this node reaped",
                ),
            )?,
            lost: reg(
                registry,
                IntCounter::new(
                    "calling_redis_sessions_lost_total",
                    "Sessions of this node that others reaped while it was silent past the node timeout",
                ),
            )?,
        })
    }
}

impl Handles {
    /// Registers every metric.
    fn register() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let sessions = reg(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "calling_sessions",
                    "Sessions logged in (away ones included)",
                ),
                &["app"],
            ),
        )?;
        let pending_connections = reg(
            &registry,
            IntGauge::new(
                "calling_pending_connections",
                "Connections open that have not logged in (plain HTTP included)",
            ),
        )?;
        let calls = reg(
            &registry,
            IntGauge::new("calling_calls", "Calls in progress"),
        )?;
        let ringing = reg(
            &registry,
            IntGauge::new(
                "calling_invitations_ringing",
                "Invitees whose invitation is ringing",
            ),
        )?;

        let outcome_vec = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "calling_invitation_outcomes_total",
                    "How invitations ended, one per invitee",
                ),
                &["outcome"],
            ),
        )?;
        let outcomes = OUTCOMES.map(|label| outcome_vec.with_label_values(&[label]));

        let ring_latency = reg(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "calling_ring_latency_seconds",
                    "From an invite received to the invitee's session being sent `invited`",
                )
                .buckets(RING_BUCKETS.to_vec()),
            ),
        )?;
        let accept_latency = reg(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "calling_accept_latency_seconds",
                    "From an invite received to its acceptance",
                )
                .buckets(ACCEPT_BUCKETS.to_vec()),
            ),
        )?;

        let relayed_messages = reg(
            &registry,
            IntCounter::new(
                "calling_relayed_signals_total",
                "Signaling messages relayed between participants of a call",
            ),
        )?;
        let relayed_bytes = reg(
            &registry,
            IntCounter::new(
                "calling_relayed_signal_bytes_total",
                "Bytes of relayed signaling messages as sent to their recipients",
            ),
        )?;

        let limit_vec = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "calling_limit_hits_total",
                    "Connections or messages refused or dropped by a cap or timeout",
                ),
                &["limit"],
            ),
        )?;
        let limits = Limit::ALL.map(|l| limit_vec.with_label_values(&[l.label()]));

        let resume_vec = reg(
            &registry,
            IntCounterVec::new(
                Opts::new("calling_resumes_total", "Session resumes by result"),
                &["result"],
            ),
        )?;
        let resumed = resume_vec.with_label_values(&["resumed"]);
        let resume_refused = resume_vec.with_label_values(&["refused"]);
        let logins = reg(
            &registry,
            IntCounter::new("calling_logins_total", "Full logins that succeeded"),
        )?;
        let draining = reg(
            &registry,
            IntGauge::new(
                "calling_draining",
                "1 once the server is draining (refusing new sockets, its clients told to move)",
            ),
        )?;

        Ok(Handles {
            registry,
            sessions,
            pending_connections,
            calls,
            ringing,
            outcomes,
            ring_latency,
            accept_latency,
            relayed_messages,
            relayed_bytes,
            limits,
            resumed,
            resume_refused,
            logins,
            draining,
        })
    }

    fn set(&self, snapshot: Snapshot<'_>) {
        let mut by_app: std::collections::HashMap<u64, i64> =
            snapshot.apps.map(|app| (app, 0)).collect();
        for app in snapshot.sessions {
            // Only configured apps can log in, so this adds no label value.
            if let Some(n) = by_app.get_mut(&app) {
                *n += 1;
            }
        }
        for (app, n) in by_app {
            self.sessions.with_label_values(&[&app.to_string()]).set(n);
        }
        self.pending_connections
            .set(gauge_value(snapshot.pending_connections));
        self.calls.set(gauge_value(snapshot.calls));
        self.ringing.set(gauge_value(snapshot.ringing));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_handles_follow_the_declaration_order() {
        for (i, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(*limit as usize, i, "{limit:?}");
        }
        assert!(Handles::register().is_ok());
        let metrics = Metrics::new();
        metrics.limit_hit(Limit::Flood);
        let text = metrics.encode().unwrap();
        assert!(text.contains("calling_limit_hits_total{limit=\"flood\"} 1"));
        assert!(text.contains("calling_limit_hits_total{limit=\"too_slow\"} 0"));
    }
}
