//! Which nodes are alive: each says so every [`HEARTBEAT`]; the sessions of a node silent for
//! the node timeout (killed, or cut off from Redis) while the others could beat were lost with
//! it, and are reaped: each leaves its call, decided once whichever nodes reap at the same
//! time.
//!
//! A node only frozen (starved of CPU, stopped) or cut off for longer than that is not dead,
//! and its sockets are still open when it comes back, but the cluster no longer counts them as
//! its own: what their sessions are sent goes to their journals, not to this node. Its first
//! heartbeat back tells it which of its sessions were reaped, and it closes their sockets, so
//! their SDKs resume them (or log in again) instead of waiting on a socket nothing reaches.
//!
//! A Redis that lost its data (restarted without persistence, or flushed) loses every session
//! and call with it. Each node notices at its next heartbeat, as the epoch it remembers is gone,
//! and closes all its sockets, so that every SDK logs in again rather than act for a session
//! nobody knows; it also makes sure the node counter is past its own number, so that a node
//! joining later cannot take a number in use.

use std::sync::{Arc, LazyLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tracing::{debug, error, info, warn};

use super::{records, Cluster, Op};
use crate::hub::{CloseKind, Hub};
use crate::ids::random_token;
use crate::registry::SessionId;

/// How often each node says it is alive, and looks for nodes that stopped saying so.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// A node silent for this long is dead: its sessions are lost, and leave their calls
/// (`--node-timeout`). Ten heartbeats: a node busy for a moment is not taken for dead.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most sessions of a dead node one heartbeat reaps; the rest wait for the next.
const REAP_PER_BEAT: usize = 256;

/// Raises the node counter KEYS[1] to at least ARGV[1] (a Redis that lost its data counts
/// from 0 again).
static COUNTER_AT_LEAST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
         if n < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 0",
    )
});

/// The cluster's epoch: the one Redis holds, or a new one written now if it holds none.
pub(super) async fn join_epoch(conn: &mut MultiplexedConnection) -> redis::RedisResult<String> {
    let (epoch,): (String,) = redis::pipe()
        .cmd("SET")
        .arg(records::EPOCH)
        .arg(random_token())
        .arg("NX")
        .ignore()
        .get(records::EPOCH)
        .query_async(conn)
        .await?;
    Ok(epoch)
}

/// What one heartbeat learnt.
struct Beat {
    /// Sessions of this node that others reaped meanwhile.
    reaped: Vec<SessionId>,
    /// The cluster's epoch in Redis now (none if Redis lost its data).
    epoch: Option<String>,
}

impl Cluster {
    /// Whether Redis no longer holds the epoch this node joined (or last saw).
    fn data_lost(&self, epoch: Option<&str>) -> bool {
        let known = self.epoch.lock().unwrap_or_else(PoisonError::into_inner);
        epoch != Some(known.as_str())
    }

    /// Joins the cluster again after Redis lost its data: the epoch anew (whichever node
    /// writes it first), and the node counter past this node's number.
    async fn rejoin(&self) -> redis::RedisResult<()> {
        let mut conn = self.pool.get().await?;
        let epoch = join_epoch(&mut conn).await?;
        let _: i64 = COUNTER_AT_LEAST
            .key(records::NODE_COUNTER)
            .arg(self.node)
            .invoke_async(&mut conn)
            .await?;
        self.pool.put(conn);
        *self.epoch.lock().unwrap_or_else(PoisonError::into_inner) = epoch;
        Ok(())
    }

    /// A session of a dead node reaped (once its reap was written).
    pub(super) fn count_reaped(&self) {
        if let Some(m) = self.metrics.get() {
            m.reaped.inc();
        }
    }

    /// Sessions of this node that others reaped.
    fn count_lost(&self, sessions: usize) {
        if let Some(m) = self.metrics.get() {
            m.lost.inc_by(sessions as u64);
        }
    }

    /// Records that this node is alive now, and takes the list of its sessions that other
    /// nodes reaped meanwhile (empty unless it was silent past the node timeout).
    async fn beat(&self) -> redis::RedisResult<Beat> {
        let mut conn = self.pool.get().await?;
        let sent = Instant::now();
        let key = records::node_reaped(self.node);
        let (reaped, epoch): (Vec<SessionId>, Option<String>) = redis::pipe()
            .atomic()
            .zadd(records::NODES_ALIVE, self.node, self.clock.now_ms())
            .ignore()
            .smembers(&key)
            .del(&key)
            .ignore()
            .get(records::EPOCH)
            .query_async(&mut conn)
            .await?;
        self.round_trip_took(sent);
        self.pool.put(conn);
        Ok(Beat { reaped, epoch })
    }

    /// Nodes other than this one that have been silent for the node timeout.
    async fn dead_nodes(&self) -> redis::RedisResult<Vec<u64>> {
        let mut conn = self.pool.get().await?;
        let silent_since = self
            .clock
            .now_ms()
            .saturating_sub(u64::try_from(self.node_timeout.as_millis()).unwrap_or(u64::MAX));
        let dead: Vec<u64> = redis::cmd("ZRANGEBYSCORE")
            .arg(records::NODES_ALIVE)
            .arg("-inf")
            .arg(silent_since)
            .query_async(&mut conn)
            .await?;
        self.pool.put(conn);
        Ok(dead.into_iter().filter(|n| *n != self.node).collect())
    }

    /// Up to [`REAP_PER_BEAT`] users whose session dead `node` held; once none is left, the
    /// node is forgotten, with the deliveries it never read.
    async fn sessions_of_dead(&self, node: u64) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.pool.get().await?;
        let members: Vec<String> = redis::cmd("SRANDMEMBER")
            .arg(records::node_sessions(node))
            .arg(REAP_PER_BEAT)
            .query_async(&mut conn)
            .await?;
        if members.is_empty() {
            redis::pipe()
                .zrem(records::NODES_ALIVE, node)
                .ignore()
                .del(records::node_deliveries(node))
                .ignore()
                .del(records::node_sfu_calls(node))
                .ignore()
                .exec_async(&mut conn)
                .await?;
            info!(node, "a dead node's sessions have all been reaped");
        }
        self.pool.put(conn);
        Ok(members)
    }
}

/// Says this node is alive, and reaps the sessions of nodes that stopped saying so: each
/// leaves its call (the others get `memberLeft` / `callEnded`), decided once whichever nodes
/// reap at the same time.
pub(super) async fn run(cluster: Arc<Cluster>, hub: Weak<Hub>) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Since when this node's heartbeats have been reaching Redis without a break.
    let mut beating_since: Option<Instant> = None;
    loop {
        beat.tick().await;
        if hub.strong_count() == 0 {
            return;
        }
        let Beat { reaped, epoch } = match cluster.reached(cluster.beat().await) {
            Ok(beat) => beat,
            Err(err) => {
                debug!(%err, "heartbeat");
                beating_since = None;
                continue;
            }
        };
        if cluster.data_lost(epoch.as_deref()) {
            if let Err(err) = cluster.reached(cluster.rejoin().await) {
                debug!(%err, "joining the cluster again");
                continue;
            }
            let Some(hub) = hub.upgrade() else { return };
            let closed = hub.close_all(CloseKind::RegistryLost);
            error!(
                sockets = closed,
                "Redis lost the cluster's data (restarted without persistence, or flushed): every session and call is gone, and this node's sockets close for their SDKs to log in again"
            );
            beating_since = None;
            continue;
        }
        if !reaped.is_empty() {
            let Some(hub) = hub.upgrade() else { return };
            let closed = hub.close_reaped(&reaped);
            cluster.count_lost(reaped.len());
            warn!(
                sessions = reaped.len(),
                sockets = closed,
                "other nodes took this one for dead and reaped sessions of it: their sockets close, for their SDKs to resume them"
            );
        }
        let since = *beating_since.get_or_insert_with(Instant::now);
        // After Redis was unreachable every node is silent in it, not dead: judge the others
        // only once they too have had a whole timeout to beat again.
        if since.elapsed() < cluster.node_timeout {
            continue;
        }
        let dead = match cluster.dead_nodes().await {
            Ok(dead) => dead,
            Err(err) => {
                error!(%err, "cannot read which nodes are alive");
                continue;
            }
        };
        for node in dead {
            match cluster.sfu_calls_of_dead(node).await {
                Ok(rooms) => {
                    for room in rooms {
                        info!(
                            node,
                            room, "a dead node's SFU served a call: its members join again"
                        );
                        if let Err(refusal) = cluster.decide(Op::SfuLost { room }).await {
                            error!(node, room, message = refusal.message, "an SFU lost");
                        }
                    }
                }
                Err(err) => error!(%err, node, "cannot read the calls a dead node's SFU served"),
            }
            let members = match cluster.sessions_of_dead(node).await {
                Ok(members) => members,
                Err(err) => {
                    error!(%err, node, "cannot read a dead node's sessions");
                    continue;
                }
            };
            if !members.is_empty() {
                warn!(
                    node,
                    sessions = members.len(),
                    "reaping a dead node's sessions"
                );
            }
            for member in members {
                let Some((app, user)) = records::session_member_user(&member) else {
                    continue;
                };
                let op = Op::Reap {
                    app,
                    user: Arc::from(user.as_str()),
                    node,
                };
                match cluster.decide(op).await {
                    Ok(outcome) => {
                        if let Some(hub) = hub.upgrade() {
                            hub.count_decided(&outcome);
                        }
                    }
                    Err(refusal) => error!(node, message = refusal.message, "reaping"),
                }
            }
        }
    }
}
