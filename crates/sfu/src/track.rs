//! The tracks the SFU receives from a participant and the tracks it sends to one, and how a
//! receiver's track moves through SDP renegotiation.
//!
//! A forwarded track is named by where it comes from (origin participant and the mid of its
//! m-line there) rather than by a pointer, so a sender leaving is a plain lookup miss, never a
//! dangling reference.

use std::time::Instant;

use str0m::media::{MediaKind, Mid, Rid};

use crate::sfu::ParticipantId;

/// A track the SFU receives from a participant.
#[derive(Debug)]
pub(crate) struct TrackIn {
    pub mid: Mid,
    pub kind: MediaKind,
    /// The simulcast layers the sender announced (`a=simulcast:send …`), in its order; empty
    /// without simulcast.
    pub layers: Vec<Rid>,
    /// Keyframe requests to the sender are throttled: every receiver asking at once (a join, a
    /// loss burst) must cost the sender one key frame, not one each.
    pub last_keyframe_request: Option<Instant>,
}

impl TrackIn {
    /// The layer forwarded to a new receiver until bandwidth-driven selection exists: the last
    /// layer announced (the SDK lists encodings from lowest to highest, as Chrome's
    /// `sendEncodings` do), or no RID without simulcast.
    pub fn default_layer(&self) -> Option<Rid> {
        self.layers.last().copied()
    }
}

/// Where a forwarded track comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackSource {
    pub origin: ParticipantId,
    pub mid: Mid,
    pub kind: MediaKind,
    pub layer: Option<Rid>,
}

/// A receiver's copy of another participant's track.
#[derive(Debug)]
pub(crate) struct TrackOut {
    pub source: TrackSource,
    pub state: TrackOutState,
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
