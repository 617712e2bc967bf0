//! Group calls through the server's SFU: one connection carries our media up once and every
//! other participant's media down, instead of one connection per participant.
//!
//! A call uses the SFU when it is a group call (from the start, or once a 1:1 call grows,
//! below) and the server runs one (`LoginOk::sfu`), for the rest of the call. Its connection to
//! the SFU is a link like any other ([`Role::Sfu`], keyed [`SFU_LINK`] in effects and inputs):
//! the same perfect negotiation (the SFU is the polite side), ICE restarts and give-up as a
//! participant's. Its signals go to the server as `sfu` messages. Each participant keeps a link
//! of its own ([`Role::ViaSfu`]) with no connection: what the app hears of that participant
//! (`USER_ENTER` when its media arrives, which the glue reports under the participant's id by
//! the stream id the SFU gives its tracks; `USER_*_AVAILABLE` from its relayed media state)
//! works as in a mesh, and such a link is up while the SFU link is.
//!
//! A 1:1 call that grows (an invitation into it, or a member joining past two) moves to the
//! SFU without a gap: each member connects to the SFU while its peer-to-peer connections stay,
//! and each of those goes once every kind of media the other side sends arrives through the
//! SFU too (the glue then plays it from there, in the same elements), or once it drops (the
//! other side closed it, having moved). What a participant reached through the SFU still sends
//! for a connection of its own (an offer crossing the move) finds nothing.

use crate::active_call::{ActiveCall, Phase};
use crate::event::AppEvent;
use crate::health::{Health, Verdict, RESTART_INTERVAL_MS};
use crate::leave::{lost_events, Tell};
use crate::link::{Link, PeerLink, Role, NOTHING};
use crate::session::{create_peer, Session};
use crate::{code, Effect, MediaKind, PeerEvent, PeerState, SdkError};
use calling_protocol::{ClientMessage, RenderedView, Signal};

/// The key of the SFU connection in effects and inputs, where a participant's user ID would
/// be; never a user ID (those are letters, digits, `-` and `_`).
pub const SFU_LINK: &str = "~sfu";

impl Session {
    /// Connects to the SFU, once we are a member of an SFU call (the inviter at `InviteSent`,
    /// an invitee at `Joined`): the SFU takes our offer, and our media goes to it at once.
    pub(crate) fn join_sfu(&mut self, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut().filter(|c| c.via_sfu && c.sfu.is_none()) else {
            return;
        };
        out.push(create_peer(
            &self.ice_servers,
            SFU_LINK,
            true,
            false,
            self.policy.relay_only,
        ));
        let mut link = PeerLink::with_role(Role::Sfu, false);
        link.start_offer(SFU_LINK, out);
        link.attach(SFU_LINK, call.room_id, call.settled_state(), out);
        call.sfu = Some(link);
    }

    /// The call became a group call on a server with an SFU: it moves there (see the module
    /// documentation). Nothing for a call already there, or not yet begun on the server.
    pub(crate) fn grow_into_sfu(&mut self, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let begun = matches!(call.phase, Phase::Outgoing | Phase::Connected { .. });
        if call.via_sfu || !call.is_group || !self.sfu_available || !begun {
            return;
        }
        if call.room_id.is_some() {
            call.via_sfu = true;
            self.join_sfu(out);
        }
    }

    /// The SFU no longer has our connection to it (`sfuRejoin` to an offer of
    /// ours: it removed the connection, or another node's SFU serves the call now, its first
    /// one having died). A new connection joins in its place. It carries on the old one's
    /// interruption, if any: the app hears `PEER_MEDIA_RESTORED` for every participant when it
    /// comes up, and the call ends as for any SFU connection lost if it does not in time.
    pub(crate) fn rejoin_sfu(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut().filter(|c| c.via_sfu) else {
            return;
        };
        let Some(old) = call.sfu.take() else {
            return;
        };
        // The SFU now serving the call may not know them (another node's).
        call.views_told.clear();
        out.push(Effect::ClosePeer {
            user_id: SFU_LINK.to_owned(),
        });
        self.join_sfu(out);
        let Some(new) = self.call.as_mut().and_then(|c| c.sfu.as_mut()) else {
            return;
        };
        if let Health::Interrupted(mut interruption) = old.health {
            // Restarting the new connection is for once it has joined, if it does not come up.
            interruption.next_restart_ms = now_ms + RESTART_INTERVAL_MS;
            new.health = Health::Interrupted(interruption);
            new.link = old.link;
        }
    }

    /// A signal from the SFU for our connection to it.
    pub(crate) fn sfu_signal(&mut self, room: u32, signal: Signal, out: &mut Vec<Effect>) {
        let Some(sfu) = self
            .call
            .as_mut()
            .filter(|c| c.is_room(room))
            .and_then(|c| c.sfu.as_mut())
        else {
            return;
        };
        sfu.on_signal(SFU_LINK, signal, out);
    }

    /// Something happened on the SFU connection. What the app would hear of it as a
    /// participant's connection, it hears for every participant; when it comes up, so does
    /// every participant's link.
    pub(crate) fn sfu_event(&mut self, now_ms: u64, event: PeerEvent, out: &mut Vec<Effect>) {
        if let PeerEvent::ForwardedMedia { user_id, kind } = event {
            return self.forwarded_media(now_ms, &user_id, kind, out);
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let (Some(room), local) = (call.room_id, call.settled_state()) else {
            return;
        };
        let Some(sfu) = call.sfu.as_mut() else {
            return;
        };
        let mut effects = Vec::new();
        sfu.on_event(now_ms, SFU_LINK, room, local, event, &mut effects);
        let up = sfu.link == Link::Up;
        out.extend(for_every_member(call, effects));
        if up {
            members_up(call, now_ms, out);
        }
    }

    /// `user`'s media of `kind` arrived through the SFU: it enters, as over its own
    /// connection. One still on a connection of its own (the call grew from 1:1) is reached
    /// through the SFU once all it sends arrives there, and that connection goes.
    fn forwarded_media(&mut self, now_ms: u64, user: &str, kind: MediaKind, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(room) = call.room_id else { return };
        if let Some(peer) = call.peers.get_mut(user).filter(|p| p.role == Role::Direct) {
            match kind {
                MediaKind::Audio => peer.forwarded.audio = true,
                MediaKind::Video => peer.forwarded.video = true,
            }
            let sends = peer.remote_media.unwrap_or(NOTHING);
            let all_here =
                (peer.forwarded.audio || !sends.audio) && (peer.forwarded.video || !sends.video);
            if !all_here {
                return;
            }
            retire(call, now_ms, user, out);
        }
        let local = call.settled_state();
        if let Some(peer) = call.peers.get_mut(user) {
            peer.on_event(now_ms, user, room, local, PeerEvent::RemoteMedia, out);
        }
    }

    /// A participant's own connection in a call that moved to the SFU dropped, once the SFU
    /// connection is up: the other side closed it, having moved too, so this is no
    /// interruption; its media comes through the SFU. Returns whether that was so.
    pub(crate) fn dropped_after_move(
        &mut self,
        now_ms: u64,
        user: &str,
        event: &PeerEvent,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(call) = self.call.as_mut() else {
            return false;
        };
        let dropped = matches!(
            event,
            PeerEvent::ConnectionState(
                PeerState::Disconnected | PeerState::Failed | PeerState::Closed
            )
        );
        let sfu_up = call.sfu.as_ref().is_some_and(|s| s.link == Link::Up);
        let direct = call.peers.get(user).is_some_and(|p| p.role == Role::Direct);
        if !(dropped && sfu_up && direct && call.via_sfu) {
            return false;
        }
        retire(call, now_ms, user, out);
        true
    }

    /// `user` is in our SFU call: a link that follows the SFU connection. Our media reaches it
    /// through the SFU, so it is ours from the start.
    pub(crate) fn member_via_sfu(&mut self, now_ms: u64, user: &str, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let mut link = PeerLink::with_role(Role::ViaSfu, false);
        link.attach(user, call.room_id, call.settled_state(), out);
        call.peers.insert(user.to_owned(), link);
        if call.sfu.as_ref().is_some_and(|s| s.link == Link::Up) {
            members_up(call, now_ms, out);
        }
    }

    /// The SFU connection stayed interrupted too long (or never came up): every participant is
    /// out of reach, so the call ends for us (`ERROR` 60009, then `CALL_END` as when we leave),
    /// and the server hears our hangup.
    pub(crate) fn give_up_on_sfu(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Some(me) = self.me() else { return };
        let Some(sfu) = self.call.as_ref().and_then(|c| c.sfu.as_ref()) else {
            return;
        };
        let msg = if sfu.never_up() {
            "the media connection to the SFU could not be established"
        } else {
            "the media connection to the SFU was lost and could not be restored"
        };
        let error = AppEvent::Error {
            code: code::PEER_CONNECTION_FAILED,
            msg: msg.to_owned(),
        };
        let reason = SdkError {
            code: Some(code::PEER_CONNECTION_FAILED),
            message: format!("the call ended: {msg}"),
        };
        let events = |call: &ActiveCall| {
            let mut events = vec![error];
            events.extend(lost_events(call, &me, now_ms));
            events
        };
        self.end_call(Tell::Server, events, &reason, out);
    }

    /// The views measured (see [`Effect::MeasureViews`]): the SFU hears each participant's
    /// size when it changed. A participant the app shows nowhere is told as 0×0, so the SFU
    /// sends it the smallest layer rather than what its bandwidth allows; its hidden audio
    /// plays all the same.
    pub(crate) fn rendered_views(&mut self, measured: Vec<RenderedView>, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut().filter(|c| c.via_sfu) else {
            return;
        };
        let Some(room_id) = call.room_id else {
            return;
        };
        let views: Vec<RenderedView> = call
            .peers
            .keys()
            .map(|user| {
                measured
                    .iter()
                    .find(|v| &v.user_id == user)
                    .cloned()
                    .unwrap_or_else(|| RenderedView {
                        user_id: user.clone(),
                        width: 0,
                        height: 0,
                    })
            })
            .collect();
        if views == call.views_told {
            return;
        }
        call.views_told = views.clone();
        out.push(Effect::Send(ClientMessage::SfuViews { room_id, views }));
    }

    /// The SFU link's part of `Timer::PeerHealth`.
    pub(crate) fn sfu_health_due(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Some(sfu) = self.call.as_mut().and_then(|c| c.sfu.as_mut()) else {
            return;
        };
        let mut effects = Vec::new();
        let verdict = sfu.check_health(now_ms, SFU_LINK, &mut effects);
        if let Some(call) = self.call.as_ref() {
            out.extend(for_every_member(call, effects));
        }
        if verdict == Verdict::GiveUp {
            self.give_up_on_sfu(now_ms, out);
        }
    }
}

/// `user`'s own connection goes; the participant is reached through the SFU, as what the app
/// knows of it stays (it entered, its media state).
fn retire(call: &mut ActiveCall, now_ms: u64, user: &str, out: &mut Vec<Effect>) {
    let Some(old) = call.peers.get(user) else {
        return;
    };
    let mut link = PeerLink::with_role(Role::ViaSfu, false);
    link.presence = old.presence;
    link.remote_media = old.remote_media;
    link.link = old.link;
    link.attached = true;
    call.peers.insert(user.to_owned(), link);
    out.push(Effect::RetirePeer {
        user_id: user.to_owned(),
    });
    if call.sfu.as_ref().is_some_and(|s| s.link == Link::Up) {
        members_up(call, now_ms, out);
    }
}

/// The SFU link's effects, with what it says of media interrupted or restored said of every
/// participant instead (the app knows participants, not the SFU).
fn for_every_member(call: &ActiveCall, effects: Vec<Effect>) -> Vec<Effect> {
    let members = || {
        call.peers
            .iter()
            .filter(|(_, p)| p.role == Role::ViaSfu && p.attached)
            .map(|(user, _)| user.clone())
    };
    let mut out = Vec::with_capacity(effects.len());
    for effect in effects {
        match effect {
            Effect::Emit(AppEvent::PeerMediaInterrupted { .. }) => out.extend(
                members().map(|user_id| Effect::Emit(AppEvent::PeerMediaInterrupted { user_id })),
            ),
            Effect::Emit(AppEvent::PeerMediaRestored { .. }) => out.extend(
                members().map(|user_id| Effect::Emit(AppEvent::PeerMediaRestored { user_id })),
            ),
            Effect::Emit(AppEvent::Error { code, msg }) => {
                out.push(Effect::Emit(AppEvent::Error {
                    code,
                    msg: msg.replace(SFU_LINK, "the SFU"),
                }))
            }
            other => out.push(other),
        }
    }
    out
}

/// The SFU connection is up: so is every participant's link through it (our media state goes
/// out to each, as over a participant's own connection when it comes up).
fn members_up(call: &mut ActiveCall, now_ms: u64, out: &mut Vec<Effect>) {
    let (Some(room), local) = (call.room_id, call.settled_state()) else {
        return;
    };
    for (user, peer) in call.peers.iter_mut() {
        if peer.role == Role::ViaSfu && peer.link != Link::Up {
            let up = PeerEvent::ConnectionState(PeerState::Connected);
            peer.on_event(now_ms, user, room, local, up, out);
        }
    }
}

#[cfg(test)]
mod tests;
