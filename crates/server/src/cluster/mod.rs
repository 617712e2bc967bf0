//! Several `calling-server` nodes sharing one registry in Redis (`--redis URL`).
//!
//! Each request is decided by an optimistic transaction ([`txn`]): the node WATCHes and reads
//! the entries the request names, runs the ordinary registry code on them, and writes back what
//! changed, the ring deadlines, and the deliveries, in one MULTI/EXEC; a concurrent change to
//! any entry read aborts it and it runs again. Redis executes one EXEC at a time, so each
//! outcome is decided exactly once, whichever nodes race for it.
//!
//! Deliveries are appended inside that EXEC to the stream of the node holding each recipient's
//! socket (this node's own included), so every session receives its messages in the order the
//! outcomes were decided, and a node cut off from Redis for a moment misses none of them. Every node polls the shared deadline set, so an
//! invitation's ring timeout is delivered whichever node is alive.

mod deliveries;
mod liveness;
pub use liveness::DEFAULT_NODE_TIMEOUT;
mod read;
mod records;
mod sfu;
mod txn;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use calling_protocol::{ErrorCode, RoomId, ServerMessage};
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::hub::{Hub, LinkId};
use crate::metrics::RedisMetrics;
use crate::registry::{Outcome, Refusal, SessionId};
use crate::request::Request;
pub use deliveries::{Delivery, Takeover};
pub use records::{token_hash, Clock};
pub use sfu::{OwnedCalls, SfuAsk, SfuMember, SfuRequest};

/// Session ids are `node << SESSION_BITS | n`: unique across the cluster without asking Redis.
const SESSION_BITS: u32 = 40;

/// How often each node looks for ring deadlines that have passed.
const DEADLINE_POLL: Duration = Duration::from_millis(50);

/// Most deadlines one poll handles; the rest wait for the next poll.
const DEADLINES_PER_POLL: isize = 256;

/// How often a request runs again after concurrent changes aborted it, before giving up.
const MAX_ATTEMPTS: usize = 32;

/// Idle connections kept for transactions.
const IDLE_CONNECTIONS: usize = 64;

/// Most decisions a node runs against Redis at once; the others wait their turn in the node.
/// Each holds a connection of its own (WATCH belongs to a connection): without a bound, a burst
/// (thousands of sockets closing at once) opened thousands of connections to Redis, whose
/// answers then came too late and every node took Redis, and the others, for gone.
const CONCURRENT_DECISIONS: usize = 32;

/// Longest a command may wait for Redis's answer before the node takes Redis for unreachable.
/// Well above what a loaded machine adds to a round trip (the client's default, 500 ms, made a
/// node starved of CPU for a moment drop its sessions' decisions); a Redis that is down fails
/// at once anyway (the connection is refused or reset).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest a new connection to Redis may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// How the node's connections to Redis are made.
fn connection_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
}

/// One registry operation decided in the shared store.
#[derive(Debug, Clone)]
pub enum Op {
    /// A client request of a session logged in as `user` of `app`.
    Request {
        session: SessionId,
        app: u64,
        user: Arc<str>,
        request: Request,
    },
    /// A verified login of a session of this node (resumable if it has a token hash).
    Login {
        session: SessionId,
        app: u64,
        user: Arc<str>,
        token_hash: Option<String>,
    },
    /// A session of this node ended, through its socket `link` (a late end from a socket that
    /// no longer holds the session changes nothing).
    Leave {
        session: SessionId,
        link: LinkId,
        app: u64,
        user: Arc<str>,
    },
    /// The ring deadline `member` of `room` may have passed.
    Expire { room: RoomId, member: String },
    /// A resumable session's socket dropped: it keeps everything for the resume grace.
    Suspend {
        session: SessionId,
        link: LinkId,
        app: u64,
        user: Arc<str>,
    },
    /// A new socket `link` of this node takes back `user`'s session whose token has this hash,
    /// with every message after `last_seq` (refused if it has ended).
    Resume {
        app: u64,
        user: Arc<str>,
        token_hash: String,
        last_seq: u64,
        link: u64,
    },
    /// The resume grace of `user`'s session may have run out.
    ExpireAway {
        app: u64,
        user: Arc<str>,
        member: String,
    },
    /// Node `node` died: `user`'s session, if still that node's, is lost.
    Reap { app: u64, user: Arc<str>, node: u64 },
    /// Whether the session of an `sfu` or `sfuViews` message is a member of its call (the
    /// message counts as received for a resume).
    SfuMember(SfuMember),
    /// A message of this node's SFU for a member, if its session is still the member's:
    /// numbered and kept like any, for whichever node holds the session.
    SfuMessage {
        member: SfuMember,
        message: ServerMessage,
    },
    /// The node whose SFU served call `room` died: each member is told to join again
    /// (`sfuRejoin`), which a live node's SFU then serves.
    SfuLost { room: RoomId },
}

/// Why a resume did not take a session back.
#[derive(Debug)]
pub enum ResumeRefusal {
    /// The session was replaced by a login elsewhere: the SDK must not log in again.
    Kicked,
    Refused(Refusal),
}

/// The answer to a request that could not reach the shared registry.
fn unavailable(err: &redis::RedisError) -> Refusal {
    debug!(%err, "a request could not reach the shared registry");
    Refusal {
        code: ErrorCode::Unavailable,
        message: "the server cannot reach its shared registry: nothing was decided, try again"
            .into(),
    }
}

/// Connections each used by one transaction at a time (WATCH belongs to a connection).
struct Pool {
    client: redis::Client,
    idle: Mutex<Vec<MultiplexedConnection>>,
}

impl Pool {
    async fn get(&self) -> redis::RedisResult<MultiplexedConnection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                self.client
                    .get_multiplexed_async_connection_with_config(&connection_config())
                    .await
            }
        }
    }

    fn clear(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn put(&self, conn: MultiplexedConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }
}

/// This node's membership of the cluster.
pub struct Cluster {
    pool: Pool,
    /// Whether the last command reached Redis (the deadline poll tries every 50 ms).
    store_reached: AtomicBool,
    /// Whether the node is reading its stream of deliveries.
    subscribed: AtomicBool,
    /// The cluster's live calls and ringing invitees, as of the last deadline poll.
    calls: AtomicUsize,
    ringing: AtomicUsize,
    node: u64,
    clock: Clock,
    ring_timeout: Duration,
    resume_grace: Duration,
    /// How long a node may be silent before the others reap its sessions.
    node_timeout: Duration,
    /// Most bytes of messages a resumable session's journal keeps (`--outbox-bytes`, as in a
    /// single process).
    journal_bytes: usize,
    /// Set once the node's metrics exist (after this); unset where metrics are off.
    metrics: OnceLock<RedisMetrics>,
    /// [`CONCURRENT_DECISIONS`] permits.
    decisions: tokio::sync::Semaphore,
    /// The [`records::EPOCH`] this node saw last.
    epoch: Mutex<String>,
}

impl Cluster {
    /// Connects to Redis at `url` and takes a node number. Returns the cluster and the
    /// connection that reads the node's deliveries, to hand to [`run`] once the hub exists.
    pub async fn connect(
        url: &str,
        config: &Config,
    ) -> redis::RedisResult<(Arc<Cluster>, MultiplexedConnection)> {
        let client = redis::Client::open(url)?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await?;
        let node: u64 = redis::cmd("INCR")
            .arg(records::NODE_COUNTER)
            .query_async(&mut conn)
            .await?;
        let epoch = liveness::join_epoch(&mut conn).await?;
        info!(node, "joined the cluster");
        let pool = Pool {
            client,
            idle: Mutex::new(vec![conn]),
        };
        let cluster = Cluster {
            pool,
            store_reached: AtomicBool::new(true),
            subscribed: AtomicBool::new(true),
            calls: AtomicUsize::new(0),
            ringing: AtomicUsize::new(0),
            node,
            clock: Clock::new(),
            ring_timeout: config.ring_timeout,
            resume_grace: config.resume_grace,
            node_timeout: config.node_timeout,
            journal_bytes: config.limits.outbox_bytes,
            metrics: OnceLock::new(),
            decisions: tokio::sync::Semaphore::new(CONCURRENT_DECISIONS),
            epoch: Mutex::new(epoch),
        };
        let cluster = Arc::new(cluster);
        let reader = cluster.reader().await?;
        Ok((cluster, reader))
    }

    /// A connection for reading the node's stream: its reads block for up to [`READ_BLOCK`].
    async fn reader(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = connection_config()
            .set_response_timeout(Some(deliveries::READ_BLOCK + RESPONSE_TIMEOUT));
        self.pool
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Counts what the node does with Redis in `metrics` from now on.
    pub fn observe_with(&self, metrics: RedisMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// A command that did not reach Redis, or got an error from it.
    fn count_error(&self) {
        if let Some(m) = self.metrics.get() {
            m.errors.inc();
        }
    }

    /// A transaction undone by a concurrent change to what it read, to be decided again.
    fn count_conflict(&self) {
        if let Some(m) = self.metrics.get() {
            m.conflicts.inc();
        }
    }

    /// One command's round trip, timed from `since`.
    fn round_trip_took(&self, since: Instant) {
        if let Some(m) = self.metrics.get() {
            m.round_trip.observe(since.elapsed().as_secs_f64());
        }
    }

    /// One decision (its turn, its reads and EXEC, every attempt), timed from `since`.
    fn decision_took(&self, since: Instant) {
        if let Some(m) = self.metrics.get() {
            m.decision.observe(since.elapsed().as_secs_f64());
        }
    }

    /// Whether the node can take part: Redis answers and it reads its stream of deliveries. While it
    /// cannot, requests are answered with an error and nothing is decided here alone.
    pub fn is_ready(&self) -> bool {
        self.store_reached.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }

    /// Records whether a command reached Redis, logging the changes.
    fn reached<T>(&self, result: redis::RedisResult<T>) -> redis::RedisResult<T> {
        let ok = result.is_ok();
        if !ok {
            self.count_error();
            // Whatever broke one connection (a Redis restart) broke the idle ones too.
            self.pool.clear();
        }
        if self.store_reached.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                info!(node = self.node, "the shared registry is reachable again");
            } else {
                error!(node = self.node, "the shared registry is unreachable");
            }
        }
        result
    }

    /// (calls live, invitees ringing) in the whole cluster, at most one deadline poll old.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.calls.load(Ordering::Relaxed),
            self.ringing.load(Ordering::Relaxed),
        )
    }

    /// This node's number in the cluster.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// The first session id this node hands out.
    pub fn first_session_id(&self) -> SessionId {
        (self.node << SESSION_BITS) | 1
    }

    /// The node a session id was handed out by.
    fn home_node(session: SessionId) -> u64 {
        session >> SESSION_BITS
    }

    /// Decides `op` in the shared store: the outcome is recorded and its deliveries appended.
    /// A client request the registry refuses is answered through the node's stream too, and
    /// gives an empty outcome; `Err` is only for a store that cannot be reached (or a call
    /// changing too fast to decide), which the caller answers itself.
    ///
    /// Boxed: a transaction's state is large, and it would otherwise be part of every socket
    /// task's future, on a single process too, where it never runs.
    pub fn decide(&self, op: Op) -> BoxFuture<'_, Result<Outcome, Refusal>> {
        Box::pin(async move {
            match self.run_attempts(op).await? {
                txn::Attempt::Decided(outcome) => Ok(outcome),
                _ => Ok(Outcome::default()),
            }
        })
    }

    /// Decides a resume ([`Op::Resume`]): the session it takes back, whose adoption by the
    /// link (`resumed` and the replay) comes through this node's stream, in order with what is
    /// decided for the session after it.
    pub fn resume(&self, op: Op) -> BoxFuture<'_, Result<SessionId, ResumeRefusal>> {
        Box::pin(async move {
            match self.run_attempts(op).await {
                Ok(txn::Attempt::Resumed(session)) => Ok(session),
                Ok(txn::Attempt::Kicked) => Err(ResumeRefusal::Kicked),
                Ok(txn::Attempt::Refused(refusal)) | Err(refusal) => {
                    Err(ResumeRefusal::Refused(refusal))
                }
                Ok(_) => Err(ResumeRefusal::Refused(Refusal {
                    code: ErrorCode::ResumeRefused,
                    message: "this session has ended: log in again".into(),
                })),
            }
        })
    }

    /// Runs attempts of `op` until one is not undone by a concurrent change.
    async fn run_attempts(&self, op: Op) -> Result<txn::Attempt, Refusal> {
        let started = Instant::now();
        let result = match self.decisions.acquire().await {
            Ok(_turn) => self.attempts(op).await,
            // Never closed; were it, nothing could be decided.
            Err(_) => Err(Refusal {
                code: ErrorCode::Unavailable,
                message: "the server is stopping: nothing was decided".into(),
            }),
        };
        self.decision_took(started);
        result
    }

    async fn attempts(&self, op: Op) -> Result<txn::Attempt, Refusal> {
        for attempt in 1..=MAX_ATTEMPTS {
            let mut conn = self
                .reached(self.pool.get().await)
                .map_err(|e| unavailable(&e))?;
            match self.reached(txn::attempt(self, &mut conn, op.clone()).await) {
                Ok(txn::Attempt::Refused(refusal)) => {
                    self.pool.put(conn);
                    return Err(refusal);
                }
                Ok(txn::Attempt::Conflict) => {
                    self.pool.put(conn);
                    self.count_conflict();
                    debug!(attempt, "a concurrent change: deciding again");
                }
                Ok(done) => {
                    self.pool.put(conn);
                    return Ok(done);
                }
                // The connection may be broken: it is not reused.
                Err(err) => return Err(unavailable(&err)),
            }
        }
        warn!(?op, "still conflicting after {MAX_ATTEMPTS} attempts");
        Err(Refusal {
            code: ErrorCode::Unavailable,
            message: "too many concurrent changes to this call: nothing was decided, try again"
                .into(),
        })
    }

    /// The ring deadlines and the ends of resume grace that have passed, as
    /// [`records::DEADLINES`] and [`records::AWAY`] members; the cluster's counts on the way.
    async fn due(&self) -> redis::RedisResult<(Vec<String>, Vec<String>)> {
        let result = self.read_due().await;
        self.reached(result)
    }

    async fn read_due(&self) -> redis::RedisResult<(Vec<String>, Vec<String>)> {
        let mut conn = self.pool.get().await?;
        let now = self.clock.now_ms();
        let mut pipe = redis::pipe();
        for set in [records::DEADLINES, records::AWAY] {
            pipe.cmd("ZRANGEBYSCORE")
                .arg(set)
                .arg("-inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(DEADLINES_PER_POLL);
        }
        pipe.cmd("MGET")
            .arg(records::CALLS_COUNT)
            .arg(records::RINGING_COUNT);
        let sent = Instant::now();
        let (rings, graces, counts): (Vec<String>, Vec<String>, Vec<Option<i64>>) =
            pipe.query_async(&mut conn).await?;
        self.round_trip_took(sent);
        self.pool.put(conn);
        let count = |n: Option<&Option<i64>>| {
            n.copied()
                .flatten()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
        };
        self.calls.store(count(counts.first()), Ordering::Relaxed);
        self.ringing.store(count(counts.get(1)), Ordering::Relaxed);
        Ok((rings, graces))
    }
}

/// Runs the node's part of the cluster until the hub is dropped: delivers what is appended to
/// its stream, expires the deadlines that pass, and keeps track of which nodes are alive.
pub fn run(cluster: Arc<Cluster>, reader: MultiplexedConnection, hub: Weak<Hub>) {
    tokio::spawn(deliveries::receive(
        cluster.clone(),
        Some(reader),
        hub.clone(),
    ));
    tokio::spawn(expire(cluster.clone(), hub.clone()));
    tokio::spawn(liveness::run(cluster, hub));
}

async fn expire(cluster: Arc<Cluster>, hub: Weak<Hub>) {
    let mut poll = tokio::time::interval(DEADLINE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        poll.tick().await;
        if hub.strong_count() == 0 {
            return;
        }
        let (rings, graces) = match cluster.due().await {
            Ok(due) => due,
            Err(err) => {
                debug!(%err, "cannot read the deadlines");
                continue;
            }
        };
        let rings = rings.into_iter().filter_map(|member| {
            let room = records::deadline_room(&member)?;
            Some(Op::Expire { room, member })
        });
        let graces = graces.into_iter().filter_map(|member| {
            let (app, user) = records::session_member_user(&member)?;
            let user = Arc::from(user.as_str());
            Some(Op::ExpireAway { app, user, member })
        });
        for op in rings.chain(graces) {
            let started = Instant::now();
            match cluster.decide(op).await {
                Ok(outcome) => {
                    if let Some(hub) = hub.upgrade() {
                        hub.count_decided(&outcome);
                    }
                    debug!(took = ?started.elapsed(), "a deadline handled");
                }
                Err(refusal) => error!(message = refusal.message, "a deadline"),
            }
        }
    }
}
