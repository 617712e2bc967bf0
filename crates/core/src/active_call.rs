//! The state of the one call in progress: its phase (ringing as caller, ringing as callee,
//! connected), its participants, the local media, and the app promises still waiting on it.
//! Leaving a call in any way goes through `Session::end_call`, then [`ActiveCall::release`], so
//! nothing is left open.

use calling_protocol::{CallType, ClientMessage, IceServer, RenderedView, RoomId};

use crate::link::{MediaState, PeerLink};
use crate::session::create_peer;
use crate::sfu::SFU_LINK;
use crate::{Effect, MediaToken, RequestId, SdkError, Timer};
use litemap::LiteMap;

/// Where the call stands. Idle is the absence of an [`ActiveCall`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    /// Calling as caller: our invitation rings, nobody has accepted yet.
    Outgoing,
    /// Calling as callee: an invitation rings here.
    Incoming {
        invite_id: String,
        sponsor: String,
        answer: Answer,
    },
    /// At least two members are in the call.
    Connected {
        since_ms: u64,
        /// This side started the call (`isInviter()`).
        inviter: bool,
    },
}

/// How far the callee got in answering.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    Undecided,
    /// `accept()` called: `Accept` sent at once (the local media opens meanwhile); waiting for
    /// `Joined`.
    Joining {
        request: RequestId,
    },
}

/// What one outstanding [`Effect::OpenMedia`] was for; outcomes arrive in the order asked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MediaOp {
    /// The caller's media for `call()`/`groupCall()`.
    Start,
    /// The callee's media for `accept()`.
    Accept,
    /// `openCamera()`.
    Camera { request: RequestId },
    /// `switchToVideoCall()` after the other side agreed.
    SwitchVideo { request: RequestId },
    /// The other side switched to video; we follow and acknowledge once the camera is on.
    FollowVideo,
}

/// An `Invite` sent and not yet confirmed by `InviteSent`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingInvite {
    pub request: RequestId,
    pub kind: InviteKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum InviteKind {
    /// `call()`, which resolves with the invitee's id.
    Single { user_id: String },
    /// `groupCall()`, which resolves with the group label.
    Group { group_id: Option<String> },
}

/// `switchToAudioCall()`/`switchToVideoCall()` waiting for the other side's acknowledgement.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingSwitch {
    pub request: RequestId,
    pub call_type: CallType,
}

/// The local tracks, as the glue last reported them.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LocalMedia {
    /// Some media was asked for in this call, so leaving must release it.
    pub acquired: bool,
    pub audio: bool,
    pub video: bool,
    pub muted: bool,
}

impl LocalMedia {
    /// What the other participants are told we send.
    pub fn state(&self) -> MediaState {
        MediaState {
            audio: self.audio && !self.muted,
            video: self.video,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ActiveCall {
    /// None only while the caller's first invitation awaits `InviteSent`.
    pub room_id: Option<RoomId>,
    pub call_type: CallType,
    pub is_group: bool,
    pub group_id: Option<String>,
    /// Invitees still ringing (`getInviteeList()`).
    pub invitees: Vec<String>,
    /// Every other member we have a peer connection with, in user order. A sorted vector (a
    /// handful of entries) costs the SDK's wasm a fraction of a `BTreeMap`'s code.
    pub peers: LiteMap<String, PeerLink>,
    /// The call's media goes through the server's SFU ([`crate::sfu`]): decided when the call
    /// begins (a group call, and the server runs one), for the whole call.
    pub via_sfu: bool,
    /// The connection to the SFU, once we are a member of an SFU call.
    pub sfu: Option<PeerLink>,
    /// The rendered sizes last told to the SFU (`sfuViews`), to tell it only of changes.
    pub views_told: Vec<RenderedView>,
    pub local: LocalMedia,
    /// Every `OpenMedia` not answered yet, by token, oldest first.
    pub media_ops: Vec<(MediaToken, MediaOp)>,
    /// The token the next `OpenMedia` gets; tokens never repeat within a session.
    pub next_token: MediaToken,
    pub invites: Vec<PendingInvite>,
    pub switch: Option<PendingSwitch>,
    /// The `accept()` promise of a callee already joined whose media is still opening: it
    /// settles on the capture's outcome, which may still end the call.
    pub accepting: Option<RequestId>,
    /// When [`Timer::PeerHealth`] is armed to fire (None: not running). It runs only while a
    /// link is interrupted ([`crate::health`]).
    pub health_timer: Option<u64>,
    /// Participants whose link we gave up on: they left the call for us, though the server may
    /// still count them in it, so an offer from one does not bring them back.
    pub given_up: Vec<String>,
    pub phase: Phase,
}

impl ActiveCall {
    pub fn new(
        phase: Phase,
        call_type: CallType,
        is_group: bool,
        group_id: Option<String>,
    ) -> Self {
        ActiveCall {
            room_id: None,
            call_type,
            is_group,
            group_id,
            invitees: Vec::new(),
            peers: LiteMap::new(),
            via_sfu: false,
            sfu: None,
            views_told: Vec::new(),
            local: LocalMedia::default(),
            media_ops: Vec::new(),
            next_token: 1,
            invites: Vec::new(),
            switch: None,
            accepting: None,
            health_timer: None,
            given_up: Vec::new(),
            phase,
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. })
    }

    /// Whether a server message about `room` concerns this call.
    pub fn is_room(&self, room: RoomId) -> bool {
        self.room_id == Some(room)
    }

    /// Seconds connected so far (0 if never), for `CALL_END`.
    pub fn connected_secs(&self, now_ms: u64) -> u32 {
        match self.phase {
            Phase::Connected { since_ms, .. } => {
                u32::try_from(now_ms.saturating_sub(since_ms) / 1000).unwrap_or(u32::MAX)
            }
            _ => 0,
        }
    }

    /// Asks the glue for local tracks, remembering what for.
    pub fn open_media(&mut self, audio: bool, video: bool, op: MediaOp, out: &mut Vec<Effect>) {
        self.local.acquired = true;
        let token = self.next_token;
        self.next_token = token.wrapping_add(1);
        self.media_ops.push((token, op));
        out.push(Effect::OpenMedia {
            token,
            audio,
            video,
        });
    }

    /// The request `token` was for, if it belongs to this call and is still unanswered.
    pub fn take_media_op(&mut self, token: MediaToken) -> Option<MediaOp> {
        let i = self.media_ops.iter().position(|(t, _)| *t == token)?;
        Some(self.media_ops.remove(i).1)
    }

    /// Every link with a connection of its own: each participant's, or the SFU's.
    pub fn connections(&self) -> impl Iterator<Item = (&str, &PeerLink)> {
        let peers = self.peers.iter().map(|(user, peer)| (user.as_str(), peer));
        peers
            .chain(self.sfu.iter().map(|sfu| (SFU_LINK, sfu)))
            .filter(|(_, link)| link.has_connection())
    }

    /// [`ActiveCall::connections`], to change.
    pub fn connections_mut(&mut self) -> impl Iterator<Item = (&str, &mut PeerLink)> {
        let peers = self
            .peers
            .iter_mut()
            .map(|(user, peer)| (user.as_str(), peer));
        peers
            .chain(self.sfu.iter_mut().map(|sfu| (SFU_LINK, sfu)))
            .filter(|(_, link)| link.has_connection())
    }

    /// Puts the live local tracks on every connection we send to.
    pub fn send_tracks(&self, out: &mut Vec<Effect>) {
        for (user, peer) in self.connections() {
            if peer.attached {
                out.push(Effect::SendTracks {
                    user_id: user.to_owned(),
                });
            }
        }
    }

    /// Whether the call's first capture (the caller's at `call()`, the callee's at `accept()`)
    /// is still under way.
    pub fn capturing(&self) -> bool {
        self.media_ops
            .iter()
            .any(|(_, op)| matches!(op, MediaOp::Start | MediaOp::Accept))
    }

    /// Our media state for the other participants; `None` while the first capture is under
    /// way, so nobody hears "no media" just before the media arrives.
    pub fn settled_state(&self) -> Option<MediaState> {
        (!self.capturing()).then(|| self.local.state())
    }

    /// Tells every participant we send to, whose link is up, our media state when it changed.
    pub fn announce_media(&self, before: MediaState, out: &mut Vec<Effect>) {
        if self.local.state() != before {
            self.send_media_state(out);
        }
    }

    /// Tells every participant we send to, whose link is up, our media state.
    pub fn send_media_state(&self, out: &mut Vec<Effect>) {
        let now = self.local.state();
        let Some(room) = self.room_id else { return };
        for (user, peer) in &self.peers {
            if peer.attached && peer.link == crate::link::Link::Up {
                peer.tell_media(room, user, now, out);
            }
        }
    }

    /// Starts sending our tracks to every participant we have a connection with.
    /// A group call split by links given up on (their members are still in it for the server),
    /// with nobody else left to reach or ringing: it is over for us, and the server must hear
    /// our hangup, since it still counts those members.
    pub fn only_given_up_remain(&self) -> bool {
        self.is_group
            && self.peers.is_empty()
            && self.invitees.is_empty()
            && self.invites.is_empty()
            && !self.given_up.is_empty()
    }

    /// The call is accepted between us and every peer: our media goes to them. A connection
    /// held back while ringing becomes an ordinary one first (`privacy`): one not made yet is
    /// made with `ice_servers` and `relay_only`, and handles what its caller sent meanwhile.
    pub fn attach_all(
        &mut self,
        now_ms: u64,
        ice_servers: &[IceServer],
        relay_only: bool,
        out: &mut Vec<Effect>,
    ) {
        let (room, local) = (self.room_id, self.settled_state());
        for (user, peer) in &mut self.peers {
            let polite = peer.polite;
            let create = || create_peer(ice_servers, user, false, polite, relay_only);
            let up = peer.link == crate::link::Link::Up;
            for signal in peer.ringing.release(now_ms, up, user, create, out) {
                peer.on_signal(user, signal, out);
            }
            peer.attach(user, room, local, out);
        }
    }

    /// The message that tells the server we are leaving, if it has to be told now.
    pub fn leave_message(&self) -> Option<ClientMessage> {
        match &self.phase {
            Phase::Incoming {
                invite_id, answer, ..
            } => match answer {
                // Once `Accept` is out, `Joined` will follow; leaving waits for it.
                Answer::Joining { .. } => None,
                Answer::Undecided => Some(ClientMessage::Reject {
                    invite_id: invite_id.clone(),
                }),
            },
            Phase::Outgoing | Phase::Connected { .. } => self
                .room_id
                .map(|room_id| ClientMessage::Hangup { room_id }),
        }
    }

    /// Requests whose server answer would still make us a member of this call (the first
    /// `Invite` before `InviteSent`, an `Accept` before `Joined`): when that answer comes, leave.
    pub fn joining_requests(&self) -> Vec<RequestId> {
        let mut requests = Vec::new();
        if self.room_id.is_none() {
            requests.extend(self.invites.iter().map(|i| i.request));
        }
        if let Phase::Incoming {
            answer: Answer::Joining { request },
            ..
        } = &self.phase
        {
            requests.push(*request);
        }
        requests
    }

    /// Every app promise still waiting on this call.
    pub fn pending_requests(&self) -> Vec<RequestId> {
        let mut requests: Vec<RequestId> = self.invites.iter().map(|i| i.request).collect();
        if let Phase::Incoming {
            answer: Answer::Joining { request },
            ..
        } = &self.phase
        {
            requests.push(*request);
        }
        requests.extend(self.accepting);
        requests.extend(self.switch.as_ref().map(|s| s.request));
        requests.extend(self.media_ops.iter().filter_map(|(_, op)| match op {
            MediaOp::Camera { request } | MediaOp::SwitchVideo { request } => Some(*request),
            MediaOp::Start | MediaOp::Accept | MediaOp::FollowVideo => None,
        }));
        requests
    }

    /// Releases everything the call holds: rejects every promise still waiting on it with
    /// `reason`, closes every peer and the local media. Only [`crate::Session::end_call`] calls
    /// it, after the server and the app were told.
    pub fn release(self, reason: &SdkError, out: &mut Vec<Effect>) {
        for request in self.pending_requests() {
            out.push(Effect::Reject {
                request,
                error: reason.clone(),
            });
        }
        let connected = self.is_connected();
        for (user_id, peer) in self.peers {
            // A connection deferred while ringing was never made. A participant reached
            // through the SFU has none, but the elements made for it go the same way.
            if peer.ringing.made() {
                out.push(Effect::ClosePeer { user_id });
            }
        }
        if self.sfu.is_some() {
            out.push(Effect::ClosePeer {
                user_id: SFU_LINK.to_owned(),
            });
        }
        if self.local.acquired {
            out.push(Effect::CloseMedia {
                audio: true,
                video: true,
            });
        }
        if connected {
            out.push(Effect::CancelTimer(Timer::VoiceVolume));
        }
        if self.health_timer.is_some() {
            out.push(Effect::CancelTimer(Timer::PeerHealth));
        }
        out.push(Effect::RemoveViews);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing() -> ActiveCall {
        ActiveCall::new(Phase::Outgoing, CallType::Video, false, None)
    }

    #[test]
    fn closing_rejects_every_waiting_promise_and_releases_everything() {
        let mut call = outgoing();
        call.room_id = Some(4);
        call.invites.push(PendingInvite {
            request: 1,
            kind: InviteKind::Group { group_id: None },
        });
        call.media_ops.push((1, MediaOp::Camera { request: 2 }));
        call.media_ops.push((2, MediaOp::Start));
        call.switch = Some(PendingSwitch {
            request: 3,
            call_type: CallType::Audio,
        });
        call.local.acquired = true;
        call.peers.insert("bob".into(), PeerLink::new(true));
        let reason = SdkError {
            code: None,
            message: "gone".into(),
        };
        let mut out = Vec::new();
        call.release(&reason, &mut out);
        let reject = |request| Effect::Reject {
            request,
            error: reason.clone(),
        };
        assert_eq!(
            out,
            vec![
                reject(1),
                reject(3),
                reject(2),
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
                Effect::CloseMedia {
                    audio: true,
                    video: true
                },
                Effect::RemoveViews,
            ]
        );
    }

    #[test]
    fn media_is_only_released_when_it_was_asked_for() {
        let call = ActiveCall::new(
            Phase::Incoming {
                invite_id: "i".into(),
                sponsor: "bob".into(),
                answer: Answer::Undecided,
            },
            CallType::Audio,
            false,
            None,
        );
        let mut out = Vec::new();
        call.release(
            &SdkError {
                code: None,
                message: String::new(),
            },
            &mut out,
        );
        assert_eq!(out, vec![Effect::RemoveViews]);
    }

    #[test]
    fn leaving_tells_the_server_what_fits_the_phase() {
        let mut call = outgoing();
        assert_eq!(call.leave_message(), None, "room not known yet");
        call.invites.push(PendingInvite {
            request: 8,
            kind: InviteKind::Single {
                user_id: "bob".into(),
            },
        });
        assert_eq!(call.joining_requests(), vec![8]);
        call.room_id = Some(4);
        assert_eq!(
            call.leave_message(),
            Some(ClientMessage::Hangup { room_id: 4 })
        );
        assert!(call.joining_requests().is_empty());

        let mut ringing = ActiveCall::new(
            Phase::Incoming {
                invite_id: "i".into(),
                sponsor: "bob".into(),
                answer: Answer::Undecided,
            },
            CallType::Audio,
            false,
            None,
        );
        ringing.room_id = Some(4);
        assert_eq!(
            ringing.leave_message(),
            Some(ClientMessage::Reject {
                invite_id: "i".into()
            })
        );
        ringing.phase = Phase::Incoming {
            invite_id: "i".into(),
            sponsor: "bob".into(),
            answer: Answer::Joining { request: 5 },
        };
        assert_eq!(
            ringing.leave_message(),
            None,
            "Joined will follow; leave then"
        );
        assert_eq!(ringing.joining_requests(), vec![5]);
    }

    #[test]
    fn muted_audio_is_announced_as_unavailable() {
        let local = LocalMedia {
            acquired: true,
            audio: true,
            video: true,
            muted: true,
        };
        assert_eq!(
            local.state(),
            MediaState {
                audio: false,
                video: true
            }
        );
    }

    #[test]
    fn connected_seconds_round_down() {
        let mut call = outgoing();
        assert_eq!(call.connected_secs(10_000), 0);
        call.phase = Phase::Connected {
            since_ms: 1_000,
            inviter: true,
        };
        assert_eq!(call.connected_secs(3_999), 2);
    }
}
