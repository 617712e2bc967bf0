//! calling-server's socket layer in miniature, in front of the real registry
//! (`calling-registry`, the state the server itself holds). Each client is one connection: its
//! messages become registry requests as the server's socket task makes them, refusals come
//! back as `error` messages, and the registry's deliveries come back addressed to clients.
//! Only UserSig verification is not the server's own (it is tested in crates/server): here the
//! UserSig `"bad"` stands for one that fails it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use calling_protocol::{
    user_id, ClientMessage, ErrorCode, ErrorReply, LoginOk, RequestId, ServerMessage,
    HEARTBEAT_TIMEOUT_SECS, PROTOCOL_VERSION,
};
use calling_registry::{InviteRequest, Outcome, Refusal, Registry, SequentialIds, SessionId};

/// A message for one client (by index).
pub type Delivery = (usize, ServerMessage);

/// The server's default ring timeout.
pub const RING_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    registry: Registry,
    /// The instant the tests' `now_ms == 0` stands for.
    epoch: Instant,
    next_session: SessionId,
    /// The logged-in connection of each client, and back.
    session_of: BTreeMap<usize, SessionId>,
    client_of: BTreeMap<SessionId, usize>,
    /// Every message each client sent, in order (index → messages).
    pub received: BTreeMap<usize, Vec<ClientMessage>>,
}

impl Server {
    pub fn new() -> Self {
        Server {
            registry: Registry::new(RING_TIMEOUT, SequentialIds::default()),
            epoch: Instant::now(),
            next_session: 1,
            session_of: BTreeMap::new(),
            client_of: BTreeMap::new(),
            received: BTreeMap::new(),
        }
    }

    fn at(&self, now_ms: u64) -> Instant {
        self.epoch + Duration::from_millis(now_ms)
    }

    /// One client message; returns what the server sends, to whom, in order.
    pub fn receive(&mut self, client: usize, message: ClientMessage, now_ms: u64) -> Vec<Delivery> {
        self.received
            .entry(client)
            .or_default()
            .push(message.clone());
        let now = self.at(now_ms);
        let Some(&session) = self.session_of.get(&client) else {
            return match message {
                ClientMessage::Login {
                    sdk_app_id,
                    user_id,
                    user_sig,
                    protocol_version,
                    ..
                } => self.login(
                    client,
                    sdk_app_id,
                    &user_id,
                    &user_sig,
                    protocol_version,
                    now,
                ),
                _ => vec![error(client, None, ErrorCode::NotLoggedIn, "log in first")],
            };
        };
        let registry = &mut self.registry;
        let (request_id, result) = match message {
            ClientMessage::Resume { .. } => {
                let msg = "not resumable here";
                return vec![error(client, None, ErrorCode::ResumeRefused, msg)];
            }
            ClientMessage::Login { .. } => {
                let msg = "this connection is already logged in";
                return vec![error(client, None, ErrorCode::AlreadyLoggedIn, msg)];
            }
            ClientMessage::Ping => return vec![(client, ServerMessage::Pong)],
            ClientMessage::Unknown => {
                let msg = "unknown message type";
                return vec![error(client, None, ErrorCode::UnknownType, msg)];
            }
            ClientMessage::Logout => return self.disconnect(client, now_ms),
            ClientMessage::Invite {
                request_id,
                user_ids,
                call_type,
                is_group,
                group_id,
                room_id,
            } => {
                let req = InviteRequest {
                    request_id,
                    user_ids,
                    call_type,
                    is_group,
                    group_id,
                    room_id,
                };
                (Some(request_id), registry.invite(session, req, now))
            }
            ClientMessage::Accept {
                request_id,
                invite_id,
            } => (
                Some(request_id),
                registry.accept(session, request_id, &invite_id, now),
            ),
            ClientMessage::Reject { invite_id } => {
                (None, registry.reject(session, &invite_id, now))
            }
            ClientMessage::Hangup { room_id } => (None, registry.hangup(session, room_id, now)),
            ClientMessage::Relay {
                room_id,
                to,
                signal,
            } => (None, registry.relay(session, room_id, &to, signal)),
        };
        match result {
            Ok(outcome) => self.route(outcome),
            Err(Refusal { code, message }) => vec![error(client, request_id, code, &message)],
        }
    }

    /// The login checks of the socket layer, then `LoginOk` and the registry's login.
    fn login(
        &mut self,
        client: usize,
        app: u64,
        user: &str,
        user_sig: &str,
        version: u32,
        now: Instant,
    ) -> Vec<Delivery> {
        let refusal = if version != PROTOCOL_VERSION {
            Some((
                ErrorCode::UnsupportedVersion,
                "unsupported protocol version",
            ))
        } else if !user_id::is_valid(user) {
            Some((ErrorCode::InvalidUserId, "invalid userID"))
        } else if user_sig == "bad" {
            Some((ErrorCode::InvalidUserSig, "invalid UserSig"))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            return vec![error(client, None, code, message)];
        }
        let session = self.next_session;
        self.next_session += 1;
        self.session_of.insert(client, session);
        self.client_of.insert(session, client);
        let login_ok = ServerMessage::LoginOk(LoginOk {
            user_id: user.to_owned(),
            ice_servers: Vec::new(),
            ring_timeout_secs: RING_TIMEOUT.as_secs() as u32,
            heartbeat_timeout_secs: HEARTBEAT_TIMEOUT_SECS,
            resume: None,
        });
        let mut out = vec![(client, login_ok)];
        let outcome = self.registry.login(session, app, user, now);
        out.extend(self.route(outcome));
        out
    }

    /// The client's connection ended (logout, a dropped socket, a kick): its session leaves
    /// the registry.
    pub fn disconnect(&mut self, client: usize, now_ms: u64) -> Vec<Delivery> {
        let Some(session) = self.session_of.remove(&client) else {
            return Vec::new();
        };
        self.client_of.remove(&session);
        let outcome = self.registry.leave(session, self.at(now_ms));
        self.route(outcome)
    }

    /// When the earliest invitation still ringing times out.
    pub fn next_ring_deadline_ms(&self) -> Option<u64> {
        let at = self.registry.next_deadline()?;
        Some(at.saturating_duration_since(self.epoch).as_millis() as u64)
    }

    /// Every invitation whose ring deadline has passed by `now_ms` times out.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Delivery> {
        let outcome = self.registry.expire(self.at(now_ms));
        self.route(outcome)
    }

    /// The registry's deliveries, addressed to clients; a closed session gets nothing more.
    fn route(&mut self, outcome: Outcome) -> Vec<Delivery> {
        let out = outcome
            .deliveries
            .into_iter()
            .filter_map(|(session, msg)| Some((*self.client_of.get(&session)?, msg)))
            .collect();
        for (session, _) in outcome.closes {
            if let Some(client) = self.client_of.remove(&session) {
                self.session_of.remove(&client);
            }
        }
        out
    }
}

fn error(client: usize, request_id: Option<RequestId>, code: ErrorCode, message: &str) -> Delivery {
    let message = message.to_owned();
    let error = ServerMessage::Error(ErrorReply {
        request_id,
        code,
        message,
    });
    (client, error)
}
