//! `calling-server`: the signaling server of trtc-calling-wasm.
//!
//! It authenticates sessions with TLSSigAPIv2 UserSigs, is the single authority over
//! invitations and calls, and relays WebRTC signaling between the participants of a call.
//! Media never passes through it. [`app`] builds the HTTP router (used by tests with a server
//! bound to `127.0.0.1:0`); [`serve`] runs it on a listener.

pub mod config;
pub mod http;
pub mod hub;
pub mod rate;
pub mod registry;
pub mod socket;
pub mod usersig;

use std::sync::Arc;

use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

pub use config::{AppCredential, Config, DEV_SDK_APP_ID};
pub use hub::Hub;

/// The router for a new server with this configuration, and its hub (for inspection).
/// Starts the ring-timeout timer, so it must be called inside a Tokio runtime; the timer stops
/// once the router (and with it the hub) is dropped.
pub fn app_with_hub(config: Config) -> (Router, Arc<Hub>) {
    let hub = Hub::new(config);
    tokio::spawn(hub::run_timer(Arc::downgrade(&hub)));
    (http::router(hub.clone()), hub)
}

/// The router for a new server with this configuration (see [`app_with_hub`]).
pub fn app(config: Config) -> Router {
    app_with_hub(config).0
}

/// Serves a new server on `listener` until the process ends.
///
/// Every accepted socket gets `TCP_NODELAY`: the server often writes two frames to one client
/// back to back (`inviteSent` then `accepted`, `memberLeft` then `callEnded`), and with Nagle's
/// algorithm the second waits for the first one's acknowledgement (about 40 ms on Linux).
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    serve_router(listener, app(config)).await
}

/// Serves `router` (from [`app`] or [`app_with_hub`]) on `listener`, as [`serve`] does.
pub async fn serve_router(listener: TcpListener, router: Router) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).await
}
