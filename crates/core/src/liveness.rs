//! The call's side of its links' liveness ([`crate::health`]): one timer, `Timer::PeerHealth`,
//! armed for the earliest deadline of any interrupted link (or of an accepted relay-only one
//! due to widen, [`crate::privacy`]) and for nothing else, and the
//! participant whose link stayed interrupted too long leaving the call for us.
//!
//! Giving a participant up is local: its link may be dead while its signaling session is
//! fine, so the server still counts it in the call. It leaves the way a participant leaving
//! does (`USER_LEAVE`, its connection closed), after an `ERROR` 60009 that names it; if it was
//! the last one, the call ends through the one leave path and the server hears our hangup.
//! Whatever the server says about that participant afterwards finds nothing left to report.

use crate::active_call::ActiveCall;
use crate::event::AppEvent;
use crate::health::Verdict;
use crate::leave::{ended_by, Tell};
use crate::session::Session;
use crate::{code, Effect, SdkError, Timer};

impl Session {
    /// `Timer::PeerHealth` fired: widen and restart what is due, give up who waited too long.
    pub(crate) fn peer_health_due(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        // It fired, so it is no longer armed; the schedule after this input re-arms it.
        call.health_timer = None;
        let mut lost = Vec::new();
        for (user, peer) in &mut call.peers {
            peer.ringing.widen_if_due(now_ms, user, out);
            if peer.check_health(now_ms, user, out) == Verdict::GiveUp {
                lost.push(user.clone());
            }
        }
        for user in lost {
            self.give_up_on_peer(now_ms, &user, out);
        }
        self.sfu_health_due(now_ms, out);
    }

    /// The browser's network came back: every interrupted link restarts ICE at once.
    pub(crate) fn network_back(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        if let Some(call) = self.call.as_mut() {
            for (user, peer) in call.connections_mut() {
                peer.restart_now(now_ms, user, out);
            }
        }
    }

    /// Arms `Timer::PeerHealth` for the earliest deadline of any link, or stops it when no
    /// link is interrupted; nothing when that is already so.
    pub(crate) fn schedule_peer_health(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let due = call
            .connections()
            .flat_map(|(_, peer)| [peer.health_deadline(), peer.ringing.widen_deadline()])
            .flatten()
            .min();
        if due == call.health_timer {
            return;
        }
        call.health_timer = due;
        out.push(match due {
            Some(at) => Effect::StartTimer {
                timer: Timer::PeerHealth,
                after_ms: u32::try_from(at.saturating_sub(now_ms)).unwrap_or(u32::MAX),
            },
            None => Effect::CancelTimer(Timer::PeerHealth),
        });
    }

    /// The link to `user` stayed interrupted for `GIVE_UP_MS`: `user` leaves the call for us.
    fn give_up_on_peer(&mut self, now_ms: u64, user: &str, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(peer) = call.peers.get(user) else {
            return;
        };
        let msg = if peer.never_up() {
            format!("the media connection to {user} could not be established")
        } else {
            format!("the media connection to {user} was lost and could not be restored")
        };
        let error = AppEvent::Error {
            code: code::PEER_CONNECTION_FAILED,
            msg,
        };
        let leave = AppEvent::UserLeave {
            user_id: user.to_owned(),
        };
        // As when the last other member leaves, except that the server does not know: it
        // hears our hangup, which ends the call there too.
        let last = call.peers.len() == 1 && call.invitees.is_empty() && call.invites.is_empty();
        if last {
            let events = |call: &ActiveCall| {
                [error, leave]
                    .into_iter()
                    .chain(ended_by(call, user, now_ms))
                    .collect()
            };
            return self.end_call(Tell::Server, events, &lost_peer(user), out);
        }
        call.peers.remove(user);
        call.given_up.push(user.to_owned());
        out.push(Effect::Emit(error));
        out.push(Effect::Emit(leave));
        out.push(Effect::ClosePeer {
            user_id: user.to_owned(),
        });
    }
}

/// The reason promises still pending on a call are rejected when it ends for a lost link.
fn lost_peer(user: &str) -> SdkError {
    SdkError {
        code: Some(code::PEER_CONNECTION_FAILED),
        message: format!("the call ended: the media connection to {user} was lost"),
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::{Accepted, CallType, ClientMessage, InviteSent, MemberLeft};
    use calling_protocol::{RelayedSignal, ServerMessage, Signal};

    use super::*;
    use crate::session::CallStatus;
    use crate::{Command, Input, PeerEvent, PeerState};

    fn at(s: &mut Session, now_ms: u64, input: Input) -> Vec<Effect> {
        match s.handle(now_ms, input) {
            Ok(effects) => effects,
            Err(err) => panic!("refused: {err}"),
        }
    }

    fn server(message: ServerMessage) -> Input {
        Input::Server(message)
    }

    fn link(user: &str, state: PeerState) -> Input {
        Input::Peer {
            user_id: user.into(),
            event: PeerEvent::ConnectionState(state),
        }
    }

    /// alice called `users` (a group call if more than one) in room 3; each accepted and its
    /// connection is up.
    fn connected(users: &[&str]) -> Session {
        let mut s = Session::logged_in_as("alice");
        let user_ids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        let command = match users {
            [one] => Command::Call {
                user_id: one.to_string(),
                call_type: CallType::Audio,
            },
            _ => Command::GroupCall {
                user_ids: user_ids.clone(),
                call_type: CallType::Audio,
                group_id: None,
            },
        };
        at(
            &mut s,
            0,
            Input::Command {
                request: 1,
                command,
            },
        );
        at(
            &mut s,
            0,
            server(ServerMessage::InviteSent(InviteSent {
                request_id: 1,
                invite_id: "i".into(),
                room_id: 3,
                user_ids,
            })),
        );
        for user in users {
            at(
                &mut s,
                0,
                server(ServerMessage::Accepted(Accepted {
                    room_id: 3,
                    invite_id: "i".into(),
                    user_id: user.to_string(),
                })),
            );
            at(&mut s, 0, link(user, PeerState::Connected));
        }
        s
    }

    fn health_timer(effects: &[Effect]) -> Vec<&Effect> {
        effects
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Effect::StartTimer {
                        timer: Timer::PeerHealth,
                        ..
                    } | Effect::CancelTimer(Timer::PeerHealth)
                )
            })
            .collect()
    }

    fn start(after_ms: u32) -> Effect {
        Effect::StartTimer {
            timer: Timer::PeerHealth,
            after_ms,
        }
    }

    const TICK: Input = Input::Timer(Timer::PeerHealth);

    /// bob's link drops at 1 s and stays down until `until_ms`; the timer fires at every
    /// deadline it is armed for. Returns the last effects.
    fn down_until(s: &mut Session, until_ms: u64) -> Vec<Effect> {
        let mut fx = at(s, 1_000, link("bob", PeerState::Disconnected));
        let mut now = 1_000;
        loop {
            let Some(Effect::StartTimer { after_ms, .. }) = health_timer(&fx).last() else {
                return fx;
            };
            now += u64::from(*after_ms);
            if now > until_ms {
                return fx;
            }
            fx = at(s, now, TICK);
        }
    }

    #[test]
    fn the_timer_is_armed_for_the_next_deadline_only_while_a_link_is_interrupted() {
        let mut s = connected(&["bob"]);
        let fx = at(&mut s, 1_000, link("bob", PeerState::Disconnected));
        assert_eq!(health_timer(&fx), vec![&start(2_000)]);
        let fx = at(&mut s, 1_500, link("bob", PeerState::Disconnected));
        assert_eq!(health_timer(&fx), Vec::<&Effect>::new(), "armed already");
        let fx = at(&mut s, 3_000, TICK);
        assert_eq!(
            fx,
            vec![
                Effect::RestartIce {
                    user_id: "bob".into()
                },
                start(3_000),
            ]
        );
        let fx = at(&mut s, 3_400, link("bob", PeerState::Connected));
        assert_eq!(
            fx,
            vec![
                Effect::Emit(AppEvent::PeerMediaRestored {
                    user_id: "bob".into()
                }),
                Effect::RequestKeyFrame {
                    user_id: "bob".into()
                },
                Effect::CancelTimer(Timer::PeerHealth),
            ]
        );
        assert_eq!(at(&mut s, 8_000, TICK), vec![], "a late tick finds nothing");
    }

    #[test]
    fn the_timer_stops_with_the_call() {
        let mut s = connected(&["bob"]);
        at(&mut s, 1_000, link("bob", PeerState::Disconnected));
        let fx = at(
            &mut s,
            1_200,
            Input::Command {
                request: 5,
                command: Command::Hangup,
            },
        );
        assert_eq!(
            health_timer(&fx),
            vec![&Effect::CancelTimer(Timer::PeerHealth)]
        );
        assert_eq!(at(&mut s, 3_000, TICK), vec![]);
    }

    #[test]
    fn the_last_participant_given_up_ends_the_call_telling_the_server_first() {
        let mut s = connected(&["bob"]);
        let before = down_until(&mut s, 30_999);
        assert_eq!(s.status(), CallStatus::Connected, "{before:?}");
        let fx = at(&mut s, 31_000, TICK);
        assert_eq!(
            fx,
            vec![
                Effect::Send(ClientMessage::Hangup { room_id: 3 }),
                Effect::Emit(AppEvent::Error {
                    code: code::PEER_CONNECTION_FAILED,
                    msg: "the media connection to bob was lost and could not be restored".into(),
                }),
                Effect::Emit(AppEvent::UserLeave {
                    user_id: "bob".into()
                }),
                Effect::Emit(AppEvent::CallEnd {
                    user_id: "bob".into(),
                    call_end: 31
                }),
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
                Effect::CloseMedia {
                    audio: true,
                    video: true
                },
                Effect::CancelTimer(Timer::VoiceVolume),
                Effect::RemoveViews,
            ]
        );
        assert_eq!(s.status(), CallStatus::Idle);
        let late = server(ServerMessage::MemberLeft(MemberLeft {
            room_id: 3,
            user_id: "bob".into(),
        }));
        assert_eq!(
            at(&mut s, 31_100, late),
            vec![],
            "the server's word comes late"
        );
    }

    #[test]
    fn one_participant_given_up_leaves_a_group_call_that_goes_on() {
        let mut s = connected(&["bob", "carol"]);
        down_until(&mut s, 30_999);
        let fx = at(&mut s, 31_000, TICK);
        assert_eq!(
            fx,
            vec![
                Effect::Emit(AppEvent::Error {
                    code: code::PEER_CONNECTION_FAILED,
                    msg: "the media connection to bob was lost and could not be restored".into(),
                }),
                Effect::Emit(AppEvent::UserLeave {
                    user_id: "bob".into()
                }),
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
            ],
            "no hangup, no timer left"
        );
        assert_eq!(s.status(), CallStatus::Connected);
        // bob is still in the call at the server: what he sends finds no link to revive.
        let offer = server(ServerMessage::Signal(RelayedSignal {
            room_id: 3,
            from: "bob".into(),
            signal: Signal::Offer { sdp: "o".into() },
        }));
        assert_eq!(at(&mut s, 31_100, offer), vec![]);
        let left = server(ServerMessage::MemberLeft(MemberLeft {
            room_id: 3,
            user_id: "bob".into(),
        }));
        assert_eq!(at(&mut s, 31_200, left), vec![], "no second USER_LEAVE");
        // carol's link is as it was.
        let fx = at(&mut s, 32_000, link("carol", PeerState::Disconnected));
        assert_eq!(
            fx,
            vec![
                Effect::Emit(AppEvent::PeerMediaInterrupted {
                    user_id: "carol".into()
                }),
                start(2_000),
            ]
        );
    }
    #[test]
    fn the_last_member_we_reach_leaving_a_split_group_call_ends_it_with_our_hangup() {
        let mut s = connected(&["bob", "carol"]);
        down_until(&mut s, 31_000);
        let left = server(ServerMessage::MemberLeft(MemberLeft {
            room_id: 3,
            user_id: "carol".into(),
        }));
        let fx = at(&mut s, 40_000, left);
        // The server still counts bob in the call, so it would not end it for us.
        assert_eq!(
            fx[..3],
            [
                Effect::Send(ClientMessage::Hangup { room_id: 3 }),
                Effect::Emit(AppEvent::UserLeave {
                    user_id: "carol".into()
                }),
                Effect::Emit(AppEvent::CallEnd {
                    user_id: "carol".into(),
                    call_end: 40
                }),
            ],
            "{fx:?}"
        );
        assert_eq!(s.status(), CallStatus::Idle);
    }
}
