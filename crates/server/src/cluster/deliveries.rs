//! Each node's stream of deliveries: what the cluster decided for the sessions whose sockets
//! the node holds, appended in the order Redis executed the decisions, and the task that reads
//! it and hands it to the hub. Unlike a pub/sub channel, a stream keeps what arrives while the
//! node is cut off from Redis for a moment.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::{Deserialize, Serialize};
use tracing::{debug, error, info};

use super::sfu::SfuRequest;
use super::{records, Cluster};
use crate::hub::{Hub, LinkId};
use crate::registry::SessionId;

/// How long the node waits before reading its stream again after losing its connection.
const REREAD_AFTER: Duration = Duration::from_millis(100);

/// How long one read of the node's stream waits for an entry.
pub(super) const READ_BLOCK: Duration = Duration::from_secs(1);

/// Most entries one read of the node's stream takes.
const READ_BATCH: usize = 512;

/// How often the node forgets the entries of its stream it has read.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// What a node is told to do for one of its sessions (appended in order, per node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "camelCase")]
pub enum Delivery {
    /// A message, already serialized (and numbered, for a resumable session).
    Text {
        session: SessionId,
        text: String,
        /// A relayed signal (counted by the metrics).
        #[serde(default)]
        relayed: bool,
    },
    /// The session resumed on another node: close its socket here and forget it.
    Replaced { session: SessionId },
    /// Socket `link` of this node takes over the session: `resumed`, then the replay.
    Adopt(Takeover),
    /// The same user logged in elsewhere: close this session.
    Kicked { session: SessionId },
    /// The session is over (its grace ran out): forget it.
    Ended { session: SessionId },
    /// A member's `sfu` or `sfuViews` message, for this node's SFU, which serves its call.
    ToSfu(SfuRequest),
}

/// A resumed session taken over by socket `link` of the node the delivery is for (the JSON
/// of [`Delivery::Adopt`] holds these fields next to its tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Takeover {
    pub session: SessionId,
    pub link: LinkId,
    pub app: u64,
    pub user: String,
    /// Frames of the session processed (what `resumed` reports).
    pub received: u64,
    /// Every message after the SDK's last seq, numbered.
    pub replay: Vec<String>,
}

/// Reads this node's stream of deliveries and hands them to the hub, in order, until the hub
/// is dropped. A lost connection is made again and reading goes on after the last entry read,
/// so nothing decided meanwhile is lost.
pub(super) async fn receive(
    cluster: Arc<Cluster>,
    mut reader: Option<MultiplexedConnection>,
    hub: Weak<Hub>,
) {
    let stream = records::node_deliveries(cluster.node);
    // The node's number is new, so everything in its stream is for this process.
    let mut last_id = String::from("0-0");
    let mut trimmed_at = Instant::now();
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        if reader.is_none() {
            match cluster.reader().await {
                Ok(conn) => reader = Some(conn),
                Err(err) => {
                    cluster.count_error();
                    debug!(%err, "cannot reconnect the node's stream");
                    tokio::time::sleep(REREAD_AFTER).await;
                    continue;
                }
            }
        }
        let Some(conn) = reader.as_mut() else {
            continue;
        };
        let read: redis::RedisResult<Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(READ_BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last_id)
            .query_async(conn)
            .await;
        let entries = match read {
            Ok(value) => stream_entries(value),
            Err(err) => {
                cluster.count_error();
                if cluster.subscribed.swap(false, Ordering::Relaxed) {
                    error!(node = cluster.node, %err, "lost the node's stream of deliveries");
                }
                reader = None;
                tokio::time::sleep(REREAD_AFTER).await;
                continue;
            }
        };
        if !cluster.subscribed.swap(true, Ordering::Relaxed) {
            info!(
                node = cluster.node,
                "reading the node's stream of deliveries again"
            );
        }
        let Some(hub) = hub.upgrade() else {
            return;
        };
        for (id, payload) in entries {
            match serde_json::from_slice::<Vec<Delivery>>(&payload) {
                Ok(deliveries) => {
                    for orphan in hub.deliver(deliveries) {
                        let hub = hub.clone();
                        tokio::spawn(async move { hub.suspend_orphan(orphan).await });
                    }
                }
                Err(err) => error!(%err, "an unreadable delivery"),
            }
            last_id = id;
        }
        drop(hub);
        // What has been read is forgotten, once a second.
        if trimmed_at.elapsed() >= TRIM_EVERY {
            trimmed_at = Instant::now();
            let trim = redis::cmd("XTRIM")
                .arg(&stream)
                .arg("MINID")
                .arg(&last_id)
                .exec_async(conn)
                .await;
            if let Err(err) = trim {
                debug!(%err, "cannot trim the node's stream");
            }
        }
    }
}

/// The (id, `d` field) of each entry of an `XREAD` reply for one stream (none on a timeout).
fn stream_entries(reply: Value) -> Vec<(String, Vec<u8>)> {
    let text = |v: &Value| match v {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    // RESP2: [[stream, entries]]; RESP3: {stream: entries}.
    let entries = match reply {
        Value::Array(mut streams) => match streams.pop() {
            Some(Value::Array(mut pair)) if pair.len() == 2 => pair.pop(),
            _ => None,
        },
        Value::Map(mut streams) => streams.pop().map(|(_, entries)| entries),
        _ => None,
    };
    let Some(Value::Array(entries)) = entries else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(entry) = entry else {
                return None;
            };
            let id = text(entry.first()?)?;
            let Some(Value::Array(fields)) = entry.get(1) else {
                return None;
            };
            // Fields and values alternate; the payload is the value after `d`.
            let at = fields
                .iter()
                .position(|f| text(f).as_deref() == Some("d"))?;
            match fields.get(at + 1)? {
                Value::BulkString(bytes) => Some((id, bytes.clone())),
                _ => None,
            }
        })
        .collect()
}
