//! One participant's peer connection with the SFU: its str0m `Rtc`, the tracks it sends us, the
//! tracks we forward to it, and the renegotiation that adds and stops those.
//!
//! The SFU is the polite peer of every renegotiation: when the participant's own offer crosses
//! ours, ours is dropped and made again after theirs, so signalling never deadlocks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{
    Direction, KeyframeRequest, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid,
};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, warn};

use crate::budget;
use crate::error::SfuError;
use crate::layers::{self, LayerRate};
use crate::sfu::{ParticipantId, RoomId};
use crate::track::{TrackIn, TrackOut, TrackOutState, TrackSource};
use crate::view::{self, RenderedSize};

/// What one forwarded audio track is reckoned to take (Opus in a call: 32 kbit/s and headers).
const AUDIO_BPS: u64 = 50_000;

/// What a participant's output means for the others of its room.
#[derive(Debug)]
pub(crate) enum Propagated {
    /// A new incoming track, to be offered to every other participant.
    TrackOpened(TrackSource),
    /// Media to forward to the receivers of this track (boxed: a `MediaData` is large, and the
    /// other variants are many and small), with the bitrates of its simulcast layers.
    Media {
        origin: ParticipantId,
        data: Box<MediaData>,
        layers: Vec<LayerRate>,
    },
    /// A receiver lost (or is starting) a forwarded track: its origin must send a key frame.
    KeyframeWanted {
        origin: ParticipantId,
        mid: Mid,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    },
}

#[derive(Debug)]
pub(crate) struct Participant {
    pub id: ParticipantId,
    pub room: RoomId,
    /// The stream id of its tracks at the others (see [`crate::Sfu::join`]).
    pub stream: String,
    pub rtc: Rtc,
    pub tracks_in: Vec<TrackIn>,
    pub tracks_out: Vec<TrackOut>,
    /// Our offer waiting for the participant's answer; one at a time.
    pending: Option<SdpPendingOffer>,
    /// Since when ICE has lost the participant (its network blipped or changed). It stays in
    /// its room, its tracks offered to the others, until `reconnect_grace` has passed: an ICE
    /// restart from wherever it is now resumes the same session.
    interrupted_since: Option<Instant>,
    reconnect_grace: Duration,
    /// The bandwidth estimate of what can be sent to the participant (str0m's, from its
    /// transport-wide congestion control feedback).
    estimate_bps: Option<u64>,
    /// The most the participant asked to receive.
    max_bps: Option<u64>,
    /// How large it renders each other participant, by stream id; one left out is not limited.
    views: HashMap<String, RenderedSize>,
}

impl Participant {
    pub fn new(
        id: ParticipantId,
        room: RoomId,
        stream: String,
        rtc: Rtc,
        reconnect_grace: Duration,
    ) -> Participant {
        Participant {
            id,
            room,
            stream,
            rtc,
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            pending: None,
            interrupted_since: None,
            reconnect_grace,
            estimate_bps: None,
            max_bps: None,
            views: HashMap::new(),
        }
    }

    /// Whether ICE has lost the participant and it has not reconnected yet.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted_since.is_some()
    }

    pub fn handle_input(&mut self, input: Input) {
        if !self.rtc.is_alive() {
            return;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            warn!(participant = %self.id, "input refused, disconnecting: {e}");
            self.rtc.disconnect();
        }
    }

    /// The participant's own offer (its first, or a later one adding or removing its tracks).
    pub fn accept_offer(&mut self, offer: SdpOffer) -> Result<SdpAnswer, SfuError> {
        // Polite peer: drop our crossing offer; its tracks are offered again once this settles.
        if self.pending.take().is_some() {
            for track in &mut self.tracks_out {
                track.state = match track.state {
                    TrackOutState::Negotiating(_) => TrackOutState::ToOpen,
                    TrackOutState::NegotiatingStop(m) => TrackOutState::ToStop(m),
                    other => other,
                };
            }
        }
        Ok(self.rtc.sdp_api().accept_offer(offer)?)
    }

    /// The participant's answer to our last offer. Returns the tracks that just opened, whose
    /// senders must now send a key frame for this new receiver.
    pub fn accept_answer(&mut self, answer: SdpAnswer) -> Result<Vec<TrackSource>, SfuError> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| SfuError::NoPendingOffer(self.id.clone()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        let mut opened = Vec::new();
        for track in &mut self.tracks_out {
            if let TrackOutState::Negotiating(mid) = track.state {
                track.state = TrackOutState::Open(mid);
                opened.push(track.source.clone());
            }
        }
        self.tracks_out
            .retain(|t| !matches!(t.state, TrackOutState::NegotiatingStop(_)));
        self.share_bandwidth();
        Ok(opened)
    }

    /// An offer adding the tracks to open and stopping the tracks whose source left, unless one
    /// is already waiting for its answer.
    pub fn renegotiate(&mut self) -> Option<SdpOffer> {
        if self.pending.is_some() || !self.rtc.is_alive() {
            return None;
        }
        let mut change = self.rtc.sdp_api();
        for track in &mut self.tracks_out {
            match track.state {
                TrackOutState::ToOpen => {
                    // The stream id tells the receiver whose media this is (the SDK maps it to
                    // the user's tile).
                    let mid = change.add_media(
                        track.source.kind,
                        Direction::SendOnly,
                        Some(track.source.stream.clone()),
                        None,
                        None,
                    );
                    track.state = TrackOutState::Negotiating(mid);
                }
                TrackOutState::ToStop(mid) => {
                    change.stop_media(mid);
                    track.state = TrackOutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        if !change.has_changes() {
            return None;
        }
        let (offer, pending) = change.apply()?;
        self.pending = Some(pending);
        Some(offer)
    }

    /// Starts forwarding another participant's track to this one (after renegotiation).
    pub fn add_track_out(&mut self, source: TrackSource) {
        let mut track = TrackOut::new(source);
        track.view = self.view_of(&track.source);
        self.tracks_out.push(track);
    }

    fn view_of(&self, source: &TrackSource) -> Option<RenderedSize> {
        match source.kind {
            MediaKind::Video => self.views.get(&source.stream).copied(),
            MediaKind::Audio => None,
        }
    }

    /// Stops forwarding every track of a participant that left.
    pub fn remove_tracks_from(&mut self, origin: &ParticipantId) {
        self.tracks_out.retain_mut(|track| {
            if &track.source.origin != origin {
                return true;
            }
            match track.state {
                // Never offered, or offered and not answered: the answer handling stops it.
                TrackOutState::ToOpen => false,
                TrackOutState::Negotiating(mid) | TrackOutState::Open(mid) => {
                    track.state = TrackOutState::ToStop(mid);
                    true
                }
                TrackOutState::ToStop(_) | TrackOutState::NegotiatingStop(_) => true,
            }
        });
        self.share_bandwidth();
    }

    /// Polls the `Rtc` once: a datagram to send, the next timeout, or an event turned into what
    /// it means for the room.
    pub fn poll(&mut self, now: Instant) -> Polled {
        let gives_up_at = self
            .interrupted_since
            .map(|since| since + self.reconnect_grace);
        if gives_up_at.is_some_and(|at| now >= at) {
            info!(participant = %self.id, "not back within the reconnect grace, disconnecting");
            self.rtc.disconnect();
        }
        if !self.rtc.is_alive() {
            return Polled::Dead;
        }
        match self.rtc.poll_output() {
            Ok(Output::Timeout(at)) => Polled::Timeout(gives_up_at.map_or(at, |g| at.min(g))),
            Ok(Output::Transmit(t)) => Polled::Transmit(t),
            Ok(Output::Event(event)) => Polled::Propagate(self.handle_event(now, event)),
            Err(e) => {
                warn!(participant = %self.id, "poll failed, disconnecting: {e}");
                self.rtc.disconnect();
                Polled::Dead
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) -> Option<Propagated> {
        match event {
            Event::IceConnectionStateChange(state) => {
                debug!(participant = %self.id, ?state, "ICE");
                match state {
                    IceConnectionState::Disconnected if self.interrupted_since.is_none() => {
                        info!(participant = %self.id, "connection interrupted, waiting for it to come back");
                        self.interrupted_since = Some(now);
                    }
                    IceConnectionState::Connected | IceConnectionState::Completed
                        if self.interrupted_since.take().is_some() =>
                    {
                        info!(participant = %self.id, "connection back");
                    }
                    _ => {}
                }
                None
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                // str0m describes simulcast from our side: the sender's `send` layers are
                // our `recv` ones.
                let layers: Vec<LayerRate> = added
                    .simulcast
                    .map(|s| s.recv.into_iter().map(|l| LayerRate::new(l.rid)).collect())
                    .unwrap_or_default();
                let track = TrackIn {
                    mid: added.mid,
                    kind: added.kind,
                    layers,
                    keyframe_requests: Default::default(),
                };
                info!(participant = %self.id, mid = %track.mid, kind = ?track.kind, "track in");
                let source = TrackSource {
                    origin: self.id.clone(),
                    stream: self.stream.clone(),
                    mid: track.mid,
                    kind: track.kind,
                    simulcast: !track.layers.is_empty(),
                };
                self.tracks_in.push(track);
                Some(Propagated::TrackOpened(source))
            }
            Event::MediaData(data) => {
                if !data.contiguous {
                    // A gap: the receivers cannot decode on until the next key frame.
                    self.request_keyframe(now, data.mid, data.rid, KeyframeRequestKind::Pli);
                }
                let track = self.tracks_in.iter_mut().find(|t| t.mid == data.mid)?;
                track.record(now, data.rid, &data.data);
                Some(Propagated::Media {
                    origin: self.id.clone(),
                    layers: track.layers.clone(),
                    data: Box::new(data),
                })
            }
            Event::KeyframeRequest(req) => self.keyframe_wanted(req),
            Event::EgressBitrateEstimate(BweKind::Twcc(estimate)) => {
                self.estimate_bps = Some(estimate.as_u64());
                let desired = self.desired_bps();
                if desired > 0 {
                    self.rtc.bwe().set_desired_bitrate(Bitrate::bps(desired));
                }
                self.share_bandwidth();
                None
            }
            _ => None,
        }
    }

    /// A receiver's PLI/FIR on one of our forwarded tracks, routed back to its origin.
    fn keyframe_wanted(&self, req: KeyframeRequest) -> Option<Propagated> {
        let track = self
            .tracks_out
            .iter()
            .find(|t| t.open_mid() == Some(req.mid))?;
        Some(Propagated::KeyframeWanted {
            origin: track.source.origin.clone(),
            mid: track.source.mid,
            rid: track.layer.target.or(track.layer.current),
            kind: req.kind,
        })
    }

    /// Asks this participant for a key frame of one of its tracks: at once, or when the
    /// track's interval between requests ends.
    pub fn request_keyframe(
        &mut self,
        now: Instant,
        mid: Mid,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        let Some(track) = self.tracks_in.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        if track.keyframe_requests.ask(now, rid, kind)
            && send_keyframe_request(&mut self.rtc, &self.id, mid, rid, kind)
        {
            track.keyframe_requests.sent(now);
        }
    }

    /// Sends the deferred keyframe requests whose interval has ended.
    pub fn send_deferred_keyframe_requests(&mut self, now: Instant) {
        for track in &mut self.tracks_in {
            for (rid, kind) in track.keyframe_requests.take_due(now) {
                send_keyframe_request(&mut self.rtc, &self.id, track.mid, rid, kind);
            }
        }
    }

    /// When the earliest deferred keyframe request is due.
    pub fn next_keyframe_request(&self) -> Option<Instant> {
        self.tracks_in
            .iter()
            .filter_map(|t| t.keyframe_requests.next_due())
            .min()
    }

    /// Writes another participant's media to this one, if it receives that track and, of a
    /// simulcast track, that layer. Returns the layer whose key frame this receiver now needs,
    /// when it starts switching to it.
    pub fn forward(
        &mut self,
        now: Instant,
        origin: &ParticipantId,
        data: &MediaData,
        layers: &[LayerRate],
    ) -> Option<Rid> {
        let index = self
            .tracks_out
            .iter()
            .position(|t| &t.source.origin == origin && t.source.mid == data.mid)?;
        let mid = self.tracks_out[index].open_mid()?;
        let mut wanted = None;
        let mut time = data.time;
        if self.tracks_out[index].source.simulcast {
            // A frame of a simulcast track whose layer str0m could not name is one of any
            // layer: forwarding it would mix layers in one stream.
            let rid = data.rid?;
            let track = &mut self.tracks_out[index];
            track.top_bps = layers.last().map_or(0, |l| l.bps);
            // What this video wants changes with its view, with the sender's layers' rates
            // (once a second) and with which layers are sent: only then is the bandwidth shared
            // anew, not at every frame.
            let cap = layers::size_cap(layers, track.view, now);
            let wants = layers::wanted_bps(layers, cap);
            if wants != track.wanted_bps {
                track.wanted_bps = wants;
                self.share_bandwidth();
            }
            let track = &mut self.tracks_out[index];
            let fits = cap.and_then(|cap| layers::choose(layers, cap, track.budget_bps, now));
            if let Some(fits) = fits {
                let order = layers.iter().map(|l| &l.rid);
                let stalled = track.layer.current.is_some_and(|current| {
                    !layers.iter().any(|l| l.rid == current && l.is_live(now))
                });
                let all_sent = layers.iter().all(|l| l.is_live(now));
                wanted = track.layer.decide(now, order, fits, stalled, all_sent);
                if let Some(to) = wanted {
                    debug!(participant = %self.id, %origin, layer = %to, "asking for a key frame of the layer to switch to");
                }
            }
            if !track.layer.admit(rid, data.is_keyframe()) {
                return wanted;
            }
            time = track.timeline.map(rid, data.time, data.network_time);
        }
        let writer = self.rtc.writer(mid)?;
        let pt = writer.match_params(data.params)?;
        if let Err(e) = writer.write(pt, data.network_time, time, data.data.clone()) {
            warn!(participant = %self.id, "forwarding failed, disconnecting: {e}");
            self.rtc.disconnect();
        }
        wanted
    }

    /// What the forwarded videos may use of the bitrate to this participant, all together: its
    /// estimate, capped by what it asked for, less its forwarded audio.
    fn video_bps(&self) -> u64 {
        let total = match (self.estimate_bps, self.max_bps) {
            (Some(e), Some(m)) => e.min(m),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => return u64::MAX,
        };
        let audios = self
            .tracks_out
            .iter()
            .filter(|t| t.source.kind == MediaKind::Audio && t.open_mid().is_some())
            .count();
        total.saturating_sub(AUDIO_BPS.saturating_mul(u64::try_from(audios).unwrap_or(u64::MAX)))
    }

    /// Shares the bitrate for video among the open forwarded videos by what each wants (see
    /// [`budget::share`]); a video that is not simulcast has no layers to fit and takes an even
    /// share of what the others leave. Run when an input changes (the estimate, the cap, a
    /// view, what a video wants, the open tracks), never per frame.
    fn share_bandwidth(&mut self) {
        let total = self.video_bps();
        let open = |t: &TrackOut| t.source.kind == MediaKind::Video && t.open_mid().is_some();
        let wanted: Vec<u64> = self
            .tracks_out
            .iter()
            .filter(|t| open(t))
            .map(|t| {
                if t.source.simulcast {
                    t.wanted_bps
                } else {
                    u64::MAX
                }
            })
            .collect();
        let budgets = budget::share(total, &wanted);
        for (track, budget) in self.tracks_out.iter_mut().filter(|t| open(t)).zip(budgets) {
            track.budget_bps = budget;
        }
    }

    /// What the bandwidth estimation should probe towards: every forwarded video at its best.
    fn desired_bps(&self) -> u64 {
        self.tracks_out
            .iter()
            .map(|t| match t.source.kind {
                MediaKind::Audio => AUDIO_BPS,
                MediaKind::Video => t.top_bps,
            })
            .sum()
    }

    /// Caps what is sent to this participant (`None`: only its bandwidth estimate limits it).
    pub fn set_max_bitrate(&mut self, max_bps: Option<u64>) {
        self.max_bps = max_bps;
        self.share_bandwidth();
    }

    /// How large this participant renders the others, by their stream id, replacing what it
    /// said before; for its forwarded videos now and those added later. A video whose view
    /// grew may move up a layer without the usual hold (see [`crate::layers`]); what each video
    /// wants is taken up, and the bandwidth shared anew, at its next frame.
    pub fn set_rendered_sizes(&mut self, views: HashMap<String, RenderedSize>) {
        self.views = views;
        for index in 0..self.tracks_out.len() {
            let view = self.view_of(&self.tracks_out[index].source);
            let track = &mut self.tracks_out[index];
            if view::grew(track.view, view) {
                track.layer.view_grew();
            }
            track.view = view;
        }
    }
}

/// Sends one keyframe request; false if str0m cannot yet (no stream for that RID so far).
fn send_keyframe_request(
    rtc: &mut Rtc,
    id: &ParticipantId,
    mid: Mid,
    rid: Option<Rid>,
    kind: KeyframeRequestKind,
) -> bool {
    let Some(mut writer) = rtc.writer(mid) else {
        return false;
    };
    if !writer.is_request_keyframe_possible(kind) {
        return false;
    }
    match writer.request_keyframe(rid, kind) {
        Ok(()) => true,
        Err(e) => {
            debug!(participant = %id, "keyframe request not sent: {e}");
            false
        }
    }
}

/// One poll of a participant's `Rtc`.
pub(crate) enum Polled {
    Timeout(Instant),
    Transmit(str0m::net::Transmit),
    Propagate(Option<Propagated>),
    Dead,
}

#[cfg(test)]
mod tests;
