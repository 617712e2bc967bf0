//! How the registry's entries are kept in Redis: key names, the JSON records, and the
//! conversion between this process's `Instant`s and the wall-clock milliseconds every node
//! shares.

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use calling_protocol::{CallType, RoomId};
use serde::{Deserialize, Serialize};

use crate::registry::view::{BatchView, CallView, PresenceView, UserView};
use crate::registry::SessionId;

/// Every key of the cluster starts with this.
const PREFIX: &str = "calling:";

pub fn user_key(app: u64, user: &str) -> String {
    format!("{PREFIX}u:{app}:{user}")
}

pub fn call_key(room: RoomId) -> String {
    format!("{PREFIX}c:{room}")
}

/// Which node's SFU serves call `room` (its number, as a string): see [`super::sfu`].
pub fn sfu_owner_key(room: RoomId) -> String {
    format!("{PREFIX}sfu:{room}")
}

/// SET of the calls whose SFU session node `node` owns (see [`super::sfu`]): what the
/// others tell the members of when that node dies.
pub fn node_sfu_calls(node: u64) -> String {
    format!("{PREFIX}node:{node}:sfu")
}

/// ZSET of ring deadlines: member [`deadline_member`], score unix ms.
pub const DEADLINES: &str = "calling:deadlines";

pub fn deadline_member(room: RoomId, batch: u32) -> String {
    format!("{room}:{batch}")
}

/// The room of a [`DEADLINES`] member.
pub fn deadline_room(member: &str) -> Option<RoomId> {
    member.split(':').next()?.parse().ok()
}

/// ZSET of users whose session's socket dropped: member [`session_member`], score the end of
/// its resume grace (unix ms).
pub const AWAY: &str = "calling:away";

/// How many calls are live in the cluster, kept in step by every EXEC that creates or ends one.
pub const CALLS_COUNT: &str = "calling:count:calls";

/// How many invitees are ringing in the cluster, kept in step like [`CALLS_COUNT`].
pub const RINGING_COUNT: &str = "calling:count:ringing";

/// A random value the first node writes, which every node remembers: were it gone or another,
/// Redis lost the cluster's data (restarted without persistence, or flushed).
pub const EPOCH: &str = "calling:epoch";

/// The counter that numbers nodes as they start.
pub const NODE_COUNTER: &str = "calling:nodes";

/// ZSET of nodes by their last heartbeat (unix ms).
pub const NODES_ALIVE: &str = "calling:alive";

/// SET of the users whose session node `node` holds, as [`session_member`]s.
pub fn node_sessions(node: u64) -> String {
    format!("{PREFIX}node:{node}:sessions")
}

/// SET of the sessions of node `node` that other nodes reaped while they took it for dead: a
/// node that was only frozen or cut off finds them when it reaches Redis again, and closes
/// their sockets (see `liveness`). It expires after [`REAPED_KEPT`] for a node gone for good.
pub fn node_reaped(node: u64) -> String {
    format!("{PREFIX}node:{node}:reaped")
}

/// How long a [`node_reaped`] set waits for its node to come back.
pub const REAPED_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// A user in a [`node_sessions`] set: `{app}:{user}` (user ids hold no `:`).
pub fn session_member(app: u64, user: &str) -> String {
    format!("{app}:{user}")
}

/// The (SDKAppID, userID) of a [`session_member`].
pub fn session_member_user(member: &str) -> Option<(u64, String)> {
    let (app, user) = member.split_once(':')?;
    Some((app.parse().ok()?, user.to_string()))
}

/// The stream a node reads its sessions' deliveries from: one entry per decision (field `d`,
/// a JSON array of [`super::Delivery`]), in the order Redis executed them. Unlike a pub/sub
/// channel it keeps what arrives while the node is cut off from Redis for a moment.
pub fn node_deliveries(node: u64) -> String {
    format!("{PREFIX}node:{node}:deliveries")
}

/// Most entries kept in a node's stream whatever its reader has trimmed (approximately).
pub const DELIVERIES_CAP: usize = 100_000;

/// Converts between this process's monotonic clock and unix milliseconds, from one pair of
/// readings taken at start. Nodes on one host (or on NTP-synchronised hosts) agree on the
/// milliseconds, so a deadline written by one is due at the same moment for all.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix_ms: u64,
}

impl Clock {
    pub fn new() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock {
            instant: Instant::now(),
            unix_ms,
        }
    }

    pub fn to_ms(&self, at: Instant) -> u64 {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match at.checked_duration_since(self.instant) {
            Some(after) => self.unix_ms.saturating_add(ms(after)),
            None => self
                .unix_ms
                .saturating_sub(ms(self.instant.duration_since(at))),
        }
    }

    pub fn to_instant(&self, ms: u64) -> Instant {
        if ms >= self.unix_ms {
            self.instant + Duration::from_millis(ms - self.unix_ms)
        } else {
            // Before this process started: as far back as the monotonic clock reaches.
            self.instant
                .checked_sub(Duration::from_millis(self.unix_ms - ms))
                .unwrap_or(self.instant)
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> u64 {
        self.to_ms(Instant::now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A user's [`PresenceView`] as its record holds it: tagged (`"is"`), the room named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "camelCase")]
pub enum StoredPresence {
    Idle,
    Invited { room: RoomId },
    Member { room: RoomId },
}

impl From<StoredPresence> for PresenceView {
    fn from(p: StoredPresence) -> Self {
        match p {
            StoredPresence::Idle => PresenceView::Idle,
            StoredPresence::Invited { room } => PresenceView::Invited(room),
            StoredPresence::Member { room } => PresenceView::Member(room),
        }
    }
}

impl From<PresenceView> for StoredPresence {
    fn from(p: PresenceView) -> Self {
        match p {
            PresenceView::Idle => StoredPresence::Idle,
            PresenceView::Invited(room) => StoredPresence::Invited { room },
            PresenceView::Member(room) => StoredPresence::Member { room },
        }
    }
}

/// `calling:u:{app}:{user}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub session: Option<SessionId>,
    /// The node holding the session's socket.
    pub node: Option<u64>,
    /// Which socket (link) of that node holds it: the end of any other is late and changes
    /// nothing. Absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<u64>,
    pub presence: StoredPresence,
    pub away_until_ms: Option<u64>,
    /// SHA-256 (hex) of the session's resume token: present while it is resumable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// The seq of the latest message numbered for the session (see [`journal_key`]).
    #[serde(default)]
    pub seq: u64,
    /// Frames of the session processed (what `resumed` reports).
    #[serde(default)]
    pub received: u64,
    /// The token hash of the session a login replaced, so its resume is answered `kicked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kicked_token_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    pub no: u32,
    pub invite_id: String,
    pub inviter: String,
    pub call_type: CallType,
    pub is_group: bool,
    pub group_id: Option<String>,
    pub user_ids: Vec<String>,
    pub deadline_ms: u64,
}

/// `calling:c:{room}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub app: u64,
    pub room: RoomId,
    pub members: Vec<String>,
    pub pending: Vec<(String, u32)>,
    pub batches: Vec<BatchRecord>,
    pub next_batch: u32,
    pub connected_at_ms: Option<u64>,
}

impl UserRecord {
    pub fn to_view(&self, app: u64, user: &str, clock: &Clock) -> UserView {
        UserView {
            app,
            user: user.to_string(),
            session: self.session,
            presence: self.presence.into(),
            away_until: self.away_until_ms.map(|ms| clock.to_instant(ms)),
        }
    }

    pub fn from_view(view: &UserView, node: Option<u64>, clock: &Clock) -> Self {
        UserRecord {
            session: view.session,
            node: view.session.and(node),
            // Set by the transaction, which knows the sockets.
            link: None,
            presence: view.presence.into(),
            away_until_ms: view.away_until.map(|at| clock.to_ms(at)),
            // What the registry does not know of: see [`UserRecord::carry_over`].
            token_hash: None,
            seq: 0,
            received: 0,
            kicked_token_hash: None,
        }
    }

    /// Keeps what the registry does not know of (resumption) from the record `before`: for the
    /// same session as is; for a session that `login` (its id and token hash) just started,
    /// a fresh numbering, remembering the token of the session it replaced.
    pub fn carry_over(
        &mut self,
        before: Option<&UserRecord>,
        login: Option<(SessionId, &Option<String>)>,
    ) {
        let same_session = before.is_some_and(|b| b.session.is_some() && b.session == self.session);
        match (before, login) {
            (Some(before), _) if same_session => {
                self.token_hash = before.token_hash.clone();
                self.seq = before.seq;
                self.received = before.received;
                self.kicked_token_hash = before.kicked_token_hash.clone();
            }
            (_, Some((session, token_hash))) if self.session == Some(session) => {
                self.token_hash = token_hash.clone();
                self.kicked_token_hash = before
                    .and_then(|b| b.token_hash.clone().or_else(|| b.kicked_token_hash.clone()));
            }
            _ => {}
        }
    }
}

/// The numbered messages of a resumable session, oldest first (a LIST of `Sequenced` texts,
/// the last [`calling_protocol::RESUME_WINDOW`] kept, and no more bytes than the node's
/// `--outbox-bytes`: see [`JOURNAL_APPEND`]).
pub fn journal_key(session: SessionId) -> String {
    format!("{PREFIX}j:{session}")
}

/// The total bytes of the texts in [`journal_key`] (a string holding an integer), kept by
/// [`JOURNAL_APPEND`] and deleted with the journal.
pub fn journal_bytes_key(session: SessionId) -> String {
    format!("{PREFIX}jb:{session}")
}

/// Appends a text to a journal and forgets its oldest texts beyond the window or the byte cap,
/// never the newest (as the single process's `Journal::record_sized` does). Atomic, so it runs
/// inside a decision's MULTI/EXEC; only a script can trim by the sizes of texts already kept.
/// Each text's size is added to a counter next to the list rather than summed on every append
/// (a journal may hold megabytes); a counter that is missing (the journal's first text, or a
/// journal written before the counter existed) is summed from the list once.
///
/// KEYS: [`journal_key`], [`journal_bytes_key`]. ARGV: the text, the window (most texts), the
/// byte cap. Returns how many texts are kept.
pub static JOURNAL_APPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local kept = redis.call('RPUSH', KEYS[1], ARGV[1])
local bytes = tonumber(redis.call('GET', KEYS[2]))
if bytes == nil then
    bytes = 0
    for _, text in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
        bytes = bytes + #text
    end
else
    bytes = bytes + #ARGV[1]
end
local window, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
while kept > 1 and (kept > window or bytes > cap) do
    bytes = bytes - #redis.call('LPOP', KEYS[1])
    kept = kept - 1
end
redis.call('SET', KEYS[2], bytes)
return kept
",
    )
});

/// SHA-256 of a resume token, in hex: what Redis keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl CallRecord {
    pub fn to_view(&self, clock: &Clock) -> CallView {
        CallView {
            app: self.app,
            room: self.room,
            members: self.members.clone(),
            pending: self.pending.clone(),
            batches: self
                .batches
                .iter()
                .map(|b| BatchView {
                    no: b.no,
                    invite_id: b.invite_id.clone(),
                    inviter: b.inviter.clone(),
                    call_type: b.call_type,
                    is_group: b.is_group,
                    group_id: b.group_id.clone(),
                    user_ids: b.user_ids.clone(),
                    deadline: clock.to_instant(b.deadline_ms),
                })
                .collect(),
            next_batch: self.next_batch,
            connected_at: self.connected_at_ms.map(|ms| clock.to_instant(ms)),
        }
    }

    pub fn from_view(view: CallView, clock: &Clock) -> Self {
        CallRecord {
            app: view.app,
            room: view.room,
            members: view.members,
            pending: view.pending,
            batches: view
                .batches
                .into_iter()
                .map(|b| BatchRecord {
                    no: b.no,
                    invite_id: b.invite_id,
                    inviter: b.inviter,
                    call_type: b.call_type,
                    is_group: b.is_group,
                    group_id: b.group_id,
                    user_ids: b.user_ids,
                    deadline_ms: clock.to_ms(b.deadline),
                })
                .collect(),
            next_batch: view.next_batch,
            connected_at_ms: view.connected_at.map(|at| clock.to_ms(at)),
        }
    }

    /// The ring deadlines of its batches, as [`DEADLINES`] members and scores.
    pub fn deadlines(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.batches
            .iter()
            .map(|b| (deadline_member(self.room, b.no), b.deadline_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_through_the_monotonic_clock() {
        let clock = Clock::new();
        let ms = clock.now_ms();
        for at in [ms, ms + 30_000, ms.saturating_sub(5_000)] {
            assert_eq!(clock.to_ms(clock.to_instant(at)), at);
        }
    }

    #[test]
    fn session_members_name_their_user() {
        assert_eq!(
            session_member_user(&session_member(7, "bo_b-1")),
            Some((7, "bo_b-1".to_string()))
        );
        assert_eq!(session_member_user("x:bob"), None);
    }

    /// A user whose session's socket dropped, doing what `presence` says.
    fn away_user(presence: PresenceView, clock: &Clock) -> UserView {
        UserView {
            app: 7,
            user: "bob".into(),
            session: Some(9),
            presence,
            away_until: Some(clock.to_instant(1_700_000_000_000)),
        }
    }

    #[test]
    fn user_records_keep_their_json_format_in_redis() {
        // Every node reads the records the others wrote: this format is what they share.
        let clock = Clock::new();
        let mut record = UserRecord::from_view(
            &away_user(PresenceView::Invited(42), &clock),
            Some(3),
            &clock,
        );
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"session":9,"node":3,"presence":{"is":"invited","room":42},"awayUntilMs":1700000000000,"seq":0,"received":0}"#
        );
        record.presence = StoredPresence::Member { room: 42 };
        record.token_hash = Some("ab".into());
        record.kicked_token_hash = Some("cd".into());
        record.seq = 5;
        record.received = 6;
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"session":9,"node":3,"presence":{"is":"member","room":42},"awayUntilMs":1700000000000,"tokenHash":"ab","seq":5,"received":6,"kickedTokenHash":"cd"}"#
        );
        record.link = Some(11);
        let with_link = r#"{"session":9,"node":3,"link":11,"presence":{"is":"member","room":42},"awayUntilMs":1700000000000,"tokenHash":"ab","seq":5,"received":6,"kickedTokenHash":"cd"}"#;
        assert_eq!(serde_json::to_string(&record).unwrap(), with_link);
        // A record written before the link was kept reads as one without it.
        let older: UserRecord = serde_json::from_str(&with_link.replace(r#""link":11,"#, ""))
            .expect("an older record parses");
        assert_eq!(older.link, None);
        let idle = UserView {
            session: None,
            presence: PresenceView::Idle,
            away_until: None,
            ..away_user(PresenceView::Idle, &clock)
        };
        assert_eq!(
            serde_json::to_string(&UserRecord::from_view(&idle, Some(3), &clock)).unwrap(),
            r#"{"session":null,"node":null,"presence":{"is":"idle"},"awayUntilMs":null,"seq":0,"received":0}"#
        );
    }

    #[test]
    fn user_views_round_trip_through_their_records() {
        let clock = Clock::new();
        for presence in [
            PresenceView::Idle,
            PresenceView::Invited(42),
            PresenceView::Member(43),
        ] {
            let view = away_user(presence, &clock);
            let record = UserRecord::from_view(&view, Some(3), &clock);
            assert_eq!(record.to_view(7, "bob", &clock), view);
        }
    }

    #[test]
    fn deadline_members_name_their_room() {
        assert_eq!(deadline_room(&deadline_member(42, 3)), Some(42));
        assert_eq!(deadline_room("x:1"), None);
    }
}
