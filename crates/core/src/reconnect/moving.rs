//! Moving to a new socket when the server says it is going away (`goAway`: it is draining to
//! be stopped or restarted).
//!
//! The server gives a window; the core picks a moment in it at random (from the generator the
//! glue seeds, so the core stays pure and a node's clients spread out), then drops the socket
//! as if it were lost and reconnects at once through the usual path: the session is resumed
//! where the server shares it, and logged in again where it is gone (a single server that
//! restarted), as after any reconnect.
//!
//! A planned move is not a network problem: while it goes well the app hears nothing. Only
//! when it fails (no socket could be had, or the session had to be logged in again) does the
//! app hear `RECONNECTING`, then what it hears of any reconnect.
//!
//! A call or a ringing invitation keeps its socket: a draining server still carries it, while
//! moving it would lose it unless the next server shares the session. The move waits until the
//! call is over, then takes a moment within a new window. A cluster node says the session is
//! shared (`sessionShared`): then a resumable session moves with its call or invitation, which
//! goes on over the next node (the media does not pass through the server at all). A socket lost
//! meanwhile, a logout or a kick-out drop the move: there is nothing left to move.

use super::{Connection, Lost, Stage};
use crate::session::{Login, Session};
use crate::{Effect, Timer};

/// A `goAway` not acted on yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Moving {
    /// Nothing asked.
    #[default]
    Staying,
    /// Told to move within `within_ms`; waits for the call in progress to end unless the
    /// session is `shared` by the next server.
    Told { within_ms: u32, shared: bool },
    /// [`Timer::Move`] runs.
    Scheduled { within_ms: u32, shared: bool },
}

impl Session {
    /// `goAway`: the server will go; move within `within_ms`. A second one changes nothing:
    /// the first already decided when.
    pub(crate) fn told_to_move(&mut self, within_ms: u32, shared: bool) {
        if self.moving == Moving::Staying {
            self.moving = Moving::Told { within_ms, shared };
        }
    }

    /// Whether a call or ringing invitation (if any) lets the socket go now: none, or the next
    /// server resumes the session with it.
    fn call_can_move(&self, shared: bool) -> bool {
        self.call.is_none() || (shared && self.resumption.grant.is_some())
    }

    /// After every input: a move waiting for its moment gets one once nothing holds the
    /// socket; one whose socket or session has gone is dropped.
    pub(crate) fn settle_move(&mut self, out: &mut Vec<Effect>) {
        let live = matches!(self.login, Login::LoggedIn { .. }) && !self.resumption.is_lost();
        match self.moving {
            Moving::Staying => {}
            Moving::Told { .. } | Moving::Scheduled { .. } if !live => {
                if matches!(self.moving, Moving::Scheduled { .. }) {
                    out.push(Effect::CancelTimer(Timer::Move));
                }
                self.moving = Moving::Staying;
            }
            Moving::Told { within_ms, shared } if self.call_can_move(shared) => {
                let after_ms = self.resumption.jitter.up_to(within_ms);
                out.push(Effect::StartTimer {
                    timer: Timer::Move,
                    after_ms,
                });
                self.moving = Moving::Scheduled { within_ms, shared };
            }
            Moving::Told { .. } | Moving::Scheduled { .. } => {}
        }
    }

    /// [`Timer::Move`] fired: drop the socket and reconnect at once, quietly. A call that began
    /// while it waited keeps the socket until it ends (`settle_move` then picks a new moment),
    /// unless the session is shared.
    pub(crate) fn move_due(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Moving::Scheduled { within_ms, shared } = self.moving else {
            return;
        };
        if !self.call_can_move(shared) {
            self.moving = Moving::Told { within_ms, shared };
            return;
        }
        self.moving = Moving::Staying;
        let resumption = &mut self.resumption;
        let grace_ms = resumption
            .grant
            .as_ref()
            .map_or(0, |g| u64::from(g.grace_secs) * 1000);
        resumption.heard();
        resumption.connection = Connection::Lost(Lost {
            since_ms: now_ms,
            session_ends_ms: now_ms.saturating_add(grace_ms),
            attempt: 0,
            stage: Stage::Waiting,
            quiet: true,
        });
        out.push(Effect::CancelTimer(Timer::Heartbeat));
        out.push(Effect::CancelTimer(Timer::Probe));
        self.attempt(out);
    }

    /// Whether a move is pending (told, not yet made).
    pub fn is_moving(&self) -> bool {
        self.moving != Moving::Staying
    }
}
