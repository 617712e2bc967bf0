//! A logged-in client's request to the registry, as data: the one process applies it to its
//! registry under the hub's lock; a cluster node first loads the entries it names from the
//! shared store (see [`Request::names`]) and applies it to those.

use std::time::Instant;

use calling_protocol::{user_id, ErrorCode, RequestId, RoomId, Signal};

use crate::registry::{InviteRequest, Outcome, Refusal, Registry, SessionId, MAX_PARTICIPANTS};

/// One registry request of a logged-in session.
#[derive(Debug, Clone)]
pub enum Request {
    Invite(InviteRequest),
    Accept {
        request_id: RequestId,
        invite_id: String,
    },
    Reject {
        invite_id: String,
    },
    Hangup {
        room_id: RoomId,
    },
    Relay {
        room_id: RoomId,
        to: String,
        signal: Signal,
    },
}

/// The entries a request reads besides its sender's own user entry and that user's call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names<'a> {
    /// A call the request names (with all its participants).
    pub room: Option<RoomId>,
    /// Users whose presence it reads (invitees, a relay's recipient).
    pub users: Vec<&'a str>,
}

impl Request {
    /// The request id a refusal answers, if the request has one.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Request::Invite(req) => Some(req.request_id),
            Request::Accept { request_id, .. } => Some(*request_id),
            _ => None,
        }
    }

    /// What the request reads (see [`Names`]).
    pub fn names(&self) -> Names<'_> {
        match self {
            Request::Invite(req) => Names {
                room: req.room_id,
                // Bounded and valid once `check` passed.
                users: req.user_ids.iter().map(String::as_str).collect(),
            },
            Request::Accept { .. } | Request::Reject { .. } => Names::default(),
            Request::Hangup { room_id } => Names {
                room: Some(*room_id),
                users: Vec::new(),
            },
            Request::Relay { room_id, to, .. } => Names {
                room: Some(*room_id),
                users: vec![to.as_str()],
            },
        }
    }

    /// Refuses a request whose parameters are unusable before anything is read for it: one
    /// request's cost stays bounded by the call size, whatever the frame holds.
    pub fn check(&self) -> Result<(), Refusal> {
        let Request::Invite(req) = self else {
            return Ok(());
        };
        if req.user_ids.len() > MAX_PARTICIPANTS {
            return Err(Refusal {
                code: ErrorCode::InvalidParam,
                message: format!("an invitation names at most {MAX_PARTICIPANTS} users"),
            });
        }
        if let Some(bad) = req.user_ids.iter().find(|u| !user_id::is_valid(u)) {
            return Err(Refusal {
                code: ErrorCode::InvalidParam,
                message: format!("invalid userID {bad:?}: use {}", user_id::RULE),
            });
        }
        Ok(())
    }

    /// Checks and applies the request of `session` to `registry`.
    pub fn run(
        self,
        registry: &mut Registry,
        session: SessionId,
        now: Instant,
    ) -> Result<Outcome, Refusal> {
        self.check()?;
        match self {
            Request::Invite(req) => registry.invite(session, req, now),
            Request::Accept {
                request_id,
                invite_id,
            } => registry.accept(session, request_id, &invite_id, now),
            Request::Reject { invite_id } => registry.reject(session, &invite_id, now),
            Request::Hangup { room_id } => registry.hangup(session, room_id, now),
            Request::Relay {
                room_id,
                to,
                signal,
            } => registry.relay(session, room_id, &to, signal),
        }
    }
}
