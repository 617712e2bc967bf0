//! The registry under its one lock, each session's outbox, and the ring-timeout timer.
//!
//! Deliveries are pushed into the recipients' bounded outboxes while the lock is held, so
//! every session sees messages in the order the registry decided them. A session whose outbox
//! is full is too slow to keep up: its outbox is dropped, which ends its socket task, which then
//! runs the normal leave path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use calling_protocol::ServerMessage;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::registry::{CloseReason, Outcome, Refusal, Registry, SessionId};

/// Messages a session may have queued before it counts as too slow. An ICE trickle burst is
/// ~20–40 messages per peer, and a group call has up to eight peers.
pub const OUTBOX_CAPACITY: usize = 512;

/// How the server ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    Kicked,
    LoggedOut,
    LoginFailed,
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
#[derive(Debug)]
pub enum Outbound {
    Message(ServerMessage),
    Close(CloseKind),
}

struct State {
    registry: Registry,
    outboxes: HashMap<SessionId, mpsc::Sender<Outbound>>,
}

impl State {
    fn push(&mut self, session: SessionId, item: Outbound) {
        let full = match self.outboxes.get(&session) {
            Some(tx) => tx.try_send(item).is_err(),
            None => false,
        };
        if full {
            self.outboxes.remove(&session);
        }
    }

    fn dispatch(&mut self, outcome: Outcome) {
        for (session, msg) in outcome.deliveries {
            self.push(session, Outbound::Message(msg));
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
    state: Mutex<State>,
    next_session: AtomicU64,
}

impl Hub {
    pub fn new(config: Config) -> Arc<Self> {
        let registry = Registry::new(config.ring_timeout);
        Arc::new(Hub {
            config,
            state: Mutex::new(State {
                registry,
                outboxes: HashMap::new(),
            }),
            next_session: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that is
        // worse than stopping the whole server, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection's outbox.
    pub fn open_session(&self) -> (SessionId, mpsc::Receiver<Outbound>) {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        self.lock().outboxes.insert(session, tx);
        (session, rx)
    }

    /// Queues a message for one session (replies to its own requests).
    pub fn send(&self, session: SessionId, msg: ServerMessage) {
        self.lock().push(session, Outbound::Message(msg));
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
        state.push(session, Outbound::Message(login_ok));
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

    /// Drains an outbox whose senders are all gone; returns what it held.
    async fn drain(mut rx: mpsc::Receiver<Outbound>) -> Vec<Outbound> {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    }

    #[tokio::test]
    async fn a_session_too_slow_to_read_loses_its_outbox() {
        let hub = Hub::new(Config::new(Vec::new()));
        let (session, rx) = hub.open_session();
        for _ in 0..=OUTBOX_CAPACITY {
            hub.send(session, ServerMessage::Pong);
        }
        // The overflow dropped the hub's sender, which ends the socket task after the backlog.
        let items = drain(rx).await;
        assert_eq!(items.len(), OUTBOX_CAPACITY);
        let (other, other_rx) = hub.open_session();
        hub.send(other, ServerMessage::Pong);
        assert_eq!(other_rx.len(), 1, "other sessions are unaffected");
    }

    #[tokio::test]
    async fn nothing_is_delivered_after_a_close() {
        let hub = Hub::new(Config::new(Vec::new()));
        let (session, rx) = hub.open_session();
        hub.send(session, ServerMessage::Pong);
        hub.close(session, CloseKind::LoggedOut);
        hub.send(session, ServerMessage::Kicked);
        let items = drain(rx).await;
        assert!(matches!(
            &items[..],
            [
                Outbound::Message(ServerMessage::Pong),
                Outbound::Close(CloseKind::LoggedOut)
            ]
        ));
    }
}
