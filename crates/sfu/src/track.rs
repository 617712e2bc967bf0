//! The tracks the SFU receives from a participant and the tracks it sends to one, and how a
//! receiver's track moves through SDP renegotiation.
//!
//! A forwarded track is named by where it comes from (origin participant and the mid of its
//! m-line there) rather than by a pointer, so a sender leaving is a plain lookup miss, never a
//! dangling reference.

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};

use crate::layers::{LayerChoice, LayerRate};
use crate::sfu::ParticipantId;
use crate::timeline::Timeline;
use crate::view::RenderedSize;
use crate::vp8;

/// How often a sender may be asked for a key frame of one track.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// A track the SFU receives from a participant.
#[derive(Debug)]
pub(crate) struct TrackIn {
    pub mid: Mid,
    pub kind: MediaKind,
    /// The simulcast layers the sender announced (`a=simulcast:send …`), in its order (the SDK
    /// lists encodings from lowest to highest, as Chrome's `sendEncodings` do), each with the
    /// bitrate it arrives at; empty without simulcast.
    pub layers: Vec<LayerRate>,
    /// Keyframe requests to the sender are spaced: every receiver asking at once (a join, a
    /// loss burst) must cost the sender one key frame, not one each.
    pub keyframe_requests: KeyframeRequests,
}

impl TrackIn {
    /// A frame of `rid` arrived: its layer's bitrate counts it, and a key frame tells the
    /// layer's size (simulcast is video, and the SFU negotiates VP8 alone for video).
    pub fn record(&mut self, now: Instant, rid: Option<Rid>, frame: &[u8]) {
        if let Some(layer) = self.layers.iter_mut().find(|l| Some(l.rid) == rid) {
            layer.record(now, frame.len());
            if let Some(size) = vp8::keyframe_size(frame) {
                layer.size = Some(size);
            }
        }
    }
}

/// The spacing of one track's keyframe requests. A request inside the interval is deferred to
/// its end rather than dropped: a receiver that starts just after another still needs its key
/// frame. Deferred requests are kept once per layer.
#[derive(Debug, Default)]
pub(crate) struct KeyframeRequests {
    last_sent: Option<Instant>,
    deferred: Vec<(Option<Rid>, KeyframeRequestKind)>,
}

impl KeyframeRequests {
    /// Whether a request may be sent now; if not, it is kept until [`Self::take_due`].
    pub fn ask(&mut self, now: Instant, rid: Option<Rid>, kind: KeyframeRequestKind) -> bool {
        if !self.spaced(now) {
            if !self.deferred.iter().any(|(r, _)| *r == rid) {
                self.deferred.push((rid, kind));
            }
            return false;
        }
        true
    }

    /// A request was sent at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
    }

    /// The deferred requests to send now (the interval has ended); counts them as sent.
    pub fn take_due(&mut self, now: Instant) -> Vec<(Option<Rid>, KeyframeRequestKind)> {
        if self.deferred.is_empty() || !self.spaced(now) {
            return Vec::new();
        }
        self.last_sent = Some(now);
        std::mem::take(&mut self.deferred)
    }

    /// When the deferred requests are due, if there are any.
    pub fn next_due(&self) -> Option<Instant> {
        if self.deferred.is_empty() {
            return None;
        }
        // Deferred only ever behind a request already sent.
        self.last_sent.map(|last| last + KEYFRAME_REQUEST_INTERVAL)
    }

    fn spaced(&self, now: Instant) -> bool {
        self.last_sent
            .is_none_or(|last| now.saturating_duration_since(last) >= KEYFRAME_REQUEST_INTERVAL)
    }
}

/// Where a forwarded track comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackSource {
    pub origin: ParticipantId,
    /// The origin's stream id, which the forwarded track carries.
    pub stream: String,
    pub mid: Mid,
    pub kind: MediaKind,
    /// Whether the sender sends it as simulcast layers, of which the receiver gets one.
    pub simulcast: bool,
}

/// A receiver's copy of another participant's track.
#[derive(Debug)]
pub(crate) struct TrackOut {
    pub source: TrackSource,
    pub state: TrackOutState,
    /// Of a simulcast source, the layer this receiver gets.
    pub layer: LayerChoice,
    /// Of a simulcast source, the bitrate of its highest layer, last seen: what this receiver
    /// would take at best, which its bandwidth estimation probes towards.
    pub top_bps: u64,
    /// How large the receiver renders the source's video (`None`: no size limit).
    pub view: Option<RenderedSize>,
    /// Of a video, the bitrate it wants (see [`crate::layers::wanted_bps`]) when the
    /// receiver's bandwidth was last shared; unknown (all it can get) before its first frame.
    pub wanted_bps: u64,
    /// Of a video, its share of the receiver's bandwidth (see [`crate::budget::share`]).
    pub budget_bps: u64,
    /// Of a simulcast source, the receiver's clock for it across layer switches.
    pub timeline: Timeline,
}

/// The SDP life of a forwarded track. Media flows only while `Open`: before the receiver has
/// answered, its `Rtc` has no m-line to write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackOutState {
    /// To be added in the next offer.
    ToOpen,
    /// Offered with this mid, waiting for the answer.
    Negotiating(Mid),
    Open(Mid),
    /// Its source left: to be stopped in the next offer.
    ToStop(Mid),
    /// Offered as stopped, waiting for the answer; then forgotten.
    NegotiatingStop(Mid),
}

impl TrackOut {
    pub fn new(source: TrackSource) -> TrackOut {
        TrackOut {
            source,
            state: TrackOutState::ToOpen,
            layer: LayerChoice::default(),
            top_bps: 0,
            view: None,
            wanted_bps: u64::MAX,
            budget_bps: u64::MAX,
            timeline: Timeline::default(),
        }
    }

    /// The mid the media is written to, once the receiver has accepted the m-line.
    pub fn open_mid(&self) -> Option<Mid> {
        match self.state {
            TrackOutState::Open(mid) => Some(mid),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLI: KeyframeRequestKind = KeyframeRequestKind::Pli;

    #[test]
    fn a_request_inside_the_interval_is_deferred_to_its_end_not_dropped() {
        let start = Instant::now();
        let mut requests = KeyframeRequests::default();
        assert!(
            requests.ask(start, None, PLI),
            "the first request goes at once"
        );
        requests.sent(start);
        let soon = start + KEYFRAME_REQUEST_INTERVAL / 5;
        assert!(!requests.ask(soon, None, PLI), "a second one waits");
        assert_eq!(requests.next_due(), Some(start + KEYFRAME_REQUEST_INTERVAL));
        assert_eq!(
            requests.take_due(soon),
            vec![],
            "not before the interval ends"
        );
        let end = start + KEYFRAME_REQUEST_INTERVAL;
        assert_eq!(requests.take_due(end), vec![(None, PLI)]);
        assert_eq!(requests.next_due(), None);
        assert_eq!(requests.take_due(end), vec![], "sent once");
        assert!(
            !requests.ask(end, None, PLI),
            "the deferred one counts as sent"
        );
    }

    #[test]
    fn deferred_requests_are_kept_once_per_layer() {
        let start = Instant::now();
        let mut requests = KeyframeRequests::default();
        requests.sent(start);
        let (low, high) = (Some(Rid::from("l")), Some(Rid::from("h")));
        for rid in [low, high, low, high] {
            assert!(!requests.ask(start, rid, PLI));
        }
        let due = requests.take_due(start + KEYFRAME_REQUEST_INTERVAL);
        assert_eq!(due, vec![(low, PLI), (high, PLI)]);
    }

    #[test]
    fn a_layers_size_is_that_of_its_last_key_frame() {
        let (low, high) = (Rid::from("l"), Rid::from("h"));
        let mut track = TrackIn {
            mid: Mid::from("1"),
            kind: MediaKind::Video,
            layers: vec![LayerRate::new(low), LayerRate::new(high)],
            keyframe_requests: KeyframeRequests::default(),
        };
        let key = |width: u16, height: u16| {
            let mut frame = vec![0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
            frame.extend_from_slice(&width.to_le_bytes());
            frame.extend_from_slice(&height.to_le_bytes());
            frame.extend_from_slice(&[0; 20]);
            frame
        };
        let now = Instant::now();
        track.record(now, Some(high), &key(1280, 720));
        track.record(now, Some(low), &key(320, 180));
        let sizes = |t: &TrackIn| t.layers.iter().map(|l| l.size).collect::<Vec<_>>();
        assert_eq!(sizes(&track), [Some((320, 180)), Some((1280, 720))]);
        // The sender scales its top layer down: the next key frame says so.
        let mut inter = key(1, 1);
        inter[0] |= 0x01;
        track.record(now, Some(high), &inter);
        assert_eq!(track.layers[1].size, Some((1280, 720)), "not an interframe");
        track.record(now, Some(high), &key(960, 540));
        assert_eq!(track.layers[1].size, Some((960, 540)));
        track.record(now, None, &key(16, 16));
        assert_eq!(sizes(&track), [Some((320, 180)), Some((960, 540))]);
    }
}
