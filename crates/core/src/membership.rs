//! Membership of a call in progress: joining (as the accepting callee), newcomers accepted by
//! others, the invitee list, members leaving, the call ending, and leaving it ourselves.

use calling_protocol::{EndReason, Joined, RoomId};

use crate::active_call::ActiveCall;
use crate::active_call::{Answer, Phase};
use crate::device::voice_volume_timer;
use crate::event::AppEvent;
use crate::leave::{ended_by, left, Tell};
use crate::link::PeerLink;
use crate::negotiation::is_polite;
use crate::session::{create_peer, Session};
use crate::{Effect, Reply, RequestId, SdkError};
use litemap::Entry;

impl Session {
    /// `hangup()`, which resolves in every state: `{code: 0, msg: 'ok'}` with no call (or
    /// before login), `{code: 0}` after leaving the call in progress.
    pub(crate) fn hangup(&mut self, now_ms: u64, request: RequestId, out: &mut Vec<Effect>) {
        let reply = match self.call.as_ref().map(|c| &c.phase) {
            None => Reply::OkMsg {
                code: 0,
                msg: "ok".into(),
            },
            Some(Phase::Incoming { .. }) => {
                self.decline_invitation(&left("hangup()"), out);
                Reply::Ok { code: 0 }
            }
            Some(Phase::Outgoing | Phase::Connected { .. }) => {
                self.leave(now_ms, &left("hangup()"), out);
                Reply::Ok { code: 0 }
            }
        };
        out.push(Effect::Resolve { request, reply });
    }

    pub(crate) fn joined(&mut self, me: &str, now_ms: u64, joined: Joined, out: &mut Vec<Effect>) {
        if self.take_abandoned(joined.request_id, joined.room_id, out) {
            return;
        }
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(joined.room_id)) else {
            return;
        };
        let Phase::Incoming {
            answer: Answer::Joining { request },
            ..
        } = call.phase
        else {
            return;
        };
        if request != joined.request_id {
            return;
        }
        call.phase = Phase::Connected {
            since_ms: now_ms,
            inviter: false,
        };
        out.push(voice_volume_timer());
        call.call_type = joined.call_type;
        call.invitees = joined.pending;
        if joined.members.len() > 1 {
            call.is_group = true;
        }
        // A connection made while ringing to an inviter who has left since goes.
        let gone: Vec<String> = call
            .peers
            .keys()
            .filter(|u| !joined.members.contains(u))
            .cloned()
            .collect();
        for user_id in gone {
            call.peers.remove(&user_id);
            out.push(Effect::ClosePeer { user_id });
        }
        if call.is_group && self.sfu_available {
            // Through the SFU: one connection, ours to offer; the members are reached by it.
            // One we connected to while ringing (the call began 1:1) moves there as it does.
            call.via_sfu = true;
            let members = joined.members.iter().filter(|m| *m != me);
            for member in members
                .filter(|m| !call.peers.contains_key(*m))
                .cloned()
                .collect::<Vec<_>>()
            {
                self.member_via_sfu(now_ms, &member, out);
            }
            self.join_sfu(out);
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        // Every member already in the call offers to the newcomer; we wait for their offers.
        // The inviter's connection was made while ringing and is kept.
        for member in joined
            .members
            .into_iter()
            .filter(|m| m != me && !call.via_sfu)
        {
            if let Entry::Vacant(slot) = call.peers.entry(member) {
                let polite = is_polite(me, slot.key());
                out.push(create_peer(
                    &self.ice_servers,
                    slot.key(),
                    false,
                    polite,
                    self.policy.relay_only,
                ));
                slot.insert(PeerLink::new(polite));
            }
        }
        call.attach_all(now_ms, &self.ice_servers, self.policy.relay_only, out);
        if call.capturing() {
            // Our devices are still opening; their outcome settles accept().
            call.accepting = Some(request);
        } else {
            out.push(Effect::Resolve {
                request,
                reply: Reply::Accept {
                    code: 0,
                    room_id: joined.room_id,
                    call_type: joined.call_type.as_number(),
                },
            });
        }
    }

    /// `user` accepted and joined: existing members connect to the newcomer.
    pub(crate) fn accepted(
        &mut self,
        me: &str,
        now_ms: u64,
        room: RoomId,
        user: String,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(room)) else {
            return;
        };
        if matches!(call.phase, Phase::Incoming { .. }) || user == me {
            return;
        }
        call.invitees.retain(|u| *u != user);
        let connecting = call.phase == Phase::Outgoing;
        if connecting {
            call.phase = Phase::Connected {
                since_ms: now_ms,
                inviter: true,
            };
        }
        out.push(Effect::Emit(AppEvent::UserAccept {
            user_id: user.clone(),
        }));
        if call.via_sfu && !call.peers.contains_key(&user) {
            // The newcomer joins the SFU; our media reaches it there.
            self.member_via_sfu(now_ms, &user, out);
            if connecting {
                out.push(voice_volume_timer());
            }
            return;
        }
        let (room, local) = (call.room_id, call.settled_state());
        // Our invitee's connection was made while it rang: only the tracks are missing, unless
        // the invitee was offline then and our offer never reached it, so an unanswered offer
        // goes out again. Other members connect to the newcomer now.
        let peer = match call.peers.entry(user.clone()) {
            Entry::Occupied(slot) => {
                let peer = slot.into_mut();
                if let Some(room) = room {
                    peer.resend_offer(&user, room, out);
                }
                peer
            }
            Entry::Vacant(slot) => {
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
                slot.insert(peer)
            }
        };
        peer.attach(&user, room, local, out);
        if call.peers.len() > 1 {
            call.is_group = true;
        }
        if connecting {
            out.push(voice_volume_timer());
        }
        self.grow_into_sfu(out);
    }

    pub(crate) fn invitee_list_changed(
        &mut self,
        room: RoomId,
        users: Vec<String>,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(room)) else {
            return;
        };
        // Someone invited more users into our call: it is a group call from now on.
        if call.is_connected() && !users.is_empty() {
            call.is_group = true;
        }
        call.invitees.clone_from(&users);
        if call.is_group {
            out.push(Effect::Emit(AppEvent::GroupCallInviteeListUpdate {
                user_id_list: users,
            }));
        }
        self.grow_into_sfu(out);
    }

    pub(crate) fn member_left(
        &mut self,
        now_ms: u64,
        room: RoomId,
        user: &str,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(room)) else {
            return;
        };
        if !call.peers.contains_key(user) {
            return;
        }
        let user_id = user.to_owned();
        if let Phase::Incoming { .. } = call.phase {
            // Our inviter left while we ring: its connection goes; we never met it in a call.
            call.peers.remove(user);
            return out.push(Effect::ClosePeer { user_id });
        }
        // The other side of a 1:1 call left and nobody else rings: the call is over now, not
        // one server message later. The server's `callEnded` then finds no call of that room.
        let last = call.is_connected()
            && call.peers.len() == 1
            && call.invitees.is_empty()
            && call.invites.is_empty();
        // In a group call the server ends it when one member remains, but it still counts
        // the members we gave up on (their links died, not their sessions): the last one we
        // could reach leaving ends the call for us, and the server hears our hangup.
        let split = last && call.is_group && !call.given_up.is_empty();
        if last && (!call.is_group || split) {
            let tell = if split { Tell::Server } else { Tell::Nobody };
            let events = |call: &ActiveCall| {
                let left = AppEvent::UserLeave {
                    user_id: user_id.clone(),
                };
                [left]
                    .into_iter()
                    .chain(ended_by(call, user, now_ms))
                    .collect()
            };
            return self.end_call(tell, events, &ring_over_call(), out);
        }
        call.peers.remove(user);
        out.push(Effect::Emit(AppEvent::UserLeave {
            user_id: user_id.clone(),
        }));
        out.push(Effect::ClosePeer { user_id });
    }

    pub(crate) fn call_ended(
        &mut self,
        room: RoomId,
        user_id: String,
        duration_secs: u32,
        reason: EndReason,
        out: &mut Vec<Effect>,
    ) {
        // A callee still ringing hears about its invitation through cancelled/timeout instead.
        let ours = self
            .call
            .as_ref()
            .is_some_and(|c| c.is_room(room) && !matches!(c.phase, Phase::Incoming { .. }));
        if !ours {
            return;
        }
        let ended = move |_: &ActiveCall| match reason {
            // Declined or busy: the caller already got REJECT / LINE_BUSY, and SPEC §6 has no
            // CALL_END for a call that was never answered that way.
            EndReason::Rejected | EndReason::Busy => Vec::new(),
            EndReason::Hangup | EndReason::NoResponse => vec![AppEvent::CallEnd {
                user_id,
                call_end: duration_secs,
            }],
        };
        self.end_call(Tell::Nobody, ended, &ring_over_call(), out);
    }
}

fn ring_over_call() -> SdkError {
    SdkError {
        code: None,
        message: "the call ended before this finished".into(),
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::{Accepted, CallEnded, InviteSent, InviteeList, MemberLeft};
    use calling_protocol::{CallType, ClientMessage, ServerMessage};

    use super::*;
    use crate::session::CallStatus;
    use crate::{Command, Input, Timer};

    /// alice called bob (and carol, for a group); the invitation is confirmed in room 3.
    fn ringing(group: bool) -> Session {
        let mut call = Session::logged_in_as("alice");
        let command = if group {
            Command::GroupCall {
                user_ids: vec!["bob".into(), "carol".into()],
                call_type: CallType::Audio,
                group_id: None,
            }
        } else {
            Command::Call {
                user_id: "bob".into(),
                call_type: CallType::Audio,
            }
        };
        call.ok(Input::Command {
            request: 1,
            command,
        });
        call.ok(Input::Server(ServerMessage::InviteSent(InviteSent {
            request_id: 1,
            invite_id: "i".into(),
            room_id: 3,
            user_ids: vec!["bob".into()],
        })));
        call
    }

    fn accepted(user: &str) -> Input {
        Input::Server(ServerMessage::Accepted(Accepted {
            room_id: 3,
            invite_id: "i".into(),
            user_id: user.into(),
        }))
    }

    #[test]
    fn the_acceptor_gets_the_tracks_on_the_connection_made_while_ringing() {
        let mut call = ringing(false);
        assert_eq!(
            call.ok(accepted("bob")),
            vec![
                Effect::Emit(AppEvent::UserAccept {
                    user_id: "bob".into()
                }),
                Effect::AttachMedia {
                    user_id: "bob".into()
                },
                voice_volume_timer(),
            ]
        );
        assert_eq!(call.status(), CallStatus::Connected);
        assert!(call.is_inviter());
        assert!(call.invitee_list().is_empty());
        assert_eq!(call.ok(accepted("bob"))[1..], [], "no second connection");
    }

    #[test]
    fn declined_or_busy_ends_without_call_end() {
        for reason in [EndReason::Rejected, EndReason::Busy] {
            let mut call = ringing(false);
            let fx = call.ok(Input::Server(ServerMessage::CallEnded(CallEnded {
                room_id: 3,
                user_id: "bob".into(),
                duration_secs: 0,
                reason,
            })));
            assert_eq!(
                fx,
                vec![
                    Effect::ClosePeer {
                        user_id: "bob".into()
                    },
                    Effect::CloseMedia {
                        audio: true,
                        video: true
                    },
                    Effect::RemoveViews
                ]
            );
            assert_eq!(call.status(), CallStatus::Idle);
        }
    }

    #[test]
    fn hangup_or_no_response_ends_with_the_servers_call_end() {
        for reason in [EndReason::Hangup, EndReason::NoResponse] {
            let mut call = ringing(false);
            let fx = call.ok(Input::Server(ServerMessage::CallEnded(CallEnded {
                room_id: 3,
                user_id: "bob".into(),
                duration_secs: 12,
                reason,
            })));
            // The app hears first; the release follows.
            assert_eq!(
                fx.first(),
                Some(&Effect::Emit(AppEvent::CallEnd {
                    user_id: "bob".into(),
                    call_end: 12
                })),
                "{fx:?}"
            );
            assert!(
                fx.iter().any(|e| matches!(e, Effect::CloseMedia { .. })),
                "{fx:?}"
            );
        }
    }

    #[test]
    fn invitee_list_updates_reach_group_apps_only() {
        let list = || {
            Input::Server(ServerMessage::InviteeList(InviteeList {
                room_id: 3,
                user_ids: vec!["carol".into()],
            }))
        };
        assert_eq!(ringing(false).ok(list()), vec![]);
        let mut group = ringing(true);
        assert_eq!(
            group.ok(list()),
            vec![Effect::Emit(AppEvent::GroupCallInviteeListUpdate {
                user_id_list: vec!["carol".into()]
            })]
        );
        assert_eq!(group.invitee_list(), vec!["carol".to_string()]);
    }

    #[test]
    fn a_member_leaving_closes_its_connection_only() {
        let mut call = ringing(true);
        call.ok(accepted("bob"));
        let left = |user: &str| {
            Input::Server(ServerMessage::MemberLeft(MemberLeft {
                room_id: 3,
                user_id: user.into(),
            }))
        };
        assert_eq!(call.ok(left("dave")), vec![], "not a member we know");
        assert_eq!(
            call.ok(left("bob")),
            vec![
                Effect::Emit(AppEvent::UserLeave {
                    user_id: "bob".into()
                }),
                Effect::ClosePeer {
                    user_id: "bob".into()
                }
            ]
        );
        assert_eq!(
            call.status(),
            CallStatus::Connected,
            "the server ends the call"
        );
    }

    #[test]
    fn the_other_side_leaving_a_one_to_one_call_ends_it_before_the_release() {
        let mut call = ringing(false);
        call.ok(accepted("bob"));
        let fx = call.ok(Input::Server(ServerMessage::MemberLeft(MemberLeft {
            room_id: 3,
            user_id: "bob".into(),
        })));
        assert_eq!(
            fx[..2],
            [
                Effect::Emit(AppEvent::UserLeave {
                    user_id: "bob".into()
                }),
                Effect::Emit(AppEvent::CallEnd {
                    user_id: "bob".into(),
                    call_end: 0
                }),
            ],
            "{fx:?}"
        );
        assert_eq!(
            fx.get(2),
            Some(&Effect::ClosePeer {
                user_id: "bob".into()
            }),
            "{fx:?}"
        );
        assert_eq!(call.status(), CallStatus::Idle);
    }

    #[test]
    fn hangup_when_connected_tells_the_server_and_reports_the_duration() {
        let mut call = ringing(false);
        call.ok(accepted("bob"));
        let fx = call
            .handle(
                4_200,
                Input::Command {
                    request: 9,
                    command: Command::Hangup,
                },
            )
            .unwrap_or_default();
        assert_eq!(
            fx,
            vec![
                Effect::Send(ClientMessage::Hangup { room_id: 3 }),
                Effect::Emit(AppEvent::CallEnd {
                    user_id: "alice".into(),
                    call_end: 4
                }),
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
                Effect::CloseMedia {
                    audio: true,
                    video: true
                },
                Effect::CancelTimer(Timer::VoiceVolume),
                Effect::RemoveViews,
                Effect::Resolve {
                    request: 9,
                    reply: Reply::Ok { code: 0 }
                },
            ]
        );
    }
}
