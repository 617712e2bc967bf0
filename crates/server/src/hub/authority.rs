//! Who decides outcomes for a hub: its own registry (one process), or the cluster's shared
//! store, in which case the hub only knows its own sessions and delivers what the cluster
//! decided for them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use calling_protocol::{ErrorReply, Resumed, ServerMessage};

use super::{CloseKind, Hub, Outbound, Owner, State};
use crate::cluster::{Delivery, Op, Takeover};
use crate::registry::{CloseReason, Outcome, Refusal, Registry, SessionId};

// One per hub, matched on every request: the registry stays inline rather than behind a box.
#[allow(clippy::large_enum_variant)]
pub(super) enum Authority {
    /// This process decides, under the hub's lock.
    Local(Registry),
    /// The cluster decides; these are this node's logged-in sessions.
    Shared(HashMap<SessionId, Member>),
}

/// A session the cluster resumed on a socket of this node that had stopped waiting for it (the
/// news came late): no socket holds it now.
pub struct Orphan {
    /// The session and the socket it was resumed on.
    owner: Owner,
    app: u64,
    user: Arc<str>,
}

/// A session of a cluster node.
pub(super) struct Member {
    pub app: u64,
    pub user: Arc<str>,
    /// Whether it was granted a resume token (what it is sent is numbered and kept in Redis).
    pub resumable: bool,
}

impl Authority {
    /// The (SDKAppID, userID) a session of this node logged in as.
    pub(super) fn user_of(&self, session: SessionId) -> Option<(u64, &str)> {
        match self {
            Authority::Local(registry) => registry.user_of(session),
            Authority::Shared(sessions) => sessions.get(&session).map(|m| (m.app, &*m.user)),
        }
    }

    pub(super) fn session_count(&self) -> usize {
        match self {
            Authority::Local(registry) => registry.session_count(),
            Authority::Shared(sessions) => sessions.len(),
        }
    }

    /// The SDKAppID of each session logged in here.
    pub(super) fn session_apps(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        match self {
            Authority::Local(registry) => Box::new(registry.session_apps()),
            Authority::Shared(sessions) => Box::new(sessions.values().map(|m| m.app)),
        }
    }

    /// (calls live, invitees ringing) of one process (a cluster keeps its counts in Redis).
    pub(super) fn call_counts(&self) -> (usize, usize) {
        match self {
            Authority::Local(registry) => (registry.call_count(), registry.ringing_count()),
            Authority::Shared(_) => (0, 0),
        }
    }
}

impl State {
    /// The session leaves. One process decides and delivers at once (returning `None`); a
    /// cluster node forgets the session and returns who it was, for the shared store.
    pub(super) fn leave(&mut self, session: SessionId) -> Option<(u64, Arc<str>)> {
        match &mut self.authority {
            Authority::Local(registry) => {
                let outcome = registry.leave(session, Instant::now());
                self.dispatch(outcome);
                None
            }
            Authority::Shared(sessions) => sessions.remove(&session).map(|m| (m.app, m.user)),
        }
    }

    /// Whether a session can be resumed (kept for its grace when its socket is lost).
    pub(super) fn is_resumable(&self, session: SessionId) -> bool {
        match &self.authority {
            Authority::Local(_) => self.resumable.contains_key(&session),
            Authority::Shared(sessions) => sessions.get(&session).is_some_and(|m| m.resumable),
        }
    }

    /// Closes the socket holding `session` here, if any, with `kind`, and forgets the session
    /// (see [`State::drop_member`]). Returns whether a socket was closed.
    pub(super) fn close_member(&mut self, session: SessionId, kind: CloseKind) -> bool {
        let held = self.outboxes.contains_key(&session);
        self.push(session, Outbound::Close(kind));
        self.drop_member(session);
        held
    }

    /// Forgets a session of this node without it leaving anything (it lives on elsewhere).
    fn drop_member(&mut self, session: SessionId) {
        self.outboxes.remove(&session);
        self.owners.remove(&session);
        if let Authority::Shared(sessions) = &mut self.authority {
            sessions.remove(&session);
        }
        self.forget_resumable(session);
    }

    /// One item the cluster decided for a session of this node; a session resumed on a socket
    /// that stopped waiting for it comes back as an orphan.
    pub(super) fn deliver(&mut self, delivery: Delivery) -> Option<Orphan> {
        match delivery {
            Delivery::Text {
                session,
                text,
                relayed,
            } => {
                if relayed && self.outboxes.contains_key(&session) {
                    self.metrics.relayed(text.len());
                }
                self.push(session, Outbound::Text(text));
            }
            Delivery::Replaced { session } => {
                self.close_member(session, CloseKind::Replaced);
            }
            Delivery::Adopt(takeover) => return self.adopt(takeover),
            Delivery::Kicked { session } => {
                self.push(session, Outbound::Close(CloseReason::Kicked.into()));
                self.outboxes.remove(&session);
                if let Authority::Shared(sessions) = &mut self.authority {
                    sessions.remove(&session);
                }
                if let Some(token) = self.forget_resumable(session) {
                    self.remember_kicked(token, Instant::now());
                }
            }
            Delivery::Ended { session } => self.drop_member(session),
            Delivery::ToSfu(request) => self.to_sfu(request),
        }
        None
    }

    /// Link `link` of this node takes over `session` (resumed through the cluster): the link
    /// that held it here before is closed, and the new one gets `resumed`, fresh ICE servers if
    /// any, then everything after the SDK's last seq. A link that stopped waiting (its SDK was
    /// told to resume again) leaves the session held by nobody: it is returned, to be
    /// suspended like a session whose socket dropped.
    fn adopt(&mut self, takeover: Takeover) -> Option<Orphan> {
        let Takeover {
            session,
            link,
            app,
            user,
            received,
            replay,
        } = takeover;
        let Some(adoption) = self.adopting.remove(&link) else {
            self.close_member(session, CloseKind::Replaced);
            let owner = Owner { session, link };
            let user = Arc::from(user.as_str());
            return Some(Orphan { owner, app, user });
        };
        self.push(session, Outbound::Close(CloseKind::Replaced));
        self.outboxes.remove(&session);
        let outbox = self.outboxes.remove(&link);
        self.owners.remove(&link);
        if let Some(outbox) = outbox {
            self.outboxes.insert(session, outbox);
        }
        self.owners.insert(session, link);
        if let Authority::Shared(sessions) = &mut self.authority {
            let user = Arc::from(user.as_str());
            let member = Member {
                app,
                user,
                resumable: true,
            };
            sessions.insert(session, member);
        }
        self.push_message_unnumbered(session, &ServerMessage::Resumed(Resumed { received }));
        if let Some(fresh) = adoption.fresh {
            self.push_message_unnumbered(session, &fresh);
        }
        for text in replay {
            self.push(session, Outbound::Text(text));
        }
        if let Some(adopted) = adoption.adopted {
            let _ = adopted.send(());
        }
        None
    }
}

impl Hub {
    /// Counts the invitations an outcome decided (a ring deadline this node expired).
    pub fn count_decided(&self, outcome: &Outcome) {
        let mut state = self.lock();
        let state = &mut *state;
        self.metrics.count(outcome, None, &mut state.invites);
    }

    /// Delivers what another node (or this one) decided for this node's sessions, in order;
    /// returns the sessions left held by no socket (see [`Hub::suspend_orphan`]).
    pub fn deliver(&self, deliveries: Vec<Delivery>) -> Vec<Orphan> {
        let mut state = self.lock();
        deliveries
            .into_iter()
            .filter_map(|delivery| state.deliver(delivery))
            .collect()
    }

    /// A session resumed on a socket of this node that had stopped waiting is away, as if that
    /// socket had dropped: its SDK may resume it again within its grace, or it ends then.
    pub async fn suspend_orphan(&self, orphan: Orphan) {
        let Orphan { owner, app, user } = orphan;
        tracing::info!(
            app,
            user = &*user,
            session = owner.session,
            "a session resumed too late for its socket is away"
        );
        self.suspend_shared(owner, app, user).await;
    }

    /// Tells the cluster that a session of this node is away, kept for its resume grace.
    pub(super) async fn suspend_shared(&self, owner: Owner, app: u64, user: Arc<str>) {
        let Owner { session, link } = owner;
        if let Some(cluster) = &self.cluster {
            let op = Op::Suspend {
                session,
                link,
                app,
                user,
            };
            if let Err(refusal) = cluster.decide(op).await {
                tracing::error!(
                    session,
                    message = refusal.message,
                    "a suspend was not recorded"
                );
            }
        }
    }

    /// Tells the cluster that a session of this node left (see [`State::leave`]).
    pub(super) async fn leave_shared(&self, owner: Owner, left: Option<(u64, Arc<str>)>) {
        let Owner { session, link } = owner;
        if let (Some(cluster), Some((app, user))) = (&self.cluster, left) {
            let op = Op::Leave {
                session,
                link,
                app,
                user,
            };
            if let Err(refusal) = cluster.decide(op).await {
                tracing::error!(
                    session,
                    message = refusal.message,
                    "a leave was not recorded"
                );
            }
        }
    }

    /// A login the cluster could not record: the client is told why and the socket closed.
    pub(super) fn refuse_login(&self, session: SessionId, refusal: Refusal) {
        let mut state = self.lock();
        if let Authority::Shared(sessions) = &mut state.authority {
            sessions.remove(&session);
        }
        state.forget_resumable(session);
        state.push_message_unnumbered(
            session,
            &ServerMessage::Error(ErrorReply {
                request_id: None,
                code: refusal.code,
                message: refusal.message,
            }),
        );
        state.push(session, Outbound::Close(CloseKind::LoginFailed));
        state.outboxes.remove(&session);
    }
}
