//! What can go wrong when a participant joins, renegotiates or answers: each a clear error for
//! the signalling layer to report, never a panic of the forwarding loop.

use thiserror::Error;

use crate::sfu::ParticipantId;

#[derive(Debug, Error)]
pub enum SfuError {
    #[error("participant {0} is already in a room of this SFU")]
    AlreadyJoined(ParticipantId),
    #[error("participant {0} is not in a room of this SFU")]
    UnknownParticipant(ParticipantId),
    #[error("participant {0} answered, but the SFU has no offer waiting for an answer")]
    NoPendingOffer(ParticipantId),
    #[error("the SFU must be reachable at a specific address, not {0}")]
    UnspecifiedAddress(std::net::SocketAddr),
    #[error("not an ICE candidate the SFU can use: {0}")]
    InvalidCandidate(String),
    #[error("the SFU has stopped")]
    Stopped,
    #[error("WebRTC: {0}")]
    Rtc(#[from] str0m::RtcError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}
