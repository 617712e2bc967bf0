//! What a ringing callee reveals to its caller. Connecting while an invitation rings makes
//! `accept()` fast, but the caller's browser then learns the callee's addresses (its ICE
//! candidates and connectivity checks) before the callee has decided to answer. With a TURN
//! relay at hand, the callee's side gathers relay candidates only until it accepts, and
//! [`WIDEN_AFTER_MS`] later restarts ICE with every candidate; without one, the app may turn
//! pre-connecting off, and the callee's connection is only made when it accepts.

use calling_protocol::{IceServer, Signal};

use crate::Effect;

/// How long an accepted call stays on the relay path it connected through while ringing
/// before it gathers every candidate (an ICE restart that may find a direct path). The first
/// frames cross the relay path already made: widening at the accept itself renegotiates both
/// sides while the callee opens its camera and both start decoding, which delayed the first
/// frame through the relay past a direct link's by tens of milliseconds at the median and by
/// seconds at the tail on a loaded machine. Once the call has settled, the restart is
/// invisible (media stays on the relay pair until a better one is chosen).
pub const WIDEN_AFTER_MS: u64 = 2_000;

/// How connections are made, from the app's constructor options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectPolicy {
    /// `iceTransportPolicy: 'relay'`: every connection uses relay candidates only, always.
    pub relay_only: bool,
    /// `preconnect` (default true): a ringing callee connects to its caller before accepting.
    pub preconnect: bool,
    /// Whether the app's own `iceServers` option names a TURN server; `None` when the app set
    /// none, so the server's list from login is used.
    pub app_lists_relay: Option<bool>,
}

impl Default for ConnectPolicy {
    fn default() -> Self {
        ConnectPolicy {
            relay_only: false,
            preconnect: true,
            app_lists_relay: None,
        }
    }
}

impl ConnectPolicy {
    /// Whether the connections this session makes can gather relay candidates.
    pub(crate) fn relay_available(&self, server_list: &[IceServer]) -> bool {
        self.app_lists_relay
            .unwrap_or_else(|| lists_relay(server_list))
    }
}

/// Whether any of these servers is a TURN server (`turn:` or `turns:` URL).
pub fn lists_relay(servers: &[IceServer]) -> bool {
    servers
        .iter()
        .flat_map(|s| &s.urls)
        .any(|url| is_relay_url(url))
}

/// `turn:…` or `turns:…`, in any case (URI schemes are case-insensitive).
pub fn is_relay_url(url: &str) -> bool {
    let scheme = url.split(':').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("turn") || scheme.eq_ignore_ascii_case("turns")
}

/// A ringing callee's connection to its caller, as far as what it reveals goes.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Ringing {
    /// Nothing held back: every candidate may be gathered (a caller's connections, any
    /// connection after the accept, or an app that chose so).
    #[default]
    Open,
    /// Made with relay candidates only; every candidate once the call is accepted.
    RelayOnly,
    /// Accepted on a relay-only connection that was up: it keeps its relay path until `at_ms`
    /// (on the session's clock), then gathers every candidate.
    Widening { at_ms: u64 },
    /// Not made yet: the caller's signals wait here until the call is accepted.
    Deferred(Vec<Signal>),
}

impl Ringing {
    /// Whether the browser connection exists (it does unless deferred).
    pub fn made(&self) -> bool {
        !matches!(self, Ringing::Deferred(_))
    }

    /// The call was accepted at `now_ms`: what makes this connection an ordinary one. Effects
    /// go to `out`; for a deferred connection, the caller's signals held meanwhile are
    /// returned, to be handled (in order) after `create` has made it. A relay-only connection
    /// that is `up` widens [`WIDEN_AFTER_MS`] later; one that is not (it found no path through
    /// the relay) gathers every candidate at once, since only that may connect it.
    pub fn release(
        &mut self,
        now_ms: u64,
        up: bool,
        user_id: &str,
        create: impl FnOnce() -> Effect,
        out: &mut Vec<Effect>,
    ) -> Vec<Signal> {
        match std::mem::take(self) {
            Ringing::Open => Vec::new(),
            Ringing::RelayOnly if up => {
                *self = Ringing::Widening {
                    at_ms: now_ms + WIDEN_AFTER_MS,
                };
                Vec::new()
            }
            Ringing::RelayOnly => {
                widen(user_id, true, out);
                Vec::new()
            }
            widening @ Ringing::Widening { .. } => {
                *self = widening;
                Vec::new()
            }
            Ringing::Deferred(held) => {
                out.push(create());
                held
            }
        }
    }

    /// When this connection widens next (None: nothing to widen).
    pub fn widen_deadline(&self) -> Option<u64> {
        match self {
            Ringing::Widening { at_ms } => Some(*at_ms),
            _ => None,
        }
    }

    /// Widens this connection if its time has come: every candidate, gathered by an ICE
    /// restart of this side.
    pub fn widen_if_due(&mut self, now_ms: u64, user_id: &str, out: &mut Vec<Effect>) {
        if self.widen_deadline().is_some_and(|at_ms| now_ms >= at_ms) {
            *self = Ringing::Open;
            widen(user_id, true, out);
        }
    }

    /// Its link was interrupted before it widened: every candidate at once, so that the
    /// restarts bringing it back (the link's own) are free to find any path.
    pub fn widen_for_restarts(&mut self, user_id: &str, out: &mut Vec<Effect>) {
        if self.widen_deadline().is_some() {
            *self = Ringing::Open;
            widen(user_id, false, out);
        }
    }
}

/// Every candidate from now on for the connection to `user_id`, gathered by an ICE restart
/// if `restart`.
fn widen(user_id: &str, restart: bool, out: &mut Vec<Effect>) {
    out.push(Effect::AllowAllCandidates {
        user_id: user_id.to_owned(),
    });
    if restart {
        out.push(Effect::RestartIce {
            user_id: user_id.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(urls: &[&str]) -> IceServer {
        IceServer {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            username: None,
            credential: None,
        }
    }

    #[test]
    fn turn_and_turns_urls_are_relays_stun_is_not() {
        assert!(lists_relay(&[server(&["stun:s", "turn:t:3478"])]));
        assert!(lists_relay(&[server(&["TURNS:t:5349?transport=tcp"])]));
        assert!(!lists_relay(&[server(&["stun:turn.example.com"])]));
        assert!(!lists_relay(&[]));
    }

    #[test]
    fn the_apps_own_list_decides_when_it_set_one() {
        let turn = [server(&["turn:t"])];
        let mut policy = ConnectPolicy::default();
        assert!(policy.relay_available(&turn));
        policy.app_lists_relay = Some(false);
        assert!(!policy.relay_available(&turn));
        policy.app_lists_relay = Some(true);
        assert!(policy.relay_available(&[]));
    }
}
