//! A small in-memory model of `calling-server`: sessions, invitations and calls, with the
//! deliveries the real server makes for each client message (see the protocol docs). Ring
//! timeouts and dropped sockets are triggered by the test.

use std::collections::BTreeMap;

use calling_protocol::{
    Accepted, Busy, CallEnded, CallType, Cancelled, ClientMessage, EndReason, ErrorCode,
    ErrorReply, InviteSent, InviteTimeout, Invited, InviteeList, Joined, LoginOk, MemberLeft,
    NoResponse, Rejected, RelayedSignal, RoomId, ServerMessage, PROTOCOL_VERSION,
};

/// A message for one client (by index).
pub type Delivery = (usize, ServerMessage);

#[derive(Debug)]
struct Room {
    members: Vec<String>,
    connected_at: Option<u64>,
}

#[derive(Debug)]
struct Invitation {
    room: RoomId,
    sponsor: String,
    call_type: CallType,
    /// Invitees still ringing.
    ringing: Vec<String>,
    /// Everyone the invitation rang, and the rest of the `Invited` message, to deliver it
    /// again to an invitee who logs in while it rings.
    invited: Vec<String>,
    is_group: bool,
    group_id: Option<String>,
}

#[derive(Debug, Default)]
pub struct FakeServer {
    /// user → client index of the live session.
    sessions: BTreeMap<String, usize>,
    rooms: BTreeMap<RoomId, Room>,
    invitations: BTreeMap<String, Invitation>,
    next_room: RoomId,
    next_invite: u32,
    /// Every message each client sent, in order (index → messages).
    pub received: BTreeMap<usize, Vec<ClientMessage>>,
}

impl FakeServer {
    fn user_of(&self, client: usize) -> Option<String> {
        self.sessions
            .iter()
            .find(|(_, c)| **c == client)
            .map(|(u, _)| u.clone())
    }

    fn to(&self, user: &str, message: ServerMessage, out: &mut Vec<Delivery>) {
        if let Some(client) = self.sessions.get(user) {
            out.push((*client, message));
        }
    }

    fn room_of(&self, user: &str) -> Option<RoomId> {
        self.rooms
            .iter()
            .find(|(_, r)| r.members.iter().any(|m| m == user))
            .map(|(id, _)| *id)
    }

    fn is_busy(&self, user: &str) -> bool {
        self.room_of(user).is_some()
            || self
                .invitations
                .values()
                .any(|i| i.ringing.iter().any(|r| r == user))
    }

    fn ringing_in(&self, room: RoomId) -> Vec<String> {
        self.invitations
            .values()
            .filter(|i| i.room == room)
            .flat_map(|i| i.ringing.clone())
            .collect()
    }

    fn duration(&self, room: RoomId, now_ms: u64) -> u32 {
        self.rooms
            .get(&room)
            .and_then(|r| r.connected_at)
            .map(|t| ((now_ms - t) / 1000) as u32)
            .unwrap_or(0)
    }

    /// One client message; returns what the server sends, to whom, in order.
    pub fn receive(&mut self, client: usize, message: ClientMessage, now_ms: u64) -> Vec<Delivery> {
        self.received
            .entry(client)
            .or_default()
            .push(message.clone());
        let mut out = Vec::new();
        if let ClientMessage::Login {
            user_id,
            user_sig,
            protocol_version,
            ..
        } = message
        {
            if protocol_version != PROTOCOL_VERSION || user_sig == "bad" {
                out.push((
                    client,
                    ServerMessage::Error(ErrorReply {
                        request_id: None,
                        code: ErrorCode::InvalidUserSig,
                        message: "invalid UserSig".into(),
                    }),
                ));
                return out;
            }
            if let Some(old) = self.sessions.get(&user_id).copied() {
                // One live session per user: the older one leaves its call and is told.
                self.leave_everything(&user_id, now_ms, &mut out);
                out.push((old, ServerMessage::Kicked));
            }
            self.sessions.insert(user_id.clone(), client);
            out.push((
                client,
                ServerMessage::LoginOk(LoginOk {
                    user_id: user_id.clone(),
                    ice_servers: Vec::new(),
                    ring_timeout_secs: 30,
                    heartbeat_timeout_secs: 10,
                }),
            ));
            // Like calling-server: an invitation still ringing for the user is delivered at
            // login (what was relayed to the user while offline is lost).
            for (invite_id, i) in &self.invitations {
                if i.ringing.contains(&user_id) {
                    out.push((
                        client,
                        ServerMessage::Invited(Invited {
                            invite_id: invite_id.clone(),
                            room_id: i.room,
                            sponsor: i.sponsor.clone(),
                            user_ids: i.invited.clone(),
                            call_type: i.call_type,
                            is_group: i.is_group,
                            group_id: i.group_id.clone(),
                        }),
                    ));
                }
            }
            return out;
        }
        let Some(me) = self.user_of(client) else {
            return out;
        };
        match message {
            ClientMessage::Login { .. } | ClientMessage::Unknown => {}
            ClientMessage::Ping => out.push((client, ServerMessage::Pong)),
            ClientMessage::Invite {
                request_id,
                user_ids,
                call_type,
                is_group,
                group_id,
                room_id,
            } => self.invite(
                &me, client, request_id, user_ids, call_type, is_group, group_id, room_id, now_ms,
                &mut out,
            ),
            ClientMessage::Accept {
                request_id,
                invite_id,
            } => self.accept(&me, client, request_id, &invite_id, now_ms, &mut out),
            ClientMessage::Reject { invite_id } => {
                if let Some(room) = self.answer(&me, &invite_id) {
                    let sponsor = self.invitation_sponsor(&invite_id, room);
                    self.to(
                        &sponsor,
                        ServerMessage::Rejected(Rejected {
                            room_id: room,
                            invite_id: invite_id.clone(),
                            user_id: me.clone(),
                        }),
                        &mut out,
                    );
                    self.invitees_changed(room, &mut out);
                    self.settle(room, &me, EndReason::Rejected, now_ms, &mut out);
                }
            }
            ClientMessage::Hangup { room_id } => {
                if self.room_of(&me) == Some(room_id) {
                    self.leave(&me, room_id, now_ms, &mut out);
                }
            }
            ClientMessage::Relay {
                room_id,
                to,
                signal,
            } => {
                // Like calling-server: between the call's members and its ringing invitees.
                if self.is_participant(room_id, &me) && self.is_participant(room_id, &to) {
                    let msg = ServerMessage::Signal(RelayedSignal {
                        room_id,
                        from: me,
                        signal,
                    });
                    self.to(&to, msg, &mut out);
                }
            }
            ClientMessage::Logout => {
                self.leave_everything(&me, now_ms, &mut out);
                self.sessions.remove(&me);
            }
        }
        out
    }

    /// A member of call `room`, or an invitee of it still ringing.
    fn is_participant(&self, room: RoomId, user: &str) -> bool {
        let member = self
            .rooms
            .get(&room)
            .is_some_and(|r| r.members.iter().any(|m| m == user));
        member
            || self
                .invitations
                .values()
                .any(|i| i.room == room && i.ringing.iter().any(|u| u == user))
    }

    /// The client's socket closed: its session ends and it leaves whatever it was in.
    pub fn disconnect(&mut self, client: usize, now_ms: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        if let Some(user) = self.user_of(client) {
            self.leave_everything(&user, now_ms, &mut out);
            self.sessions.remove(&user);
        }
        out
    }

    /// Every ringing invitation times out.
    pub fn expire_all(&mut self, now_ms: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        let ids: Vec<String> = self.invitations.keys().cloned().collect();
        for invite_id in ids {
            let Some(inv) = self.invitations.remove(&invite_id) else {
                continue;
            };
            for user in &inv.ringing {
                self.to(
                    user,
                    ServerMessage::InviteTimeout(InviteTimeout {
                        room_id: inv.room,
                        invite_id: invite_id.clone(),
                        sponsor: inv.sponsor.clone(),
                    }),
                    &mut out,
                );
            }
            if self.room_of(&inv.sponsor) == Some(inv.room) && !inv.ringing.is_empty() {
                self.to(
                    &inv.sponsor,
                    ServerMessage::NoResponse(NoResponse {
                        room_id: inv.room,
                        invite_id: invite_id.clone(),
                        user_ids: inv.ringing.clone(),
                    }),
                    &mut out,
                );
            }
            self.invitees_changed(inv.room, &mut out);
            let sponsor = inv.sponsor.clone();
            self.settle(inv.room, &sponsor, EndReason::NoResponse, now_ms, &mut out);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn invite(
        &mut self,
        me: &str,
        client: usize,
        request_id: u32,
        user_ids: Vec<String>,
        call_type: CallType,
        is_group: bool,
        group_id: Option<String>,
        room_id: Option<RoomId>,
        now_ms: u64,
        out: &mut Vec<Delivery>,
    ) {
        let room = match room_id {
            None if self.is_busy(me) => {
                out.push((
                    client,
                    ServerMessage::Error(ErrorReply {
                        request_id: Some(request_id),
                        code: ErrorCode::Busy,
                        message: "already in a call".into(),
                    }),
                ));
                return;
            }
            None => {
                self.next_room += 1;
                let room = 1000 + self.next_room;
                self.rooms.insert(
                    room,
                    Room {
                        members: vec![me.to_owned()],
                        connected_at: None,
                    },
                );
                room
            }
            Some(room) if self.room_of(me) == Some(room) => room,
            Some(_) => {
                out.push((
                    client,
                    ServerMessage::Error(ErrorReply {
                        request_id: Some(request_id),
                        code: ErrorCode::NotInCall,
                        message: "not in that call".into(),
                    }),
                ));
                return;
            }
        };
        self.next_invite += 1;
        let invite_id = format!("inv-{}", self.next_invite);
        let mut invited: Vec<String> = Vec::new();
        for u in user_ids {
            if u != me && !invited.contains(&u) {
                invited.push(u);
            }
        }
        out.push((
            client,
            ServerMessage::InviteSent(InviteSent {
                request_id,
                invite_id: invite_id.clone(),
                room_id: room,
                user_ids: invited.clone(),
            }),
        ));
        let mut ringing = Vec::new();
        let mut busy = Vec::new();
        for user in &invited {
            if self.is_busy(user) {
                busy.push(user.clone());
            } else {
                ringing.push(user.clone());
            }
        }
        for user in &ringing {
            self.to(
                user,
                ServerMessage::Invited(Invited {
                    invite_id: invite_id.clone(),
                    room_id: room,
                    sponsor: me.to_owned(),
                    user_ids: invited.clone(),
                    call_type,
                    is_group,
                    group_id: group_id.clone(),
                }),
                out,
            );
        }
        self.invitations.insert(
            invite_id.clone(),
            Invitation {
                room,
                sponsor: me.to_owned(),
                call_type,
                ringing,
                invited,
                is_group,
                group_id,
            },
        );
        for user in &busy {
            self.to(
                me,
                ServerMessage::Busy(Busy {
                    room_id: room,
                    invite_id: invite_id.clone(),
                    user_id: user.clone(),
                }),
                out,
            );
        }
        self.invitees_changed(room, out);
        if let Some(last) = busy.last() {
            self.settle(room, last, EndReason::Busy, now_ms, out);
        }
    }

    fn invitation_sponsor(&self, invite_id: &str, room: RoomId) -> String {
        self.invitations
            .get(invite_id)
            .map(|i| i.sponsor.clone())
            .or_else(|| {
                self.rooms
                    .get(&room)
                    .and_then(|r| r.members.first().cloned())
            })
            .unwrap_or_default()
    }

    /// Takes `user` off the ringing list of `invite_id`; the invitation's room if it rang there.
    fn answer(&mut self, user: &str, invite_id: &str) -> Option<RoomId> {
        let inv = self.invitations.get_mut(invite_id)?;
        let i = inv.ringing.iter().position(|u| u == user)?;
        inv.ringing.remove(i);
        Some(inv.room)
    }

    fn accept(
        &mut self,
        me: &str,
        client: usize,
        request_id: u32,
        invite_id: &str,
        now_ms: u64,
        out: &mut Vec<Delivery>,
    ) {
        let call_type = self.invitations.get(invite_id).map(|i| i.call_type);
        let (Some(room), Some(call_type)) = (self.answer(me, invite_id), call_type) else {
            out.push((
                client,
                ServerMessage::Error(ErrorReply {
                    request_id: Some(request_id),
                    code: ErrorCode::NoSuchInvitation,
                    message: "no such invitation".into(),
                }),
            ));
            return;
        };
        let pending = self.ringing_in(room);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let members = r.members.clone();
        r.members.push(me.to_owned());
        if r.connected_at.is_none() {
            r.connected_at = Some(now_ms);
        }
        out.push((
            client,
            ServerMessage::Joined(Joined {
                request_id,
                room_id: room,
                call_type,
                members: members.clone(),
                pending,
            }),
        ));
        for member in &members {
            self.to(
                member,
                ServerMessage::Accepted(Accepted {
                    room_id: room,
                    invite_id: invite_id.to_owned(),
                    user_id: me.to_owned(),
                }),
                out,
            );
        }
        self.invitees_changed(room, out);
    }

    fn invitees_changed(&mut self, room: RoomId, out: &mut Vec<Delivery>) {
        self.invitations.retain(|_, i| !i.ringing.is_empty());
        let user_ids = self.ringing_in(room);
        if let Some(r) = self.rooms.get(&room) {
            for member in r.members.clone() {
                self.to(
                    &member,
                    ServerMessage::InviteeList(InviteeList {
                        room_id: room,
                        user_ids: user_ids.clone(),
                    }),
                    out,
                );
            }
        }
    }

    /// Ends the call when one member is left and nobody rings any more.
    fn settle(
        &mut self,
        room: RoomId,
        actor: &str,
        reason: EndReason,
        now_ms: u64,
        out: &mut Vec<Delivery>,
    ) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        if r.members.len() <= 1 && self.ringing_in(room).is_empty() {
            let duration_secs = self.duration(room, now_ms);
            if let Some(last) = r.members.first().cloned() {
                self.to(
                    &last,
                    ServerMessage::CallEnded(CallEnded {
                        room_id: room,
                        user_id: actor.to_owned(),
                        duration_secs,
                        reason,
                    }),
                    out,
                );
            }
            self.rooms.remove(&room);
        }
    }

    fn leave(&mut self, user: &str, room: RoomId, now_ms: u64, out: &mut Vec<Delivery>) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.members.retain(|m| m != user);
        let remaining = r.members.clone();
        if remaining.is_empty() {
            // The caller withdrew before anyone answered: every ringing invitee is told.
            let ids: Vec<String> = self
                .invitations
                .iter()
                .filter(|(_, i)| i.room == room)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                if let Some(inv) = self.invitations.remove(&id) {
                    for invitee in &inv.ringing {
                        self.to(
                            invitee,
                            ServerMessage::Cancelled(Cancelled {
                                room_id: room,
                                invite_id: id.clone(),
                                sponsor: inv.sponsor.clone(),
                            }),
                            out,
                        );
                    }
                }
            }
            self.rooms.remove(&room);
            return;
        }
        for member in &remaining {
            self.to(
                member,
                ServerMessage::MemberLeft(MemberLeft {
                    room_id: room,
                    user_id: user.to_owned(),
                }),
                out,
            );
        }
        self.settle(room, user, EndReason::Hangup, now_ms, out);
    }

    fn leave_everything(&mut self, user: &str, now_ms: u64, out: &mut Vec<Delivery>) {
        if let Some(room) = self.room_of(user) {
            self.leave(user, room, now_ms, out);
        }
        let ringing: Vec<(String, RoomId)> = self
            .invitations
            .iter()
            .filter(|(_, i)| i.ringing.iter().any(|u| u == user))
            .map(|(id, i)| (id.clone(), i.room))
            .collect();
        for (invite_id, room) in ringing {
            self.answer(user, &invite_id);
            let sponsor = self.invitation_sponsor(&invite_id, room);
            self.to(
                &sponsor,
                ServerMessage::Rejected(Rejected {
                    room_id: room,
                    invite_id,
                    user_id: user.to_owned(),
                }),
                out,
            );
            self.invitees_changed(room, out);
            self.settle(room, user, EndReason::Rejected, now_ms, out);
        }
    }
}
