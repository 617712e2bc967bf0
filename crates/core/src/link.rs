//! One remote participant's link: its perfect-negotiation state, the ICE candidates waiting for a
//! remote description, and what is known about its media. Each method turns one piece of input
//! about that participant into effects; the call decides which participants exist.
//!
//! The same link also serves a call whose media goes through the server's SFU ([`crate::sfu`]):
//! one link of [`Role::Sfu`] holds the connection to the SFU, and each participant's link, of
//! [`Role::ViaSfu`], keeps only what is known of that participant.

use calling_protocol::{ClientMessage, IceCandidate, RoomId, Signal};

use crate::event::AppEvent;
use crate::health::Health;
use crate::negotiation::{self, Candidates, Negotiation, OfferAction, Unanswered};
use crate::privacy::Ringing;
use crate::sfu::SFU_LINK;
use crate::{code, Effect, PeerEvent, PeerState, SdpKind, SessionDescription};

/// What a participant sends: `Signal::Media` on the wire, `USER_*_AVAILABLE` for the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MediaState {
    pub audio: bool,
    pub video: bool,
}

/// No track at all: a receive-only participant.
pub(crate) const NOTHING: MediaState = MediaState {
    audio: false,
    video: false,
};

/// Whether the peer connection has come up at least once (then the two sides exchange their
/// media state; before that the other side might not have a connection to attach it to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    Connecting,
    Up,
}

/// Whether the app has been told that this participant's media arrived (`USER_ENTER`, once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    Awaited,
    Entered,
}

/// What a link connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A participant, over a peer connection of its own (mesh, or a 1:1 call).
    Direct,
    /// A participant whose media comes and goes through the SFU connection: this link has no
    /// connection of its own, and is up while the SFU link is.
    ViaSfu,
    /// The connection to the server's SFU, which carries every participant's media. Its
    /// signals go to the SFU, and it has no media state of its own to tell.
    Sfu,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PeerLink {
    pub role: Role,
    pub polite: bool,
    pub negotiation: Negotiation,
    pub candidates: Candidates,
    pub link: Link,
    pub presence: Presence,
    /// The last `Signal::Media` received (None: nothing yet, so the first one reports both).
    pub remote_media: Option<MediaState>,
    /// Our local tracks go to this participant ([`Effect::AttachMedia`] was issued). Peers made
    /// while an invitation rings stay detached until it is accepted, so no media leaves before.
    pub attached: bool,
    /// Our offer still waiting for its answer, kept to be sent again ([`Unanswered`]).
    pub unanswered: Option<Unanswered>,
    /// The last offer from this participant that we applied, to recognise a copy sent again.
    pub applied_offer: Option<String>,
    /// Whether media can flow, once the connection has been up ([`crate::health`]).
    pub health: Health,
    /// What this connection may reveal while its invitation rings ([`crate::privacy`]).
    pub ringing: Ringing,
    /// The kinds of this participant's media that arrive through the SFU too, while its own
    /// connection still carries them (a call moving to the SFU, see [`crate::sfu`]).
    pub forwarded: MediaState,
    /// An offer of ours went out on this connection: the SFU connection's first one joins.
    pub offered: bool,
}

impl PeerLink {
    pub fn new(polite: bool) -> Self {
        Self::with_role(Role::Direct, polite)
    }

    pub fn with_role(role: Role, polite: bool) -> Self {
        PeerLink {
            role,
            polite,
            negotiation: Negotiation::Stable,
            candidates: Candidates::default(),
            link: Link::Connecting,
            presence: Presence::Awaited,
            remote_media: None,
            attached: false,
            unanswered: None,
            applied_offer: None,
            health: Health::Live,
            ringing: Ringing::Open,
            forwarded: NOTHING,
            offered: false,
        }
    }

    /// A relayed signal from this participant (the call-wide ones are the call's).
    pub fn on_signal(&mut self, user: &str, signal: Signal, out: &mut Vec<Effect>) {
        if self.role == Role::ViaSfu && !matches!(signal, Signal::Media { .. }) {
            // No connection of its own to negotiate: what is left of one it had (the call
            // moved to the SFU) finds nothing.
            return;
        }
        match signal {
            Signal::Offer { sdp } => self.on_offer(user, sdp, out),
            Signal::Answer { sdp } => self.on_answer(user, sdp, out),
            Signal::Candidate(candidate) => self.on_candidate(user, candidate, out),
            Signal::Media { audio, video } => self.on_media(user, MediaState { audio, video }, out),
            Signal::SwitchMode { .. } | Signal::SwitchModeAck { .. } | Signal::Unknown => {}
        }
    }

    /// Starts sending our local tracks to this participant, and tells it our media state if the
    /// link is up and that state is `Some` (settled: not waiting for the call's first capture,
    /// which announces itself when it ends).
    pub fn attach(
        &mut self,
        user: &str,
        room: Option<RoomId>,
        local: Option<MediaState>,
        out: &mut Vec<Effect>,
    ) {
        if self.attached {
            return;
        }
        self.attached = true;
        if self.role != Role::ViaSfu {
            out.push(Effect::AttachMedia {
                user_id: user.to_owned(),
            });
        }
        self.tell_interruption(user, out);
        if let (Some(local), Link::Up, Some(room)) = (local, self.link, room) {
            self.tell_media(room, user, local, out);
        }
    }

    /// Tells the participant our media state (the SFU needs none: it forwards what arrives).
    pub fn tell_media(&self, room: RoomId, user: &str, local: MediaState, out: &mut Vec<Effect>) {
        if self.role != Role::Sfu {
            out.push(media_signal(room, user, local));
        }
    }

    /// Whether this link has a connection of its own to give our tracks to.
    pub fn has_connection(&self) -> bool {
        self.role != Role::ViaSfu
    }

    /// Asks the browser for an offer unless one is already under way.
    pub fn start_offer(&mut self, user: &str, out: &mut Vec<Effect>) {
        if negotiation::may_offer(self.negotiation) {
            self.negotiation = Negotiation::MakingOffer;
            self.unanswered = Some(Unanswered::default());
            out.push(Effect::CreateOffer {
                user_id: user.to_owned(),
            });
        }
    }

    /// Something happened on this participant's `RTCPeerConnection` at `now_ms`. `local`: our
    /// media state, `None` while the call's first capture is still under way.
    pub fn on_event(
        &mut self,
        now_ms: u64,
        user: &str,
        room: RoomId,
        local: Option<MediaState>,
        event: PeerEvent,
        out: &mut Vec<Effect>,
    ) {
        match event {
            PeerEvent::LocalDescription(description) => {
                self.on_local_description(user, room, description, out)
            }
            PeerEvent::LocalCandidate(candidate) => {
                if let Some(offer) = self.unanswered.as_mut() {
                    offer.candidates.push(candidate.clone());
                }
                out.push(relay(room, user, Signal::Candidate(candidate)));
            }
            PeerEvent::RemoteDescriptionApplied => self.on_remote_applied(user, out),
            PeerEvent::NegotiationNeeded => self.start_offer(user, out),
            PeerEvent::RemoteMedia => self.enter(user, out),
            // Only the SFU link reports these, and the call hands them to the participant.
            PeerEvent::ForwardedMedia { .. } => {}
            PeerEvent::ConnectionState(PeerState::Connected) => {
                // Up at last, perhaps after restarts: nothing to tell the app of that.
                self.restored(user, out);
                if self.link == Link::Up {
                    return;
                }
                self.link = Link::Up;
                if self.remote_media == Some(NOTHING) {
                    self.enter(user, out);
                }
                // A link made while ringing carries nothing yet: the media state goes
                // out when the tracks are attached (or, if still being captured, opened).
                if let (true, Some(local)) = (self.attached, local) {
                    self.tell_media(room, user, local, out);
                }
            }
            // A relay-only connection of a ringing callee that found no path: its accept
            // gathers every candidate and restarts ICE anyway.
            PeerEvent::ConnectionState(PeerState::Failed)
                if self.link == Link::Connecting && self.ringing == Ringing::RelayOnly => {}
            PeerEvent::ConnectionState(PeerState::Failed) if self.link == Link::Connecting => {
                self.never_connected(now_ms, user, out)
            }
            PeerEvent::ConnectionState(PeerState::Disconnected) => {
                self.interrupted(now_ms, user, false, out)
            }
            PeerEvent::ConnectionState(PeerState::Failed) => {
                self.interrupted(now_ms, user, true, out)
            }
            PeerEvent::ConnectionState(PeerState::Connecting | PeerState::Closed) => {}
            PeerEvent::Failed(message) => {
                out.push(Effect::Emit(AppEvent::Error {
                    code: code::PEER_CONNECTION_FAILED,
                    msg: format!("WebRTC negotiation with {user} failed: {message}"),
                }));
            }
        }
    }

    fn on_local_description(
        &mut self,
        user: &str,
        room: RoomId,
        description: SessionDescription,
        out: &mut Vec<Effect>,
    ) {
        let signal = match (description.kind, self.negotiation) {
            (SdpKind::Offer, Negotiation::MakingOffer) => {
                self.negotiation = Negotiation::HaveLocalOffer;
                if let Some(offer) = self.unanswered.as_mut() {
                    offer.sdp = Some(description.sdp.clone());
                }
                Signal::Offer {
                    sdp: description.sdp,
                }
            }
            // The glue reports the applied offer before the answer; accept either order.
            (SdpKind::Answer, Negotiation::Answering | Negotiation::ApplyingOffer) => {
                self.negotiation = Negotiation::Stable;
                Signal::Answer {
                    sdp: description.sdp,
                }
            }
            // An offer that finished after the polite side rolled it back for the other's
            // offer, or anything else out of turn: the other side must never see it.
            _ => return,
        };
        let first_offer =
            matches!(signal, Signal::Offer { .. }) && !std::mem::replace(&mut self.offered, true);
        out.push(if first_offer && self.role == Role::Sfu {
            Effect::Send(ClientMessage::Sfu {
                room_id: room,
                signal,
                join: true,
            })
        } else {
            relay(room, user, signal)
        });
    }

    fn on_remote_applied(&mut self, user: &str, out: &mut Vec<Effect>) {
        self.negotiation = match self.negotiation {
            Negotiation::ApplyingAnswer => Negotiation::Stable,
            Negotiation::ApplyingOffer => Negotiation::Answering,
            other => other,
        };
        for candidate in self.candidates.description_applied() {
            out.push(Effect::AddIceCandidate {
                user_id: user.to_owned(),
                candidate,
            });
        }
    }

    /// Sends our unanswered offer and its candidates again: the participant accepted while
    /// the offer still waits for its answer, so it may never have received it. Candidates
    /// gathered later go out as usual.
    pub fn resend_offer(&self, user: &str, room: RoomId, out: &mut Vec<Effect>) {
        let Some(Unanswered {
            sdp: Some(sdp),
            candidates,
        }) = self.unanswered.as_ref()
        else {
            return;
        };
        if self.negotiation != Negotiation::HaveLocalOffer {
            return;
        }
        out.push(relay(room, user, Signal::Offer { sdp: sdp.clone() }));
        for candidate in candidates {
            out.push(relay(room, user, Signal::Candidate(candidate.clone())));
        }
    }

    /// The participant sent an offer. A copy of the offer last applied is the sender's
    /// re-sent offer that reached us the first time: it is answered already, so it is dropped
    /// (its candidates, copies too, may still be added: the browser ignores duplicates).
    pub fn on_offer(&mut self, user: &str, sdp: String, out: &mut Vec<Effect>) {
        if self.applied_offer.as_deref() == Some(sdp.as_str()) {
            return;
        }
        match negotiation::on_remote_offer(self.negotiation, self.polite) {
            OfferAction::Ignore => self.candidates.ignore(),
            OfferAction::Apply => {
                // Applying their offer rolls ours back: nothing of ours waits for an answer.
                self.unanswered = None;
                self.applied_offer = Some(sdp.clone());
                self.negotiation = Negotiation::ApplyingOffer;
                self.candidates.expect_description();
                out.push(Effect::ApplyRemoteDescription {
                    user_id: user.to_owned(),
                    description: SessionDescription {
                        kind: SdpKind::Offer,
                        sdp,
                    },
                });
            }
        }
    }

    /// The participant answered; a stale answer is dropped.
    pub fn on_answer(&mut self, user: &str, sdp: String, out: &mut Vec<Effect>) {
        if negotiation::accepts_answer(self.negotiation) {
            self.unanswered = None;
            self.negotiation = Negotiation::ApplyingAnswer;
            self.candidates.expect_description();
            out.push(Effect::ApplyRemoteDescription {
                user_id: user.to_owned(),
                description: SessionDescription {
                    kind: SdpKind::Answer,
                    sdp,
                },
            });
        }
    }

    pub fn on_candidate(&mut self, user: &str, candidate: IceCandidate, out: &mut Vec<Effect>) {
        if let Some(candidate) = self.candidates.receive(candidate) {
            out.push(Effect::AddIceCandidate {
                user_id: user.to_owned(),
                candidate,
            });
        }
    }

    /// The participant's media state; reports to the app what changed (everything the first
    /// time). Apps typically create a user's view on `USER_ENTER` and render into it on
    /// `USER_VIDEO_AVAILABLE`, so availability is held back until the user has entered.
    pub fn on_media(&mut self, user: &str, media: MediaState, out: &mut Vec<Effect>) {
        let before = self.remote_media.replace(media);
        if self.presence == Presence::Entered {
            report_media(user, before, media, out);
        } else if media == NOTHING && self.link == Link::Up {
            // A receive-only participant sends no packet to wait for: its state over a
            // connected link is all there is.
            self.enter(user, out);
        }
    }

    /// `USER_ENTER` (once), then the media state held back until then.
    fn enter(&mut self, user: &str, out: &mut Vec<Effect>) {
        if self.presence == Presence::Awaited {
            self.presence = Presence::Entered;
            out.push(Effect::Emit(AppEvent::UserEnter {
                user_id: user.to_owned(),
            }));
            if let Some(media) = self.remote_media {
                report_media(user, None, media, out);
            }
        }
    }
}

/// `USER_AUDIO_AVAILABLE` / `USER_VIDEO_AVAILABLE` for what differs from `before`.
fn report_media(user: &str, before: Option<MediaState>, media: MediaState, out: &mut Vec<Effect>) {
    if before.map(|b| b.audio) != Some(media.audio) {
        out.push(Effect::Emit(AppEvent::UserAudioAvailable {
            user_id: user.to_owned(),
            is_audio_available: media.audio,
        }));
    }
    if before.map(|b| b.video) != Some(media.video) {
        out.push(Effect::Emit(AppEvent::UserVideoAvailable {
            user_id: user.to_owned(),
            is_video_available: media.video,
        }));
    }
}

/// A signal for one participant, or for the SFU ([`SFU_LINK`]), through the server.
pub(crate) fn relay(room: RoomId, to: &str, signal: Signal) -> Effect {
    Effect::Send(if to == SFU_LINK {
        ClientMessage::Sfu {
            room_id: room,
            signal,
            join: false,
        }
    } else {
        ClientMessage::Relay {
            room_id: room,
            to: to.to_owned(),
            signal,
        }
    })
}

/// Our media state for one participant.
pub(crate) fn media_signal(room: RoomId, to: &str, local: MediaState) -> Effect {
    relay(
        room,
        to,
        Signal::Media {
            audio: local.audio,
            video: local.video,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: u16) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{n}"),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }
    }

    const STATE: MediaState = MediaState {
        audio: true,
        video: false,
    };
    const LOCAL: Option<MediaState> = Some(STATE);

    fn local_offer(peer: &mut PeerLink, out: &mut Vec<Effect>) {
        peer.start_offer("bob", out);
        peer.on_event(
            0,
            "bob",
            7,
            LOCAL,
            PeerEvent::LocalDescription(SessionDescription {
                kind: SdpKind::Offer,
                sdp: "o1".into(),
            }),
            out,
        );
    }

    #[test]
    fn offer_is_sent_when_the_browser_made_it() {
        let mut peer = PeerLink::new(false);
        let mut out = Vec::new();
        local_offer(&mut peer, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::CreateOffer {
                    user_id: "bob".into()
                },
                relay(7, "bob", Signal::Offer { sdp: "o1".into() }),
            ]
        );
        assert_eq!(peer.negotiation, Negotiation::HaveLocalOffer);
    }

    #[test]
    fn negotiation_needed_while_offering_makes_no_second_offer() {
        let mut peer = PeerLink::new(false);
        let mut out = Vec::new();
        peer.start_offer("bob", &mut out);
        peer.on_event(0, "bob", 7, LOCAL, PeerEvent::NegotiationNeeded, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn candidates_before_the_answer_wait_for_it() {
        let mut peer = PeerLink::new(false);
        let mut out = Vec::new();
        local_offer(&mut peer, &mut out);
        out.clear();
        peer.on_candidate("bob", cand(1), &mut out);
        assert!(out.is_empty(), "a candidate before the answer must wait");
        peer.on_answer("bob", "a1".into(), &mut out);
        peer.on_candidate("bob", cand(2), &mut out);
        assert_eq!(out.len(), 1, "still waiting while the answer is applied");
        peer.on_event(
            0,
            "bob",
            7,
            LOCAL,
            PeerEvent::RemoteDescriptionApplied,
            &mut out,
        );
        assert_eq!(
            out[1..],
            [
                Effect::AddIceCandidate {
                    user_id: "bob".into(),
                    candidate: cand(1)
                },
                Effect::AddIceCandidate {
                    user_id: "bob".into(),
                    candidate: cand(2)
                },
            ]
        );
        assert_eq!(peer.negotiation, Negotiation::Stable);
    }

    #[test]
    fn stale_answer_is_dropped() {
        let mut peer = PeerLink::new(true);
        let mut out = Vec::new();
        peer.on_answer("bob", "a1".into(), &mut out);
        assert!(out.is_empty());
        assert_eq!(peer.negotiation, Negotiation::Stable);
    }

    #[test]
    fn impolite_ignores_colliding_offer_and_its_candidates() {
        let mut peer = PeerLink::new(false);
        let mut out = Vec::new();
        local_offer(&mut peer, &mut out);
        out.clear();
        peer.on_offer("bob", "theirs".into(), &mut out);
        peer.on_candidate("bob", cand(9), &mut out);
        assert!(out.is_empty());
        assert_eq!(peer.negotiation, Negotiation::HaveLocalOffer);
        peer.on_answer("bob", "a".into(), &mut out);
        peer.on_event(
            0,
            "bob",
            7,
            LOCAL,
            PeerEvent::RemoteDescriptionApplied,
            &mut out,
        );
        assert_eq!(
            out.len(),
            1,
            "the ignored offer's candidate never reaches the browser"
        );
    }

    #[test]
    fn polite_applies_colliding_offer_and_answers() {
        let mut peer = PeerLink::new(true);
        let mut out = Vec::new();
        local_offer(&mut peer, &mut out);
        out.clear();
        peer.on_offer("bob", "theirs".into(), &mut out);
        peer.on_event(
            0,
            "bob",
            7,
            LOCAL,
            PeerEvent::RemoteDescriptionApplied,
            &mut out,
        );
        peer.on_event(
            0,
            "bob",
            7,
            LOCAL,
            PeerEvent::LocalDescription(SessionDescription {
                kind: SdpKind::Answer,
                sdp: "mine".into(),
            }),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                Effect::ApplyRemoteDescription {
                    user_id: "bob".into(),
                    description: SessionDescription {
                        kind: SdpKind::Offer,
                        sdp: "theirs".into()
                    }
                },
                relay(7, "bob", Signal::Answer { sdp: "mine".into() }),
            ]
        );
        assert_eq!(peer.negotiation, Negotiation::Stable);
    }

    #[test]
    fn rolled_back_offer_is_never_sent() {
        let mut peer = PeerLink::new(true);
        let mut out = Vec::new();
        peer.start_offer("bob", &mut out);
        peer.on_offer("bob", "theirs".into(), &mut out);
        out.clear();
        peer.on_event(
            0,
            "bob",
            7,
            LOCAL,
            PeerEvent::LocalDescription(SessionDescription {
                kind: SdpKind::Offer,
                sdp: "late".into(),
            }),
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn user_enter_once_and_media_state_on_link_up() {
        let mut peer = PeerLink::new(true);
        peer.attached = true;
        let mut out = Vec::new();
        for _ in 0..2 {
            peer.on_event(0, "bob", 7, LOCAL, PeerEvent::RemoteMedia, &mut out);
            peer.on_event(
                0,
                "bob",
                7,
                LOCAL,
                PeerEvent::ConnectionState(PeerState::Connected),
                &mut out,
            );
        }
        assert_eq!(
            out,
            vec![
                Effect::Emit(AppEvent::UserEnter {
                    user_id: "bob".into()
                }),
                media_signal(7, "bob", STATE),
            ]
        );
    }

    #[test]
    fn a_detached_link_sends_no_media_state_until_attached() {
        let attach = Effect::AttachMedia {
            user_id: "bob".into(),
        };
        let up = PeerEvent::ConnectionState(PeerState::Connected);
        for (local, expected) in [
            (LOCAL, vec![attach.clone(), media_signal(7, "bob", STATE)]),
            // Still capturing: the capture's end announces the state.
            (None, vec![attach.clone()]),
        ] {
            let (mut peer, mut out) = (PeerLink::new(false), Vec::new());
            peer.on_event(0, "bob", 7, LOCAL, up.clone(), &mut out);
            assert!(
                out.is_empty(),
                "ringing: nothing is sent, not even our state"
            );
            peer.attach("bob", Some(7), local, &mut out);
            peer.attach("bob", Some(7), local, &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn media_state_before_the_user_entered_is_reported_right_after_user_enter() {
        let mut peer = PeerLink::new(true);
        let mut out = Vec::new();
        let muted = MediaState {
            audio: false,
            video: true,
        };
        peer.on_media("bob", muted, &mut out);
        assert!(out.is_empty());
        peer.on_event(0, "bob", 7, LOCAL, PeerEvent::RemoteMedia, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::Emit(AppEvent::UserEnter {
                    user_id: "bob".into()
                }),
                Effect::Emit(AppEvent::UserAudioAvailable {
                    user_id: "bob".into(),
                    is_audio_available: false
                }),
                Effect::Emit(AppEvent::UserVideoAvailable {
                    user_id: "bob".into(),
                    is_video_available: true
                }),
            ]
        );
    }

    #[test]
    fn remote_media_reports_both_first_then_changes_only() {
        let mut peer = PeerLink::new(true);
        let mut out = Vec::new();
        peer.on_event(0, "bob", 7, LOCAL, PeerEvent::RemoteMedia, &mut out);
        out.clear();
        let both = MediaState {
            audio: true,
            video: true,
        };
        peer.on_media("bob", both, &mut out);
        assert_eq!(out.len(), 2);
        peer.on_media("bob", both, &mut out);
        assert_eq!(out.len(), 2);
        peer.on_media(
            "bob",
            MediaState {
                audio: true,
                video: false,
            },
            &mut out,
        );
        assert_eq!(
            out[2..],
            [Effect::Emit(AppEvent::UserVideoAvailable {
                user_id: "bob".into(),
                is_video_available: false
            })]
        );
    }
}
