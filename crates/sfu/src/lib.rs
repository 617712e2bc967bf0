//! A selective forwarding unit (SFU) for group calls, built on str0m's sans-IO WebRTC.
//!
//! Every participant holds one peer connection with the SFU (one str0m [`str0m::Rtc`]); the SFU
//! forwards each participant's incoming audio and video to every other participant of the same
//! room, so a sender uploads each stream once whatever the size of the call.
//!
//! The crate has two layers, kept apart so the forwarding logic is testable without sockets:
//! - [`Sfu`] (the core) owns the peer connections and rooms. It never touches a socket or a clock:
//!   it is fed datagrams and time, and yields datagrams to send, renegotiation offers for the
//!   signalling channel, and the next instant it wants to be woken at.
//! - [`runtime`] drives one core from a single UDP socket on tokio (all participants share the
//!   port; str0m's `accepts()` demultiplexes), optionally with ICE-TCP for networks that block
//!   UDP, and exposes a [`runtime::SfuHandle`] to join,
//!   answer and leave.

mod budget;
mod error;
mod layers;
mod participant;
pub mod runtime;
mod sfu;
mod tcp;
mod timeline;
mod track;
mod view;
mod vp8;

pub use error::SfuError;
pub use sfu::{ParticipantId, RoomId, Sfu, SfuOutput, DEFAULT_RECONNECT_GRACE};
pub use str0m::change::{SdpAnswer, SdpOffer};
pub use view::RenderedSize;
