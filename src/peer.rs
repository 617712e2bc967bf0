//! One `RTCPeerConnection` to one remote user, with the listeners that report its events as
//! inputs through the driver's sink. Local tracks are attached with `replaceTrack` on fixed audio and video transceivers,
//! so turning the camera on or off and switching devices never renegotiates. A connection made
//! while an invitation rings carries no device track until the core says the call is accepted
//! (`Effect::AttachMedia`); meanwhile its video encoder is kept warm behind a closed gate
//! (`warmup`).
//!
//! The connection to the SFU (`calling_core::SFU_LINK`) is one of these too: it sends on two
//! transceivers of its own (`sfu`) and hands each track it receives to the participant the
//! SFU names as its stream.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use calling_core::{Input, PeerEvent, PeerState, SdpKind, SessionDescription, SFU_LINK};
use calling_protocol::IceCandidate;
use gloo_events::EventListener;
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, RtcConfiguration, RtcIceCandidateInit, RtcIceTransportPolicy,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcRtpTransceiver,
    RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType, RtcSessionDescriptionInit,
    RtcTrackEvent,
};

use crate::driver::Sink;
use crate::error::{js_message, Error};
use crate::log;
use crate::media::Kind;
use crate::sfu::Remotes;
use crate::task;
use crate::view::Views;
use crate::warmup::{with_start_bitrate, Gate, KeyFrameRequester};

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// An `RTCPeerConnection` seen through `restartIce()`, which web-sys does not bind yet.
    type IceRestart;
    #[wasm_bindgen(method, js_name = restartIce)]
    fn restart_ice(this: &IceRestart);
}

/// One `RTCPeerConnection` (the core's `PeerLink` to that user is its negotiation state).
pub struct PeerConnection {
    user_id: String,
    pc: RtcPeerConnection,
    /// The remote user's tracks, gathered as they arrive; views and hidden audio play it.
    remote: MediaStream,
    /// Set once the first remote packet arrived and `RemoteMedia` was reported.
    media_arrived: Cell<bool>,
    /// On the SFU connection: each participant's media, in place of `remote`.
    sfu: Option<Remotes>,
    /// Where the user's arrived media plays (hidden audio, any view asked for).
    views: Weak<Views>,
    /// The video sender's gate, closed until the core gives this peer our media; `None`
    /// without encoded transforms.
    gate: RefCell<Option<Gate>>,
    /// Asks for key frames of the remote video, made the first time one is needed.
    key_frames: RefCell<Option<KeyFrameRequester>>,
    /// The core gave this peer our media ([`PeerConnection::start_sending`]). Asynchronous
    /// steps begun before that (applying an offer that came while ringing) read it when they
    /// finish, so a call accepted meanwhile never gets a closed gate or a sender left empty.
    sending: Cell<bool>,
    listeners: RefCell<Vec<EventListener>>,
}

impl PeerConnection {
    /// Creates the connection. `ice_servers` is an `RTCIceServer[]` JS array (or undefined);
    /// `relay_only` gathers relay candidates only.
    pub fn new(
        sink: Sink,
        views: Weak<Views>,
        user_id: String,
        initiator: bool,
        ice_servers: &JsValue,
        relay_only: bool,
    ) -> Result<Rc<PeerConnection>, Error> {
        let config = RtcConfiguration::new();
        if ice_servers.is_object() {
            config.set_ice_servers(ice_servers);
        }
        if relay_only {
            config.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
        }
        let pc = RtcPeerConnection::new_with_configuration(&config)?;
        let remote = MediaStream::new()?;
        let sfu = (user_id == SFU_LINK).then(Remotes::default);
        let peer = Rc::new(PeerConnection {
            user_id,
            pc,
            remote,
            media_arrived: Cell::new(false),
            sfu,
            views,
            gate: RefCell::default(),
            key_frames: RefCell::default(),
            sending: Cell::new(false),
            listeners: RefCell::default(),
        });
        peer.listen(sink);
        // The SFU connection's senders are the driver's to add (`sfu::add_senders`); it is made
        // once the call is accepted, so there is nothing to warm up.
        if initiator && peer.sfu.is_none() {
            let init = RtcRtpTransceiverInit::new();
            init.set_direction(RtcRtpTransceiverDirection::Sendrecv);
            for kind in ["audio", "video"] {
                peer.pc.add_transceiver_with_str_and_init(kind, &init);
            }
            peer.warm_up();
        }
        Ok(peer)
    }

    /// Until attached, the video sender encodes a canvas behind a closed gate, so the encoder is
    /// configured and has its bitrate when the camera comes. Runs once, before the first
    /// negotiation (the offerer's after adding its transceivers, the answerer's after applying
    /// the offer); without encoded transforms it does nothing.
    fn warm_up(&self) {
        if self.gate.borrow().is_some() || self.sending.get() {
            return;
        }
        if let Some(t) = self.transceivers(Kind::Video).first() {
            self.gate.replace(Gate::close(&t.sender()));
        }
    }

    pub fn has_media(&self) -> bool {
        self.media_arrived.get()
    }

    /// From now on local tracks go out on this connection; these (the ones live now) at once.
    /// The gate opens before the camera replaces the warm-up track, so its first frame passes.
    pub fn start_sending(&self, local: [Option<MediaStreamTrack>; 2]) {
        self.sending.set(true);
        if let Some(gate) = self.gate.borrow().as_ref() {
            gate.open();
        }
        self.send_tracks(local);
    }

    /// Puts these local tracks (the ones live now) on the senders.
    pub fn send_tracks(&self, local: [Option<MediaStreamTrack>; 2]) {
        self.attach(Kind::Audio, local[0].as_ref());
        self.attach(Kind::Video, local[1].as_ref());
    }

    fn listen(self: &Rc<Self>, sink: Sink) {
        let report = {
            let user = self.user_id.clone();
            move |sink: &Sink, event: PeerEvent| {
                sink.queue(Input::Peer {
                    user_id: user.clone(),
                    event,
                });
            }
        };
        let mut listeners = Vec::with_capacity(4);

        let (d, r) = (sink.clone(), report.clone());
        listeners.push(EventListener::new(&self.pc, "icecandidate", move |e| {
            let Some(e) = e.dyn_ref::<RtcPeerConnectionIceEvent>() else {
                return;
            };
            if let Some(c) = e.candidate() {
                // An empty candidate string only marks the end of gathering.
                if !c.candidate().is_empty() {
                    let candidate = IceCandidate {
                        candidate: c.candidate(),
                        sdp_mid: c.sdp_mid(),
                        sdp_m_line_index: c.sdp_m_line_index(),
                    };
                    r(&d, PeerEvent::LocalCandidate(candidate));
                }
            }
        }));

        let (d, r) = (sink.clone(), report.clone());
        let pc = self.pc.clone();
        listeners.push(EventListener::new(
            &self.pc,
            "connectionstatechange",
            move |_| {
                let state = match pc.connection_state() {
                    RtcPeerConnectionState::Connected => PeerState::Connected,
                    RtcPeerConnectionState::Disconnected => PeerState::Disconnected,
                    RtcPeerConnectionState::Failed => PeerState::Failed,
                    RtcPeerConnectionState::Closed => PeerState::Closed,
                    _ => PeerState::Connecting,
                };
                r(&d, PeerEvent::ConnectionState(state));
            },
        ));

        let (d, r) = (sink.clone(), report.clone());
        listeners.push(EventListener::new(
            &self.pc,
            "negotiationneeded",
            move |_| {
                r(&d, PeerEvent::NegotiationNeeded);
            },
        ));

        // `track` fires when the remote description announces a track, before any packet; the
        // user's media "arrives" with the first unmuted track, which is what USER_ENTER means.
        let weak_self = Rc::downgrade(self);
        listeners.push(EventListener::new(&self.pc, "track", move |e| {
            let (Some(e), Some(peer)) = (e.dyn_ref::<RtcTrackEvent>(), weak_self.upgrade()) else {
                return;
            };
            let track = e.track();
            // Whose media this is: the user of this connection, or the one the SFU names.
            let user = match &peer.sfu {
                None => {
                    peer.remote.add_track(&track);
                    peer.user_id.clone()
                }
                Some(remotes) => {
                    let Some(user) = e.streams().get(0).dyn_into::<MediaStream>().ok() else {
                        return log::warn("a track from the SFU without a stream");
                    };
                    let user = user.id();
                    if let Err(e) = remotes.add(&user, &track) {
                        return log::warn(&format!("a track from {user}: {e}"));
                    }
                    user
                }
            };
            let kind = match track.kind().as_str() {
                "video" => Kind::Video,
                _ => Kind::Audio,
            };
            if !track.muted() {
                peer.arrived(&user, kind, &sink);
            } else {
                let (d, p) = (sink.clone(), weak_self.clone());
                let unmute = EventListener::once(&track, "unmute", move |_| {
                    if let Some(p) = p.upgrade() {
                        p.arrived(&user, kind, &d);
                    }
                });
                peer.listeners.borrow_mut().push(unmute);
            }
        }));
        self.listeners.borrow_mut().extend(listeners);
    }

    /// The user's media arrived (a track of `kind` unmuted): it starts playing, then the core
    /// hears of it (`USER_ENTER`), so the app's handler finds the audio playing and can render
    /// a view at once. Through the SFU, the core hears of each kind: a user whose media still
    /// plays from its own connection (the call is moving to the SFU) switches over when all
    /// it sends is here (`Effect::RetirePeer`).
    fn arrived(&self, user: &str, kind: Kind, sink: &Sink) {
        let Some(remotes) = &self.sfu else {
            if !self.media_arrived.replace(true) {
                play(&self.views, user, &self.remote);
                sink.queue(Input::Peer {
                    user_id: user.to_owned(),
                    event: PeerEvent::RemoteMedia,
                });
            }
            return;
        };
        if let Some(stream) = remotes.arrive(user) {
            if !self.views.upgrade().is_some_and(|v| v.plays(user)) {
                play(&self.views, user, &stream);
            }
        }
        sink.queue(Input::Peer {
            user_id: SFU_LINK.to_owned(),
            event: PeerEvent::ForwardedMedia {
                user_id: user.to_owned(),
                kind,
            },
        });
    }

    /// `user`'s media, once it arrived: on this connection, or through it from the SFU.
    pub fn stream_of(&self, user: &str) -> Option<MediaStream> {
        match &self.sfu {
            None => self.has_media().then(|| self.remote.clone()),
            Some(remotes) => remotes.stream(user),
        }
    }

    /// The participants' media on the SFU connection (None on any other).
    pub fn remotes(&self) -> Option<&Remotes> {
        self.sfu.as_ref()
    }

    /// The transceivers of this kind our tracks go on: every one on a participant's
    /// connection; on the SFU's, its two senders, not the receivers it adds.
    fn transceivers(&self, kind: Kind) -> Vec<RtcRtpTransceiver> {
        let sfu = self.sfu.is_some();
        self.pc
            .get_transceivers()
            .iter()
            .filter_map(|t| t.dyn_into::<RtcRtpTransceiver>().ok())
            .filter(|t| t.receiver().track().kind() == kind.as_str())
            .filter(|t| !sfu || t.direction() == RtcRtpTransceiverDirection::Sendonly)
            .collect()
    }

    /// Sends `track` (or nothing) on this kind's transceiver, without renegotiating.
    pub fn attach(&self, kind: Kind, track: Option<&MediaStreamTrack>) {
        for t in self.transceivers(kind) {
            let promise = t.sender().replace_track(track);
            task::spawn(async move {
                if let Err(e) = JsFuture::from(promise).await {
                    log::warn(&format!("replaceTrack failed: {}", js_message(&e)));
                }
            });
        }
    }

    /// createOffer + setLocalDescription; returns the local offer.
    /// No offer or answer under way (`signalingState` is `stable`).
    pub fn is_stable(&self) -> bool {
        self.pc.signaling_state() == web_sys::RtcSignalingState::Stable
    }

    pub async fn create_offer(&self) -> Result<SessionDescription, Error> {
        let offer = JsFuture::from(self.pc.create_offer()).await?;
        self.set_local(offer, SdpKind::Offer).await
    }

    async fn set_local(&self, desc: JsValue, kind: SdpKind) -> Result<SessionDescription, Error> {
        let sdp = Reflect::get(&desc, &"sdp".into())?
            .as_string()
            .unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(match kind {
            SdpKind::Offer => RtcSdpType::Offer,
            SdpKind::Answer => RtcSdpType::Answer,
        });
        init.set_sdp(&sdp);
        JsFuture::from(self.pc.set_local_description(&init)).await?;
        Ok(SessionDescription { kind, sdp })
    }

    /// setRemoteDescription, with a higher starting bitrate for the video we send (see
    /// `warmup`). For an offer, the transceivers it created are made send-capable
    /// (and, once we send to this peer, given the local tracks; until then, warmed up) before
    /// the answer, so later camera changes need no new offer. Whether we send, and `local`,
    /// are read after the description is applied: the call may have been accepted meanwhile,
    /// and tracks opened meanwhile found no transceiver to go on.
    pub async fn apply_remote(
        &self,
        description: &SessionDescription,
        local: impl FnOnce() -> [Option<MediaStreamTrack>; 2],
    ) -> Result<(), Error> {
        let init = RtcSessionDescriptionInit::new(match description.kind {
            SdpKind::Offer => RtcSdpType::Offer,
            SdpKind::Answer => RtcSdpType::Answer,
        });
        init.set_sdp(&with_start_bitrate(&description.sdp));
        JsFuture::from(self.pc.set_remote_description(&init)).await?;
        // The SFU's offers only add or stop what it forwards; our senders are set already.
        if description.kind == SdpKind::Offer && self.sfu.is_none() {
            let sending = self.sending.get();
            let local = if sending { local() } else { [None, None] };
            for (kind, track) in [(Kind::Audio, &local[0]), (Kind::Video, &local[1])] {
                for t in self.transceivers(kind) {
                    t.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                    if track.is_some() {
                        JsFuture::from(t.sender().replace_track(track.as_ref())).await?;
                    }
                }
            }
            if !sending {
                self.warm_up();
            }
        }
        Ok(())
    }

    /// createAnswer + setLocalDescription, after an offer was applied.
    pub async fn create_answer(&self) -> Result<SessionDescription, Error> {
        let answer = JsFuture::from(self.pc.create_answer()).await?;
        self.set_local(answer, SdpKind::Answer).await
    }

    pub async fn add_candidate(&self, candidate: &IceCandidate) -> Result<(), Error> {
        let init = RtcIceCandidateInit::new(&candidate.candidate);
        init.set_sdp_mid(candidate.sdp_mid.as_deref());
        init.set_sdp_m_line_index(candidate.sdp_m_line_index);
        JsFuture::from(
            self.pc
                .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
        )
        .await?;
        Ok(())
    }
}

impl PeerConnection {
    /// Stops reporting this connection's events (it is about to be closed).
    pub fn silence(&self) {
        self.listeners.borrow_mut().clear();
    }

    /// From now on gather every kind of candidate (the next ICE restart does).
    pub fn allow_all_candidates(&self) {
        self.reconfigure(|config| config.set_ice_transport_policy(RtcIceTransportPolicy::All));
    }

    /// From now on use these STUN/TURN servers (`RTCIceServer[]`), e.g. with fresh TURN
    /// credentials: the next gathering (an ICE restart) allocates with them.
    pub fn use_ice_servers(&self, ice_servers: &JsValue) {
        self.reconfigure(|config| config.set_ice_servers(ice_servers));
    }

    /// `setConfiguration` with the current configuration as `change` leaves it.
    fn reconfigure(&self, change: impl FnOnce(&RtcConfiguration)) {
        let config = self.pc.get_configuration();
        change(&config);
        if let Err(e) = self.pc.set_configuration_with_configuration(&config) {
            log::warn(&format!("setConfiguration: {}", js_message(&e)));
        }
    }

    /// Asks for new ICE credentials: the browser fires `negotiationneeded`, and the offer that
    /// follows (the usual perfect-negotiation path) restarts ICE on both sides.
    pub fn restart_ice(&self) {
        self.pc.unchecked_ref::<IceRestart>().restart_ice();
    }

    /// Asks the other side for a key frame of its video now (`warmup`), where the browser has
    /// encoded transforms; elsewhere the decoder asks for one itself, later.
    pub fn request_key_frame(&self) {
        if self.sfu.is_some() {
            // The SFU asks the senders for one when it needs it.
            return;
        }
        let mut requester = self.key_frames.borrow_mut();
        if requester.is_none() {
            let receiver = self.transceivers(Kind::Video).first().map(|t| t.receiver());
            *requester = receiver.and_then(|r| KeyFrameRequester::attach(&r));
        }
        if let Some(requester) = requester.as_ref() {
            requester.request();
        }
    }

    /// The underlying connection (for statistics).
    pub fn connection(&self) -> &RtcPeerConnection {
        &self.pc
    }
}

/// Plays `user`'s media from `stream`: its hidden audio, and any view asked for.
pub fn play(views: &Weak<Views>, user: &str, stream: &MediaStream) {
    if let Some(views) = views.upgrade() {
        if let Err(e) = views.remote_arrived(user, stream) {
            log::warn(&format!("remote view for {user}: {e}"));
        }
    }
}

impl Drop for PeerConnection {
    /// Listeners go first (so closing reports nothing), then the connection and remote tracks.
    fn drop(&mut self) {
        self.listeners.borrow_mut().clear();
        self.pc.close();
        for t in self.remote.get_tracks().iter() {
            if let Ok(t) = t.dyn_into::<MediaStreamTrack>() {
                t.stop();
            }
        }
    }
}
