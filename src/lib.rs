//! trtc-calling-wasm: the browser side of the SDK. It exports the `TRTCCalling` class
//! (trtc-calling-js's API) and drives the browser's WebSocket, getUserMedia, RTCPeerConnection
//! and DOM for the pure call state machine in `calling-core`.

mod convert;
mod driver;
mod error;
mod events;
mod fallback;
mod log;
mod media;
mod options;
mod peer;
mod sdk;
mod sfu;
mod signaling;
mod table;
mod task;
mod timers;
mod view;
mod volume;
mod warmup;

pub use sdk::TrtcCalling;

/// The heap allocator: talc rather than the default dlmalloc, for a smaller module.
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
