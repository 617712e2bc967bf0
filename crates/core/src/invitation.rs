//! Invitations: `call`/`groupCall`, an invitation arriving, and the server's verdicts on an
//! invitation (confirmed, rejected, busy, no response, cancelled, timed out). The connection to
//! each invitee is made as soon as the invitation exists, so it is up when the call is accepted
//! (the callee's answer is in `answer`). The server is the only authority on invitations; this
//! side never times a ring itself.

use calling_protocol::{CallType, ClientMessage, Invited, RoomId};

use crate::active_call::{ActiveCall, Answer, InviteKind, MediaOp, PendingInvite, Phase};
use crate::event::{AppEvent, InviteData};
use crate::leave::{ended_by, Tell};
use crate::link::PeerLink;
use crate::login::check_user_id;
use crate::negotiation::is_polite;
use crate::privacy::Ringing;
use crate::session::{create_peer, CallError, Session};
use crate::{Effect, Reply, RequestId, SdkError};

/// `inviteData.version` in `INVITED`: trtc-calling-js 1.x sends 4 for its own invitations.
pub const INVITE_DATA_VERSION: u32 = 4;

/// How an invitee declined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decline {
    Rejected,
    Busy,
}

impl Session {
    pub(crate) fn call(
        &mut self,
        me: &str,
        request: RequestId,
        user_id: String,
        call_type: CallType,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        check_user_id(&user_id)?;
        if user_id == me {
            return Err(CallError::InvalidParam(
                "call() cannot call yourself".into(),
            ));
        }
        if self.call.is_some() {
            return Err(CallError::WrongState(format!(
                "call() needs an idle line; current status: {}",
                self.status()
            )));
        }
        let kind = InviteKind::Single {
            user_id: user_id.clone(),
        };
        self.start_call(request, vec![user_id], call_type, false, None, kind, out);
        Ok(())
    }

    pub(crate) fn group_call(
        &mut self,
        me: &str,
        request: RequestId,
        user_ids: Vec<String>,
        call_type: CallType,
        group_id: Option<String>,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        if user_ids.is_empty() {
            return Err(CallError::InvalidParam(
                "groupCall() needs a non-empty userIDList".into(),
            ));
        }
        for user_id in &user_ids {
            check_user_id(user_id)?;
        }
        if user_ids.iter().all(|u| u == me) {
            return Err(CallError::InvalidParam(
                "groupCall() cannot call only yourself".into(),
            ));
        }
        let kind = InviteKind::Group {
            group_id: group_id.clone(),
        };
        let Some(call) = self.call.as_mut() else {
            self.start_call(request, user_ids, call_type, true, group_id, kind, out);
            return Ok(());
        };
        let room_id = match (&call.phase, call.room_id) {
            (Phase::Outgoing | Phase::Connected { .. }, Some(room)) => room,
            (Phase::Outgoing, None) => {
                return Err(CallError::WrongState(
                    "groupCall() can add users once the first invitation is confirmed".into(),
                ))
            }
            _ => {
                return Err(CallError::WrongState(format!(
                    "groupCall() needs an idle line or a call in progress; current status: {} \
                     (ringing as callee: accept() or reject() first)",
                    self.status()
                )))
            }
        };
        // More users in the same call: it becomes a group call of the call's own type.
        call.is_group = true;
        if call.group_id.is_none() {
            call.group_id.clone_from(&group_id);
        }
        call.invites.push(PendingInvite { request, kind });
        out.push(Effect::Send(ClientMessage::Invite {
            request_id: request,
            user_ids,
            call_type: call.call_type,
            is_group: true,
            group_id,
            room_id: Some(room_id),
        }));
        self.grow_into_sfu(out);
        Ok(())
    }

    /// A new call as caller: the invitation goes out first so ringing never waits for devices.
    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        request: RequestId,
        user_ids: Vec<String>,
        call_type: CallType,
        is_group: bool,
        group_id: Option<String>,
        kind: InviteKind,
        out: &mut Vec<Effect>,
    ) {
        let mut call = ActiveCall::new(Phase::Outgoing, call_type, is_group, group_id.clone());
        call.via_sfu = is_group && self.sfu_available;
        call.invites.push(PendingInvite { request, kind });
        out.push(Effect::Send(ClientMessage::Invite {
            request_id: request,
            user_ids,
            call_type,
            is_group,
            group_id,
            room_id: None,
        }));
        call.next_token = self.next_media_token;
        call.open_media(true, call_type == CallType::Video, MediaOp::Start, out);
        self.call = Some(call);
    }

    pub(crate) fn invite_sent(
        &mut self,
        me: &str,
        request: RequestId,
        invite_id: String,
        room_id: RoomId,
        user_ids: Vec<String>,
        out: &mut Vec<Effect>,
    ) {
        if self.take_abandoned(request, room_id, out) {
            return;
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(i) = call.invites.iter().position(|p| p.request == request) else {
            return;
        };
        if call.room_id.is_some_and(|room| room != room_id) {
            return;
        }
        let invite = call.invites.remove(i);
        call.room_id = Some(room_id);
        for user in user_ids {
            // Connect while it rings: by the time the invitee accepts, ICE and DTLS are done
            // and only the tracks remain to attach. Nothing is sent before that. Through the
            // SFU, our one connection is made now instead, and invitees join it on accept.
            if user != me && !call.peers.contains_key(&user) && !call.via_sfu {
                let polite = is_polite(me, &user);
                out.push(create_peer(
                    &self.ice_servers,
                    &user,
                    true,
                    polite,
                    self.policy.relay_only,
                ));
                let mut peer = PeerLink::new(polite);
                peer.start_offer(&user, out);
                call.peers.insert(user.clone(), peer);
            }
            if !call.invitees.contains(&user) {
                call.invitees.push(user);
            }
        }
        let reply = match invite.kind {
            InviteKind::Single { user_id } => Reply::Call {
                code: 0,
                invite_id,
                room_id,
                user_id,
            },
            InviteKind::Group { group_id } => Reply::GroupCall {
                code: 0,
                invite_id,
                room_id,
                group_id,
            },
        };
        out.push(Effect::Resolve { request, reply });
        self.join_sfu(out);
    }

    /// The server confirmed a call we already left: leave it there too.
    pub(crate) fn take_abandoned(
        &mut self,
        request: RequestId,
        room_id: RoomId,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(i) = self.abandoned.iter().position(|r| *r == request) else {
            return false;
        };
        self.abandoned.remove(i);
        out.push(Effect::Send(ClientMessage::Hangup { room_id }));
        true
    }

    pub(crate) fn invited(&mut self, me: &str, invitation: Invited, out: &mut Vec<Effect>) {
        // The server answers "busy" for us while a call is in progress; a stray invitation
        // must not disturb the call we are in.
        if self.call.is_some() {
            return;
        }
        let mut call = ActiveCall::new(
            Phase::Incoming {
                invite_id: invitation.invite_id.clone(),
                sponsor: invitation.sponsor.clone(),
                answer: Answer::Undecided,
            },
            invitation.call_type,
            invitation.is_group,
            invitation.group_id,
        );
        call.room_id = Some(invitation.room_id);
        call.invitees.clone_from(&invitation.user_ids);
        call.via_sfu = invitation.is_group && self.sfu_available;
        // The caller offers while it rings; answering needs no device, and nothing is sent on
        // this connection unless the invitation is accepted. The app hears of the invitation
        // first: creating a connection takes the browser a moment. What the connection may
        // reveal of us before we answer is the app's choice (`privacy`). A group call through
        // the SFU has no such connection: we join the SFU once we are a member.
        let create = (!call.via_sfu).then(|| self.preconnect(me, &mut call, &invitation.sponsor));
        out.push(Effect::Emit(AppEvent::Invited {
            sponsor: invitation.sponsor,
            user_id_list: invitation.user_ids,
            is_from_group: invitation.is_group,
            invite_data: InviteData {
                version: INVITE_DATA_VERSION,
                call_type: invitation.call_type.as_number(),
                room_id: invitation.room_id,
                call_end: 0,
            },
            invite_id: invitation.invite_id,
        }));
        out.extend(create.flatten());
        self.begin_call(call);
    }

    /// A ringing callee's link to its caller, and the connection to make for it now, if any
    /// (none when it is deferred until the accept).
    fn preconnect(&self, me: &str, call: &mut ActiveCall, sponsor: &str) -> Option<Effect> {
        let polite = is_polite(me, sponsor);
        let mut link = PeerLink::new(polite);
        let relay_only = self.policy.relay_only
            || (self.policy.preconnect && self.policy.relay_available(&self.ice_servers));
        let create = create_peer(&self.ice_servers, sponsor, false, polite, relay_only);
        link.ringing = if !self.policy.preconnect {
            Ringing::Deferred(Vec::new())
        } else if relay_only && !self.policy.relay_only {
            Ringing::RelayOnly
        } else {
            Ringing::Open
        };
        let deferred = matches!(link.ringing, Ringing::Deferred(_));
        call.peers.insert(sponsor.to_owned(), link);
        (!deferred).then_some(create)
    }

    pub(crate) fn declined(
        &mut self,
        now_ms: u64,
        room: RoomId,
        user: &str,
        how: Decline,
        me: &str,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(room)) else {
            return;
        };
        call.invitees.retain(|u| u != user);
        let user_id = user.to_owned();
        let event = match how {
            Decline::Rejected => AppEvent::Reject { user_id },
            Decline::Busy => AppEvent::LineBusy {
                user_id,
                sponsor: me.to_owned(),
            },
        };
        // A 1:1 call nobody else is in is over with its only invitee's answer: the line is idle
        // when the app hears it (it may call again from its handler), and the server's
        // `callEnded` that follows finds no call of that room.
        let over = !call.is_group
            && call.phase == Phase::Outgoing
            && call.invitees.is_empty()
            && call.invites.is_empty()
            && call.peers.keys().all(|u| u == user);
        if over {
            return self.end_call(Tell::Nobody, |_| vec![event], &left_unanswered(), out);
        }
        if call.peers.remove(user).is_some() {
            out.push(Effect::ClosePeer {
                user_id: user.to_owned(),
            });
        }
        if call.only_given_up_remain() {
            return self.end_split_call(vec![event], me, now_ms, out);
        }
        out.push(Effect::Emit(event));
    }

    /// A group call split by given-up links lost its last reachable member: the app hears
    /// `events`, then the call ending, and the server our hangup (it still counts the members
    /// we gave up on).
    fn end_split_call(
        &mut self,
        events: Vec<AppEvent>,
        me: &str,
        now_ms: u64,
        out: &mut Vec<Effect>,
    ) {
        let events = |call: &ActiveCall| {
            events
                .into_iter()
                .chain(ended_by(call, me, now_ms))
                .collect()
        };
        self.end_call(Tell::Server, events, &left_unanswered(), out);
    }

    pub(crate) fn no_response(
        &mut self,
        now_ms: u64,
        me: &str,
        room: RoomId,
        users: Vec<String>,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(room)) else {
            return;
        };
        call.invitees.retain(|u| !users.contains(u));
        for user in &users {
            if call.peers.remove(user).is_some() {
                out.push(Effect::ClosePeer {
                    user_id: user.clone(),
                });
            }
        }
        let events: Vec<AppEvent> = users
            .iter()
            .map(|user| AppEvent::NoResp {
                user_id: user.clone(),
                sponsor: me.to_owned(),
                user_id_list: users.clone(),
            })
            .collect();
        if call.only_given_up_remain() {
            return self.end_split_call(events, me, now_ms, out);
        }
        out.extend(events.into_iter().map(Effect::Emit));
    }

    pub(crate) fn cancelled(
        &mut self,
        room: RoomId,
        invite_id: String,
        sponsor: String,
        out: &mut Vec<Effect>,
    ) {
        if !self.is_ringing(room, &invite_id) {
            return;
        }
        let cancelled = AppEvent::CallingCancel { invite_id, sponsor };
        let reason = ring_over("was cancelled by the caller");
        self.end_call(Tell::Nobody, |_| vec![cancelled], &reason, out);
    }

    pub(crate) fn invite_timeout(
        &mut self,
        me: &str,
        room: RoomId,
        invite_id: String,
        sponsor: String,
        out: &mut Vec<Effect>,
    ) {
        if !self.is_ringing(room, &invite_id) {
            return;
        }
        let events = vec![
            AppEvent::CallingTimeout { invite_id, sponsor },
            AppEvent::CallEnd {
                user_id: me.to_owned(),
                call_end: 0,
            },
        ];
        self.end_call(Tell::Nobody, |_| events, &ring_over("timed out"), out);
    }

    /// Whether `invite` in `room` is the invitation ringing here.
    fn is_ringing(&self, room: RoomId, invite: &str) -> bool {
        self.call.as_ref().is_some_and(|c| {
            c.is_room(room)
                && matches!(&c.phase, Phase::Incoming { invite_id, .. } if invite_id == invite)
        })
    }
}

pub(crate) fn undefined(request: RequestId) -> Effect {
    Effect::Resolve {
        request,
        reply: Reply::Undefined,
    }
}

fn left_unanswered() -> SdkError {
    SdkError {
        code: None,
        message: "the call ended unanswered before this finished".into(),
    }
}

fn ring_over(how: &str) -> SdkError {
    SdkError {
        code: None,
        message: format!("the invitation {how}"),
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::{Cancelled, Invited, ServerMessage};

    use super::*;
    use crate::session::CallStatus;
    use crate::{Command, Input};

    fn invited(call_type: CallType) -> Input {
        Input::Server(ServerMessage::Invited(Invited {
            invite_id: "i1".into(),
            room_id: 3,
            sponsor: "bob".into(),
            user_ids: vec!["alice".into()],
            call_type,
            is_group: false,
            group_id: None,
        }))
    }

    fn command(request: RequestId, command: Command) -> Input {
        Input::Command { request, command }
    }

    #[test]
    fn an_invitation_rings_an_idle_line() {
        let mut call = Session::logged_in_as("alice");
        let fx = call.ok(invited(CallType::Audio));
        assert_eq!(
            fx,
            vec![
                Effect::Emit(AppEvent::Invited {
                    sponsor: "bob".into(),
                    user_id_list: vec!["alice".into()],
                    is_from_group: false,
                    invite_data: InviteData {
                        version: INVITE_DATA_VERSION,
                        call_type: 1,
                        room_id: 3,
                        call_end: 0
                    },
                    invite_id: "i1".into()
                }),
                Effect::CreatePeer {
                    user_id: "bob".into(),
                    initiator: false,
                    polite: false,
                    ice_servers: vec![],
                    relay_only: false,
                },
            ]
        );
        assert_eq!(call.status(), CallStatus::Calling);
        assert!(!call.is_inviter());
        assert_eq!(call.room_id(), Some(3));
    }

    #[test]
    fn an_invitation_during_a_call_is_ignored() {
        let mut call = Session::logged_in_as("alice");
        call.ok(command(
            1,
            Command::Call {
                user_id: "carol".into(),
                call_type: CallType::Video,
            },
        ));
        assert_eq!(call.ok(invited(CallType::Audio)), vec![]);
        assert!(call.is_inviter());
    }

    #[test]
    fn accept_tells_the_server_at_once_and_opens_media_meanwhile() {
        let mut call = Session::logged_in_as("alice");
        call.ok(invited(CallType::Video));
        assert_eq!(
            call.ok(command(2, Command::Accept)),
            vec![
                Effect::Send(ClientMessage::Accept {
                    request_id: 2,
                    invite_id: "i1".into()
                }),
                Effect::OpenMedia {
                    token: 0,
                    audio: true,
                    video: true
                },
                Effect::AttachMedia {
                    user_id: "bob".into()
                },
            ]
        );
        assert_eq!(
            call.handle(0, command(3, Command::Accept)),
            Err(CallError::WrongState(
                "accept() is already in progress".into()
            ))
        );
        let opened = crate::MediaOutcome::Opened {
            audio: true,
            video: true,
        };
        assert_eq!(
            call.ok(Input::Media {
                token: 0,
                outcome: opened
            }),
            vec![Effect::SendTracks {
                user_id: "bob".into()
            }],
            "the tracks go to bob; accept() settles on Joined, and the link is not up yet"
        );
    }

    #[test]
    fn reject_declines_and_frees_the_line() {
        let mut call = Session::logged_in_as("alice");
        call.ok(invited(CallType::Audio));
        assert_eq!(
            call.ok(command(2, Command::Reject)),
            vec![
                Effect::Send(ClientMessage::Reject {
                    invite_id: "i1".into()
                }),
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
                Effect::RemoveViews,
                Effect::Resolve {
                    request: 2,
                    reply: Reply::Ok { code: 0 }
                }
            ]
        );
        assert_eq!(call.status(), CallStatus::Idle);
    }

    #[test]
    fn cancel_of_another_invitation_is_ignored() {
        let mut call = Session::logged_in_as("alice");
        call.ok(invited(CallType::Audio));
        let other = ServerMessage::Cancelled(Cancelled {
            room_id: 3,
            invite_id: "i2".into(),
            sponsor: "bob".into(),
        });
        assert_eq!(call.ok(Input::Server(other)), vec![]);
        assert_eq!(call.status(), CallStatus::Calling);
    }

    #[test]
    fn group_call_from_idle_is_a_group_invitation() {
        let mut call = Session::logged_in_as("alice");
        let fx = call.ok(command(
            4,
            Command::GroupCall {
                user_ids: vec!["bob".into(), "carol".into()],
                call_type: CallType::Audio,
                group_id: Some("g".into()),
            },
        ));
        assert_eq!(
            fx[0],
            Effect::Send(ClientMessage::Invite {
                request_id: 4,
                user_ids: vec!["bob".into(), "carol".into()],
                call_type: CallType::Audio,
                is_group: true,
                group_id: Some("g".into()),
                room_id: None
            })
        );
        assert!(call.is_group_call());
    }
}
