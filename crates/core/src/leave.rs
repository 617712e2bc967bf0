//! Leaving the call in progress, whichever way it ends: one function, one order.
//!
//! Every way a call ends (hangup, logout, reject, a failed accept, the other side leaving or
//! declining, the server ending it or refusing it, a cancelled or timed-out invitation, kick-out,
//! the signaling connection lost, a session that could not be resumed) goes through [`Session::end_call`], which does, in order:
//! 1. tell the server we leave, when it has to hear it from us;
//! 2. let the app hear how the call ended (`CALL_END` and friends): the line is already idle,
//!    so a listener may call again at once;
//! 3. release: reject every promise still waiting on the call, close the connections, stop
//!    the devices and remove the elements the SDK made. Releasing takes the browser
//!    milliseconds, which must not delay what the app hears.

use crate::active_call::{ActiveCall, Phase};
use crate::effect::{Effect, SdkError};
use crate::event::AppEvent;
use crate::session::Session;

/// Whether the server must hear from us that we leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tell {
    /// We leave on our own (hangup, logout, reject, our devices failed): send `hangup` or
    /// `reject`, or, for a request it has not answered yet, hang up when it does.
    Server,
    /// The server already took us out (the call ended there, we were kicked, the socket is
    /// gone), so there is nobody to tell.
    Nobody,
}

impl Session {
    /// Ends the call in progress (see the module doc); nothing when the line is idle.
    /// `events` are what the app hears about the ending, given the call as it was.
    pub(crate) fn end_call(
        &mut self,
        tell: Tell,
        events: impl FnOnce(&ActiveCall) -> Vec<AppEvent>,
        reason: &SdkError,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.take_call() else { return };
        if tell == Tell::Server {
            out.extend(call.leave_message().map(Effect::Send));
            self.abandoned.extend(call.joining_requests());
        }
        out.extend(events(&call).into_iter().map(Effect::Emit));
        call.release(reason, out);
    }

    /// We leave the call ourselves (`hangup()`, `logout()`, our devices failed): as callee
    /// still ringing that declines the invitation; `CALL_END` (naming us) when it was connected.
    pub(crate) fn leave(&mut self, now_ms: u64, reason: &SdkError, out: &mut Vec<Effect>) {
        self.leave_saying(now_ms, None, reason, out);
    }

    /// [`Session::leave`], the app first hearing `why` (an `ERROR` that made us leave).
    pub(crate) fn leave_saying(
        &mut self,
        now_ms: u64,
        why: Option<AppEvent>,
        reason: &SdkError,
        out: &mut Vec<Effect>,
    ) {
        let Some(me) = self.me() else { return };
        let ended =
            |call: &ActiveCall| why.into_iter().chain(ended_by(call, &me, now_ms)).collect();
        self.end_call(Tell::Server, ended, reason, out);
    }

    /// The callee declines the invitation ringing here (`reject()`, `hangup()`, or its
    /// devices failed before it joined): the app already knows, so it hears nothing.
    pub(crate) fn decline_invitation(&mut self, reason: &SdkError, out: &mut Vec<Effect>) {
        self.end_call(Tell::Server, |_| Vec::new(), reason, out);
    }
}

/// The reason promises still pending on a call are rejected when the app leaves it.
pub(crate) fn left(how: &str) -> SdkError {
    SdkError {
        code: None,
        message: format!("the call was left by {how} before this finished"),
    }
}

/// `CALL_END` naming `user` for a connected call (nothing when it never connected).
pub(crate) fn ended_by(call: &ActiveCall, user: &str, now_ms: u64) -> Option<AppEvent> {
    call.is_connected().then(|| AppEvent::CallEnd {
        user_id: user.to_owned(),
        call_end: call.connected_secs(now_ms),
    })
}

/// What the app hears when the call ends under it without a word from the server (the
/// signaling connection is gone): a ringing invitation was withdrawn, a call ended.
pub(crate) fn lost_events(call: &ActiveCall, me: &str, now_ms: u64) -> Vec<AppEvent> {
    match &call.phase {
        Phase::Incoming {
            invite_id, sponsor, ..
        } => vec![AppEvent::CallingCancel {
            invite_id: invite_id.clone(),
            sponsor: sponsor.clone(),
        }],
        Phase::Outgoing | Phase::Connected { .. } => {
            ended_by(call, me, now_ms).into_iter().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every way a call ends, each pinned to the one order: the server hears first, then the
    //! app, then everything is released, and nothing of the call is left.

    use calling_protocol::{
        Accepted, CallEnded, Cancelled, InviteSent, InviteTimeout, Invited, LoginOk, MemberLeft,
        Rejected,
    };
    use calling_protocol::{CallType, ClientMessage, EndReason, ServerMessage};

    use super::*;
    use crate::effect::{code, Reply};
    use crate::input::{Command, Input, MediaOutcome, RequestId};
    use crate::link::Link;
    use crate::session::CallStatus;

    fn command(request: RequestId, command: Command) -> Input {
        Input::Command { request, command }
    }

    fn server(message: ServerMessage) -> Input {
        Input::Server(message)
    }

    /// alice called bob; the invitation rings in room 3 and alice's media is open.
    fn calling() -> Session {
        let mut s = dialing();
        s.ok(Input::Media {
            token: 0,
            outcome: MediaOutcome::Opened {
                audio: true,
                video: true,
            },
        });
        s
    }

    /// As `calling`, with alice's devices still opening.
    fn dialing() -> Session {
        let mut s = Session::logged_in_as("alice");
        s.ok(command(
            1,
            Command::Call {
                user_id: "bob".into(),
                call_type: CallType::Video,
            },
        ));
        s.ok(server(ServerMessage::InviteSent(InviteSent {
            request_id: 1,
            invite_id: "i".into(),
            room_id: 3,
            user_ids: vec!["bob".into()],
        })));
        s
    }

    /// bob accepted alice's call 2 s after `calling`; a switch to audio (request 9) waits for
    /// bob's answer, so one app promise is pending when the call ends.
    fn connected() -> Session {
        let mut s = calling();
        s.ok(server(ServerMessage::Accepted(Accepted {
            room_id: 3,
            invite_id: "i".into(),
            user_id: "bob".into(),
        })));
        if let Some(link) = s.call.as_mut().and_then(|c| c.peers.get_mut("bob")) {
            link.link = Link::Up;
        }
        s.ok(command(9, Command::SwitchToAudio));
        s
    }

    /// bob's invitation rings at alice's.
    fn ringing() -> Session {
        let mut s = Session::logged_in_as("alice");
        s.ok(server(ServerMessage::Invited(Invited {
            invite_id: "i".into(),
            room_id: 3,
            sponsor: "bob".into(),
            user_ids: vec!["alice".into()],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
        })));
        s
    }

    /// alice accepted (request 2); her devices are still opening.
    fn accepting() -> Session {
        let mut s = ringing();
        s.ok(command(2, Command::Accept));
        s
    }

    fn failure(code: u32) -> Input {
        Input::Media {
            token: 0,
            outcome: MediaOutcome::Failed(SdkError {
                code: Some(code),
                message: "no device".into(),
            }),
        }
    }

    struct Path {
        name: &'static str,
        start: fn() -> Session,
        input: Input,
        /// What the server hears from us, if anything.
        tells: Option<ClientMessage>,
        /// What the app hears about the call ending, in order.
        hears: Vec<AppEvent>,
        /// Local media was opened, so it must be released.
        media: bool,
    }

    fn call_end(user: &str, secs: u32) -> AppEvent {
        AppEvent::CallEnd {
            user_id: user.into(),
            call_end: secs,
        }
    }

    fn paths() -> Vec<Path> {
        let hangup = Some(ClientMessage::Hangup { room_id: 3 });
        let reject = Some(ClientMessage::Reject {
            invite_id: "i".into(),
        });
        let cancel = AppEvent::CallingCancel {
            invite_id: "i".into(),
            sponsor: "bob".into(),
        };
        vec![
            Path {
                name: "hangup() connected",
                start: connected,
                input: command(20, Command::Hangup),
                tells: hangup.clone(),
                hears: vec![call_end("alice", 0)],
                media: true,
            },
            Path {
                name: "hangup() while our invitation rings",
                start: calling,
                input: command(20, Command::Hangup),
                tells: hangup.clone(),
                hears: vec![],
                media: true,
            },
            Path {
                name: "hangup() while ringing here",
                start: ringing,
                input: command(20, Command::Hangup),
                tells: reject.clone(),
                hears: vec![],
                media: false,
            },
            Path {
                name: "logout() connected",
                start: connected,
                input: command(20, Command::Logout),
                tells: hangup.clone(),
                hears: vec![call_end("alice", 0)],
                media: true,
            },
            Path {
                name: "reject()",
                start: ringing,
                input: command(20, Command::Reject),
                tells: reject.clone(),
                hears: vec![],
                media: false,
            },
            Path {
                name: "accept() whose devices failed",
                start: accepting,
                input: failure(code::NO_CAMERA),
                tells: None, // `Accept` is out: the server's `Joined` is answered by a hangup
                hears: vec![],
                media: true,
            },
            Path {
                name: "our devices failed at call()",
                start: dialing,
                input: failure(code::MEDIA_DENIED),
                tells: hangup.clone(),
                hears: vec![AppEvent::Error {
                    code: code::MEDIA_DENIED,
                    msg: "no device".into(),
                }],
                media: true,
            },
            Path {
                name: "the other side hung up",
                start: connected,
                input: server(ServerMessage::MemberLeft(MemberLeft {
                    room_id: 3,
                    user_id: "bob".into(),
                })),
                tells: None,
                hears: vec![
                    AppEvent::UserLeave {
                        user_id: "bob".into(),
                    },
                    call_end("bob", 0),
                ],
                media: true,
            },
            Path {
                name: "the server ended the call",
                start: connected,
                input: server(ServerMessage::CallEnded(CallEnded {
                    room_id: 3,
                    user_id: "bob".into(),
                    duration_secs: 5,
                    reason: EndReason::Hangup,
                })),
                tells: None,
                hears: vec![call_end("bob", 5)],
                media: true,
            },
            Path {
                name: "the invitee declined",
                start: calling,
                input: server(ServerMessage::Rejected(Rejected {
                    room_id: 3,
                    invite_id: "i".into(),
                    user_id: "bob".into(),
                })),
                tells: None,
                hears: vec![AppEvent::Reject {
                    user_id: "bob".into(),
                }],
                media: true,
            },
            Path {
                name: "the caller cancelled",
                start: ringing,
                input: server(ServerMessage::Cancelled(Cancelled {
                    room_id: 3,
                    invite_id: "i".into(),
                    sponsor: "bob".into(),
                })),
                tells: None,
                hears: vec![cancel.clone()],
                media: false,
            },
            Path {
                name: "the invitation timed out",
                start: ringing,
                input: server(ServerMessage::InviteTimeout(InviteTimeout {
                    room_id: 3,
                    invite_id: "i".into(),
                    sponsor: "bob".into(),
                })),
                tells: None,
                hears: vec![
                    AppEvent::CallingTimeout {
                        invite_id: "i".into(),
                        sponsor: "bob".into(),
                    },
                    call_end("alice", 0),
                ],
                media: false,
            },
            Path {
                name: "kicked out",
                start: connected,
                input: server(ServerMessage::Kicked),
                tells: None,
                hears: vec![],
                media: true,
            },
            Path {
                name: "signaling lost, connected",
                start: connected,
                input: Input::SignalingClosed,
                tells: None,
                hears: vec![call_end("alice", 0)],
                media: true,
            },
            Path {
                name: "signaling lost while ringing here",
                start: ringing,
                input: Input::SignalingClosed,
                tells: None,
                hears: vec![cancel],
                media: false,
            },
        ]
    }

    fn is_release(effect: &Effect) -> bool {
        matches!(
            effect,
            Effect::ClosePeer { .. } | Effect::CloseMedia { .. } | Effect::Reject { .. }
        )
    }

    #[test]
    fn every_way_out_tells_the_server_then_the_app_then_releases_everything() {
        for path in paths() {
            let name = path.name;
            let mut s = (path.start)();
            let pending: Vec<RequestId> = s
                .call
                .as_ref()
                .map(|c| c.pending_requests())
                .unwrap_or_default();
            let fx = s.ok(path.input);
            assert_eq!(s.status(), CallStatus::Idle, "{name}: {fx:?}");

            let sent: Vec<&ClientMessage> = fx
                .iter()
                .filter_map(|e| match e {
                    Effect::Send(
                        m @ (ClientMessage::Hangup { .. } | ClientMessage::Reject { .. }),
                    ) => Some(m),
                    _ => None,
                })
                .collect();
            assert_eq!(
                sent,
                path.tells.iter().collect::<Vec<_>>(),
                "{name}: {fx:?}"
            );

            let first_release = fx.iter().position(is_release);
            let first_release =
                first_release.unwrap_or_else(|| panic!("{name}: no release {fx:?}"));
            let heard: Vec<&AppEvent> = fx[..first_release]
                .iter()
                .filter_map(|e| match e {
                    Effect::Emit(event) => Some(event),
                    _ => None,
                })
                .collect();
            assert_eq!(
                heard,
                path.hears.iter().collect::<Vec<_>>(),
                "{name}: {fx:?}"
            );
            let told = fx.iter().position(|e| matches!(e, Effect::Send(_)));
            let first_heard = fx.iter().position(|e| matches!(e, Effect::Emit(_)));
            if let (Some(told), Some(heard)) = (told, first_heard) {
                assert!(told < heard, "{name}: the server hears first: {fx:?}");
            }

            let released = &fx[first_release..];
            assert!(
                released.contains(&Effect::ClosePeer {
                    user_id: "bob".into()
                }),
                "{name}: {fx:?}"
            );
            let media = Effect::CloseMedia {
                audio: true,
                video: true,
            };
            assert_eq!(released.contains(&media), path.media, "{name}: {fx:?}");
            for request in pending {
                assert!(
                    released
                        .iter()
                        .any(|e| matches!(e, Effect::Reject { request: r, .. } if *r == request)),
                    "{name}: promise {request} left pending: {fx:?}"
                );
            }
            // The call's events all come before the release; only session events may follow.
            assert!(
                released.iter().all(|e| !matches!(
                    e,
                    Effect::Emit(
                        AppEvent::CallEnd { .. }
                            | AppEvent::UserLeave { .. }
                            | AppEvent::Reject { .. }
                            | AppEvent::CallingCancel { .. }
                            | AppEvent::CallingTimeout { .. }
                    )
                )),
                "{name}: {fx:?}"
            );
        }
    }

    #[test]
    fn cleanup_resolves_in_every_state() {
        let ok = Reply::Ok { code: 0 };
        let idle = Reply::OkMsg {
            code: 0,
            msg: "ok".into(),
        };
        let resolved = |fx: &[Effect], request: RequestId| {
            fx.iter().find_map(|e| match e {
                Effect::Resolve { request: r, reply } if *r == request => Some(reply.clone()),
                _ => None,
            })
        };
        // Before login, twice in a row, and after a kick-out.
        let mut s = Session::new();
        for request in [1, 2] {
            let fx = s.ok(command(request, Command::Hangup));
            assert_eq!(resolved(&fx, request), Some(idle.clone()), "{fx:?}");
        }
        for request in [3, 4] {
            let fx = s.ok(command(request, Command::Logout));
            assert_eq!(resolved(&fx, request), Some(ok.clone()), "{fx:?}");
        }
        let mut kicked = connected();
        kicked.ok(server(ServerMessage::Kicked));
        let fx = kicked.ok(command(5, Command::Logout));
        assert_eq!(resolved(&fx, 5), Some(ok.clone()), "{fx:?}");
        let fx = kicked.ok(command(6, Command::Hangup));
        assert_eq!(resolved(&fx, 6), Some(idle), "{fx:?}");

        // A logout while the server has not answered the login refuses that login.
        let mut s = Session::new();
        s.ok(command(
            7,
            Command::Login {
                sdk_app_id: 1,
                user_id: "alice".into(),
                user_sig: "sig".into(),
            },
        ));
        let fx = s.ok(command(8, Command::Logout));
        assert!(
            matches!(fx.first(), Some(Effect::Reject { request: 7, .. })),
            "{fx:?}"
        );
        assert_eq!(resolved(&fx, 8), Some(ok), "{fx:?}");
        assert!(fx.contains(&Effect::Disconnect), "{fx:?}");
        assert_eq!(s.user_id(), None);
        let late = s.ok(server(ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: vec![],
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: false,
        })));
        assert_eq!(late, vec![], "a login answer after logout changes nothing");
    }
}
