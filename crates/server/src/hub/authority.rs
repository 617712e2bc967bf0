//! Who decides outcomes for a hub: its own registry (one process), or the cluster's shared
//! store, in which case the hub only knows its own sessions and delivers what the cluster
//! decided for them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use calling_protocol::{ErrorReply, Resumed, ServerMessage};

use super::{CloseKind, Hub, Outbound, State};
use crate::cluster::{Delivery, Op};
use crate::registry::{CloseReason, Outcome, Refusal, Registry, SessionId};

// One per hub, matched on every request: the registry stays inline rather than behind a box.
#[allow(clippy::large_enum_variant)]
pub(super) enum Authority {
    /// This process decides, under the hub's lock.
    Local(Registry),
    /// The cluster decides; these are this node's logged-in sessions.
    Shared(HashMap<SessionId, Member>),
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

    /// Forgets a session of this node without it leaving anything (it lives on elsewhere).
    pub(super) fn drop_member(&mut self, session: SessionId) {
        self.outboxes.remove(&session);
        self.owners.remove(&session);
        if let Authority::Shared(sessions) = &mut self.authority {
            sessions.remove(&session);
        }
        self.forget_resumable(session);
    }

    /// One item the cluster decided for a session of this node.
    pub(super) fn deliver(&mut self, delivery: Delivery) {
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
                self.push(session, Outbound::Close(CloseKind::Replaced));
                self.drop_member(session);
            }
            Delivery::Adopt { .. } => self.adopt(delivery),
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
        }
    }

    /// Carries out a [`Delivery::Adopt`] (any other delivery is not one to adopt): link `link`
    /// of this node takes over `session` (resumed through the cluster), the link that held it
    /// here before is closed, and the new one gets `resumed`, fresh ICE servers if any, then
    /// everything after the SDK's last seq.
    fn adopt(&mut self, takeover: Delivery) {
        let Delivery::Adopt {
            session,
            link,
            app,
            user,
            received,
            replay,
        } = takeover
        else {
            return;
        };
        let Some(adoption) = self.adopting.remove(&link) else {
            // The link gave up waiting: its SDK resumes again.
            return;
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
    }
}

impl Hub {
    /// Counts the invitations an outcome decided (a ring deadline this node expired).
    pub fn count_decided(&self, outcome: &Outcome) {
        let mut state = self.lock();
        let state = &mut *state;
        self.metrics.count(outcome, None, &mut state.invites);
    }

    /// Delivers what another node (or this one) decided for this node's sessions, in order.
    pub fn deliver(&self, deliveries: Vec<Delivery>) {
        let mut state = self.lock();
        for delivery in deliveries {
            state.deliver(delivery);
        }
    }

    /// Tells the cluster that a session of this node is away, kept for its resume grace.
    pub(super) async fn suspend_shared(&self, session: SessionId, app: u64, user: Arc<str>) {
        if let Some(cluster) = &self.cluster {
            let op = Op::Suspend { session, app, user };
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
    pub(super) async fn leave_shared(&self, session: SessionId, left: Option<(u64, Arc<str>)>) {
        if let (Some(cluster), Some((app, user))) = (&self.cluster, left) {
            let op = Op::Leave { session, app, user };
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
