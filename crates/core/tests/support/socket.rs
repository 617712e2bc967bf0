//! calling-server's socket layer in miniature, in front of the real registry
//! (`calling-registry`, the state the server itself holds). Each client has at most one
//! connection at a time: its messages become registry requests as the server's socket task
//! makes them, refusals come back as `error` messages, and the registry's deliveries come back
//! addressed to clients. Only UserSig verification is not the server's own (it is tested in
//! crates/server): here the UserSig `"bad"` stands for one that fails it, and
//! [`Server::sigs_expired`] makes every later login fail as an expired one would.
//!
//! Resumable sessions work as the server's do: a login asking for one gets a token; every
//! message to the session after `loginOk` except `pong` is numbered in a [`Journal`] and
//! delivered as [`Input::Sequenced`]; every frame the session sends after login except `ping`
//! is counted. A connection that drops without a close suspends the session in the registry
//! (nobody else notices; messages for it are journaled); `resume` on a new connection takes it
//! back, answers `resumed {received}` and replays what the SDK had not processed, or refuses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use calling_core::Input;
use calling_protocol::{
    user_id, ClientMessage, ErrorCode, ErrorReply, IceServer, LoginOk, RequestId, ResumeGrant,
    Resumed, ServerMessage, DEFAULT_RESUME_GRACE_SECS, HEARTBEAT_TIMEOUT_SECS, PROTOCOL_VERSION,
    RESUME_WINDOW,
};
use calling_registry::{
    InviteRequest, Journal, Outcome, Refusal, Registry, SequentialIds, SessionId,
};

/// An input for one client (by index): a server message, sequenced or not.
pub type Delivery = (usize, Input);

/// The server's default ring timeout.
pub const RING_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's default resume grace.
pub const GRACE: Duration = Duration::from_secs(DEFAULT_RESUME_GRACE_SECS as u64);

/// One session the registry knows, and the client whose connection carries (or carried) it.
struct Live {
    client: usize,
    /// The token and journal of a resumable session.
    resume: Option<(String, Journal<ServerMessage>)>,
}

pub struct Server {
    registry: Registry,
    /// The instant the tests' `now_ms == 0` stands for.
    epoch: Instant,
    next_session: SessionId,
    /// The session on each client's current connection, if it logged in or resumed on it.
    session_of: BTreeMap<usize, SessionId>,
    sessions: BTreeMap<SessionId, Live>,
    /// Tokens of sessions a login elsewhere ended: a resume naming one is told it was kicked.
    kicked: Vec<String>,
    /// How long a suspended session is kept.
    grace: Duration,
    /// Whether a login asking for a resumable session gets one (an older server: no).
    pub offers_resume: bool,
    /// Every login from now on is refused as carrying an expired UserSig.
    pub sigs_expired: bool,
    /// The STUN/TURN list every login gets.
    pub ice_servers: Vec<IceServer>,
    /// Every message each client sent that reached the server, in order (index → messages).
    pub received: BTreeMap<usize, Vec<ClientMessage>>,
}

impl Server {
    pub fn new() -> Self {
        Self::with_grace(GRACE)
    }

    pub fn with_grace(grace: Duration) -> Self {
        Server {
            registry: Registry::new(RING_TIMEOUT, SequentialIds::default())
                .with_resume_grace(grace),
            epoch: Instant::now(),
            next_session: 1,
            session_of: BTreeMap::new(),
            sessions: BTreeMap::new(),
            kicked: Vec::new(),
            grace,
            offers_resume: true,
            sigs_expired: false,
            ice_servers: Vec::new(),
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
                    resumable,
                } => self.login(
                    client,
                    (sdk_app_id, &user_id),
                    &user_sig,
                    protocol_version,
                    resumable,
                    now,
                ),
                ClientMessage::Resume {
                    sdk_app_id,
                    user_id,
                    token,
                    last_seq,
                    ..
                } => self.resume(client, sdk_app_id, &user_id, &token, last_seq),
                _ => vec![plain(
                    client,
                    error(None, ErrorCode::NotLoggedIn, "log in first"),
                )],
            };
        };
        if !matches!(
            message,
            ClientMessage::Ping | ClientMessage::Login { .. } | ClientMessage::Resume { .. }
        ) {
            if let Some((_, journal)) = self.live_mut(session).and_then(|l| l.resume.as_mut()) {
                journal.count_received();
            }
        }
        let registry = &mut self.registry;
        let (request_id, result) = match message {
            ClientMessage::Login { .. } | ClientMessage::Resume { .. } => {
                let msg = "this connection is already logged in";
                let refusal = error(None, ErrorCode::AlreadyLoggedIn, msg);
                return self.send_to_session(session, refusal);
            }
            // Not journaled: a pong only answers the connection it came on.
            ClientMessage::Ping => return vec![plain(client, ServerMessage::Pong)],
            ClientMessage::Unknown => {
                let msg = "unknown message type";
                let refusal = error(None, ErrorCode::UnknownType, msg);
                return self.send_to_session(session, refusal);
            }
            ClientMessage::Logout => return self.disconnect(client, now_ms),
            // Like the server without --sfu-udp.
            ClientMessage::Sfu { .. } | ClientMessage::SfuViews { .. } => {
                let refusal = error(None, ErrorCode::NoSfu, "this server runs no SFU");
                return self.send_to_session(session, refusal);
            }
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
            Err(Refusal { code, message }) => {
                self.send_to_session(session, error(request_id, code, &message))
            }
        }
    }

    /// The login checks of the socket layer, then `LoginOk` and the registry's login.
    fn login(
        &mut self,
        client: usize,
        (app, user): (u64, &str),
        user_sig: &str,
        version: u32,
        resumable: bool,
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
        } else if self.sigs_expired {
            Some((ErrorCode::InvalidUserSig, "UserSig expired"))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            return vec![plain(client, error(None, code, message))];
        }
        let session = self.next_session;
        self.next_session += 1;
        let resume = (resumable && self.offers_resume).then(|| {
            let token = format!("token-{session}");
            (token, Journal::new(RESUME_WINDOW))
        });
        let grant = resume.as_ref().map(|(token, _)| ResumeGrant {
            token: token.clone(),
            grace_secs: self.grace_secs(),
        });
        self.session_of.insert(client, session);
        self.sessions.insert(session, Live { client, resume });
        let login_ok = ServerMessage::LoginOk(LoginOk {
            user_id: user.to_owned(),
            ice_servers: self.ice_servers.clone(),
            ring_timeout_secs: RING_TIMEOUT.as_secs() as u32,
            heartbeat_timeout_secs: HEARTBEAT_TIMEOUT_SECS,
            resume: grant,
            sfu: false,
        });
        let mut out = vec![plain(client, login_ok)];
        let outcome = self.registry.login(session, app, user, now);
        out.extend(self.route(outcome));
        out
    }

    fn grace_secs(&self) -> u32 {
        // The registry's grace, as the fixture configured it (whole seconds on the wire).
        self.grace.as_secs() as u32
    }

    /// `resume` as the first message on a connection: the session named by `token` moves to
    /// it, `resumed` and the replay follow; or a refusal, after which this connection may log
    /// in. A session a login elsewhere ended is answered `kicked`.
    fn resume(
        &mut self,
        client: usize,
        app: u64,
        user: &str,
        token: &str,
        last_seq: u64,
    ) -> Vec<Delivery> {
        let refused = || {
            let msg = "this session has ended: log in again";
            vec![plain(client, error(None, ErrorCode::ResumeRefused, msg))]
        };
        if self.kicked.iter().any(|t| t == token) {
            return vec![plain(client, ServerMessage::Kicked)];
        }
        let found = self.sessions.iter().find_map(|(session, live)| {
            let (t, journal) = live.resume.as_ref()?;
            (t == token).then(|| (*session, journal.after(last_seq).is_ok()))
        });
        let Some((session, replayable)) = found else {
            return refused();
        };
        if !replayable || self.registry.resume(session, app, user).is_err() {
            return refused();
        }
        if let Some(old) = self.sessions.get(&session).map(|l| l.client) {
            if self.session_of.get(&old) == Some(&session) {
                self.session_of.remove(&old);
            }
        }
        self.session_of.insert(client, session);
        let Some(live) = self.sessions.get_mut(&session) else {
            return refused();
        };
        live.client = client;
        let Some((_, journal)) = live.resume.as_ref() else {
            return refused();
        };
        let resumed = ServerMessage::Resumed(Resumed {
            received: journal.received(),
        });
        let mut out = vec![plain(client, resumed)];
        if let Ok(replay) = journal.after(last_seq) {
            out.extend(replay.map(|(seq, message)| {
                let message = message.clone();
                (client, Input::Sequenced { seq, message })
            }));
        }
        out
    }

    /// The client's connection ended on purpose (logout, a close frame, a kick): its session
    /// leaves the registry.
    pub fn disconnect(&mut self, client: usize, now_ms: u64) -> Vec<Delivery> {
        let Some(session) = self.session_of.remove(&client) else {
            return Vec::new();
        };
        self.sessions.remove(&session);
        let outcome = self.registry.leave(session, self.at(now_ms));
        self.route(outcome)
    }

    /// The client's connection dropped without a close: a resumable session is suspended
    /// (kept for a resume within the grace); any other ends as on a disconnect.
    pub fn drop_connection(&mut self, client: usize, now_ms: u64) -> Vec<Delivery> {
        let Some(&session) = self.session_of.get(&client) else {
            return Vec::new();
        };
        if self.live_mut(session).is_some_and(|l| l.resume.is_some()) {
            self.session_of.remove(&client);
            self.registry.suspend(session, self.at(now_ms));
            return Vec::new();
        }
        self.disconnect(client, now_ms)
    }

    /// When the earliest ring deadline or end of a grace comes.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let at = self.registry.next_deadline()?;
        Some(at.saturating_duration_since(self.epoch).as_millis() as u64)
    }

    /// Every invitation whose ring deadline has passed by `now_ms` times out, and every
    /// suspended session whose grace has ends.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Delivery> {
        let outcome = self.registry.expire(self.at(now_ms));
        self.route(outcome)
    }

    fn live_mut(&mut self, session: SessionId) -> Option<&mut Live> {
        self.sessions.get_mut(&session)
    }

    /// One message for a session: journaled if it is resumable, delivered if its connection
    /// is up.
    fn send_to_session(&mut self, session: SessionId, message: ServerMessage) -> Vec<Delivery> {
        let Some(live) = self.sessions.get_mut(&session) else {
            return Vec::new();
        };
        let client = live.client;
        let up = self.session_of.get(&client) == Some(&session);
        let input = match live.resume.as_mut() {
            Some((_, journal)) => {
                let seq = journal.record(message.clone());
                Input::Sequenced { seq, message }
            }
            None => Input::Server(message),
        };
        if up {
            vec![(client, input)]
        } else {
            Vec::new()
        }
    }

    /// The registry's deliveries, addressed to clients; a kicked or expired session gets
    /// nothing more.
    fn route(&mut self, outcome: Outcome) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (session, message) in outcome.deliveries {
            out.extend(self.send_to_session(session, message));
        }
        for (session, _) in outcome.closes {
            if let Some(live) = self.sessions.remove(&session) {
                if self.session_of.get(&live.client) == Some(&session) {
                    self.session_of.remove(&live.client);
                }
                if let Some((token, _)) = live.resume {
                    self.kicked.push(token);
                }
            }
        }
        for session in outcome.ended {
            self.sessions.remove(&session);
        }
        out
    }
}

fn plain(client: usize, message: ServerMessage) -> Delivery {
    (client, Input::Server(message))
}

fn error(request_id: Option<RequestId>, code: ErrorCode, message: &str) -> ServerMessage {
    ServerMessage::Error(ErrorReply {
        request_id,
        code,
        message: message.to_owned(),
    })
}
