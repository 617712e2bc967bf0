//! The TRTCCalling call state machine, sans-IO (modelled on str0m).
//!
//! [`Call::handle`] is the only way state changes: it takes the current time and one [`Input`]
//! and returns the [`Effect`]s the glue must carry out. On `Err` nothing changed. The core has
//! no web-sys, no clock and no IO, so every flow of SPEC §6 is tested natively.

pub mod event;
pub mod io;

mod answer;
mod call;
mod invitation;
mod media;
mod membership;
pub mod negotiation;
mod peer;
mod session;
mod state;

pub use call::{Call, CallError, CallStatus};
pub use event::{AppEvent, InviteData, VoiceVolume, EVENT_NAMES};
pub use invitation::INVITE_DATA_VERSION;
pub use io::{
    code, Command, Effect, Input, LoginData, MediaOutcome, PeerEvent, PeerState, Reply, RequestId,
    SdkError, SdpKind, SessionDescription, Timer,
};
