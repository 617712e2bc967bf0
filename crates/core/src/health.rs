//! One link's liveness once its connection has been up: a connection that turns
//! `disconnected` or `failed` is *interrupted*; ICE restarts try to bring it back, and one
//! interrupted for too long is given up (the session then lets its participant leave).
//!
//! Perfect-negotiation roles decide who restarts, so that normally one offer crosses: the
//! impolite side restarts first and the polite side only as a fallback, later. Further restarts
//! follow every few seconds. The core has no clock: every deadline is a time on the `now_ms` clock of
//! [`crate::Session::handle`], and the session arms one timer for the earliest deadline of all
//! its links ([`PeerLink::health_deadline`]).

use crate::event::AppEvent;
use crate::link::{Link, PeerLink};
use crate::Effect;

/// How long a `disconnected` connection may come back by itself (ICE consent often resumes
/// after a short loss) before the impolite side restarts ICE. A `failed` one cannot come back
/// without a restart, so the impolite side restarts it at once.
pub(crate) const DISCONNECTED_GRACE_MS: u64 = 2_000;

/// How much later than the impolite side the polite side restarts, if still interrupted. The
/// impolite side's restart heals both ends with one offer; the polite side's only covers an
/// impolite side that did not restart (its browser has not noticed the loss yet).
pub(crate) const POLITE_FALLBACK_MS: u64 = 2_000;

/// The wait after each restart of one interruption before the next, if the link has not
/// healed. A path that comes back (a cable plugged in, a Wi-Fi roam finished) is only found by
/// the next restart, so the wait is what a call stays dark after the network is back: short,
/// since a restart costs only an offer and an answer through the server.
pub(crate) const RESTART_INTERVAL_MS: u64 = 3_000;

/// How long a link may stay interrupted before its participant is given up (it leaves the call
/// locally, with `ERROR` 60009). By then the impolite side has restarted at 2, 5, 8, … 29 s
/// of a disconnection, the polite side at 4, 7, … 28 s.
pub(crate) const GIVE_UP_MS: u64 = 30_000;

/// Whether media can flow on a link that has been up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// Connected, or never up yet (a connection that never came up has nothing to restore).
    Live,
    Interrupted(Interruption),
}

/// One interruption of a link, from the moment it stopped to the moment it is back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interruption {
    pub since_ms: u64,
    /// When this side restarts ICE next, if still interrupted.
    pub next_restart_ms: u64,
    /// Restarts this side made in this interruption.
    pub restarts: usize,
    /// The app heard `PEER_MEDIA_INTERRUPTED`, so it hears `PEER_MEDIA_RESTORED` on recovery.
    pub told: bool,
    /// The connection never came up: no media to tell of, only a connection to establish.
    pub never_up: bool,
}

/// What a health check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Interrupted for [`GIVE_UP_MS`]: the participant is to leave the call.
    GiveUp,
}

impl PeerLink {
    /// The connection turned `disconnected` (`failed: false`) or `failed`. Only a link that has
    /// been up is interrupted; the app hears of it once the link carries our media (a link made
    /// while an invitation rings is restarted silently).
    pub(crate) fn interrupted(
        &mut self,
        now_ms: u64,
        user: &str,
        failed: bool,
        out: &mut Vec<Effect>,
    ) {
        if self.link != Link::Up {
            return;
        }
        // An accepted link still on its ringing relay path: the restarts below may find any
        // path from now on.
        self.ringing.widen_for_restarts(user, out);
        let fallback = if self.polite { POLITE_FALLBACK_MS } else { 0 };
        match &mut self.health {
            Health::Live => {
                let grace = if failed { 0 } else { DISCONNECTED_GRACE_MS };
                self.health = Health::Interrupted(Interruption {
                    since_ms: now_ms,
                    next_restart_ms: now_ms + grace + fallback,
                    restarts: 0,
                    told: false,
                    never_up: false,
                });
                self.tell_interruption(user, out);
            }
            // A disconnection that fails before this side restarted needs its restart now;
            // after a restart, `failed` is that restart failing, and the next one waits its turn.
            Health::Interrupted(interruption) => {
                if failed && interruption.restarts == 0 {
                    interruption.next_restart_ms =
                        interruption.next_restart_ms.min(now_ms + fallback);
                }
            }
        }
        self.restart_if_due(now_ms, user, out);
    }

    /// The connection failed before it ever came up (no path found: no relay where one is
    /// needed, or the relay unreachable). It is tried again with ICE restarts, as an
    /// interrupted one is, and given up after as long, so that a call that cannot connect ends
    /// with an error instead of waiting forever; the app hears nothing of media interrupted.
    pub(crate) fn never_connected(&mut self, now_ms: u64, user: &str, out: &mut Vec<Effect>) {
        if let Health::Live = self.health {
            let fallback = if self.polite { POLITE_FALLBACK_MS } else { 0 };
            self.health = Health::Interrupted(Interruption {
                since_ms: now_ms,
                next_restart_ms: now_ms + fallback,
                restarts: 0,
                told: false,
                never_up: true,
            });
        }
        self.restart_if_due(now_ms, user, out);
    }

    /// Whether this link is being given another chance to come up for the first time.
    pub(crate) fn never_up(&self) -> bool {
        matches!(self.health, Health::Interrupted(i) if i.never_up)
    }

    /// The connection is `connected` again: `PEER_MEDIA_RESTORED` if the app heard it stop,
    /// and the other side asked for a key frame of its video (the call's video resumes).
    pub(crate) fn restored(&mut self, user: &str, out: &mut Vec<Effect>) {
        if let Health::Interrupted(interruption) = self.health {
            self.health = Health::Live;
            if interruption.told {
                out.push(Effect::Emit(AppEvent::PeerMediaRestored {
                    user_id: user.to_owned(),
                }));
            }
            if self.attached && !interruption.never_up {
                out.push(Effect::RequestKeyFrame {
                    user_id: user.to_owned(),
                });
            }
        }
    }

    /// `PEER_MEDIA_INTERRUPTED`, once per interruption, when the link carries our media (at the
    /// interruption, or when an invitation accepted meanwhile attaches it).
    pub(crate) fn tell_interruption(&mut self, user: &str, out: &mut Vec<Effect>) {
        if let (Health::Interrupted(interruption), true) = (&mut self.health, self.attached) {
            if !interruption.told && !interruption.never_up {
                interruption.told = true;
                out.push(Effect::Emit(AppEvent::PeerMediaInterrupted {
                    user_id: user.to_owned(),
                }));
            }
        }
    }

    /// A deadline of this link may have passed: restart ICE if due, or give the participant up.
    /// A link not carrying our media yet (the invitation still rings) is never given up: the
    /// server's ring timeout bounds that; once accepted, the interruption counts from its start.
    pub(crate) fn check_health(
        &mut self,
        now_ms: u64,
        user: &str,
        out: &mut Vec<Effect>,
    ) -> Verdict {
        let Health::Interrupted(interruption) = self.health else {
            return Verdict::Keep;
        };
        if self.attached && now_ms >= interruption.since_ms + GIVE_UP_MS {
            return Verdict::GiveUp;
        }
        self.restart_if_due(now_ms, user, out);
        Verdict::Keep
    }

    /// When [`PeerLink::check_health`] has something to do next (None while live).
    pub(crate) fn health_deadline(&self) -> Option<u64> {
        let Health::Interrupted(interruption) = self.health else {
            return None;
        };
        let give_up = self.attached.then_some(interruption.since_ms + GIVE_UP_MS);
        Some(give_up.map_or(interruption.next_restart_ms, |at| {
            at.min(interruption.next_restart_ms)
        }))
    }

    /// The browser's network came back (`online`): an interrupted link restarts ICE now
    /// instead of at its next turn (up to [`RESTART_INTERVAL_MS`] away), since the path it lost
    /// may be back, or a new one there. Either side's restart heals both ends.
    pub(crate) fn restart_now(&mut self, now_ms: u64, user: &str, out: &mut Vec<Effect>) {
        if let Health::Interrupted(interruption) = &mut self.health {
            interruption.next_restart_ms = now_ms;
        }
        self.restart_if_due(now_ms, user, out);
    }

    fn restart_if_due(&mut self, now_ms: u64, user: &str, out: &mut Vec<Effect>) {
        let Health::Interrupted(interruption) = &mut self.health else {
            return;
        };
        if now_ms < interruption.next_restart_ms {
            return;
        }
        interruption.restarts += 1;
        interruption.next_restart_ms = now_ms + RESTART_INTERVAL_MS;
        out.push(Effect::RestartIce {
            user_id: user.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::MediaState;
    use crate::{PeerEvent, PeerState};

    const LOCAL: Option<MediaState> = Some(MediaState {
        audio: true,
        video: true,
    });

    /// A link to bob that has been up; `attached`: it carries our media (the call is accepted).
    fn up(polite: bool, attached: bool) -> PeerLink {
        let mut peer = PeerLink::new(polite);
        peer.link = Link::Up;
        peer.attached = attached;
        peer
    }

    fn state(peer: &mut PeerLink, now_ms: u64, state: PeerState) -> Vec<Effect> {
        let mut out = Vec::new();
        peer.on_event(
            now_ms,
            "bob",
            7,
            LOCAL,
            PeerEvent::ConnectionState(state),
            &mut out,
        );
        out
    }

    fn check(peer: &mut PeerLink, now_ms: u64) -> (Verdict, Vec<Effect>) {
        let mut out = Vec::new();
        let verdict = peer.check_health(now_ms, "bob", &mut out);
        (verdict, out)
    }

    fn interrupted() -> Effect {
        Effect::Emit(AppEvent::PeerMediaInterrupted {
            user_id: "bob".into(),
        })
    }

    fn restored() -> Effect {
        Effect::Emit(AppEvent::PeerMediaRestored {
            user_id: "bob".into(),
        })
    }

    fn key_frame() -> Effect {
        Effect::RequestKeyFrame {
            user_id: "bob".into(),
        }
    }

    fn restart() -> Effect {
        Effect::RestartIce {
            user_id: "bob".into(),
        }
    }

    /// The times at which `peer`, interrupted, restarts ICE, following its own deadlines until
    /// it gives up (or `until_ms`); and when it gave up.
    fn restarts(peer: &mut PeerLink, until_ms: u64) -> (Vec<u64>, Option<u64>) {
        let mut at = Vec::new();
        while let Some(due) = peer.health_deadline().filter(|due| *due <= until_ms) {
            let (verdict, out) = check(peer, due);
            if verdict == Verdict::GiveUp {
                return (at, Some(due));
            }
            assert_eq!(out, vec![restart()], "a deadline with nothing due at {due}");
            at.push(due);
        }
        (at, None)
    }

    #[test]
    fn a_disconnection_restarts_after_two_seconds_on_the_impolite_side() {
        let mut peer = up(false, true);
        assert_eq!(
            state(&mut peer, 1_000, PeerState::Disconnected),
            vec![interrupted()]
        );
        assert_eq!(peer.health_deadline(), Some(3_000));
        assert_eq!(check(&mut peer, 2_999), (Verdict::Keep, vec![]));
        assert_eq!(check(&mut peer, 3_000), (Verdict::Keep, vec![restart()]));
        assert_eq!(
            peer.health_deadline(),
            Some(6_000),
            "the next one 3 s later"
        );
    }

    #[test]
    fn the_polite_side_restarts_only_as_a_fallback_two_seconds_later() {
        let mut peer = up(true, true);
        assert_eq!(
            state(&mut peer, 1_000, PeerState::Disconnected),
            vec![interrupted()]
        );
        assert_eq!(check(&mut peer, 3_000), (Verdict::Keep, vec![]));
        assert_eq!(peer.health_deadline(), Some(5_000));
        assert_eq!(check(&mut peer, 5_000), (Verdict::Keep, vec![restart()]));
    }

    #[test]
    fn a_failed_connection_restarts_at_once_on_the_impolite_side() {
        let mut impolite = up(false, true);
        assert_eq!(
            state(&mut impolite, 1_000, PeerState::Failed),
            vec![interrupted(), restart()]
        );
        let mut polite = up(true, true);
        assert_eq!(
            state(&mut polite, 1_000, PeerState::Failed),
            vec![interrupted()]
        );
        assert_eq!(polite.health_deadline(), Some(3_000));
    }

    #[test]
    fn a_disconnection_that_fails_restarts_then_but_a_failed_restart_waits_its_turn() {
        let mut peer = up(false, true);
        state(&mut peer, 1_000, PeerState::Disconnected);
        assert_eq!(
            state(&mut peer, 1_500, PeerState::Failed),
            vec![restart()],
            "failed before the grace ended: restart now"
        );
        assert_eq!(
            state(&mut peer, 2_000, PeerState::Failed),
            vec![],
            "the restart failed: the next one waits its interval"
        );
        assert_eq!(peer.health_deadline(), Some(4_500));
    }

    #[test]
    fn the_app_hears_the_interruption_and_the_recovery_once_each() {
        let mut peer = up(false, true);
        let mut events = Vec::new();
        for (now, s) in [
            (1_000, PeerState::Disconnected),
            (1_500, PeerState::Disconnected),
            (2_000, PeerState::Connecting),
            (2_500, PeerState::Failed),
            (2_600, PeerState::Connected),
            (2_700, PeerState::Connected),
        ] {
            events.extend(state(&mut peer, now, s));
        }
        // Back: the app hears it, and a key frame of our video goes out for its decoder.
        assert_eq!(
            events,
            vec![interrupted(), restart(), restored(), key_frame()]
        );
        assert_eq!(peer.health, Health::Live);
        assert_eq!(peer.health_deadline(), None, "nothing left to check");
        // A later interruption is a new one, told again.
        assert_eq!(
            state(&mut peer, 9_000, PeerState::Disconnected),
            vec![interrupted()]
        );
    }

    #[test]
    fn restarts_repeat_every_three_seconds_until_the_participant_is_given_up_after_thirty() {
        let mut impolite = up(false, true);
        state(&mut impolite, 0, PeerState::Disconnected);
        assert_eq!(
            restarts(&mut impolite, u64::MAX),
            ((2_000..30_000).step_by(3_000).collect(), Some(30_000))
        );
        let mut polite = up(true, true);
        state(&mut polite, 0, PeerState::Disconnected);
        assert_eq!(
            restarts(&mut polite, u64::MAX),
            ((4_000..30_000).step_by(3_000).collect(), Some(30_000))
        );
        assert_eq!(check(&mut polite, 29_999).0, Verdict::Keep);
    }

    #[test]
    fn a_ringing_link_restarts_silently_and_is_given_up_only_once_accepted() {
        let mut peer = up(false, false);
        assert_eq!(
            state(&mut peer, 0, PeerState::Disconnected),
            vec![],
            "no media of the call on it yet: nothing for the app"
        );
        let (at, given_up) = restarts(&mut peer, 60_000);
        assert_eq!(at[..3], [2_000, 5_000, 8_000]);
        assert_eq!(given_up, None, "the ring timeout bounds a ringing link");
        let mut out = Vec::new();
        peer.attach("bob", Some(7), LOCAL, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::AttachMedia {
                    user_id: "bob".into()
                },
                interrupted(),
                // Through the server, which the interruption does not touch.
                crate::link::media_signal(
                    7,
                    "bob",
                    MediaState {
                        audio: true,
                        video: true
                    }
                ),
            ],
            "accepted while interrupted: the app hears of it then"
        );
        assert_eq!(peer.health_deadline(), Some(30_000));
        assert_eq!(check(&mut peer, 60_000).0, Verdict::GiveUp);
        state(&mut peer, 60_001, PeerState::Connected);
        assert_eq!(peer.health, Health::Live);
    }

    #[test]
    fn a_connection_that_never_came_up_is_retried_silently_and_given_up_in_time() {
        let mut peer = PeerLink::new(false);
        peer.attached = true;
        assert_eq!(state(&mut peer, 0, PeerState::Disconnected), vec![]);
        // No PEER_MEDIA_INTERRUPTED: there was never media. A restart at once, as for `failed`.
        assert_eq!(
            state(&mut peer, 1_000, PeerState::Failed),
            vec![Effect::RestartIce {
                user_id: "bob".into()
            }]
        );
        assert!(peer.never_up());
        assert_eq!(peer.health_deadline(), Some(4_000));
        let mut out = Vec::new();
        assert_eq!(peer.check_health(30_999, "bob", &mut out), Verdict::Keep);
        assert_eq!(peer.check_health(31_000, "bob", &mut out), Verdict::GiveUp);
        // Coming up at last tells the app nothing either.
        let mut peer = PeerLink::new(false);
        peer.attached = true;
        state(&mut peer, 0, PeerState::Failed);
        let up = state(&mut peer, 1_000, PeerState::Connected);
        assert!(!up.iter().any(|e| matches!(e, Effect::Emit(_))), "{up:?}");
        assert_eq!(peer.health_deadline(), None);
    }

    #[test]
    fn the_events_are_extension_events_with_a_user_id() {
        let event = AppEvent::PeerMediaInterrupted {
            user_id: "bob".into(),
        };
        assert_eq!(event.name(), "onPeerMediaInterrupted");
        assert_eq!(
            serde_json::to_value(&event).ok(),
            Some(serde_json::json!({"userID": "bob"}))
        );
        let event = AppEvent::PeerMediaRestored {
            user_id: "bob".into(),
        };
        assert_eq!(event.name(), "onPeerMediaRestored");
        for (key, name) in [
            ("PEER_MEDIA_INTERRUPTED", "onPeerMediaInterrupted"),
            ("PEER_MEDIA_RESTORED", "onPeerMediaRestored"),
        ] {
            assert!(crate::EVENT_NAMES.contains(&(key, name)), "{key}");
        }
    }
}
