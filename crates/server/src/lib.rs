//! `calling-server`: the signaling server of trtc-calling-wasm.
//!
//! It authenticates sessions with TLSSigAPIv2 UserSigs, is the single authority over
//! invitations and calls, and relays WebRTC signaling between the participants of a call.
//! Media never passes through it, unless it runs the embedded SFU for group calls
//! (`--sfu-udp`, see [`sfu`]). [`app`] builds the HTTP router (used by tests with a server
//! bound to `127.0.0.1:0`); [`serve`] runs it on a listener.

pub mod cluster;
pub mod config;
pub mod drain;
pub mod gate;
pub mod http;
pub mod hub;
pub mod ids;
pub mod listener;
pub mod metrics;
pub mod rate;
pub mod request;
pub mod sfu;
pub mod socket;
mod static_files;
pub mod tls;
pub mod turn;
pub mod usersig;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

/// The pure state the server holds under its lock (its own crate, shared with the SDK core's
/// scenario tests); re-exported so tools built on the server name the same version.
pub use calling_registry as registry;
pub use config::{AppCredential, Config, Limits, SigPolicy, DEV_SDK_APP_ID};
pub use hub::Hub;

/// The router for a new server with this configuration, and its hub (for inspection).
/// Starts the ring-timeout timer, so it must be called inside a Tokio runtime; the timer stops
/// once the router (and with it the hub) is dropped.
pub fn app_with_hub(config: Config) -> (Router, Arc<Hub>) {
    let hub = Hub::new(config);
    tokio::spawn(hub::run_timer(Arc::downgrade(&hub)));
    (http::router(hub.clone()), hub)
}

/// The router for a new node of a cluster (`--redis`), and its hub: outcomes are decided in
/// the shared store `cluster` connected to, and `reader` reads this node's deliveries.
/// Starts the node's delivery and ring-deadline tasks, so it must be called inside a Tokio
/// runtime; they stop once the router (and with it the hub) is dropped.
pub fn app_with_cluster(
    config: Config,
    cluster: Arc<cluster::Cluster>,
    reader: redis::aio::MultiplexedConnection,
) -> (Router, Arc<Hub>) {
    let hub = Hub::clustered(config, cluster.clone());
    cluster::run(cluster, reader, Arc::downgrade(&hub));
    (http::router(hub.clone()), hub)
}

/// The router for a new server with this configuration (see [`app_with_hub`]).
pub fn app(config: Config) -> Router {
    app_with_hub(config).0
}

/// Serves a new server on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    let (router, hub) = app_with_hub(config);
    serve_router(listener, router, hub).await
}

/// Serves only `/metrics` of `hub` on `listener` (`--metrics-listen`: a port for the scraper
/// alone, outside the connection caps of the main one).
pub async fn serve_metrics(listener: TcpListener, hub: Arc<Hub>) -> std::io::Result<()> {
    axum::serve(listener, http::metrics_router(hub)).await
}

/// Serves `router` (from [`app_with_hub`], with its hub) on `listener`, as [`serve`] does: each
/// connection is admitted by the hub's connection caps and bounded by its timeouts.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    hub: Arc<Hub>,
) -> std::io::Result<()> {
    listener::accept_loop(listener, router, hub).await
}
