//! Resumption: a new socket takes over a session whose socket dropped, and gets everything
//! it missed from the session's journal.

use std::sync::Arc;
use std::time::Instant;

use calling_protocol::{ErrorCode, Resumed, ServerMessage};

use super::{Authority, CloseKind, LinkId, NotResumed, Outbound, State};
use crate::registry::{Refusal, SessionId};

/// A resume that cannot go on: the SDK logs in instead.
fn refused_resume(why: &str) -> NotResumed {
    NotResumed::Refused(Refusal {
        code: ErrorCode::ResumeRefused,
        message: format!("{why}: log in again"),
    })
}

/// A failed take-over: why, and the session that had to leave with its (SDKAppID, userID)
/// when the cluster must be told.
pub(super) type TakeOverFailure = (NotResumed, Option<(SessionId, (u64, Arc<str>))>);

impl State {
    /// The session `token` names, if it is `user_id`'s and can still be resumed.
    pub(super) fn resumable_session(
        &self,
        app: u64,
        user_id: &str,
        token: &str,
    ) -> Result<SessionId, NotResumed> {
        if self.was_kicked(token, Instant::now()) {
            return Err(NotResumed::Kicked);
        }
        let session = *self
            .tokens
            .get(token)
            .ok_or_else(|| refused_resume("no session has this token"))?;
        if self.authority.user_of(session) != Some((app, user_id)) {
            return Err(refused_resume("no session has this token"));
        }
        Ok(session)
    }

    /// Link `link` takes over the session `token` names (see [`Hub::resume`]). On failure,
    /// a session of a cluster node that had to leave is returned with its user, for the
    /// shared registry.
    pub(super) fn take_over(
        &mut self,
        link: LinkId,
        app: u64,
        user_id: &str,
        token: &str,
        last_seq: u64,
        fresh: Option<ServerMessage>,
    ) -> Result<SessionId, TakeOverFailure> {
        let refused = |why: &str| (refused_resume(why), None);
        let state = self;
        let session = state
            .resumable_session(app, user_id, token)
            .map_err(|e| (e, None))?;
        let replay: Result<Vec<String>, _> = match state.resumable.get(&session) {
            Some(r) => r
                .journal
                .after(last_seq)
                .map(|items| items.map(|(_, text)| text.clone()).collect()),
            None => return Err(refused("this session has ended")),
        };
        let Ok(replay) = replay else {
            // What it missed is lost: the session cannot go on consistently.
            state.push(session, Outbound::Close(CloseKind::Replaced));
            state.outboxes.remove(&session);
            state.owners.remove(&session);
            let left = state.leave(session);
            state.forget_resumable(session);
            let why = refused_resume("the messages since lastSeq are no longer kept");
            return Err((why, left.map(|user| (session, user))));
        };
        // A cluster node's caller has had the shared registry take the session back already.
        if let Authority::Local(registry) = &mut state.authority {
            registry
                .resume(session, app, user_id)
                .map_err(|r| (NotResumed::Refused(r), None))?;
        }
        let received = state
            .resumable
            .get(&session)
            .map_or(0, |r| r.journal.received());
        // The old link (if the server had not noticed it die) is told and ignored from now on.
        state.push(session, Outbound::Close(CloseKind::Replaced));
        let outbox = state.outboxes.remove(&link);
        state.owners.remove(&link);
        if let Some(outbox) = outbox {
            state.outboxes.insert(session, outbox);
        }
        state.owners.insert(session, link);
        state.push_message_unnumbered(session, &ServerMessage::Resumed(Resumed { received }));
        if let Some(fresh) = fresh {
            state.push_message_unnumbered(session, &fresh);
        }
        for text in replay {
            state.push(session, Outbound::Text(text));
        }
        Ok(session)
    }
}
