//! The registry under its one lock, each session's outbox, and the ring-timeout timer.
//!
//! Deliveries are serialized and pushed into the recipients' outboxes while the lock is held, so
//! every session sees messages in the order the registry decided them. Each outbox has a byte
//! budget: a session whose queued messages exceed it is too slow to keep up, and its outbox is
//! dropped, which ends its socket task at once, which then runs the normal leave path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use calling_protocol::ServerMessage;
use tokio::sync::{mpsc, Notify};

use crate::config::Config;
use crate::gate::Gate;
use crate::ids::RandomIds;
use crate::registry::{CloseReason, Outcome, Refusal, Registry, SessionId};

/// How the server ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    Kicked,
    LoggedOut,
    LoginFailed,
    LoginTimeout,
    TooBig,
    Flood,
}

impl CloseKind {
    /// WebSocket close code and reason text.
    pub fn frame(self) -> (u16, &'static str) {
        match self {
            CloseKind::Kicked => (1000, "kicked out: the same user logged in elsewhere"),
            CloseKind::LoggedOut => (1000, "logged out"),
            CloseKind::LoginFailed => (1008, "login failed"),
            CloseKind::LoginTimeout => (1008, "no login in time"),
            CloseKind::TooBig => (1009, "frame too large"),
            CloseKind::Flood => (1008, "too many messages"),
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

struct State {
    registry: Registry,
    outboxes: HashMap<SessionId, OutboxTx>,
    outbox_bytes: usize,
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

    fn push_message(&mut self, session: SessionId, msg: &ServerMessage) {
        if !self.outboxes.contains_key(&session) {
            return;
        }
        match serde_json::to_string(msg) {
            Ok(text) => self.push(session, Outbound::Text(text)),
            Err(err) => tracing::error!(%err, "a server message did not serialize"),
        }
    }

    fn dispatch(&mut self, outcome: Outcome) {
        for (session, msg) in &outcome.deliveries {
            self.push_message(*session, msg);
        }
        for (session, reason) in outcome.closes {
            self.push(session, Outbound::Close(reason.into()));
            // Nothing more may reach a closed session.
            self.outboxes.remove(&session);
        }
    }
}

/// Shared by every connection of one server.
pub struct Hub {
    pub config: Config,
    /// Connection caps, checked at accept.
    pub gate: Arc<Gate>,
    state: Mutex<State>,
    next_session: AtomicU64,
}

impl Hub {
    pub fn new(config: Config) -> Arc<Self> {
        let registry = Registry::new(config.ring_timeout, RandomIds);
        Arc::new(Hub {
            gate: Gate::new(&config.limits),
            state: Mutex::new(State {
                registry,
                outboxes: HashMap::new(),
                outbox_bytes: config.limits.outbox_bytes,
            }),
            config,
            next_session: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that is
        // worse than stopping the whole server, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection's outbox.
    pub fn open_session(&self) -> (SessionId, Outbox) {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::default());
        self.lock().outboxes.insert(
            session,
            OutboxTx {
                tx,
                budget: budget.clone(),
            },
        );
        (session, Outbox { rx, budget })
    }

    /// Queues a message for one session (replies to its own requests).
    pub fn send(&self, session: SessionId, msg: ServerMessage) {
        self.lock().push_message(session, &msg);
    }

    /// Queues a close; nothing queued after it is delivered.
    pub fn close(&self, session: SessionId, kind: CloseKind) {
        let mut state = self.lock();
        state.push(session, Outbound::Close(kind));
        state.outboxes.remove(&session);
    }

    /// Applies a registry request and delivers its outcome.
    pub fn apply(
        &self,
        request: impl FnOnce(&mut Registry, Instant) -> Result<Outcome, Refusal>,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        let outcome = request(&mut state.registry, Instant::now())?;
        state.dispatch(outcome);
        Ok(())
    }

    /// A verified login: `LoginOk` first, then whatever the registry delivers (pending
    /// invitations to this session, the kick of an older one).
    pub fn login(&self, session: SessionId, app: u64, user_id: &str, login_ok: ServerMessage) {
        let mut state = self.lock();
        state.push_message(session, &login_ok);
        let outcome = state.registry.login(session, app, user_id, Instant::now());
        state.dispatch(outcome);
    }

    /// The session ends (logout, disconnect, silence): it leaves its call; its outbox goes.
    pub fn leave(&self, session: SessionId) {
        let mut state = self.lock();
        let outcome = state.registry.leave(session, Instant::now());
        state.dispatch(outcome);
    }

    /// Forgets a finished connection.
    pub fn end_session(&self, session: SessionId) {
        let mut state = self.lock();
        let outcome = state.registry.leave(session, Instant::now());
        state.dispatch(outcome);
        state.outboxes.remove(&session);
    }

    /// (sessions logged in, calls live).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.registry.session_count(), state.registry.call_count())
    }

    fn expire(&self) -> Option<Instant> {
        let mut state = self.lock();
        let outcome = state.registry.expire(Instant::now());
        state.dispatch(outcome);
        state.registry.next_deadline()
    }
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
            hub.send(session, ServerMessage::Pong);
        }
        // Writing some frees budget for as many more.
        let mut outbox = outbox;
        assert_eq!(outbox.recv().await, Some(Outbound::Text(PONG.into())));
        outbox.written(PONG.len());
        hub.send(session, ServerMessage::Pong);
        // One more is over budget: the outbox is dropped and the socket task told at once.
        hub.send(session, ServerMessage::Pong);
        tokio::time::timeout(Duration::from_secs(5), outbox.overflow().happened())
            .await
            .expect("overflow signalled");
        assert_eq!(drain(outbox).await.len(), 10);
        let (other, mut other_rx) = hub.open_session();
        hub.send(other, ServerMessage::Pong);
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
        hub.send(session, ServerMessage::Pong);
        hub.close(session, CloseKind::LoggedOut);
        hub.send(session, ServerMessage::Kicked);
        assert_eq!(
            drain(outbox).await,
            [
                Outbound::Text(PONG.into()),
                Outbound::Close(CloseKind::LoggedOut)
            ]
        );
    }
}
