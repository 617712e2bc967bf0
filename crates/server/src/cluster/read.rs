//! The read half of a transaction: what an operation names, and the entries it reads under
//! WATCH, in up to three round trips, each naming what the previous one revealed: the users and
//! call the operation names; the calls those users are in or invited to; every participant of
//! those calls. That is everything a registry method reads (see `calling_registry::view`).

use std::collections::{BTreeMap, BTreeSet};

use calling_protocol::RoomId;
use redis::aio::MultiplexedConnection;
use redis::RedisResult;
use tracing::error;

use super::records::{call_key, user_key, CallRecord, UserRecord};
use super::Op;
use crate::registry::view::PresenceView;

/// The entries read, as stored (`None`: absent), keyed as the registry names them.
#[derive(Default)]
pub(super) struct Read {
    pub users: BTreeMap<UserKey, Option<UserRecord>>,
    pub calls: BTreeMap<RoomId, Option<CallRecord>>,
}

impl Read {
    /// WATCHes and reads the users and calls not read yet, in one round trip.
    pub async fn load(
        &mut self,
        conn: &mut MultiplexedConnection,
        users: Vec<UserKey>,
        rooms: Vec<RoomId>,
    ) -> RedisResult<()> {
        let users: Vec<UserKey> = users
            .into_iter()
            .filter(|k| !self.users.contains_key(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let rooms: Vec<RoomId> = rooms
            .into_iter()
            .filter(|r| !self.calls.contains_key(r))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if users.is_empty() && rooms.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = users
            .iter()
            .map(|(app, user)| user_key(*app, user))
            .chain(rooms.iter().map(|room| call_key(*room)))
            .collect();
        let (values,): (Vec<Option<String>>,) = redis::pipe()
            .cmd("WATCH")
            .arg(&keys)
            .ignore()
            .cmd("MGET")
            .arg(&keys)
            .query_async(conn)
            .await?;
        let mut values = values.into_iter();
        for key in users {
            let record = values.next().flatten().and_then(|json| parse(&json));
            self.users.insert(key, record);
        }
        for room in rooms {
            let record = values.next().flatten().and_then(|json| parse(&json));
            self.calls.insert(room, record);
        }
        Ok(())
    }

    /// The calls the users read so far are in or invited to.
    pub fn rooms_of_users(&self, only: &[UserKey]) -> Vec<RoomId> {
        only.iter()
            .filter_map(|k| self.users.get(k)?.as_ref())
            .filter_map(|record| PresenceView::from(record.presence).room())
            .collect()
    }

    /// Every participant of the calls read so far.
    pub fn participants(&self) -> Vec<UserKey> {
        self.calls
            .values()
            .flatten()
            .flat_map(|call| {
                let app = call.app;
                call.members
                    .iter()
                    .chain(call.pending.iter().map(|(user, _)| user))
                    .map(move |user| (app, user.clone()))
            })
            .collect()
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Option<T> {
    match serde_json::from_str(json) {
        Ok(record) => Some(record),
        Err(err) => {
            // Treated as absent, and overwritten by whatever the operation decides.
            error!(%err, json, "an unreadable record in the shared registry");
            None
        }
    }
}

pub(super) type UserKey = (u64, String);

/// What an operation names before anything is read.
pub(super) struct Scope {
    /// Users whose call (and its participants) the operation reads too: the sender.
    pub users: Vec<UserKey>,
    /// Users whose own entry only it reads (invitees, a relay's recipient).
    pub others: Vec<UserKey>,
    pub rooms: Vec<RoomId>,
}

pub(super) fn scope(op: &Op) -> Scope {
    match op {
        Op::Request {
            app, user, request, ..
        } => {
            let names = request.names();
            Scope {
                users: vec![(*app, user.to_string())],
                others: names
                    .users
                    .iter()
                    .map(|u| (*app, (*u).to_string()))
                    .collect(),
                rooms: names.room.into_iter().collect(),
            }
        }
        Op::Login { app, user, .. }
        | Op::Leave { app, user, .. }
        | Op::Suspend { app, user, .. }
        | Op::Resume { app, user, .. }
        | Op::ExpireAway { app, user, .. }
        | Op::Reap { app, user, .. } => Scope {
            users: vec![(*app, user.to_string())],
            others: Vec::new(),
            rooms: Vec::new(),
        },
        Op::Expire { room, .. } | Op::SfuLost { room } => Scope {
            users: Vec::new(),
            others: Vec::new(),
            rooms: vec![*room],
        },
        Op::SfuMember(member) => Scope {
            users: vec![(member.app, member.user.clone())],
            others: Vec::new(),
            rooms: vec![member.room],
        },
        Op::SfuMessage { member, .. } => Scope {
            users: Vec::new(),
            others: vec![(member.app, member.user.clone())],
            rooms: Vec::new(),
        },
    }
}
