//! The registry under its one lock, each session's outbox, resumption, and the timer.
//!
//! Deliveries are serialized and pushed into the recipients' outboxes while the lock is held, so
//! every session sees messages in the order the registry decided them. Each outbox has a byte
//! budget: a session whose queued messages exceed it is too slow to keep up, and its outbox is
//! dropped, which ends its socket task at once, which then runs the normal leave path.
//!
//! A resumable session numbers what it is sent and keeps the tail in a [`Journal`]. Each socket
//! is a *link*; a session is owned by one link at a time. When the link drops without a close
//! frame the session is suspended (the registry keeps it whole for the grace), and a new link
//! presenting its token takes it over and gets the replay. A link that no longer owns its
//! session can change nothing: its late frames and its end are ignored.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use calling_protocol::{ErrorCode, Sequenced, ServerMessage, RESUME_WINDOW};
use tokio::sync::{mpsc, oneshot, Notify};

mod authority;
mod resumption;
mod sfu;

use crate::cluster::{token_hash, Cluster, Op, ResumeRefusal};
use crate::config::Config;
use crate::drain::Drain;
use crate::gate::Gate;
use crate::ids::RandomIds;
use crate::metrics::{InviteTimes, Metrics, Snapshot};
use crate::registry::{CloseReason, Journal, Outcome, Refusal, Registry, SessionId};
use crate::request::Request;
use crate::sfu::SfuRooms;
use authority::{Authority, Member};

/// One socket connection. Its number is the id of the session it opened with, so a link that
/// never resumed another session owns the session of its own number.
pub type LinkId = u64;

/// What a socket task names when it acts: the session and the link it acts through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub session: SessionId,
    pub link: LinkId,
}

/// How the server ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    Kicked,
    /// The session was resumed on another connection.
    Replaced,
    LoggedOut,
    LoginFailed,
    LoginTimeout,
    TooBig,
    Flood,
    /// The server is draining (a socket not logged in, or any left at the drain timeout).
    GoingAway,
    /// The cluster took this node for dead and reaped the session: its SDK resumes it.
    Reaped,
    /// Redis lost the cluster's data, the session with it: its SDK logs in again.
    RegistryLost,
}

impl CloseKind {
    /// WebSocket close code and reason text.
    pub fn frame(self) -> (u16, &'static str) {
        match self {
            CloseKind::Kicked => (1000, "kicked out: the same user logged in elsewhere"),
            CloseKind::Replaced => (1000, "the session resumed on another connection"),
            CloseKind::LoggedOut => (1000, "logged out"),
            CloseKind::LoginFailed => (1008, "login failed"),
            CloseKind::LoginTimeout => (1008, "no login in time"),
            CloseKind::TooBig => (1009, "frame too large"),
            CloseKind::Flood => (1008, "too many messages"),
            CloseKind::GoingAway => (1001, "the server is going away"),
            CloseKind::Reaped => (1012, "this node was taken for dead: resume the session"),
            CloseKind::RegistryLost => (1012, "the shared registry lost its data: log in again"),
        }
    }
}

impl From<CloseReason> for CloseKind {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::Kicked => CloseKind::Kicked,
        }
    }
}

/// What a socket task writes next.
#[derive(Debug, PartialEq, Eq)]
pub enum Outbound {
    /// A server message, already serialized (its length is what the budget counts).
    Text(String),
    Close(CloseKind),
}

/// Bytes queued in one outbox, shared by its two ends.
#[derive(Default)]
struct Budget {
    queued: AtomicUsize,
    overflow: Notify,
}

/// The hub's end of a session's outbox.
struct OutboxTx {
    tx: mpsc::UnboundedSender<Outbound>,
    budget: Arc<Budget>,
}

/// The socket task's end of its session's outbox.
pub struct Outbox {
    rx: mpsc::UnboundedReceiver<Outbound>,
    budget: Arc<Budget>,
}

impl Outbox {
    /// The next item; `None` once the hub dropped this outbox and the backlog is empty.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// The next item if one is queued already (`None` when empty or closed).
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }

    /// A message of `bytes` was written to the socket: it no longer counts against the budget.
    pub fn written(&self, bytes: usize) {
        self.budget.queued.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The signal that this outbox went over its byte budget.
    pub fn overflow(&self) -> Overflow {
        Overflow(self.budget.clone())
    }
}

/// Watches one outbox's budget (apart from the outbox, which its reader borrows mutably).
pub struct Overflow(Arc<Budget>);

impl Overflow {
    /// Completes when the session went over its byte budget: the backlog is abandoned.
    pub async fn happened(&self) {
        self.0.overflow.notified().await
    }
}

/// Why a resume did not take a session over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotResumed {
    /// The session was kicked out by a login elsewhere: the SDK must not log in again (it would
    /// kick the newer login in turn), so it is told `kicked`.
    Kicked,
    /// Anything else: answered with the refusal, after which the SDK may log in.
    Refused(Refusal),
}

/// The resumption state of one resumable session.
struct Resumable {
    token: String,
    journal: Journal<String>,
}

struct State {
    /// Who decides outcomes: this process's registry, or the cluster's shared store.
    authority: Authority,
    outboxes: HashMap<SessionId, OutboxTx>,
    outbox_bytes: usize,
    /// Which link owns each session (open, or logged in and maybe away).
    owners: HashMap<SessionId, LinkId>,
    resumable: HashMap<SessionId, Resumable>,
    tokens: HashMap<String, SessionId>,
    /// Tokens of sessions kicked out within the last grace, with when they stop mattering
    /// (oldest first): a resume naming one is answered `kicked`.
    kicked: VecDeque<(Instant, String)>,
    /// A cluster node's links resuming a session, waiting for its adoption to come through the
    /// node's stream.
    adopting: HashMap<LinkId, Adoption>,
    resume_grace: Duration,
    metrics: Arc<Metrics>,
    /// When recent invitations were received, for the accept latency.
    invites: InviteTimes,
    /// The embedded SFU's participants (`--sfu-udp`), which follow the registry's members.
    sfu: Option<Arc<SfuRooms>>,
    /// A cluster node's SFU's queue of the messages other nodes hand it (see `hub::sfu`).
    sfu_inbox: Option<tokio::sync::mpsc::UnboundedSender<crate::cluster::SfuRequest>>,
}

impl State {
    fn push(&mut self, session: SessionId, item: Outbound) {
        let Some(outbox) = self.outboxes.get(&session) else {
            return;
        };
        let bytes = match &item {
            Outbound::Text(text) => text.len(),
            Outbound::Close(_) => 0,
        };
        let queued = outbox.budget.queued.load(Ordering::Relaxed);
        let fits = queued.saturating_add(bytes) <= self.outbox_bytes;
        if fits && outbox.tx.send(item).is_ok() {
            outbox.budget.queued.fetch_add(bytes, Ordering::Relaxed);
            return;
        }
        outbox.budget.overflow.notify_one();
        self.outboxes.remove(&session);
    }

    /// Delivers `msg`; for a resumable session (pongs aside) numbered and journaled first, so
    /// it reaches the session even while it is away.
    fn push_message(&mut self, session: SessionId, msg: &ServerMessage) {
        let numbered = match self.resumable.get_mut(&session) {
            Some(r) if *msg != ServerMessage::Pong => Some(r),
            _ if self.outboxes.contains_key(&session) => None,
            _ => return,
        };
        let text = match numbered {
            Some(r) => {
                let seq = r.journal.last_seq() + 1;
                let text = serde_json::to_string(&Sequenced { seq, message: msg });
                if let Ok(text) = &text {
                    r.journal.record_sized(text.clone(), text.len());
                }
                text
            }
            None => serde_json::to_string(msg),
        };
        match text {
            Ok(text) => {
                if matches!(msg, ServerMessage::Signal(_)) {
                    self.metrics.relayed(text.len());
                }
                self.push(session, Outbound::Text(text))
            }
            Err(err) => tracing::error!(%err, "a server message did not serialize"),
        }
    }

    fn push_message_unnumbered(&mut self, session: SessionId, msg: &ServerMessage) {
        match serde_json::to_string(msg) {
            Ok(text) => self.push(session, Outbound::Text(text)),
            Err(err) => tracing::error!(%err, "a server message did not serialize"),
        }
    }

    fn owns(&self, owner: Owner) -> bool {
        self.owners.get(&owner.session) == Some(&owner.link)
    }

    /// The session can no longer be resumed.
    fn forget_resumable(&mut self, session: SessionId) -> Option<String> {
        let r = self.resumable.remove(&session)?;
        self.tokens.remove(&r.token);
        Some(r.token)
    }

    /// A kicked session's token is remembered for one grace, its longest possible absence.
    fn remember_kicked(&mut self, token: String, now: Instant) {
        while self.kicked.front().is_some_and(|(until, _)| *until <= now) {
            self.kicked.pop_front();
        }
        self.kicked.push_back((now + self.resume_grace, token));
    }

    fn was_kicked(&self, token: &str, now: Instant) -> bool {
        self.kicked
            .iter()
            .any(|(until, t)| *until > now && t == token)
    }

    fn dispatch(&mut self, outcome: Outcome) {
        self.dispatch_received(outcome, None);
    }

    fn dispatch_received(&mut self, outcome: Outcome, received: Option<Instant>) {
        self.metrics.count(&outcome, received, &mut self.invites);
        // Any decision but a relayed signal may have made members leave their call.
        let relayed = !outcome.deliveries.is_empty()
            && outcome
                .deliveries
                .iter()
                .all(|(_, msg)| matches!(msg, ServerMessage::Signal(_)));
        if !relayed {
            self.reconcile_sfu();
        }
        for (session, msg) in &outcome.deliveries {
            self.push_message(*session, msg);
        }
        for (session, reason) in outcome.closes {
            self.push(session, Outbound::Close(reason.into()));
            // Nothing more may reach a closed session, nor may it come back.
            self.outboxes.remove(&session);
            if let Some(token) = self.forget_resumable(session) {
                self.remember_kicked(token, Instant::now());
            }
        }
        for session in outcome.ended {
            self.owners.remove(&session);
            self.forget_resumable(session);
        }
    }
}

/// Shared by every connection of one server.
pub struct Hub {
    pub config: Config,
    /// Connection caps, checked at accept.
    pub gate: Arc<Gate>,
    pub metrics: Arc<Metrics>,
    /// Whether the server is draining, and its socket count.
    pub drain: Arc<Drain>,
    state: Mutex<State>,
    next_session: AtomicU64,
    cluster: Option<Arc<Cluster>>,
}

impl Hub {
    pub fn new(config: Config) -> Arc<Self> {
        let registry =
            Registry::new(config.ring_timeout, RandomIds).with_resume_grace(config.resume_grace);
        Hub::build(config, Authority::Local(registry), None)
    }

    /// A hub whose outcomes are decided in the cluster's shared store; its session ids are
    /// the cluster-unique ones of `cluster`'s node.
    pub fn clustered(config: Config, cluster: Arc<Cluster>) -> Arc<Self> {
        Hub::build(config, Authority::Shared(HashMap::new()), Some(cluster))
    }

    /// Whether the sessions of this node are the cluster's: another node resumes them, calls
    /// and ringing invitations included.
    pub fn shares_sessions(&self) -> bool {
        self.cluster.is_some()
    }

    fn build(config: Config, authority: Authority, cluster: Option<Arc<Cluster>>) -> Arc<Self> {
        let first_session = cluster.as_ref().map_or(1, |c| c.first_session_id());
        let metrics = Arc::new(Metrics::new());
        // Only a cluster node has the Redis metrics.
        if let Some(cluster) = &cluster {
            if let Some(redis) = metrics.redis() {
                cluster.observe_with(redis);
            }
        }
        Arc::new(Hub {
            metrics: metrics.clone(),
            gate: Gate::new(&config.limits),
            drain: Drain::new(config.drain_timeout),
            state: Mutex::new(State {
                authority,
                outboxes: HashMap::new(),
                outbox_bytes: config.limits.outbox_bytes,
                owners: HashMap::new(),
                resumable: HashMap::new(),
                tokens: HashMap::new(),
                kicked: VecDeque::new(),
                adopting: HashMap::new(),
                resume_grace: config.resume_grace,
                metrics,
                invites: InviteTimes::new(config.ring_timeout),
                sfu: None,
                sfu_inbox: None,
            }),
            config,
            next_session: AtomicU64::new(first_session),
            cluster,
        })
    }

    /// The cluster this node belongs to (`None`: a single process deciding alone).
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that is
        // worse than stopping the whole server, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection's outbox; the connection owns a fresh session of the same
    /// number until it resumes another.
    pub fn open_session(&self) -> (SessionId, Outbox) {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::default());
        let mut state = self.lock();
        state.outboxes.insert(
            session,
            OutboxTx {
                tx,
                budget: budget.clone(),
            },
        );
        state.owners.insert(session, session);
        (session, Outbox { rx, budget })
    }

    /// Queues a message for one session (replies to its own requests).
    pub fn send(&self, owner: Owner, msg: ServerMessage) {
        let mut state = self.lock();
        if state.owns(owner) {
            state.push_message(owner.session, &msg);
        }
    }

    /// Queues a message for one session without a `seq`, never journaled: it matters only to
    /// the socket connected now (new ICE servers).
    pub fn send_unnumbered(&self, owner: Owner, msg: &ServerMessage) {
        let mut state = self.lock();
        if state.owns(owner) {
            state.push_message_unnumbered(owner.session, msg);
        }
    }

    /// Queues a close; nothing queued after it is delivered.
    pub fn close(&self, owner: Owner, kind: CloseKind) {
        let mut state = self.lock();
        if state.owns(owner) {
            state.push(owner.session, Outbound::Close(kind));
            state.outboxes.remove(&owner.session);
        }
    }

    /// The drain begins: `go_away` to every logged-in socket (unnumbered: it is about the
    /// socket), a close to every socket not logged in. Returns how many of each.
    pub fn go_away(&self, go_away: &ServerMessage) -> (usize, usize) {
        let mut state = self.lock();
        let sockets: Vec<SessionId> = state.outboxes.keys().copied().collect();
        let (mut told, mut closed) = (0, 0);
        for session in sockets {
            if state.authority.user_of(session).is_some() {
                state.push_message_unnumbered(session, go_away);
                told += 1;
            } else {
                state.push(session, Outbound::Close(CloseKind::GoingAway));
                state.outboxes.remove(&session);
                closed += 1;
            }
        }
        (told, closed)
    }

    /// Sessions of this node that the cluster reaped while it took this node for dead: their
    /// sockets close, for their SDKs to resume them (or log in again), and the node forgets
    /// them (they are no longer its own: what they are sent goes to their journals). Returns
    /// how many sockets closed.
    pub fn close_reaped(&self, sessions: &[SessionId]) -> usize {
        let mut state = self.lock();
        let mut closed = 0;
        for &session in sessions {
            closed += usize::from(state.close_member(session, CloseKind::Reaped));
        }
        closed
    }

    /// Closes every socket with `kind` (the drain's end); returns how many.
    pub fn close_all(&self, kind: CloseKind) -> usize {
        let mut state = self.lock();
        let sockets: Vec<SessionId> = state.outboxes.keys().copied().collect();
        for &session in &sockets {
            state.push(session, Outbound::Close(kind));
        }
        state.outboxes.clear();
        sockets.len()
    }

    /// Applies one client frame's registry request and delivers its outcome; the frame counts
    /// as received for a resume. A frame from a link that lost its session does nothing.
    pub async fn apply(&self, owner: Owner, request: Request) -> Result<(), Refusal> {
        let received = Instant::now();
        let user = {
            let mut state = self.lock();
            if !state.owns(owner) {
                return Ok(());
            }
            if let Some(r) = state.resumable.get_mut(&owner.session) {
                r.journal.count_received();
            }
            match &mut state.authority {
                Authority::Local(registry) => {
                    let outcome = request.run(registry, owner.session, Instant::now())?;
                    state.dispatch_received(outcome, Some(received));
                    return Ok(());
                }
                Authority::Shared(sessions) => sessions
                    .get(&owner.session)
                    .map(|m| (m.app, m.user.clone())),
            }
        };
        let (Some(cluster), Some((app, user))) = (&self.cluster, user) else {
            return Err(Refusal {
                code: ErrorCode::NotLoggedIn,
                message: "log in first".into(),
            });
        };
        request.check()?;
        let op = Op::Request {
            session: owner.session,
            app,
            user,
            request,
        };
        // Deliveries come back through the node's stream, in the order Redis decided them.
        let outcome = cluster.decide(op).await?;
        let mut state = self.lock();
        let state = &mut *state;
        self.metrics
            .count(&outcome, Some(received), &mut state.invites);
        Ok(())
    }

    /// A verified login: `LoginOk` first, then whatever the registry delivers (pending
    /// invitations to this session, the kick of an older one). With a `resume_token` the
    /// session is resumable by it.
    pub async fn login(
        &self,
        session: SessionId,
        app: u64,
        user_id: &str,
        login_ok: ServerMessage,
        resume_token: Option<String>,
    ) {
        let shared = {
            let mut state = self.lock();
            state.push_message(session, &login_ok);
            match &mut state.authority {
                Authority::Local(_) => {
                    if let Some(token) = resume_token {
                        state.tokens.insert(token.clone(), session);
                        let journal = Journal::new(RESUME_WINDOW).with_byte_cap(state.outbox_bytes);
                        state
                            .resumable
                            .insert(session, Resumable { token, journal });
                    }
                    let Authority::Local(registry) = &mut state.authority else {
                        return;
                    };
                    let outcome = registry.login(session, app, user_id, Instant::now());
                    state.dispatch(outcome);
                    None
                }
                // A cluster numbers and keeps what its sessions are sent in Redis.
                Authority::Shared(sessions) => {
                    let member = Member {
                        app,
                        user: Arc::from(user_id),
                        resumable: resume_token.is_some(),
                    };
                    sessions.insert(session, member);
                    Some(resume_token.as_deref().map(token_hash))
                }
            }
        };
        if let (Some(token_hash), Some(cluster)) = (shared, &self.cluster) {
            let op = Op::Login {
                session,
                app,
                user: Arc::from(user_id),
                token_hash,
            };
            if let Err(refusal) = cluster.decide(op).await {
                // Not registered anywhere: the session cannot go on.
                self.refuse_login(session, refusal);
                return;
            }
        }
        self.metrics.login();
    }

    /// Link `link` (not logged in) takes over the session `token` names: `Resumed`, then
    /// `fresh` (unnumbered: new ICE servers, when the session gets some), then every message
    /// after `last_seq`, go out on this link's outbox; the link that owned the session before
    /// is closed. Returns the session, now this link's. A session whose missed messages are no
    /// longer all kept cannot be resumed and ends now, as a leave.
    pub async fn resume(
        &self,
        link: LinkId,
        app: u64,
        user_id: &str,
        token: &str,
        last_seq: u64,
        fresh: Option<ServerMessage>,
    ) -> Result<SessionId, NotResumed> {
        if let Some(cluster) = &self.cluster {
            // Any node takes the session back: what it missed is kept in Redis, and reaches
            // this link through this node's stream (with `fresh` sent first). The link waits
            // for that, so that from then on it owns the session like any other.
            let (adopted, on_adoption) = oneshot::channel();
            let adoption = Adoption {
                fresh,
                adopted: Some(adopted),
            };
            self.lock().adopting.insert(link, adoption);
            let op = Op::Resume {
                app,
                user: Arc::from(user_id),
                token_hash: token_hash(token),
                last_seq,
                link,
            };
            let resumed = cluster.resume(op).await;
            let resumed = match resumed {
                Ok(session) => match tokio::time::timeout(ADOPTION, on_adoption).await {
                    Ok(Ok(())) => Ok(session),
                    _ => Err(NotResumed::Refused(Refusal {
                        code: ErrorCode::Unavailable,
                        message: "the session was taken back but did not reach this \
                                  connection in time: resume again"
                            .into(),
                    })),
                },
                Err(ResumeRefusal::Kicked) => Err(NotResumed::Kicked),
                Err(ResumeRefusal::Refused(refusal)) => Err(NotResumed::Refused(refusal)),
            };
            if resumed.is_err() {
                self.lock().adopting.remove(&link);
            }
            return resumed;
        }
        let left = {
            let mut state = self.lock();
            match state.take_over(link, app, user_id, token, last_seq, fresh) {
                Ok(session) => return Ok(session),
                Err(failed) => failed,
            }
        };
        let (not_resumed, left) = left;
        if let Some((session, left)) = left {
            self.leave_shared(Owner { session, link }, Some(left)).await;
        }
        Err(not_resumed)
    }

    /// The session ends (logout): it leaves its call and cannot be resumed.
    pub async fn leave(&self, owner: Owner) {
        let left = {
            let mut state = self.lock();
            if !state.owns(owner) {
                return;
            }
            let left = state.leave(owner.session);
            state.forget_resumable(owner.session);
            left
        };
        self.leave_shared(owner, left).await;
    }

    /// A connection finished. If it still owns its session: a resumable session whose SDK
    /// will be back (`keep`: its socket was lost, or a cluster node's drain closed it) is
    /// suspended for its grace; any other leaves at once.
    pub async fn end_session(&self, owner: Owner, keep: bool) {
        let session = owner.session;
        let suspended = {
            let mut state = self.lock();
            if !state.owns(owner) {
                return;
            }
            state.outboxes.remove(&session);
            let user = state
                .authority
                .user_of(session)
                .map(|(a, u)| (a, Arc::from(u)));
            match user {
                Some(user) if keep && state.is_resumable(session) => {
                    // Still owned by this link, so a late resume can tell it apart from a new
                    // one.
                    if let Authority::Local(registry) = &mut state.authority {
                        registry.suspend(session, Instant::now());
                        return;
                    }
                    Ok(user)
                }
                _ => {
                    state.owners.remove(&session);
                    let left = state.leave(session);
                    state.forget_resumable(session);
                    Err(left)
                }
            }
        };
        match suspended {
            Ok((app, user)) => self.suspend_shared(owner, app, user).await,
            Err(left) => self.leave_shared(owner, left).await,
        }
    }

    /// Brings the metrics' gauges up to date (at scrape time) and returns their exposition.
    pub fn metrics_text(&self) -> Result<String, prometheus::Error> {
        let (_, pending_connections) = self.gate.counts();
        {
            let state = self.lock();
            let (calls, ringing) = match &self.cluster {
                Some(cluster) => cluster.counts(),
                None => state.authority.call_counts(),
            };
            self.metrics.set(Snapshot {
                apps: &mut self.config.apps.keys().copied(),
                sessions: &mut state.authority.session_apps(),
                pending_connections,
                calls,
                ringing,
            });
        }
        self.metrics.encode()
    }

    /// (sessions logged in, calls live).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (
            state.authority.session_count(),
            state.authority.call_counts().0,
        )
    }

    fn expire(&self) -> Option<Instant> {
        let mut state = self.lock();
        let Authority::Local(registry) = &mut state.authority else {
            return None;
        };
        let outcome = registry.expire(Instant::now());
        let next = registry.next_deadline();
        state.dispatch(outcome);
        next
    }
}

/// Longest a resuming link of a cluster node waits for its adoption to come through the node's
/// stream (it normally takes a millisecond).
const ADOPTION: Duration = Duration::from_secs(5);

/// A link of a cluster node resuming a session.
struct Adoption {
    /// Fresh ICE servers, sent right after `resumed`.
    fresh: Option<ServerMessage>,
    /// Told once the link owns the session.
    adopted: Option<oneshot::Sender<()>>,
}

/// Longest the timer sleeps when nothing is ringing. Every new deadline is `now + ring
/// timeout`, never earlier than one already scheduled, so the timer can otherwise sleep until
/// the earliest deadline exactly.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Expires ring deadlines until the hub is dropped.
pub async fn run_timer(hub: Weak<Hub>) {
    loop {
        let next = match hub.upgrade() {
            Some(hub) => hub.expire(),
            None => return,
        };
        let now = Instant::now();
        let wake = next.map_or(now + IDLE_TICK, |at| at.min(now + IDLE_TICK));
        tokio::time::sleep_until(wake.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session acting through the link it opened with.
    fn own(session: SessionId) -> Owner {
        Owner {
            session,
            link: session,
        }
    }

    /// Drains an outbox whose sender is gone; returns what it held.
    async fn drain(mut outbox: Outbox) -> Vec<Outbound> {
        let mut items = Vec::new();
        while let Some(item) = outbox.recv().await {
            items.push(item);
        }
        items
    }

    const PONG: &str = r#"{"type":"pong"}"#;

    #[tokio::test]
    async fn a_session_over_its_byte_budget_loses_its_outbox() {
        let mut config = Config::new(Vec::new());
        config.limits.outbox_bytes = 10 * PONG.len();
        let hub = Hub::new(config);
        let (session, outbox) = hub.open_session();
        for _ in 0..10 {
            hub.send(own(session), ServerMessage::Pong);
        }
        // Writing some frees budget for as many more.
        let mut outbox = outbox;
        assert_eq!(outbox.recv().await, Some(Outbound::Text(PONG.into())));
        outbox.written(PONG.len());
        hub.send(own(session), ServerMessage::Pong);
        // One more is over budget: the outbox is dropped and the socket task told at once.
        hub.send(own(session), ServerMessage::Pong);
        tokio::time::timeout(Duration::from_secs(5), outbox.overflow().happened())
            .await
            .expect("overflow signalled");
        assert_eq!(drain(outbox).await.len(), 10);
        let (other, mut other_rx) = hub.open_session();
        hub.send(own(other), ServerMessage::Pong);
        assert_eq!(
            other_rx.recv().await,
            Some(Outbound::Text(PONG.into())),
            "other sessions are unaffected"
        );
    }

    #[tokio::test]
    async fn nothing_is_delivered_after_a_close() {
        let hub = Hub::new(Config::new(Vec::new()));
        let (session, outbox) = hub.open_session();
        hub.send(own(session), ServerMessage::Pong);
        hub.close(own(session), CloseKind::LoggedOut);
        hub.send(own(session), ServerMessage::Kicked);
        assert_eq!(
            drain(outbox).await,
            [
                Outbound::Text(PONG.into()),
                Outbound::Close(CloseKind::LoggedOut)
            ]
        );
    }
}
