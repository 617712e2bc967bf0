//! One task per WebSocket connection: reads and answers client frames, writes the session's
//! outbox, enforces the login deadline, heartbeat, size and rate limits, and on exit always
//! leaves the registry, or, for a resumable session whose socket was lost, suspends it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use calling_protocol::{
    ClientMessage, ErrorCode, ErrorReply, IceServersUpdate, LoginOk, RequestId, ResumeGrant,
    ServerMessage, MAX_FRAME_BYTES, PROTOCOL_VERSION, RECONNECT_CLOSE_CODE,
};
use tracing::{debug, info};

use crate::config::whole_seconds;
use crate::gate::Permit;
use crate::hub::{CloseKind, Hub, LinkId, NotResumed, Outbound, Outbox, Owner};
use crate::ids::random_token;
use crate::metrics::Limit;
use crate::rate::{TokenBucket, Verdict};
use crate::registry::{InviteRequest, Refusal, SessionId};
use crate::request::Request;
use calling_protocol::user_id;
use futures_util::SinkExt;

use crate::usersig::{self, UserSigError};

/// The WebSocket layer's limit on one message, fragments included: the protocol's frame limit,
/// so nobody can make the server buffer more than that per connection. A message over it
/// closes the connection with 1009.
pub const TRANSPORT_LIMIT_BYTES: usize = MAX_FRAME_BYTES;

/// How long to wait for the client's answer to our close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

/// Why a connection ended (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client sent a close frame: it meant to go (a closed tab, `logout`, a page unload).
    ClientClosed,
    Dropped,
    HeartbeatTimeout,
    TooSlow,
    Server(CloseKind),
}

impl End {
    /// The socket was lost rather than closed by either side on purpose: a resumable session
    /// waits for its SDK to come back.
    fn is_loss(self) -> bool {
        matches!(self, End::Dropped | End::HeartbeatTimeout | End::TooSlow)
    }

    /// Whether a resumable session outlives this end of its socket, waiting for its SDK to
    /// come back: after a loss, and on a cluster node (`shared`) after the drain closed it too,
    /// since the SDK resumes it on another node.
    fn keeps_session(self, shared: bool) -> bool {
        self.is_loss() || (shared && self == End::Server(CloseKind::GoingAway))
    }

    /// The limit that ended the connection, if one did.
    fn limit(self) -> Option<Limit> {
        match self {
            End::HeartbeatTimeout => Some(Limit::HeartbeatTimeout),
            End::TooSlow => Some(Limit::TooSlow),
            End::Server(CloseKind::LoginTimeout) => Some(Limit::LoginTimeout),
            End::Server(CloseKind::TooBig) => Some(Limit::FrameTooBig),
            End::Server(CloseKind::Flood) => Some(Limit::Flood),
            _ => None,
        }
    }
}

struct Conn {
    /// The session this connection acts for: its own until it resumes another.
    session: SessionId,
    link: LinkId,
    hub: Arc<Hub>,
    user: Option<(u64, String)>,
    bucket: TokenBucket,
    /// The connection's admission (absent when the router is driven without the accept loop).
    permit: Option<Arc<Permit>>,
    /// When the session's minted TURN credentials are due for renewal (TURN configured and
    /// logged in only).
    renew_ice_at: Option<tokio::time::Instant>,
}

/// Runs one connection to its end.
pub async fn run(mut socket: WebSocket, hub: Arc<Hub>, permit: Option<Arc<Permit>>) {
    let _counted = hub.drain.socket_opened();
    let (session, mut outbox) = hub.open_session();
    let mut conn = Conn {
        session,
        link: session,
        hub: hub.clone(),
        user: None,
        bucket: TokenBucket::new(Instant::now()),
        permit,
        renew_ice_at: None,
    };
    let end = conn.serve(&mut socket, &mut outbox).await;
    if let Some(limit) = end.limit() {
        hub.metrics.limit_hit(limit);
    }
    hub.end_session(conn.owner(), end.keeps_session(hub.shares_sessions()))
        .await;
    let session = conn.session;
    match &conn.user {
        Some((app, user)) => {
            info!(app, user = user.as_str(), session, reason = ?end, "connection ended")
        }
        None => debug!(session, reason = ?end, "connection ended before login"),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a read error is the transport refusing an oversized message. `tungstenite` must be
/// the version axum uses (the 1009 tests fail otherwise).
fn is_too_big(err: axum::Error) -> bool {
    matches!(
        err.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Most frames one flush writes: bounds how long the task goes without reading.
const WRITE_BATCH: usize = 64;

/// What [`write_queued`] wrote.
struct Batch {
    /// Bytes of the messages written, for the outbox's budget.
    bytes: usize,
    /// A close taken from the outbox after them: the socket closes next.
    close: Option<CloseKind>,
}

/// Writes `first` and whatever else the outbox holds already, in order, with one flush: the
/// messages one request produces for a session leave in one `write`, not one each.
async fn write_queued(
    socket: &mut WebSocket,
    outbox: &mut Outbox,
    first: String,
) -> Result<Batch, axum::Error> {
    let mut batch = Batch {
        bytes: first.len(),
        close: None,
    };
    socket.feed(Message::Text(first.into())).await?;
    for _ in 1..WRITE_BATCH {
        match outbox.try_recv() {
            Some(Outbound::Text(json)) => {
                batch.bytes += json.len();
                socket.feed(Message::Text(json.into())).await?;
            }
            Some(Outbound::Close(kind)) => {
                batch.close = Some(kind);
                break;
            }
            None => break,
        }
    }
    socket.flush().await?;
    Ok(batch)
}

async fn close_gracefully(socket: &mut WebSocket, kind: CloseKind) {
    let (code, reason) = kind.frame();
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    // Read until the client's close answer so the close frame is not lost to a TCP reset.
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// A text frame that is not a client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The request it names, when the frame still says which one it was.
    pub request_id: Option<RequestId>,
    pub message: String,
}

/// Decodes one client text frame (fuzzed: never panics, whatever the text).
pub fn decode(text: &str) -> Result<ClientMessage, Malformed> {
    serde_json::from_str::<ClientMessage>(text).map_err(|err| Malformed {
        request_id: serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("requestId")?.as_u64())
            .and_then(|n| RequestId::try_from(n).ok()),
        message: format!("malformed message: {err}"),
    })
}

impl Conn {
    async fn serve(&mut self, socket: &mut WebSocket, outbox: &mut Outbox) -> End {
        let silence = self.hub.config.heartbeat_timeout;
        let heartbeat = tokio::time::sleep(silence);
        tokio::pin!(heartbeat);
        // Whatever a client sends, it has this long to log in.
        let login_deadline = tokio::time::sleep(self.hub.config.limits.login_timeout);
        tokio::pin!(login_deadline);
        let overflow = outbox.overflow();
        // Protocol-level pings, answered by the browser's network stack itself: a page whose
        // timers are throttled or whose main thread is busy (a background tab, a heavy call)
        // keeps its session, while a vanished client still goes silent and is dropped.
        let mut keepalive = tokio::time::interval(silence / 3);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.reset();
        // One timer for the session's TURN credentials, re-armed after each renewal.
        let renew_ice = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(renew_ice);
        let mut renew_ice_armed = None;
        loop {
            if self.renew_ice_at != renew_ice_armed {
                if let Some(at) = self.renew_ice_at {
                    renew_ice.as_mut().reset(at);
                }
                renew_ice_armed = self.renew_ice_at;
            }
            tokio::select! {
                biased;
                () = overflow.happened() => return End::TooSlow,
                out = outbox.recv() => match out {
                    Some(Outbound::Text(json)) => {
                        // A peer that stops reading blocks this write once its TCP window is
                        // full; the heartbeat cannot fire meanwhile, so bound the write too, and
                        // give up at once if the backlog outgrows the outbox's budget.
                        let write = tokio::time::timeout(silence, write_queued(socket, outbox, json));
                        let written = tokio::select! {
                            written = write => written,
                            () = overflow.happened() => return End::TooSlow,
                        };
                        match written {
                            Ok(Ok(Batch { bytes, close })) => {
                                outbox.written(bytes);
                                if let Some(kind) = close {
                                    close_gracefully(socket, kind).await;
                                    return End::Server(kind);
                                }
                            }
                            Ok(Err(_)) => return End::Dropped,
                            Err(_) => return End::TooSlow,
                        }
                    }
                    Some(Outbound::Close(kind)) => {
                        close_gracefully(socket, kind).await;
                        return End::Server(kind);
                    }
                    None => return End::TooSlow,
                },
                () = &mut login_deadline, if self.user.is_none() => {
                    close_gracefully(socket, CloseKind::LoginTimeout).await;
                    return End::Server(CloseKind::LoginTimeout);
                }
                frame = socket.recv() => {
                    heartbeat.as_mut().reset(tokio::time::Instant::now() + silence);
                    match frame {
                        // The SDK replacing a socket it believes dead says so: its session
                        // waits for the resume. Any other close is a page that went away.
                        Some(Ok(Message::Close(Some(frame)))) if frame.code == RECONNECT_CLOSE_CODE => {
                            return End::Dropped
                        }
                        Some(Ok(Message::Close(_))) => return End::ClientClosed,
                        // The stream ended without a close frame: the connection was lost.
                        None => return End::Dropped,
                        Some(Err(err)) => {
                            if is_too_big(err) {
                                close_gracefully(socket, CloseKind::TooBig).await;
                                return End::Server(CloseKind::TooBig);
                            }
                            return End::Dropped;
                        }
                        Some(Ok(Message::Text(text))) => {
                            if text.len() > MAX_FRAME_BYTES {
                                close_gracefully(socket, CloseKind::TooBig).await;
                                return End::Server(CloseKind::TooBig);
                            }
                            if self.admit() {
                                self.on_text(text.as_str()).await;
                            }
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            if bytes.len() > MAX_FRAME_BYTES {
                                close_gracefully(socket, CloseKind::TooBig).await;
                                return End::Server(CloseKind::TooBig);
                            }
                            if self.admit() {
                                self.error(None, ErrorCode::Malformed, "binary frames are not supported; send JSON text frames");
                            }
                        }
                        // The WebSocket layer answers pings itself, which costs a write each:
                        // they count against the rate limit like any message, silently.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                            if self.bucket.check(Instant::now()) == Verdict::Close {
                                self.hub.close(self.owner(), CloseKind::Flood);
                            }
                        }
                    }
                }
                () = &mut heartbeat => return End::HeartbeatTimeout,
                () = &mut renew_ice, if self.renew_ice_at.is_some() => self.renew_ice_servers(),
                _ = keepalive.tick() => {
                    match tokio::time::timeout(silence, socket.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return End::Dropped,
                        Err(_) => return End::TooSlow,
                    }
                }
            }
        }
    }

    /// Applies the rate limit to one frame; false when the frame is dropped.
    fn admit(&mut self) -> bool {
        match self.bucket.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                self.hub.metrics.limit_hit(Limit::RateLimited);
                self.error(
                    None,
                    ErrorCode::RateLimited,
                    "too many messages: this one was dropped",
                );
                false
            }
            Verdict::Close => {
                self.hub.close(self.owner(), CloseKind::Flood);
                false
            }
        }
    }

    fn owner(&self) -> Owner {
        Owner {
            session: self.session,
            link: self.link,
        }
    }

    /// One logged-in client frame's request through the registry; a refusal is answered with
    /// an error naming its request id.
    async fn request(&self, request: Request) {
        let request_id = request.request_id();
        if let Err(r) = self.hub.apply(self.owner(), request).await {
            self.refused(request_id, r);
        }
    }

    fn error(&self, request_id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) {
        self.hub.send(
            self.owner(),
            ServerMessage::Error(ErrorReply {
                request_id,
                code,
                message: message.into(),
            }),
        );
    }

    fn refused(&self, request_id: Option<RequestId>, refusal: Refusal) {
        self.error(request_id, refusal.code, refusal.message);
    }

    async fn on_text(&mut self, text: &str) {
        let msg = match decode(text) {
            Ok(msg) => msg,
            Err(Malformed {
                request_id,
                message,
            }) => {
                self.error(request_id, ErrorCode::Malformed, message);
                return;
            }
        };
        if self.user.is_none() && self.hub.drain.is_draining() {
            // A draining server takes no new session (this socket was opened just before).
            self.hub.close(self.owner(), CloseKind::GoingAway);
            return;
        }
        match (&self.user, msg) {
            (_, ClientMessage::Unknown) => {
                self.error(None, ErrorCode::UnknownType, "unknown message type")
            }
            (
                None,
                ClientMessage::Login {
                    sdk_app_id,
                    user_id,
                    user_sig,
                    protocol_version,
                    resumable,
                },
            ) => {
                self.login(sdk_app_id, user_id, &user_sig, protocol_version, resumable)
                    .await
            }
            (
                None,
                ClientMessage::Resume {
                    sdk_app_id,
                    user_id,
                    token,
                    last_seq,
                    protocol_version,
                },
            ) => {
                self.resume(sdk_app_id, user_id, &token, last_seq, protocol_version)
                    .await
            }
            (None, _) => self.error(None, ErrorCode::NotLoggedIn, "log in first"),
            (Some(_), ClientMessage::Login { .. } | ClientMessage::Resume { .. }) => self.error(
                None,
                ErrorCode::AlreadyLoggedIn,
                "this connection is already logged in",
            ),
            (Some(_), ClientMessage::Ping) => self.hub.send(self.owner(), ServerMessage::Pong),
            (
                Some(_),
                ClientMessage::Invite {
                    request_id,
                    user_ids,
                    call_type,
                    is_group,
                    group_id,
                    room_id,
                },
            ) => {
                self.request(Request::Invite(InviteRequest {
                    request_id,
                    user_ids,
                    call_type,
                    is_group,
                    group_id,
                    room_id,
                }))
                .await
            }
            (
                Some(_),
                ClientMessage::Accept {
                    request_id,
                    invite_id,
                },
            ) => {
                self.request(Request::Accept {
                    request_id,
                    invite_id,
                })
                .await
            }
            (Some(_), ClientMessage::Reject { invite_id }) => {
                self.request(Request::Reject { invite_id }).await
            }
            (Some(_), ClientMessage::Hangup { room_id }) => {
                self.request(Request::Hangup { room_id }).await
            }
            (
                Some(_),
                ClientMessage::Relay {
                    room_id,
                    to,
                    signal,
                },
            ) => {
                self.request(Request::Relay {
                    room_id,
                    to,
                    signal,
                })
                .await
            }
            (
                Some(_),
                ClientMessage::Sfu {
                    room_id,
                    signal,
                    join,
                },
            ) => {
                if let Err(r) = self.hub.sfu(self.owner(), room_id, signal, join).await {
                    self.refused(None, r);
                }
            }
            (Some(_), ClientMessage::SfuViews { room_id, views }) => {
                if let Err(r) = self.hub.sfu_views(self.owner(), room_id, views).await {
                    self.refused(None, r);
                }
            }
            (Some(_), ClientMessage::Logout) => {
                self.hub.leave(self.owner()).await;
                self.hub.close(self.owner(), CloseKind::LoggedOut);
            }
        }
    }

    /// Whether a login or resume for `app` in protocol `version` may go on.
    fn check_client(&self, app: u64, user_id: &str, version: u32) -> Result<&str, Refusal> {
        let refuse = |code, message: String| Refusal { code, message };
        if version != PROTOCOL_VERSION {
            return Err(refuse(
                ErrorCode::UnsupportedVersion,
                format!("protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}"),
            ));
        }
        if !user_id::is_valid(user_id) {
            return Err(refuse(
                ErrorCode::InvalidUserId,
                format!("invalid userID: use {}", user_id::RULE),
            ));
        }
        self.hub
            .config
            .apps
            .get(&app)
            .map(String::as_str)
            .ok_or_else(|| {
                refuse(
                    ErrorCode::UnknownApp,
                    format!("SDKAppID {app} is not configured on this server"),
                )
            })
    }

    async fn login(
        &mut self,
        app: u64,
        user_id: String,
        user_sig: &str,
        version: u32,
        resumable: bool,
    ) {
        let check = || -> Result<(), Refusal> {
            let key = self.check_client(app, &user_id, version)?;
            let policy = &self.hub.config.sig_policy;
            usersig::verify_with(user_sig, app, &user_id, key, now_unix(), policy).map_err(
                |e| {
                    let code = match e {
                        UserSigError::Expired => ErrorCode::ExpiredUserSig,
                        _ => ErrorCode::InvalidUserSig,
                    };
                    Refusal {
                        code,
                        message: e.to_string(),
                    }
                },
            )?;
            Ok(())
        };
        if let Err(Refusal { code, message }) = check() {
            info!(app, session = self.session, ?code, "login refused");
            self.error(None, code, message);
            self.hub.close(self.owner(), CloseKind::LoginFailed);
            return;
        }
        let config = &self.hub.config;
        // A grace of zero means the operator turned resumption off.
        let token = (resumable && !config.resume_grace.is_zero()).then(random_token);
        let login_ok = ServerMessage::LoginOk(LoginOk {
            user_id: user_id.clone(),
            ice_servers: config.ice_servers_for(&user_id, now_unix()),
            ring_timeout_secs: whole_seconds(config.ring_timeout),
            heartbeat_timeout_secs: whole_seconds(config.heartbeat_timeout),
            resume: token.as_ref().map(|token| ResumeGrant {
                token: token.clone(),
                grace_secs: whole_seconds(config.resume_grace),
            }),
            sfu: self.hub.runs_sfu(),
        });
        self.hub
            .login(self.session, app, &user_id, login_ok, token)
            .await;
        self.schedule_ice_renewal();
        self.logged_in(app, user_id, "session started");
    }

    /// With TURN configured: arms the renewal of the credentials just minted.
    fn schedule_ice_renewal(&mut self) {
        self.renew_ice_at = self
            .hub
            .config
            .turn
            .as_ref()
            .map(|turn| tokio::time::Instant::now() + turn.renew_after());
    }

    /// Fresh ICE servers for this session, when TURN is configured (else `None`).
    fn fresh_ice_servers(&self, user_id: &str) -> Option<ServerMessage> {
        let config = &self.hub.config;
        config.turn.as_ref()?;
        Some(ServerMessage::IceServers(IceServersUpdate {
            ice_servers: config.ice_servers_for(user_id, now_unix()),
        }))
    }

    /// The session's TURN credentials are at three quarters of their life: send new ones.
    fn renew_ice_servers(&mut self) {
        let fresh = match &self.user {
            Some((_, user_id)) => self.fresh_ice_servers(user_id),
            None => None,
        };
        if let Some(fresh) = fresh {
            debug!(session = self.session, "TURN credentials renewed");
            self.hub.send_unnumbered(self.owner(), &fresh);
        }
        self.schedule_ice_renewal();
    }

    /// Takes over a session whose socket dropped. A refusal leaves this connection open, not
    /// logged in, so the SDK can log in on it at once.
    async fn resume(
        &mut self,
        app: u64,
        user_id: String,
        token: &str,
        last_seq: u64,
        version: u32,
    ) {
        let resumed = match self.check_client(app, &user_id, version) {
            Ok(_) => {
                let fresh = self.fresh_ice_servers(&user_id);
                self.hub
                    .resume(self.link, app, &user_id, token, last_seq, fresh)
                    .await
            }
            Err(refusal) => Err(NotResumed::Refused(refusal)),
        };
        self.hub.metrics.resume(resumed.is_ok());
        match resumed {
            Ok(session) => {
                self.session = session;
                self.schedule_ice_renewal();
                self.logged_in(app, user_id, "session resumed");
            }
            Err(NotResumed::Kicked) => {
                info!(app, link = self.link, "resume of a kicked session");
                self.hub.send(self.owner(), ServerMessage::Kicked);
                self.hub.close(self.owner(), CloseKind::Kicked);
            }
            Err(NotResumed::Refused(Refusal { code, message })) => {
                info!(app, link = self.link, ?code, "resume refused");
                self.error(None, code, message);
            }
        }
    }

    fn logged_in(&mut self, app: u64, user_id: String, what: &'static str) {
        if let Some(permit) = &self.permit {
            permit.logged_in();
        }
        info!(
            app,
            user = user_id.as_str(),
            session = self.session,
            "{what}"
        );
        self.user = Some((app, user_id));
    }
}
