//! Invitations: starting a call or growing one, and every way an invitation ends (accept,
//! reject, ring timeout). Cancellation and the end of the call are in the parent module.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use calling_protocol::{
    Accepted, Busy, CallType, EndReason, ErrorCode, InviteSent, InviteTimeout, InviteeList, Joined,
    NoResponse, Rejected, RequestId, RoomId, ServerMessage,
};
// Steps of a call log at debug; its outcomes (accepted, rejected, busy, timed out, ended)
// at info: one or two lines per call keep the log readable and cheap at thousands of calls/s.
use tracing::{debug, info};

use super::call::{Batch, BatchNo, Call, Pending, UserId, MAX_PARTICIPANTS};
use super::{Outcome, Presence, Refusal, Registry, SessionId};
use calling_protocol::user_id;

/// The parameters of one `Invite` request.
#[derive(Debug, Clone)]
pub struct InviteRequest {
    pub request_id: RequestId,
    pub user_ids: Vec<String>,
    pub call_type: CallType,
    pub is_group: bool,
    pub group_id: Option<String>,
    pub room_id: Option<RoomId>,
}

impl Registry {
    /// Starts a call or invites more users into the sender's call.
    pub fn invite(
        &mut self,
        session: SessionId,
        req: InviteRequest,
        now: Instant,
    ) -> Result<Outcome, Refusal> {
        let (app, sender) = self.sender(session)?;
        // The list's length bounds everything below; whoever calls checks it first too, but a
        // request's cost under the server's one lock must not depend on the caller's care.
        if req.user_ids.len() > MAX_PARTICIPANTS {
            return Err(Refusal::new(
                ErrorCode::InvalidParam,
                format!("an invitation names at most {MAX_PARTICIPANTS} users"),
            ));
        }
        if let Some(bad) = req.user_ids.iter().find(|u| !user_id::is_valid(u)) {
            return Err(Refusal::new(
                ErrorCode::InvalidParam,
                format!("invalid userID {bad:?}: use {}", user_id::RULE),
            ));
        }
        let presence = self.presence(app, &sender);
        let existing = match req.room_id {
            None if presence != Presence::Idle => {
                return Err(Refusal::new(
                    ErrorCode::Busy,
                    "you are already ringing or in a call",
                ))
            }
            None => None,
            Some(room) if presence == Presence::Member(room) => self.calls.get(&room),
            Some(room) => {
                return Err(Refusal::new(
                    ErrorCode::NotInCall,
                    format!("you are not in call {room}"),
                ))
            }
        };
        // Deduplicated in one pass, keeping the caller's order.
        let mut seen: HashSet<&str> = HashSet::with_capacity(req.user_ids.len());
        let mut invitees: Vec<UserId> = Vec::new();
        for u in &req.user_ids {
            let already = *u == *sender
                || !seen.insert(u.as_str())
                || existing.is_some_and(|c| c.is_participant(u));
            if !already {
                invitees.push(Arc::from(u.as_str()));
            }
        }
        if invitees.is_empty() {
            return Err(Refusal::new(
                ErrorCode::InvalidParam,
                "nobody to invite: the list is empty or names only yourself and users already in the call",
            ));
        }
        let participants = existing.map_or(1, Call::participant_count);
        if participants + invitees.len() > MAX_PARTICIPANTS {
            return Err(Refusal::new(
                ErrorCode::InvalidParam,
                format!("a call holds at most {MAX_PARTICIPANTS} participants"),
            ));
        }

        let room = match req.room_id {
            Some(room) => room,
            None => {
                let room = self.fresh_room_id();
                self.calls
                    .insert(room, Call::new(app, room, sender.clone()));
                self.set_presence(app, &sender, Presence::Member(room));
                debug!(app, room, caller = &*sender, "call started");
                room
            }
        };
        let invited_ids: Vec<String> = invitees.iter().map(|u| u.to_string()).collect();
        let (busy, ringing): (Vec<UserId>, Vec<UserId>) = invitees
            .into_iter()
            .partition(|u| self.presence(app, u) != Presence::Idle);
        let invite_id: Arc<str> = Arc::from(self.ids.invite_id().as_str());
        let deadline = now + self.ring_timeout;
        let mut out = Outcome::default();
        out.deliveries.push((
            session,
            ServerMessage::InviteSent(InviteSent {
                request_id: req.request_id,
                invite_id: invite_id.to_string(),
                room_id: room,
                user_ids: invited_ids,
            }),
        ));
        if !ringing.is_empty() {
            let Some(call) = self.calls.get_mut(&room) else {
                return Ok(out);
            };
            let no = call.next_batch_no();
            call.batches.push(Batch {
                no,
                invite_id: invite_id.clone(),
                inviter: sender.clone(),
                call_type: req.call_type,
                is_group: req.is_group,
                group_id: req.group_id.clone(),
                user_ids: ringing.clone(),
                deadline,
            });
            for user in &ringing {
                call.pending.push(Pending {
                    user: user.clone(),
                    batch: no,
                });
            }
            let invited = call.invited_message(no);
            self.deadlines.insert((deadline, room, no));
            for user in &ringing {
                self.set_presence(app, user, Presence::Invited(room));
                if let Some(msg) = invited.clone() {
                    self.send(app, user, msg, &mut out);
                }
            }
            debug!(app, room, invite_id = &*invite_id, inviter = &*sender, invitees = ?ringing, "invitation ringing");
        }
        out.decided.busy += busy.len();
        for user in &busy {
            info!(
                app,
                room,
                invite_id = &*invite_id,
                invitee = &**user,
                "invitee busy"
            );
            out.deliveries.push((
                session,
                ServerMessage::Busy(Busy {
                    room_id: room,
                    invite_id: invite_id.to_string(),
                    user_id: user.to_string(),
                }),
            ));
        }
        if !ringing.is_empty() {
            self.announce_pending(room, &mut out);
        }
        if let Some(last_busy) = busy.last() {
            self.settle(room, last_busy, EndReason::Busy, now, &mut out);
        }
        Ok(out)
    }

    fn fresh_room_id(&mut self) -> RoomId {
        loop {
            let room = self.ids.room_id();
            if room != 0 && !self.calls.contains_key(&room) {
                return room;
            }
        }
    }

    /// The sender's pending invitation with this id, with its room.
    fn own_invitation(
        &self,
        app: u64,
        user: &str,
        invite_id: &str,
    ) -> Result<(RoomId, BatchNo), Refusal> {
        let refusal = || {
            Refusal::new(
                ErrorCode::NoSuchInvitation,
                format!("no invitation {invite_id:?} is ringing for you"),
            )
        };
        let Presence::Invited(room) = self.presence(app, user) else {
            return Err(refusal());
        };
        let call = self.calls.get(&room).ok_or_else(refusal)?;
        let pending = call.pending_of(user).ok_or_else(refusal)?;
        let batch = call.batch(pending.batch).ok_or_else(refusal)?;
        if &*batch.invite_id != invite_id {
            return Err(refusal());
        }
        Ok((room, pending.batch))
    }

    /// Ends `user`'s pending invitation; forgets its batch when nobody else of it rings.
    fn resolve_invitation(&mut self, room: RoomId, app: u64, user: &UserId) -> Option<Batch> {
        let call = self.calls.get_mut(&room)?;
        let pending = call.take_pending(user)?;
        let removed = call.prune_batch(pending.batch);
        self.set_presence(app, user, Presence::Idle);
        if let Some(b) = &removed {
            self.deadlines.remove(&(b.deadline, room, b.no));
        }
        removed
    }

    pub fn accept(
        &mut self,
        session: SessionId,
        request_id: RequestId,
        invite_id: &str,
        now: Instant,
    ) -> Result<Outcome, Refusal> {
        let (app, user) = self.sender(session)?;
        let (room, no) = self.own_invitation(app, &user, invite_id)?;
        let call_type = self
            .calls
            .get(&room)
            .and_then(|c| c.batch(no))
            .map_or(CallType::Audio, |b| b.call_type);
        self.resolve_invitation(room, app, &user);
        self.set_presence(app, &user, Presence::Member(room));
        let mut out = Outcome::default();
        let Some(call) = self.calls.get_mut(&room) else {
            return Ok(out);
        };
        call.members.push(user.clone());
        out.decided.accepted += 1;
        if call.members.len() >= 2 && call.connected_at.is_none() {
            call.connected_at = Some(now);
        }
        let others = call.members_except(&user);
        let pending = call.pending_ids();
        out.deliveries.push((
            session,
            ServerMessage::Joined(Joined {
                request_id,
                room_id: room,
                call_type,
                members: others.clone(),
                pending: pending.clone(),
            }),
        ));
        for member in &others {
            self.send(
                app,
                member,
                ServerMessage::Accepted(Accepted {
                    room_id: room,
                    invite_id: invite_id.to_string(),
                    user_id: user.to_string(),
                }),
                &mut out,
            );
            self.send(
                app,
                member,
                ServerMessage::InviteeList(InviteeList {
                    room_id: room,
                    user_ids: pending.clone(),
                }),
                &mut out,
            );
        }
        info!(app, room, invite_id, user = &*user, "invitation accepted");
        Ok(out)
    }

    pub fn reject(
        &mut self,
        session: SessionId,
        invite_id: &str,
        now: Instant,
    ) -> Result<Outcome, Refusal> {
        let (app, user) = self.sender(session)?;
        let (room, _) = self.own_invitation(app, &user, invite_id)?;
        let mut out = Outcome::default();
        self.reject_in(room, app, &user, invite_id, now, &mut out);
        Ok(out)
    }

    pub(super) fn reject_in(
        &mut self,
        room: RoomId,
        app: u64,
        user: &UserId,
        invite_id: &str,
        now: Instant,
        out: &mut Outcome,
    ) {
        let inviter = self.calls.get(&room).and_then(|c| {
            let no = c.pending_of(user)?.batch;
            c.batch(no).map(|b| b.inviter.clone())
        });
        self.resolve_invitation(room, app, user);
        out.decided.rejected += 1;
        info!(app, room, invite_id, user = &**user, "invitation rejected");
        if let Some(inviter) = inviter {
            if self.calls.get(&room).is_some_and(|c| c.is_member(&inviter)) {
                let msg = ServerMessage::Rejected(Rejected {
                    room_id: room,
                    invite_id: invite_id.to_string(),
                    user_id: user.to_string(),
                });
                self.send(app, &inviter, msg, out);
            }
        }
        self.announce_pending(room, out);
        self.settle(room, user, EndReason::Rejected, now, out);
    }

    /// Times out every batch whose ring deadline has passed, and ends every suspended session
    /// whose grace has.
    pub fn expire(&mut self, now: Instant) -> Outcome {
        let mut out = Outcome::default();
        while let Some(&(at, room, no)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, room, no));
            self.expire_batch(room, no, now, &mut out);
        }
        self.expire_away(now, &mut out);
        out
    }

    fn expire_batch(&mut self, room: RoomId, no: BatchNo, now: Instant, out: &mut Outcome) {
        let Some(call) = self.calls.get_mut(&room) else {
            return;
        };
        let app = call.app;
        let timed_out: Vec<UserId> = call
            .pending
            .iter()
            .filter(|p| p.batch == no)
            .map(|p| p.user.clone())
            .collect();
        call.pending.retain(|p| p.batch != no);
        let Some(batch) = call.prune_batch(no) else {
            return;
        };
        let inviter_present = call.is_member(&batch.inviter);
        for user in &timed_out {
            self.send(
                app,
                user,
                ServerMessage::InviteTimeout(InviteTimeout {
                    room_id: room,
                    invite_id: batch.invite_id.to_string(),
                    sponsor: batch.inviter.to_string(),
                }),
                out,
            );
            self.set_presence(app, user, Presence::Idle);
        }
        let Some(first) = timed_out.first() else {
            return;
        };
        out.decided.timed_out += timed_out.len();
        info!(app, room, invite_id = &*batch.invite_id, invitees = ?timed_out, "invitation timed out");
        if inviter_present {
            let msg = ServerMessage::NoResponse(NoResponse {
                room_id: room,
                invite_id: batch.invite_id.to_string(),
                user_ids: timed_out.iter().map(|u| u.to_string()).collect(),
            });
            self.send(app, &batch.inviter, msg, out);
        }
        self.announce_pending(room, out);
        self.settle(room, first, EndReason::NoResponse, now, out);
    }
}
