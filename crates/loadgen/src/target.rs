//! Which server a phase talks to, and the few protocol-specific steps every phase needs from it:
//! log in, keep alive, and an echo round trip that proves a session is still held.

use crate::conn::{self, ConnError, Endpoint, Ws};
use calling_protocol::{ClientMessage, ServerMessage};
use std::time::Duration;
use tokio::time::Instant;

/// The server under load.
#[derive(Debug, Clone)]
pub enum Target {
    /// calling-server, with the app the clients log in to.
    Ours(conn::ours::App),
    /// PeerJS's `peer` server, with its connection key.
    PeerJs { key: String },
}

impl Target {
    /// Short name used in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Ours(_) => "calling-server",
            Target::PeerJs { .. } => "peer",
        }
    }

    /// Connects and logs in as `user_id`.
    pub async fn login(
        &self,
        ep: &Endpoint,
        index: u32,
        user_id: &str,
        within: Duration,
    ) -> Result<Ws, ConnError> {
        match self {
            Target::Ours(app) => conn::ours::login(ep, index, app, user_id, within).await,
            Target::PeerJs { key } => conn::peerjs::login(ep, index, key, user_id, within).await,
        }
    }

    /// How often an idle client must speak to stay logged in.
    pub fn heartbeat_every(&self) -> Duration {
        match self {
            Target::Ours(_) => Duration::from_secs(u64::from(calling_protocol::PING_INTERVAL_SECS)),
            Target::PeerJs { .. } => Duration::from_secs(5),
        }
    }

    /// The keep-alive frame.
    pub fn heartbeat(&self) -> Result<String, ConnError> {
        match self {
            Target::Ours(_) => Ok(serde_json::to_string(&ClientMessage::Ping)?),
            Target::PeerJs { .. } => Ok(conn::peerjs::heartbeat()),
        }
    }

    /// One request/answer round trip through the server: `ping`→`pong` for ours; for PeerJS
    /// (whose heartbeat has no answer) a candidate addressed to oneself, which it relays back.
    pub async fn echo(
        &self,
        ws: &mut Ws,
        user_id: &str,
        within: Duration,
    ) -> Result<(), ConnError> {
        let deadline = Instant::now() + within;
        match self {
            Target::Ours(_) => {
                conn::ours::send(ws, &ClientMessage::Ping).await?;
                conn::ours::recv_until(ws, deadline, "pong", |m| {
                    matches!(m, ServerMessage::Pong).then_some(())
                })
                .await
            }
            Target::PeerJs { .. } => {
                conn::send_text(ws, conn::peerjs::candidate(user_id, 0)).await?;
                loop {
                    let text = tokio::time::timeout_at(deadline, conn::recv_text(ws))
                        .await
                        .map_err(|_| ConnError::Timeout("echo"))??;
                    if conn::peerjs::stamp_of(&text).is_some() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
