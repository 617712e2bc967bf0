//! The TRTCCalling call state machine, sans-IO (modelled on str0m).
//!
//! [`Session::handle`] is the only way state changes: it takes the current time and one
//! [`Input`] and returns the [`Effect`]s the glue must carry out. On `Err` nothing changed. The
//! core has no web-sys, no clock and no IO, so every flow of SPEC §6 is tested natively.
//!
//! A [`Session`] is one SDK instance's signaling session (logged out, logging in, logged in);
//! while logged in it holds at most one call in progress (`ActiveCall`), and that call one
//! [`link`](crate::link) per remote participant. A session the server offers to resume outlives
//! its socket: `reconnect` gets it back (or logs in again) without ending the call.

pub mod effect;
pub mod event;
pub mod input;

mod active_call;
mod answer;
pub mod backoff;
mod device;
mod health;
mod invitation;
mod leave;
mod link;
mod liveness;
mod login;
mod media;
mod membership;
pub mod negotiation;
mod outbox;
pub mod privacy;
mod reconnect;
mod session;
mod sfu;

pub use calling_protocol::RenderedView;
pub use effect::{code, Effect, LoginData, Reply, SdkError};
pub use event::{AppEvent, InviteData, VoiceVolume, EVENT_NAMES};
pub use input::{
    Command, DeviceChange, Input, MediaKind, MediaOutcome, MediaToken, PeerEvent, PeerState,
    RequestId, SdpKind, SessionDescription, Timer,
};
pub use invitation::INVITE_DATA_VERSION;
pub use privacy::ConnectPolicy;
pub use session::{CallError, CallStatus, Session};
pub use sfu::SFU_LINK;
