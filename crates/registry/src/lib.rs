//! `calling-registry`: the authoritative state of calling-server: who is logged in, who is
//! ringing, who is in which call.
//!
//! Every method is pure: it takes the current time as an argument, changes the state and
//! returns the messages to deliver (and the sessions to close) instead of doing any IO. Room
//! and invitation ids come from an injected [`IdSource`]. The server holds the registry under
//! one lock, so each request is applied atomically and every party learns the same outcome;
//! the SDK core's scenario tests drive the same registry directly. Nothing here scans all
//! sessions or calls: each request touches only the maps entries of the users and the call it
//! names.

mod call;
mod ids;
mod invitation;
mod journal;
#[cfg(test)]
mod tests;
pub mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calling_protocol::{
    CallEnded, Cancelled, EndReason, ErrorCode, InviteeList, MemberLeft, RelayedSignal, RoomId,
    ServerMessage, Signal, DEFAULT_RESUME_GRACE_SECS,
};
use tracing::{debug, info};

pub use call::MAX_PARTICIPANTS;
use call::{BatchNo, Call, UserId};
pub use ids::{IdSource, SequentialIds};
pub use invitation::InviteRequest;
pub use journal::{Gap, Journal};

/// Identifies one WebSocket connection (assigned by the socket layer, never reused).
pub type SessionId = u64;

/// Why the registry closes a session's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The same user logged in on another connection.
    Kicked,
}

/// What a registry method wants delivered, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub deliveries: Vec<(SessionId, ServerMessage)>,
    pub closes: Vec<(SessionId, CloseReason)>,
    /// Away sessions whose grace ran out: the registry has forgotten them (they left their
    /// call), and no resume may name them again.
    pub ended: Vec<SessionId>,
    /// The invitations this request decided, by outcome.
    pub decided: Decided,
}

/// How many invitations one request decided, by outcome. Each counts whether or not anyone
/// online hears of it (an offline invitee's cancellation, a rejection whose inviter has left).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub accepted: usize,
    pub rejected: usize,
    pub busy: usize,
    pub cancelled: usize,
    pub timed_out: usize,
}

/// A refused request, answered with `ServerMessage::Error` to its sender only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// What a user is doing. A user is busy in any state but `Idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Idle,
    /// Has an unanswered invitation to this call (online or not).
    Invited(RoomId),
    /// Joined this call (always online: leaving the session leaves the call).
    Member(RoomId),
}

#[derive(Debug)]
struct UserEntry {
    session: Option<SessionId>,
    presence: Presence,
}

pub struct Registry {
    ring_timeout: Duration,
    ids: Box<dyn IdSource>,
    sessions: HashMap<SessionId, (u64, UserId)>,
    /// SDKAppID → userID → state. An entry exists while the user is online or invited.
    users: HashMap<u64, HashMap<UserId, UserEntry>>,
    calls: HashMap<RoomId, Call>,
    /// Ring deadlines of live batches, earliest first.
    deadlines: BTreeSet<(Instant, RoomId, BatchNo)>,
    /// How long a suspended session is kept for a resume.
    resume_grace: Duration,
    /// Sessions whose socket dropped, with the end of their grace.
    away: HashMap<SessionId, Instant>,
    /// The same ends of grace, earliest first.
    away_deadlines: BTreeSet<(Instant, SessionId)>,
}

impl Registry {
    /// An empty registry whose invitations ring for `ring_timeout`, with ids from `ids`.
    pub fn new(ring_timeout: Duration, ids: impl IdSource + 'static) -> Self {
        Registry {
            ring_timeout,
            ids: Box::new(ids),
            sessions: HashMap::new(),
            users: HashMap::new(),
            calls: HashMap::new(),
            deadlines: BTreeSet::new(),
            resume_grace: Duration::from_secs(DEFAULT_RESUME_GRACE_SECS.into()),
            away: HashMap::new(),
            away_deadlines: BTreeSet::new(),
        }
    }

    /// Sets how long a suspended session is kept for a resume.
    pub fn with_resume_grace(mut self, grace: Duration) -> Self {
        self.resume_grace = grace;
        self
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The SDKAppID of every session logged in (for metrics: a scan, made only at scrape time).
    pub fn session_apps(&self) -> impl Iterator<Item = u64> + '_ {
        self.sessions.values().map(|(app, _)| *app)
    }

    /// Invitees whose invitation is ringing (for metrics: a scan over calls, at scrape time).
    pub fn ringing_count(&self) -> usize {
        self.calls.values().map(|c| c.pending.len()).sum()
    }

    /// The (SDKAppID, userID) a session logged in as.
    pub fn user_of(&self, session: SessionId) -> Option<(u64, &str)> {
        self.sessions.get(&session).map(|(app, u)| (*app, &**u))
    }

    /// The earliest ring deadline or end of grace, so the timer knows when to call
    /// [`Registry::expire`].
    pub fn next_deadline(&self) -> Option<Instant> {
        let ring = self.deadlines.first().map(|(at, _, _)| *at);
        let grace = self.away_deadlines.first().map(|(at, _)| *at);
        match (ring, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The user of `session`, if it is a member of call `room` (it accepted, or it invited).
    pub fn member_of(&self, session: SessionId, room: RoomId) -> Option<&str> {
        let (app, user) = self.user_of(session)?;
        (self.presence(app, user) == Presence::Member(room)).then_some(user)
    }

    /// Whether `user` is a member of call `room`.
    pub fn is_member(&self, room: RoomId, user: &str) -> bool {
        self.calls
            .get(&room)
            .is_some_and(|call| call.is_member(user))
    }

    /// Whether a session's socket dropped and it waits for a resume.
    pub fn is_away(&self, session: SessionId) -> bool {
        self.away.contains_key(&session)
    }

    fn entry(&self, app: u64, user: &str) -> Option<&UserEntry> {
        self.users.get(&app).and_then(|m| m.get(user))
    }

    fn entry_mut(&mut self, app: u64, user: &str) -> Option<&mut UserEntry> {
        self.users.get_mut(&app).and_then(|m| m.get_mut(user))
    }

    fn presence(&self, app: u64, user: &str) -> Presence {
        self.entry(app, user).map_or(Presence::Idle, |e| e.presence)
    }

    fn session_of(&self, app: u64, user: &str) -> Option<SessionId> {
        self.entry(app, user).and_then(|e| e.session)
    }

    fn send(&self, app: u64, user: &str, msg: ServerMessage, out: &mut Outcome) {
        if let Some(session) = self.session_of(app, user) {
            out.deliveries.push((session, msg));
        }
    }

    /// Sets a user's presence; forgets users who are neither online nor invited.
    fn set_presence(&mut self, app: u64, user: &UserId, presence: Presence) {
        let per_app = self.users.entry(app).or_default();
        let entry = per_app.entry(user.clone()).or_insert(UserEntry {
            session: None,
            presence,
        });
        entry.presence = presence;
        if entry.session.is_none() && presence == Presence::Idle {
            per_app.remove(user);
            if per_app.is_empty() {
                self.users.remove(&app);
            }
        }
    }

    fn sender(&self, session: SessionId) -> Result<(u64, UserId), Refusal> {
        self.sessions
            .get(&session)
            .cloned()
            .ok_or_else(|| Refusal::new(ErrorCode::NotLoggedIn, "log in first"))
    }

    /// A verified login. An older session of the same user is kicked (it leaves its call and is
    /// closed); an invitation still ringing for the user is delivered to the new session.
    pub fn login(&mut self, session: SessionId, app: u64, user_id: &str, now: Instant) -> Outcome {
        let mut out = Outcome::default();
        let user: UserId = Arc::from(user_id);
        if let Some(old) = self.session_of(app, user_id) {
            out.deliveries.push((old, ServerMessage::Kicked));
            out.closes.push((old, CloseReason::Kicked));
            info!(
                app,
                user = user_id,
                session = old,
                "session kicked by a new login"
            );
            self.detach(old, now, &mut out);
        }
        self.sessions.insert(session, (app, user.clone()));
        let per_app = self.users.entry(app).or_default();
        let entry = per_app.entry(user).or_insert(UserEntry {
            session: None,
            presence: Presence::Idle,
        });
        entry.session = Some(session);
        if let Presence::Invited(room) = entry.presence {
            let invited = self.calls.get(&room).and_then(|call| {
                call.pending_of(user_id)
                    .and_then(|p| call.invited_message(p.batch))
            });
            if let Some(msg) = invited {
                out.deliveries.push((session, msg));
            }
        }
        out
    }

    /// The session ended (logout, a deliberate close, or a socket lost without resume): it
    /// leaves its call. A ringing invitee stays invited, since they may come back before the
    /// ring times out.
    pub fn leave(&mut self, session: SessionId, now: Instant) -> Outcome {
        let mut out = Outcome::default();
        self.detach(session, now, &mut out);
        out
    }

    /// A resumable session's socket dropped without a close: the session keeps its presence,
    /// its call and its invitations, and everything addressed to it is still delivered (the
    /// socket layer keeps it for the resume), until the grace ends in [`Registry::expire`].
    /// Nobody else is told anything.
    pub fn suspend(&mut self, session: SessionId, now: Instant) {
        if !self.sessions.contains_key(&session) {
            return;
        }
        let at = now + self.resume_grace;
        if let Some(old) = self.away.insert(session, at) {
            self.away_deadlines.remove(&(old, session));
        }
        self.away_deadlines.insert((at, session));
        debug!(session, "session away, kept for a resume");
    }

    /// A suspended (or still connected) session is taken over by a new socket. Refused for a
    /// session that has ended (grace over, kicked, logged out) or belongs to someone else.
    pub fn resume(&mut self, session: SessionId, app: u64, user_id: &str) -> Result<(), Refusal> {
        match self.sessions.get(&session) {
            Some((a, u)) if *a == app && &**u == user_id => {}
            _ => {
                return Err(Refusal::new(
                    ErrorCode::ResumeRefused,
                    "this session has ended: log in again",
                ))
            }
        }
        if let Some(at) = self.away.remove(&session) {
            self.away_deadlines.remove(&(at, session));
        }
        Ok(())
    }

    /// Ends the sessions whose grace is over, as if they had left then.
    fn expire_away(&mut self, now: Instant, out: &mut Outcome) {
        while let Some(&(at, session)) = self.away_deadlines.first() {
            if at > now {
                break;
            }
            info!(session, "session not resumed within its grace");
            self.detach(session, now, out);
            out.ended.push(session);
        }
    }

    fn detach(&mut self, session: SessionId, now: Instant, out: &mut Outcome) {
        if let Some(at) = self.away.remove(&session) {
            self.away_deadlines.remove(&(at, session));
        }
        let Some((app, user)) = self.sessions.remove(&session) else {
            return;
        };
        let presence = match self.entry_mut(app, &user) {
            Some(entry) if entry.session == Some(session) => {
                entry.session = None;
                entry.presence
            }
            _ => return,
        };
        match presence {
            Presence::Member(room) => self.leave_call(app, &user, room, now, out),
            // Re-setting the same presence forgets the entry if it is idle and offline.
            other => self.set_presence(app, &user, other),
        }
    }

    /// Leave the call; for a ringing invitee of that call, decline (SPEC: a ringing callee's
    /// `hangup()` rejects).
    pub fn hangup(
        &mut self,
        session: SessionId,
        room: RoomId,
        now: Instant,
    ) -> Result<Outcome, Refusal> {
        let (app, user) = self.sender(session)?;
        let mut out = Outcome::default();
        match self.presence(app, &user) {
            Presence::Member(r) if r == room => self.leave_call(app, &user, room, now, &mut out),
            Presence::Invited(r) if r == room => {
                let invite_id = self.calls.get(&room).and_then(|c| {
                    let no = c.pending_of(&user)?.batch;
                    c.batch(no).map(|b| b.invite_id.clone())
                });
                let invite_id = invite_id.unwrap_or_else(|| Arc::from(""));
                self.reject_in(room, app, &user, &invite_id, now, &mut out);
            }
            _ => {
                return Err(Refusal::new(
                    ErrorCode::NotInCall,
                    format!("you are not in call {room}"),
                ))
            }
        }
        Ok(out)
    }

    /// Passes a signal to another participant of the sender's call.
    pub fn relay(
        &mut self,
        session: SessionId,
        room: RoomId,
        to: &str,
        signal: Signal,
    ) -> Result<Outcome, Refusal> {
        let (app, user) = self.sender(session)?;
        let call = match self.presence(app, &user) {
            Presence::Member(r) | Presence::Invited(r) if r == room => self.calls.get(&room),
            _ => None,
        }
        .ok_or_else(|| Refusal::new(ErrorCode::NotInCall, format!("you are not in call {room}")))?;
        if to == &*user || !call.is_participant(to) {
            return Err(Refusal::new(
                ErrorCode::NotAParticipant,
                format!("{to:?} is not a participant of call {room}"),
            ));
        }
        if signal == Signal::Unknown {
            // Its content is lost in parsing; passing on an empty `unknown` would mislead.
            return Err(Refusal::new(
                ErrorCode::UnknownType,
                "unknown signal kind: this server cannot relay it",
            ));
        }
        let mut out = Outcome::default();
        // An invitee who is offline right now simply misses the signal, as a closed peer would.
        let msg = ServerMessage::Signal(RelayedSignal {
            room_id: room,
            from: user.to_string(),
            signal,
        });
        self.send(app, to, msg, &mut out);
        Ok(out)
    }

    /// `user` leaves call `room` as a member.
    fn leave_call(
        &mut self,
        app: u64,
        user: &UserId,
        room: RoomId,
        now: Instant,
        out: &mut Outcome,
    ) {
        self.set_presence(app, user, Presence::Idle);
        let Some(call) = self.calls.get_mut(&room) else {
            return;
        };
        call.members.retain(|m| m != user);
        let rest: Vec<UserId> = call.members.clone();
        debug!(app, room, user = &**user, "member left");
        for member in &rest {
            let msg = ServerMessage::MemberLeft(MemberLeft {
                room_id: room,
                user_id: user.to_string(),
            });
            self.send(app, member, msg, out);
        }
        self.settle(room, user, EndReason::Hangup, now, out);
    }

    /// Tells every member which invitees are still ringing.
    fn announce_pending(&self, room: RoomId, out: &mut Outcome) {
        let Some(call) = self.calls.get(&room) else {
            return;
        };
        let pending = call.pending_ids();
        for member in &call.members {
            let msg = ServerMessage::InviteeList(InviteeList {
                room_id: room,
                user_ids: pending.clone(),
            });
            self.send(call.app, member, msg, out);
        }
    }

    /// Ends the call if it is over: with no member left its invitations are cancelled; with one
    /// member and nobody ringing, that member gets `CallEnded` (`actor` ended it, for `reason`).
    fn settle(
        &mut self,
        room: RoomId,
        actor: &str,
        reason: EndReason,
        now: Instant,
        out: &mut Outcome,
    ) {
        let Some(call) = self.calls.get(&room) else {
            return;
        };
        let over = call.members.is_empty() || (call.members.len() == 1 && call.pending.is_empty());
        if !over {
            return;
        }
        let Some(call) = self.calls.remove(&room) else {
            return;
        };
        let app = call.app;
        for batch in &call.batches {
            self.deadlines.remove(&(batch.deadline, room, batch.no));
        }
        out.decided.cancelled += call.pending.len();
        for p in &call.pending {
            if let Some(batch) = call.batch(p.batch) {
                let msg = ServerMessage::Cancelled(Cancelled {
                    room_id: room,
                    invite_id: batch.invite_id.to_string(),
                    sponsor: batch.inviter.to_string(),
                });
                self.send(app, &p.user, msg, out);
            }
            self.set_presence(app, &p.user, Presence::Idle);
        }
        let duration_secs = call.duration_secs(now);
        if let Some(last) = call.members.first() {
            let msg = ServerMessage::CallEnded(CallEnded {
                room_id: room,
                user_id: actor.to_string(),
                duration_secs,
                reason,
            });
            self.send(app, last, msg, out);
            self.set_presence(app, last, Presence::Idle);
        }
        if call.members.is_empty() {
            info!(app, room, by = actor, "call cancelled");
        } else {
            info!(app, room, by = actor, ?reason, duration_secs, "call ended");
        }
    }
}
