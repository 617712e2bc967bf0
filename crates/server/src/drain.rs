//! Graceful drain: what the server does between SIGTERM (or SIGINT) and its exit, so that an
//! operator can stop or restart it without cutting anybody off mid-sentence.
//!
//! When the drain begins the server stops taking new work and says so: `/healthz` answers 503
//! (a load balancer takes the node out of rotation) and new WebSocket upgrades are refused with
//! 503 and `Retry-After`. Every logged-in socket is told `goAway` with a spread in milliseconds
//! within which its SDK picks a moment to move, so a node's clients do not all reconnect in the
//! same instant; a cluster node adds that the session is shared, so calls and ringing
//! invitations move too (to another node, which resumes them) instead of holding the node up
//! until they are over. Sockets that have not logged in are closed (1001). Everything else keeps
//! working for the sockets still here: relays, hangups, accepts. The process exits as soon as
//! the last socket has gone, or when the drain timeout runs out, closing what is left with
//! 1001; a second signal exits at once.
//!
//! Only sockets count: a session whose socket moved away (closed as lost) and now waits for its
//! resume elsewhere does not hold the node up, nor do plain HTTP connections (health checks).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use calling_protocol::{GoAway, ServerMessage};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::hub::{CloseKind, Hub};

/// The drain timeout unless configured (`--drain-timeout`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest spread handed out in `goAway`: long enough to smooth the reconnects of tens of
/// thousands of clients, short enough that idle clients are gone well within the drain.
pub const MAX_SPREAD: Duration = Duration::from_secs(5);

/// After the timeout closed the sockets left, how long their close handshakes may take before
/// the process exits anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// How often the drain logs how many sockets are left (when that changed).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The drain state of one server, shared by the HTTP routes and the socket tasks.
#[derive(Debug)]
pub struct Drain {
    timeout: Duration,
    /// When the drain began; unset while serving normally.
    started: OnceLock<Instant>,
    /// WebSocket tasks running.
    sockets: AtomicUsize,
    /// Woken when a socket task ends.
    socket_ended: Notify,
}

/// Counts one socket task while it lives.
#[derive(Debug)]
pub struct SocketCounted(Arc<Drain>);

impl Drop for SocketCounted {
    fn drop(&mut self) {
        self.0.sockets.fetch_sub(1, Ordering::AcqRel);
        self.0.socket_ended.notify_waiters();
    }
}

impl Drain {
    pub fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(Drain {
            timeout,
            started: OnceLock::new(),
            sockets: AtomicUsize::new(0),
            socket_ended: Notify::new(),
        })
    }

    /// Whether the server is draining: no new sockets, no new sessions.
    pub fn is_draining(&self) -> bool {
        self.started.get().is_some()
    }

    /// A socket task starts; it counts until the returned guard is dropped.
    pub fn socket_opened(self: &Arc<Self>) -> SocketCounted {
        self.sockets.fetch_add(1, Ordering::AcqRel);
        SocketCounted(self.clone())
    }

    /// WebSocket tasks running now.
    pub fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Acquire)
    }

    /// The window `goAway` gives clients to move in: half the drain timeout, at most
    /// [`MAX_SPREAD`], so they have moved with time to spare before the timeout.
    pub fn spread(&self) -> Duration {
        (self.timeout / 2).min(MAX_SPREAD)
    }

    /// Seconds a refused client should wait before trying again (`Retry-After`): until the
    /// drain ends at the latest, when this node is gone or back; at least one.
    pub fn retry_after_secs(&self) -> u64 {
        let left = self.started.get().map_or(self.timeout, |started| {
            self.timeout.saturating_sub(started.elapsed())
        });
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }

    /// Marks the drain as begun; false if it already was.
    fn begin(&self) -> bool {
        self.started.set(Instant::now()).is_ok()
    }

    /// Waits until no socket is left, or `deadline`; returns the sockets left.
    async fn sockets_gone_by(&self, deadline: tokio::time::Instant) -> usize {
        let mut logged = self.sockets();
        let mut next_log = tokio::time::Instant::now() + PROGRESS_EVERY;
        loop {
            let ended = self.socket_ended.notified();
            tokio::pin!(ended);
            // Registered before reading the count, so an end in between is not missed.
            ended.as_mut().enable();
            let left = self.sockets();
            if left == 0 {
                return 0;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return left;
            }
            if now >= next_log && left != logged {
                info!(sockets = left, "draining: sockets left");
                logged = left;
                next_log = now + PROGRESS_EVERY;
            }
            let _ = tokio::time::timeout_at(deadline.min(next_log), ended).await;
        }
    }
}

/// Parses `--drain-timeout`: seconds, fractions allowed, 0 for none (exit at once).
pub fn parse_drain_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?}: use 0 to 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The drain ran its course (every socket gone, or the timeout closed the rest).
    Drained,
    /// A second signal came during the drain: exit without waiting.
    Interrupted,
}

/// SIGTERM and SIGINT, watched together.
pub struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    /// Starts watching (from now on, neither signal kills the process by itself).
    pub fn watch() -> std::io::Result<Self> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT; its name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Waits for a stop signal, then drains `hub`; returns how the process should end.
pub async fn on_stop_signal(hub: Arc<Hub>, mut signals: StopSignals) -> Ending {
    let first = signals.next().await;
    tokio::select! {
        () = drain(&hub, first) => Ending::Drained,
        second = signals.next() => {
            warn!(signal = second, sockets = hub.drain.sockets(), "second signal: exiting without finishing the drain");
            Ending::Interrupted
        }
    }
}

/// The drain itself (see the module's documentation).
pub async fn drain(hub: &Hub, signal: &str) {
    let drain = &hub.drain;
    if !drain.begin() {
        return;
    }
    hub.metrics.set_draining(true);
    let started = tokio::time::Instant::now();
    let timeout = drain.timeout;
    if timeout.is_zero() {
        let closed = hub.close_all(CloseKind::GoingAway);
        info!(
            signal,
            sockets = closed,
            "drain timeout is 0: closing every socket and exiting"
        );
        return;
    }
    let spread = drain.spread();
    let within_ms = u32::try_from(spread.as_millis()).unwrap_or(u32::MAX);
    let session_shared = hub.shares_sessions();
    let (told, closed) = hub.go_away(&ServerMessage::GoAway(GoAway {
        within_ms,
        session_shared,
    }));
    info!(
        signal,
        sessions_told = told,
        not_logged_in_closed = closed,
        timeout_secs = timeout.as_secs_f64(),
        spread_ms = within_ms,
        session_shared,
        "draining: refusing new sockets, clients told to move"
    );
    let left = drain.sockets_gone_by(started + timeout).await;
    if left == 0 {
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "drained: every socket has gone"
        );
        return;
    }
    let closed = hub.close_all(CloseKind::GoingAway);
    warn!(
        sockets = left,
        closed, "drain timeout: closing the sockets left (1001)"
    );
    let left = drain
        .sockets_gone_by(tokio::time::Instant::now() + CLOSE_WAIT)
        .await;
    info!(
        sockets_unclosed = left,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "drain over"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_half_the_timeout_up_to_five_seconds() {
        assert_eq!(
            Drain::new(Duration::from_secs(30)).spread(),
            Duration::from_secs(5)
        );
        assert_eq!(
            Drain::new(Duration::from_secs(4)).spread(),
            Duration::from_secs(2)
        );
        assert_eq!(Drain::new(Duration::ZERO).spread(), Duration::ZERO);
    }

    #[test]
    fn retry_after_counts_down_from_the_timeout_and_is_at_least_one() {
        let drain = Drain::new(Duration::from_millis(2500));
        assert_eq!(drain.retry_after_secs(), 3);
        assert!(drain.begin());
        assert!(!drain.begin(), "a drain begins once");
        assert!(drain.retry_after_secs() <= 3);
        assert_eq!(Drain::new(Duration::ZERO).retry_after_secs(), 1);
    }

    #[test]
    fn drain_timeout_parsing() {
        assert_eq!(parse_drain_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_drain_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_drain_timeout(" 30 "), Ok(Duration::from_secs(30)));
        assert!(parse_drain_timeout("-1").is_err());
        assert!(parse_drain_timeout("soon").is_err());
        assert!(parse_drain_timeout("inf").is_err());
    }

    #[tokio::test]
    async fn waiting_ends_when_the_last_socket_ends() {
        let drain = Drain::new(Duration::from_secs(30));
        let a = drain.socket_opened();
        let b = drain.socket_opened();
        assert_eq!(drain.sockets(), 2);
        let ends = tokio::spawn(async move {
            drop(a);
            tokio::task::yield_now().await;
            drop(b);
        });
        let far = tokio::time::Instant::now() + Duration::from_secs(20);
        let left = tokio::time::timeout(Duration::from_secs(5), drain.sockets_gone_by(far))
            .await
            .expect("returns once the sockets are gone");
        assert_eq!(left, 0);
        ends.await.unwrap();
    }

    #[tokio::test]
    async fn waiting_ends_at_the_deadline_with_the_sockets_left() {
        let drain = Drain::new(Duration::from_secs(30));
        let _held = drain.socket_opened();
        let soon = tokio::time::Instant::now() + Duration::from_millis(50);
        assert_eq!(drain.sockets_gone_by(soon).await, 1);
    }
}
