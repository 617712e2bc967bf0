//! Which node's SFU serves a call, in a cluster whose nodes each run one (`--sfu-udp`).
//!
//! A call's SFU session lives on one node, its owner, named in Redis ([`sfu_owner_key`]): the
//! first node that hands a member's `sfu` message on claims it, and every node hands its
//! members' `sfu` and `sfuViews` messages to the owner through the owner's stream of
//! deliveries ([`Delivery::ToSfu`]). What the owner's SFU sends a member (its answers, its
//! offers) is decided like any message ([`Op::SfuMessage`]): numbered and kept for a resume,
//! and delivered through whichever node holds the member's session then.
//!
//! An owner that dies (silent for the node timeout) is replaced by the next node that hands a
//! message on. The node that finds it dead tells the members of each call it served to join
//! again (`sfuRejoin`), as does a live node to the ICE restart of a connection its SFU does not
//! have: their SDKs connect anew, and those offers join the new owner's SFU. An owner only
//! frozen past the node timeout finds, once back, that it no longer owns the call, and its SFU
//! lets the members go.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use calling_protocol::{RenderedView, RoomId, Signal};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use super::records::{call_key, node_sfu_calls, sfu_owner_key, CallRecord, NODES_ALIVE};
use super::{unavailable, Cluster, Delivery};
use crate::registry::{Refusal, SessionId};

/// How long an owner record outlives its last refresh (the owner refreshes it while the call
/// lasts): a cluster whose every node died leaves none behind for good.
const OWNER_KEPT_SECS: u64 = 24 * 60 * 60;

/// Names the owner of call ARGV[4] (its record KEYS[1]): its current one, if that node has
/// said it is alive (KEYS[2], score unix ms) at or after ARGV[2]; else node ARGV[1], which
/// takes it over and lists it among its calls (KEYS[3]). Atomic, so that nodes racing for a
/// call agree on one owner.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local owner = redis.call('GET', KEYS[1])
if owner then
    local seen = redis.call('ZSCORE', KEYS[2], owner)
    if seen and tonumber(seen) >= tonumber(ARGV[2]) then
        return tonumber(owner)
    end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return tonumber(ARGV[1])
",
    )
});

/// Ends node ARGV[1]'s ownership of call ARGV[2] (its record KEYS[1], its list KEYS[2]) if it
/// still owns it.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end \
         redis.call('SREM', KEYS[2], ARGV[2]) return 0",
    )
});

/// Most calls of a dead node's SFU one heartbeat tells the members of.
const LOST_PER_BEAT: usize = 1024;

/// A member of a call, whose session signals with the call's SFU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SfuMember {
    pub room: RoomId,
    pub app: u64,
    pub user: String,
    pub session: SessionId,
}

/// What a member asks of the SFU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "camelCase")]
pub enum SfuAsk {
    Signal {
        signal: Signal,
        /// The first offer of a new connection (see `ClientMessage::Sfu`).
        #[serde(default)]
        join: bool,
    },
    Views {
        views: Vec<RenderedView>,
    },
}

/// A member's message for the SFU of its call, handed to the node that owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SfuRequest {
    pub member: SfuMember,
    #[serde(flatten)]
    pub ask: SfuAsk,
}

/// What the owner of some calls finds of them in Redis.
#[derive(Debug, Default)]
pub struct OwnedCalls {
    /// The members of each call that still exists and this node still owns.
    pub members: HashMap<RoomId, HashSet<String>>,
}

impl OwnedCalls {
    /// Whether `user` is a member of call `room`, served by this node's SFU.
    pub fn is_member(&self, room: RoomId, user: &str) -> bool {
        self.members
            .get(&room)
            .is_some_and(|members| members.contains(user))
    }
}

impl Cluster {
    /// The node whose SFU serves call `room`: its owner, or this node, which takes it over if
    /// it has none or its owner is dead.
    pub async fn sfu_owner(&self, room: RoomId) -> Result<u64, Refusal> {
        let result = self.claim(room).await;
        let owner = self.reached(result).map_err(|e| unavailable(&e))?;
        if owner == self.node {
            debug!(room, "this node's SFU serves the call");
        }
        Ok(owner)
    }

    async fn claim(&self, room: RoomId) -> redis::RedisResult<u64> {
        let mut conn = self.pool.get().await?;
        let alive_since = self
            .clock
            .now_ms()
            .saturating_sub(u64::try_from(self.node_timeout.as_millis()).unwrap_or(u64::MAX));
        let owner: u64 = CLAIM
            .key(sfu_owner_key(room))
            .key(NODES_ALIVE)
            .key(node_sfu_calls(self.node))
            .arg(self.node)
            .arg(alive_since)
            .arg(OWNER_KEPT_SECS)
            .arg(room)
            .invoke_async(&mut conn)
            .await?;
        self.pool.put(conn);
        Ok(owner)
    }

    /// Hands a member's message to node `node`, whose SFU serves its call.
    pub async fn to_sfu_owner(&self, node: u64, request: SfuRequest) -> Result<(), Refusal> {
        let result = self.append(node, &[Delivery::ToSfu(request)]).await;
        self.reached(result).map_err(|e| unavailable(&e))
    }

    async fn append(&self, node: u64, deliveries: &[Delivery]) -> redis::RedisResult<()> {
        let mut conn = self.pool.get().await?;
        let mut pipe = redis::pipe();
        super::txn::append_deliveries(&mut pipe, node, deliveries);
        pipe.query_async::<()>(&mut conn).await?;
        self.pool.put(conn);
        Ok(())
    }

    /// Calls the SFU of dead `node` served, each taken by one node only, whichever nodes
    /// look at once: that node tells their members to join a live node's SFU
    /// (`Op::SfuLost`), rather than leave them waiting for their browsers to notice.
    pub(super) async fn sfu_calls_of_dead(&self, node: u64) -> redis::RedisResult<Vec<RoomId>> {
        let mut conn = self.pool.get().await?;
        let rooms: Vec<RoomId> = redis::cmd("SPOP")
            .arg(node_sfu_calls(node))
            .arg(LOST_PER_BEAT)
            .query_async(&mut conn)
            .await?;
        self.pool.put(conn);
        Ok(rooms)
    }

    /// Of the calls `rooms` whose SFU sessions this node holds: the members of those it still
    /// owns. Its ownership of those is refreshed, and released for those that ended.
    pub async fn owned_calls(&self, rooms: &[RoomId]) -> redis::RedisResult<OwnedCalls> {
        let result = self.read_owned(rooms).await;
        self.reached(result)
    }

    async fn read_owned(&self, rooms: &[RoomId]) -> redis::RedisResult<OwnedCalls> {
        let mut owned = OwnedCalls::default();
        if rooms.is_empty() {
            return Ok(owned);
        }
        let mut conn = self.pool.get().await?;
        let calls: Vec<String> = rooms.iter().map(|room| call_key(*room)).collect();
        let owners: Vec<String> = rooms.iter().map(|room| sfu_owner_key(*room)).collect();
        let (calls, owners): (Vec<Option<String>>, Vec<Option<u64>>) = redis::pipe()
            .cmd("MGET")
            .arg(&calls)
            .cmd("MGET")
            .arg(&owners)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        // Loaded in the pipeline: a Redis restarted or flushed since would answer NOSCRIPT.
        pipe.load_script(&RELEASE).ignore();
        for ((room, call), owner) in rooms.iter().zip(calls).zip(owners) {
            if owner != Some(self.node) {
                continue;
            }
            let record = call.and_then(|json| serde_json::from_str::<CallRecord>(&json).ok());
            match record {
                Some(record) => {
                    pipe.expire(sfu_owner_key(*room), OWNER_KEPT_SECS as i64)
                        .ignore();
                    owned
                        .members
                        .insert(*room, record.members.into_iter().collect());
                }
                None => {
                    info!(room, "the call ended: its SFU session is released");
                    let mut release = RELEASE.key(sfu_owner_key(*room));
                    release
                        .key(node_sfu_calls(self.node))
                        .arg(self.node)
                        .arg(*room);
                    pipe.invoke_script(&release).ignore();
                }
            }
        }
        pipe.query_async::<()>(&mut conn).await?;
        self.pool.put(conn);
        Ok(owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_it_was_written() {
        let member = SfuMember {
            room: 7,
            app: 1,
            user: "ann".into(),
            session: 42,
        };
        for ask in [
            SfuAsk::Signal {
                signal: Signal::Offer { sdp: "v=0".into() },
                join: true,
            },
            SfuAsk::Views {
                views: vec![RenderedView {
                    user_id: "bob".into(),
                    width: 320,
                    height: 180,
                }],
            },
        ] {
            let delivery = Delivery::ToSfu(SfuRequest {
                member: member.clone(),
                ask,
            });
            let json = serde_json::to_string(&vec![delivery.clone()]).expect("serializes");
            let back: Vec<Delivery> = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, vec![delivery], "{json}");
        }
    }
}
