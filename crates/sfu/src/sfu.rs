//! The SFU core: participants grouped in rooms, fed datagrams and time, yielding datagrams,
//! renegotiation offers and timeouts. No sockets, no clock, no tasks: the runtime (or a test)
//! owns those.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::crypto::CryptoProvider;
use str0m::media::KeyframeRequestKind;
use str0m::net::{Receive, TcpType, Transmit};
use str0m::{Candidate, Input, RtcConfig};
use tracing::info;

use crate::error::SfuError;
use crate::participant::{Participant, Polled, Propagated};
use crate::view::RenderedSize;

/// The bandwidth estimate a new participant starts from, before feedback refines it: enough
/// for a medium layer of a few videos.
const INITIAL_ESTIMATE_BPS: u64 = 1_000_000;
/// How long the core sleeps at most when no `Rtc` asks for an earlier wake-up.
const MAX_IDLE: Duration = Duration::from_millis(100);
/// How long a participant whose connection was interrupted keeps its place (its tracks at the
/// others, its session) for an ICE restart: longer than an SDK takes to notice a network change
/// and restart, short enough that the others do not watch a frozen tile for long.
pub const DEFAULT_RECONNECT_GRACE: Duration = Duration::from_secs(20);

/// A participant, as the signalling layer names it: unique per membership of a room (the
/// calling-server names one per member of a call); see [`Sfu::join`] for the name the others see.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(pub String);

/// A room: the participants whose media is forwarded to each other (a call).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomId(pub String);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the core asks of its driver.
#[derive(Debug)]
pub enum SfuOutput {
    /// A datagram to send from the SFU's socket.
    Transmit(Transmit),
    /// An offer to deliver to the participant through signalling; its answer goes to
    /// [`Sfu::accept_answer`].
    Offer(ParticipantId, SdpOffer),
    /// The participant's connection died (ICE lost it and it did not come back within the
    /// reconnect grace, or DTLS failed); it has been removed from its room.
    Gone(ParticipantId),
    /// Nothing more to do before this instant, unless input arrives.
    Timeout(Instant),
}

pub struct Sfu {
    crypto: Arc<CryptoProvider>,
    /// The addresses the SFU's UDP socket is reached at, announced as host candidates.
    local_addrs: Vec<SocketAddr>,
    /// The addresses of its ICE-TCP listener, announced as passive TCP host candidates.
    tcp_addrs: Vec<SocketAddr>,
    participants: BTreeMap<ParticipantId, Participant>,
    outputs: VecDeque<SfuOutput>,
    reconnect_grace: Duration,
    estimate_bandwidth: bool,
    /// The latest time the driver gave: the core reads no clock.
    now: Instant,
}

impl Sfu {
    pub fn new(now: Instant, local_addrs: Vec<SocketAddr>) -> Result<Sfu, SfuError> {
        if let Some(addr) = local_addrs.iter().find(|a| a.ip().is_unspecified()) {
            return Err(SfuError::UnspecifiedAddress(*addr));
        }
        Ok(Sfu {
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            local_addrs,
            tcp_addrs: Vec::new(),
            participants: BTreeMap::new(),
            outputs: VecDeque::new(),
            reconnect_grace: DEFAULT_RECONNECT_GRACE,
            estimate_bandwidth: true,
            now,
        })
    }

    /// Makes the SFU reachable over ICE-TCP (RFC 6544) too, at these addresses: for networks
    /// that block UDP. Each participant then also gets a passive TCP host candidate per
    /// address; the browser connects to it, and the driver carries the RFC 4571 framing.
    pub fn with_tcp(mut self, tcp_addrs: Vec<SocketAddr>) -> Result<Sfu, SfuError> {
        if let Some(addr) = tcp_addrs.iter().find(|a| a.ip().is_unspecified()) {
            return Err(SfuError::UnspecifiedAddress(*addr));
        }
        self.tcp_addrs = tcp_addrs;
        Ok(self)
    }

    /// How long a participant whose connection was interrupted may take to come back (an ICE
    /// restart) before it is removed; [`DEFAULT_RECONNECT_GRACE`] otherwise.
    pub fn with_reconnect_grace(mut self, grace: Duration) -> Sfu {
        self.reconnect_grace = grace;
        self
    }

    /// Whether the SFU estimates the bandwidth to each participant (from its transport-wide
    /// congestion control feedback) and fits the simulcast layers it sends to it; on by
    /// default. Without, only a participant's [`Sfu::set_max_bitrate`] limits them.
    pub fn with_bandwidth_estimation(mut self, on: bool) -> Sfu {
        self.estimate_bandwidth = on;
        self
    }

    /// A participant joins a room with its offer (its own tracks); the SFU answers, then offers
    /// it the tracks of the room's other participants through [`SfuOutput::Offer`]. `stream` is
    /// the stream id (`msid`) its tracks carry at the others: whom the receivers show them as
    /// (the calling-server's user id, while the participant id is unique per call membership).
    pub fn join(
        &mut self,
        now: Instant,
        room: RoomId,
        participant: ParticipantId,
        stream: String,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, SfuError> {
        self.advance(now);
        if self.participants.contains_key(&participant) {
            return Err(SfuError::AlreadyJoined(participant));
        }
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            // One codec of each kind, which every browser decodes: what one participant sends
            // is forwarded as it is to all the others. It also keeps the SDP of a call of nine
            // (two m-lines per other participant) well within a signaling message.
            .clear_codecs()
            .enable_opus(true)
            .enable_vp8(true)
            // Estimates what can be sent to each participant, from which its simulcast layers
            // are chosen.
            .enable_bwe(
                self.estimate_bandwidth
                    .then_some(Bitrate::bps(INITIAL_ESTIMATE_BPS)),
            )
            .build(now);
        for addr in &self.local_addrs {
            let candidate = Candidate::host(*addr, "udp").map_err(str0m::RtcError::from)?;
            rtc.add_local_candidate(candidate);
        }
        for addr in &self.tcp_addrs {
            // Passive: the SFU accepts connections, it never opens one.
            let candidate = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(str0m::RtcError::from)?;
            rtc.add_local_candidate(candidate);
        }
        let mut joining = Participant::new(
            participant.clone(),
            room.clone(),
            stream,
            rtc,
            self.reconnect_grace,
        );
        let answer = joining.accept_offer(offer)?;
        for other in self.participants.values().filter(|p| p.room == room) {
            for track in &other.tracks_in {
                joining.add_track_out(crate::track::TrackSource {
                    origin: other.id.clone(),
                    stream: other.stream.clone(),
                    mid: track.mid,
                    kind: track.kind,
                    simulcast: !track.layers.is_empty(),
                });
            }
        }
        info!(%participant, %room, "joined");
        self.participants.insert(participant, joining);
        Ok(answer)
    }

    /// A later offer of a participant (adding or removing its own tracks, an ICE restart).
    pub fn accept_offer(
        &mut self,
        participant: &ParticipantId,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, SfuError> {
        self.participant_mut(participant)?.accept_offer(offer)
    }

    /// A participant's answer to the SFU's last [`SfuOutput::Offer`].
    pub fn accept_answer(
        &mut self,
        participant: &ParticipantId,
        answer: SdpAnswer,
    ) -> Result<(), SfuError> {
        let opened = self.participant_mut(participant)?.accept_answer(answer)?;
        // A new receiver can decode nothing before a key frame.
        let now = self.now;
        for source in opened {
            if let Some(origin) = self.participants.get_mut(&source.origin) {
                // Of a simulcast track, the layer is asked for once chosen (at its first frame).
                if !source.simulcast {
                    origin.request_keyframe(now, source.mid, None, KeyframeRequestKind::Pli);
                }
            }
        }
        Ok(())
    }

    /// A participant leaves: its connection closes and its tracks stop for the others.
    pub fn leave(&mut self, participant: &ParticipantId) -> Result<(), SfuError> {
        let mut gone = self
            .participants
            .remove(participant)
            .ok_or_else(|| SfuError::UnknownParticipant(participant.clone()))?;
        gone.rtc.disconnect();
        self.forget(&gone.room, participant);
        info!(%participant, room = %gone.room, "left");
        Ok(())
    }

    fn forget(&mut self, room: &RoomId, participant: &ParticipantId) {
        for other in self.participants.values_mut().filter(|p| &p.room == room) {
            other.remove_tracks_from(participant);
        }
    }

    pub fn contains(&self, participant: &ParticipantId) -> bool {
        self.participants.contains_key(participant)
    }

    /// A participant's trickled ICE candidate (`candidate:…`, as the browser's
    /// `RTCIceCandidate.candidate`); an empty one (the end of its candidates) changes nothing.
    pub fn add_remote_candidate(
        &mut self,
        participant: &ParticipantId,
        candidate: &str,
    ) -> Result<(), SfuError> {
        let joined = self.participant_mut(participant)?;
        let candidate = candidate.trim();
        if candidate.is_empty() {
            return Ok(());
        }
        let parsed = Candidate::from_sdp_string(candidate)
            .map_err(|e| SfuError::InvalidCandidate(format!("{candidate:?}: {e}")))?;
        joined.rtc.add_remote_candidate(parsed);
        Ok(())
    }

    /// Caps what the SFU sends to a participant (`None`: its bandwidth estimate alone limits
    /// it): the simulcast layers it gets are chosen to fit. For a receiver that renders small
    /// tiles or is on a metered network.
    pub fn set_max_bitrate(
        &mut self,
        participant: &ParticipantId,
        max_bps: Option<u64>,
    ) -> Result<(), SfuError> {
        self.participant_mut(participant)?.set_max_bitrate(max_bps);
        Ok(())
    }

    /// How large `receiver` renders the others of its room, keyed by their stream id (see
    /// [`Sfu::join`]), replacing what it said before: of each sender's simulcast layers it gets
    /// the smallest that fills that size, as far as its bandwidth allows, and the bandwidth a
    /// small view leaves goes to its other videos. A sender left out is not limited by size; a
    /// 0×0 view gets the lowest layer. Holds for senders that join later too.
    pub fn set_rendered_sizes(
        &mut self,
        receiver: &ParticipantId,
        views: HashMap<String, RenderedSize>,
    ) -> Result<(), SfuError> {
        self.participant_mut(receiver)?.set_rendered_sizes(views);
        Ok(())
    }

    /// Whether the participant's connection is interrupted, waiting for it to come back.
    pub fn is_interrupted(&self, participant: &ParticipantId) -> Result<bool, SfuError> {
        self.participants
            .get(participant)
            .map(Participant::is_interrupted)
            .ok_or_else(|| SfuError::UnknownParticipant(participant.clone()))
    }

    /// A datagram arrived on the SFU's socket. Returns whether a participant took it (a
    /// datagram from an address no participant knows is dropped).
    pub fn handle_receive(&mut self, now: Instant, receive: Receive) -> bool {
        self.advance(now);
        let input = Input::Receive(now, receive);
        match self
            .participants
            .values_mut()
            .find(|p| p.rtc.accepts(&input))
        {
            Some(participant) => {
                participant.handle_input(input);
                true
            }
            None => false,
        }
    }

    /// Time passed: every participant's timers (retransmits, RTCP, ICE consent) run.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        for participant in self.participants.values_mut() {
            participant.handle_input(Input::Timeout(now));
            participant.send_deferred_keyframe_requests(now);
        }
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The next thing to do. Call until it returns [`SfuOutput::Timeout`].
    pub fn poll_output(&mut self) -> SfuOutput {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return output;
            }
            if let Some(timeout) = self.poll_participants() {
                return SfuOutput::Timeout(timeout);
            }
        }
    }

    /// Polls every participant until each is waiting, applying what their events mean for the
    /// others. Returns the earliest wake-up if nothing at all happened.
    fn poll_participants(&mut self) -> Option<Instant> {
        let mut propagated = Vec::new();
        let mut dead = Vec::new();
        let now = self.now;
        let mut timeout = now + MAX_IDLE;
        for participant in self.participants.values_mut() {
            if let Some(due) = participant.next_keyframe_request() {
                timeout = timeout.min(due);
            }
            if let Some(offer) = participant.renegotiate() {
                self.outputs
                    .push_back(SfuOutput::Offer(participant.id.clone(), offer));
            }
            loop {
                match participant.poll(now) {
                    Polled::Timeout(at) => {
                        timeout = timeout.min(at);
                        break;
                    }
                    Polled::Transmit(t) => self.outputs.push_back(SfuOutput::Transmit(t)),
                    Polled::Propagate(Some(p)) => propagated.push((participant.room.clone(), p)),
                    Polled::Propagate(None) => {}
                    Polled::Dead => {
                        dead.push(participant.id.clone());
                        break;
                    }
                }
            }
        }
        let idle = propagated.is_empty() && dead.is_empty() && self.outputs.is_empty();
        for (room, p) in propagated {
            self.propagate(&room, p);
        }
        for id in dead {
            if let Some(gone) = self.participants.remove(&id) {
                self.forget(&gone.room, &id);
                info!(participant = %id, room = %gone.room, "connection lost");
                self.outputs.push_back(SfuOutput::Gone(id));
            }
        }
        idle.then_some(timeout)
    }

    fn propagate(&mut self, room: &RoomId, propagated: Propagated) {
        match propagated {
            Propagated::TrackOpened(source) => {
                for other in self
                    .participants
                    .values_mut()
                    .filter(|p| &p.room == room && p.id != source.origin)
                {
                    other.add_track_out(source.clone());
                }
            }
            Propagated::Media {
                origin,
                data,
                layers,
            } => {
                let now = self.now;
                let mut wanted = Vec::new();
                for other in self
                    .participants
                    .values_mut()
                    .filter(|p| &p.room == room && p.id != origin)
                {
                    wanted.extend(other.forward(now, &origin, &data, &layers));
                }
                // Receivers switching layers need a key frame of the new one.
                if let Some(sender) = self.participants.get_mut(&origin) {
                    for rid in wanted {
                        sender.request_keyframe(now, data.mid, Some(rid), KeyframeRequestKind::Pli);
                    }
                }
            }
            Propagated::KeyframeWanted {
                origin,
                mid,
                rid,
                kind,
            } => {
                let now = self.now;
                if let Some(sender) = self.participants.get_mut(&origin) {
                    sender.request_keyframe(now, mid, rid, kind);
                }
            }
        }
    }

    fn participant_mut(&mut self, id: &ParticipantId) -> Result<&mut Participant, SfuError> {
        self.participants
            .get_mut(id)
            .ok_or_else(|| SfuError::UnknownParticipant(id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::{Direction, MediaKind};

    fn sfu() -> Sfu {
        let addr = "127.0.0.1:40000".parse().expect("an address");
        Sfu::new(Instant::now(), vec![addr]).expect("an SFU")
    }

    /// ann joins with a video offer; the SFU's answer.
    fn join_ann(sfu: &mut Sfu) -> SdpAnswer {
        sfu.join(
            Instant::now(),
            room(),
            id("ann"),
            "ann".into(),
            video_offer("ann"),
        )
        .expect("ann joins")
    }

    fn id(name: &str) -> ParticipantId {
        ParticipantId(name.into())
    }

    fn room() -> RoomId {
        RoomId("room".into())
    }

    /// A client's first offer with one video track, as the SDK will make it.
    fn video_offer(name: &str) -> SdpOffer {
        offer_from(name, Some("127.0.0.1:40001".parse().expect("an address")))
    }

    /// The same with its candidate, if any, inline.
    fn offer_from(name: &str, candidate: Option<SocketAddr>) -> SdpOffer {
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(Instant::now());
        if let Some(addr) = candidate {
            rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a candidate"));
        }
        let mut change = rtc.sdp_api();
        change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(name.into()),
            None,
            None,
        );
        change.apply().expect("an offer").0
    }

    #[test]
    fn an_unspecified_address_is_refused() {
        let any = "0.0.0.0:40000".parse().expect("an address");
        assert!(matches!(
            Sfu::new(Instant::now(), vec![any]),
            Err(SfuError::UnspecifiedAddress(_))
        ));
    }

    #[test]
    fn with_ice_tcp_the_answer_also_offers_a_passive_tcp_candidate() {
        let tcp: SocketAddr = "127.0.0.1:40002".parse().expect("an address");
        let mut sfu = sfu().with_tcp(vec![tcp]).expect("a specific address");
        let answer = join_ann(&mut sfu).to_sdp_string();
        let candidates: Vec<&str> = answer
            .lines()
            .filter(|l| l.contains("candidate:"))
            .collect();
        assert!(
            candidates.iter().any(|c| c.contains(" tcp ")
                && c.contains("127.0.0.1 40002")
                && c.contains(" typ host tcptype passive")),
            "no passive TCP candidate in {candidates:?}"
        );
        assert!(
            candidates.iter().any(|c| c.contains(" udp ")),
            "the UDP candidate is still there: {candidates:?}"
        );
        let any = "0.0.0.0:40003".parse().expect("an address");
        assert!(matches!(
            super::Sfu::new(Instant::now(), vec![tcp]).and_then(|s| s.with_tcp(vec![any])),
            Err(SfuError::UnspecifiedAddress(_))
        ));
    }

    /// Where the SFU sends datagrams until it is next idle, from `now` on.
    fn destinations(sfu: &mut Sfu, now: Instant) -> Vec<SocketAddr> {
        sfu.handle_timeout(now);
        let mut sent = Vec::new();
        loop {
            match sfu.poll_output() {
                SfuOutput::Transmit(t) => sent.push(t.destination),
                SfuOutput::Timeout(_) => return sent,
                SfuOutput::Offer(..) | SfuOutput::Gone(_) => {}
            }
        }
    }

    #[test]
    fn a_trickled_candidate_is_checked_and_a_bad_one_refused() {
        let mut sfu = sfu();
        let start = Instant::now();
        sfu.join(
            start,
            room(),
            id("ann"),
            "ann".into(),
            offer_from("ann", None),
        )
        .expect("ann joins with no candidate yet");
        let trickled: SocketAddr = "127.0.0.1:40009".parse().expect("an address");
        assert!(!destinations(&mut sfu, start).contains(&trickled));

        let candidate = "candidate:1 1 udp 2130706431 127.0.0.1 40009 typ host generation 0";
        sfu.add_remote_candidate(&id("ann"), candidate)
            .expect("a browser's host candidate");
        sfu.add_remote_candidate(&id("ann"), "")
            .expect("the end of candidates");
        let later = start + Duration::from_millis(200);
        assert!(
            destinations(&mut sfu, later).contains(&trickled),
            "the SFU checks the trickled candidate"
        );

        assert!(matches!(
            sfu.add_remote_candidate(&id("ann"), "candidate:nonsense"),
            Err(SfuError::InvalidCandidate(_))
        ));
        assert!(matches!(
            sfu.add_remote_candidate(&id("bob"), candidate),
            Err(SfuError::UnknownParticipant(_))
        ));
        assert!(
            sfu.contains(&id("ann")),
            "a bad candidate costs ann nothing"
        );
    }

    #[test]
    fn joining_twice_is_refused_and_keeps_the_first_membership() {
        let mut sfu = sfu();
        sfu.join(
            Instant::now(),
            room(),
            id("ann"),
            "ann".into(),
            video_offer("ann"),
        )
        .expect("ann joins");
        let again = sfu.join(
            Instant::now(),
            room(),
            id("ann"),
            "ann".into(),
            video_offer("ann"),
        );
        assert!(matches!(again, Err(SfuError::AlreadyJoined(_))));
        assert!(sfu.contains(&id("ann")));
    }

    #[test]
    fn an_answer_with_no_offer_waiting_is_refused() {
        let mut sfu = sfu();
        let answer = join_ann(&mut sfu);
        // Any well-formed answer will do: the SFU offered ann nothing.
        let answer = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).expect("an answer");
        assert!(matches!(
            sfu.accept_answer(&id("ann"), answer),
            Err(SfuError::NoPendingOffer(_))
        ));
        assert!(sfu.contains(&id("ann")), "the bad answer costs ann nothing");
    }

    #[test]
    fn leaving_unknown_is_refused() {
        let mut sfu = sfu();
        assert!(matches!(
            sfu.leave(&id("nobody")),
            Err(SfuError::UnknownParticipant(_))
        ));
    }
}
