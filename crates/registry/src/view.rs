//! Plain copies of the registry's entries, so a shared store can hold them and a node can run a
//! request on just the entries it names.
//!
//! A *working set* is a registry loaded with a few entries ([`Registry::insert_user`],
//! [`Registry::insert_call`]); the ordinary methods then run on it unchanged, and the entries
//! afterwards ([`Registry::user_view`], [`Registry::call_view`]) say what to write back. This
//! is how a cluster decides each outcome with the same code as one process, provided the
//! working set holds every entry the request reads: the sender's user, the call it names,
//! every participant of that call, and the users it invites.

use std::sync::Arc;
use std::time::Instant;

use calling_protocol::{CallType, RoomId};

use super::call::{Batch, BatchNo, Call, Pending};
use super::{Presence, Registry, SessionId, UserEntry};

/// What a user is doing (see the registry's presence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceView {
    Idle,
    Invited(RoomId),
    Member(RoomId),
}

/// One user entry: online (with a session) or invited, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub app: u64,
    pub user: String,
    pub session: Option<SessionId>,
    pub presence: PresenceView,
    /// When the session's resume grace ends, if its socket dropped.
    pub away_until: Option<Instant>,
}

impl PresenceView {
    /// The call invited to or in.
    pub fn room(self) -> Option<RoomId> {
        match self {
            PresenceView::Idle => None,
            PresenceView::Invited(room) | PresenceView::Member(room) => Some(room),
        }
    }
}

impl UserView {
    /// The call this user is invited to or in.
    pub fn room(&self) -> Option<RoomId> {
        self.presence.room()
    }
}

/// One invitation batch of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView {
    pub no: BatchNo,
    pub invite_id: String,
    pub inviter: String,
    pub call_type: CallType,
    pub is_group: bool,
    pub group_id: Option<String>,
    pub user_ids: Vec<String>,
    pub deadline: Instant,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    pub app: u64,
    pub room: RoomId,
    pub members: Vec<String>,
    /// Invitees still ringing, with their batch.
    pub pending: Vec<(String, BatchNo)>,
    pub batches: Vec<BatchView>,
    pub next_batch: BatchNo,
    pub connected_at: Option<Instant>,
}

impl CallView {
    /// Members and ringing invitees.
    pub fn participants(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .map(String::as_str)
            .chain(self.pending.iter().map(|(u, _)| u.as_str()))
    }
}

impl From<PresenceView> for Presence {
    fn from(p: PresenceView) -> Self {
        match p {
            PresenceView::Idle => Presence::Idle,
            PresenceView::Invited(room) => Presence::Invited(room),
            PresenceView::Member(room) => Presence::Member(room),
        }
    }
}

impl From<Presence> for PresenceView {
    fn from(p: Presence) -> Self {
        match p {
            Presence::Idle => PresenceView::Idle,
            Presence::Invited(room) => PresenceView::Invited(room),
            Presence::Member(room) => PresenceView::Member(room),
        }
    }
}

impl Registry {
    /// Adds (or replaces) a user entry, with its session and the session's grace.
    pub fn insert_user(&mut self, view: UserView) {
        let user: Arc<str> = Arc::from(view.user.as_str());
        if let Some(session) = view.session {
            self.sessions.insert(session, (view.app, user.clone()));
            if let Some(at) = view.away_until {
                self.away.insert(session, at);
                self.away_deadlines.insert((at, session));
            }
        }
        self.users.entry(view.app).or_default().insert(
            user,
            UserEntry {
                session: view.session,
                presence: view.presence.into(),
            },
        );
    }

    /// Adds (or replaces) a call, with the ring deadlines of its batches.
    pub fn insert_call(&mut self, view: CallView) {
        let room = view.room;
        let mut call = Call::new(view.app, room, Arc::from(""));
        call.members = view.members.iter().map(|m| Arc::from(m.as_str())).collect();
        call.pending = view
            .pending
            .iter()
            .map(|(user, batch)| Pending {
                user: Arc::from(user.as_str()),
                batch: *batch,
            })
            .collect();
        call.batches = view
            .batches
            .into_iter()
            .map(|b| Batch {
                no: b.no,
                invite_id: Arc::from(b.invite_id.as_str()),
                inviter: Arc::from(b.inviter.as_str()),
                call_type: b.call_type,
                is_group: b.is_group,
                group_id: b.group_id,
                user_ids: b.user_ids.iter().map(|u| Arc::from(u.as_str())).collect(),
                deadline: b.deadline,
            })
            .collect();
        call.set_next_batch_no(view.next_batch);
        call.connected_at = view.connected_at;
        for batch in &call.batches {
            self.deadlines.insert((batch.deadline, room, batch.no));
        }
        self.calls.insert(room, call);
    }

    /// A user's entry as it stands (`None`: offline and not invited, so not kept).
    pub fn user_view(&self, app: u64, user: &str) -> Option<UserView> {
        let entry = self.entry(app, user)?;
        Some(UserView {
            app,
            user: user.to_string(),
            session: entry.session,
            presence: entry.presence.into(),
            away_until: entry.session.and_then(|s| self.away.get(&s).copied()),
        })
    }

    /// A call as it stands (`None`: over, or never existed).
    pub fn call_view(&self, room: RoomId) -> Option<CallView> {
        let call = self.calls.get(&room)?;
        Some(CallView {
            app: call.app,
            room,
            members: call.members.iter().map(|m| m.to_string()).collect(),
            pending: call
                .pending
                .iter()
                .map(|p| (p.user.to_string(), p.batch))
                .collect(),
            batches: call
                .batches
                .iter()
                .map(|b| BatchView {
                    no: b.no,
                    invite_id: b.invite_id.to_string(),
                    inviter: b.inviter.to_string(),
                    call_type: b.call_type,
                    is_group: b.is_group,
                    group_id: b.group_id.clone(),
                    user_ids: b.user_ids.iter().map(|u| u.to_string()).collect(),
                    deadline: b.deadline,
                })
                .collect(),
            next_batch: call.next_batch(),
            connected_at: call.connected_at,
        })
    }

    /// Every user entry held, as (SDKAppID, userID).
    pub fn user_keys(&self) -> Vec<(u64, String)> {
        self.users
            .iter()
            .flat_map(|(app, users)| users.keys().map(|u| (*app, u.to_string())))
            .collect()
    }

    /// Every call held.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.calls.keys().copied().collect()
    }
}
