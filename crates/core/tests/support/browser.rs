//! A fake browser for one SDK instance: it answers the core's media and peer-connection
//! effects the way Chromium does (offer/answer with implicit rollback, candidates only after
//! their description, connected once both descriptions are set, local tracks sent only on
//! peers marked by `AttachMedia`), and records every call a real browser would refuse in
//! `errors`. Remote media arriving depends on the other browser; the harness reports it.
//!
//! The network path of each connection can be cut ([`FakePeer::reachable`]). A connection that
//! was up comes back only through an ICE restart: `restartIce()` fires `negotiationneeded`
//! (at once when stable, else once stable again), the next offer is a restart offer, and the
//! exchange it starts connects again if the path is there.

use std::collections::{BTreeMap, VecDeque};

use calling_core::{
    Effect, Input, MediaOutcome, PeerEvent, PeerState, SdkError, SdpKind, SessionDescription,
};
use calling_protocol::{IceCandidate, IceServer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signaling {
    Stable,
    HaveLocalOffer,
}

#[derive(Debug)]
pub struct FakePeer {
    pub initiator: bool,
    pub polite: bool,
    pub signaling: Signaling,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub connected: bool,
    /// Remote descriptions whose "applied" callback the core has not received yet, in order.
    pending_remote: VecDeque<String>,
    /// The remote description the core has been told is applied: candidates may follow.
    pub remote_applied: Option<String>,
    /// Local offers discarded because a remote offer was applied over them.
    pub rollbacks: u32,
    pub candidates_added: Vec<String>,
    /// The local tracks go out on this connection (`AttachMedia` carried out).
    pub attached: bool,
    /// `RemoteMedia` was reported for this connection.
    pub media_arrived: bool,
    /// The network lets ICE through to the other side.
    pub reachable: bool,
    /// `restartIce()` calls.
    pub ice_restarts: u32,
    /// Key frames asked of the other side (`RequestKeyFrame`).
    pub key_frames: u32,
    /// Created with `iceTransportPolicy: 'relay'` and not opened to every candidate since.
    pub relay_only: bool,
    /// The STUN/TURN servers it was created or last configured with.
    pub ice_servers: Vec<IceServer>,
    /// `restartIce()` was called and no description with new credentials is set yet.
    restart_pending: bool,
    /// Our restart offer waits for its answer.
    restarting: bool,
    /// The connection has been connected once: only an ICE restart reconnects it.
    was_up: bool,
    generation: u32,
}

#[derive(Debug)]
pub struct FakeBrowser {
    user: String,
    /// When set, every getUserMedia fails with this error.
    pub media_failure: Option<SdkError>,
    pub audio: bool,
    pub video: bool,
    pub muted: bool,
    pub peers: BTreeMap<String, FakePeer>,
    /// Peers closed, in order.
    pub closed: Vec<String>,
    pub errors: Vec<String>,
    /// No path to anyone (no relay where one is needed): connections made from now on never
    /// come up, and report `failed` once their ICE checks have nothing left to try.
    pub no_path: bool,
}

/// The candidate a browser gathers for the local description `sdp` (the ufrag ties them).
pub fn candidate_for(sdp: &str) -> IceCandidate {
    IceCandidate {
        candidate: format!("candidate:{sdp}"),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}

impl FakeBrowser {
    pub fn new(user: &str) -> Self {
        FakeBrowser {
            user: user.to_owned(),
            media_failure: None,
            audio: false,
            video: false,
            muted: false,
            peers: BTreeMap::new(),
            closed: Vec::new(),
            errors: Vec::new(),
            no_path: false,
        }
    }

    /// Carries out one effect; returns the callbacks it causes, to be queued.
    pub fn apply(&mut self, effect: Effect) -> Vec<Input> {
        let mut out = Vec::new();
        match effect {
            Effect::OpenMedia {
                token,
                audio,
                video,
            } => {
                let outcome = match &self.media_failure {
                    Some(err) => MediaOutcome::Failed(err.clone()),
                    None => {
                        self.audio |= audio;
                        self.video |= video;
                        MediaOutcome::Opened {
                            audio: self.audio,
                            video: self.video,
                        }
                    }
                };
                out.push(Input::Media { token, outcome });
            }
            Effect::CloseMedia { audio, video } => {
                self.audio &= !audio;
                self.video &= !video;
            }
            Effect::MuteAudio(mute) => self.muted = mute,
            Effect::CreatePeer {
                user_id,
                initiator,
                polite,
                ice_servers,
                relay_only,
            } => {
                if self.peers.contains_key(&user_id) {
                    self.errors.push(format!("second peer for {user_id}"));
                }
                self.peers.insert(
                    user_id,
                    FakePeer {
                        initiator,
                        polite,
                        signaling: Signaling::Stable,
                        local: None,
                        remote: None,
                        connected: false,
                        pending_remote: VecDeque::new(),
                        remote_applied: None,
                        rollbacks: 0,
                        candidates_added: Vec::new(),
                        attached: false,
                        media_arrived: false,
                        reachable: !self.no_path,
                        ice_restarts: 0,
                        key_frames: 0,
                        relay_only,
                        ice_servers,
                        restart_pending: false,
                        restarting: false,
                        was_up: false,
                        generation: 0,
                    },
                );
            }
            Effect::ClosePeer { user_id } => {
                if self.peers.remove(&user_id).is_none() {
                    self.errors.push(format!("close of unknown peer {user_id}"));
                }
                self.closed.push(user_id);
            }
            Effect::AttachMedia { user_id } => match self.peers.get_mut(&user_id) {
                Some(peer) if !peer.attached => peer.attached = true,
                Some(_) => self.errors.push(format!("second attach to {user_id}")),
                None => self
                    .errors
                    .push(format!("attach to unknown peer {user_id}")),
            },
            // Tracks replaced on a connection's senders: nothing a peer would notice.
            Effect::SendTracks { user_id } => {
                if !self.peers.get(&user_id).is_some_and(|p| p.attached) {
                    self.errors
                        .push(format!("tracks sent to {user_id}, not given our media"));
                }
            }
            // No stats and no DOM here: levels are never reported, views never made.
            Effect::ReadAudioLevels | Effect::RemoveViews => {}
            Effect::CreateOffer { user_id } => self.create_offer(&user_id, &mut out),
            Effect::RequestKeyFrame { user_id } => match self.peers.get_mut(&user_id) {
                Some(peer) => peer.key_frames += 1,
                None => self
                    .errors
                    .push(format!("key frame for unknown peer {user_id}")),
            },
            Effect::RestartIce { user_id } => match self.peers.get_mut(&user_id) {
                Some(peer) => {
                    peer.ice_restarts += 1;
                    // negotiationneeded fires when the flag turns on, and only while stable.
                    let fire = !peer.restart_pending && peer.signaling == Signaling::Stable;
                    peer.restart_pending = true;
                    if fire {
                        out.push(peer_input(&user_id, PeerEvent::NegotiationNeeded));
                    }
                }
                None => self
                    .errors
                    .push(format!("restartIce on unknown peer {user_id}")),
            },
            Effect::RenewIceServers { ice_servers } => {
                for peer in self.peers.values_mut() {
                    peer.ice_servers.clone_from(&ice_servers);
                }
            }
            Effect::AllowAllCandidates { user_id } => match self.peers.get_mut(&user_id) {
                Some(peer) if peer.relay_only => peer.relay_only = false,
                Some(_) => self
                    .errors
                    .push(format!("{user_id}'s connection was not relay-only")),
                None => self
                    .errors
                    .push(format!("setConfiguration on unknown peer {user_id}")),
            },
            Effect::ApplyRemoteDescription {
                user_id,
                description,
            } => self.apply_remote(&user_id, description, &mut out),
            Effect::AddIceCandidate { user_id, candidate } => {
                let Some(peer) = self.peers.get_mut(&user_id) else {
                    self.errors
                        .push(format!("candidate for unknown peer {user_id}"));
                    return out;
                };
                // The core must wait for the "applied" callback before adding candidates.
                match &peer.remote_applied {
                    Some(remote) if candidate == candidate_for(remote) => {
                        peer.candidates_added.push(candidate.candidate);
                    }
                    remote => self.errors.push(format!(
                        "addIceCandidate({}) with remote description {remote:?}",
                        candidate.candidate
                    )),
                }
            }
            other => self.errors.push(format!("unexpected effect {other:?}")),
        }
        out
    }

    /// Whether this browser sends media to `user`: a live track on an attached connection.
    pub fn sends_to(&self, user: &str) -> bool {
        (self.audio || self.video) && self.peers.get(user).is_some_and(|p| p.attached)
    }

    /// Whether any local track goes out on any connection.
    pub fn sends_any(&self) -> bool {
        (self.audio || self.video) && self.peers.values().any(|p| p.attached)
    }

    /// The core is about to receive `RemoteDescriptionApplied` for `user`.
    pub fn description_applied(&mut self, user: &str) {
        if let Some(peer) = self.peers.get_mut(user) {
            if let Some(sdp) = peer.pending_remote.pop_front() {
                peer.remote_applied = Some(sdp);
            }
        }
    }

    fn create_offer(&mut self, user: &str, out: &mut Vec<Input>) {
        let me = self.user.clone();
        let Some(peer) = self.peers.get_mut(user) else {
            self.errors.push(format!("offer for unknown peer {user}"));
            return;
        };
        if peer.signaling != Signaling::Stable {
            self.errors
                .push(format!("createOffer to {user} while not stable"));
            return;
        }
        peer.generation += 1;
        let mut sdp = format!("{me}>{user}#{} offer", peer.generation);
        // After restartIce() every offer carries new ICE credentials.
        if std::mem::take(&mut peer.restart_pending) {
            peer.restarting = true;
            sdp.push_str(RESTART);
        }
        peer.signaling = Signaling::HaveLocalOffer;
        peer.local = Some(sdp.clone());
        out.push(peer_input(
            user,
            PeerEvent::LocalDescription(SessionDescription {
                kind: SdpKind::Offer,
                sdp: sdp.clone(),
            }),
        ));
        out.push(peer_input(
            user,
            PeerEvent::LocalCandidate(candidate_for(&sdp)),
        ));
    }

    fn apply_remote(&mut self, user: &str, description: SessionDescription, out: &mut Vec<Input>) {
        let me = self.user.clone();
        let Some(peer) = self.peers.get_mut(user) else {
            self.errors
                .push(format!("remote description for unknown peer {user}"));
            return;
        };
        let restarted = match description.kind {
            SdpKind::Offer => is_restart(&description.sdp),
            SdpKind::Answer => peer.restarting,
        };
        match description.kind {
            SdpKind::Offer => {
                if peer.signaling == Signaling::HaveLocalOffer {
                    peer.rollbacks += 1;
                    peer.local = None;
                    peer.restarting = false;
                }
                // The answer to a restart offer has new credentials of its own: that is the
                // restart restartIce() asked for.
                if restarted {
                    peer.restart_pending = false;
                }
                peer.pending_remote.push_back(description.sdp.clone());
                peer.remote = Some(description.sdp);
                peer.generation += 1;
                let mut answer = format!("{me}>{user}#{} answer", peer.generation);
                if restarted {
                    answer.push_str(RESTART);
                }
                peer.local = Some(answer.clone());
                peer.signaling = Signaling::Stable;
                out.push(peer_input(user, PeerEvent::RemoteDescriptionApplied));
                out.push(peer_input(
                    user,
                    PeerEvent::LocalDescription(SessionDescription {
                        kind: SdpKind::Answer,
                        sdp: answer.clone(),
                    }),
                ));
                out.push(peer_input(
                    user,
                    PeerEvent::LocalCandidate(candidate_for(&answer)),
                ));
            }
            SdpKind::Answer => {
                if peer.signaling != Signaling::HaveLocalOffer {
                    self.errors
                        .push(format!("answer from {user} applied while stable"));
                    return;
                }
                peer.pending_remote.push_back(description.sdp.clone());
                peer.remote = Some(description.sdp);
                peer.signaling = Signaling::Stable;
                peer.restarting = false;
                out.push(peer_input(user, PeerEvent::RemoteDescriptionApplied));
            }
        }
        let connects = !peer.was_up || restarted;
        if connects
            && peer.reachable
            && !peer.connected
            && peer.local.is_some()
            && peer.remote.is_some()
        {
            peer.connected = true;
            peer.was_up = true;
            out.push(peer_input(
                user,
                PeerEvent::ConnectionState(PeerState::Connected),
            ));
        } else if connects
            && !peer.reachable
            && !peer.was_up
            && peer.local.is_some()
            && peer.remote.is_some()
        {
            // Never up, and every candidate pair of this exchange failed.
            out.push(peer_input(
                user,
                PeerEvent::ConnectionState(PeerState::Failed),
            ));
        }
        // Stable again with a restart still to make: the browser asks once more.
        if peer.restart_pending {
            out.push(peer_input(user, PeerEvent::NegotiationNeeded));
        }
    }
}

/// What marks a description with new ICE credentials (an ICE restart) in this fake's SDP.
pub const RESTART: &str = " ice-restart";

pub fn is_restart(sdp: &str) -> bool {
    sdp.ends_with(RESTART)
}

fn peer_input(user: &str, event: PeerEvent) -> Input {
    Input::Peer {
        user_id: user.to_owned(),
        event,
    }
}
