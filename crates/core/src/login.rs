//! The signaling session: login, the heartbeat, logout, and losing the session (socket closed,
//! kicked out by a login elsewhere). Losing the session leaves any call locally, because the
//! server has already taken us out of it.

use calling_protocol::{
    ClientMessage, ErrorCode, ErrorReply, LoginOk, ServerMessage, PING_INTERVAL_SECS,
    PROTOCOL_VERSION,
};

use crate::active_call::{ActiveCall, Answer, Phase};
use crate::event::AppEvent;
use crate::leave::{left, lost_events, Tell};
use crate::reconnect::Credentials;
use crate::session::{CallError, Login, Session};
use crate::{code, Effect, LoginData, Reply, RequestId, SdkError, Timer};

/// SPEC §3: the userID rule of the whole system, [`calling_protocol::user_id`].
pub(crate) fn check_user_id(user_id: &str) -> Result<(), CallError> {
    if calling_protocol::user_id::is_valid(user_id) {
        Ok(())
    } else {
        Err(CallError::InvalidParam(format!(
            "invalid userID '{user_id}': use {}",
            calling_protocol::user_id::RULE
        )))
    }
}

/// A server error as the app sees it: parameter errors carry SPEC's 65535, the rest no code.
pub(crate) fn server_error(code: ErrorCode, message: String) -> SdkError {
    let code = match code {
        ErrorCode::InvalidParam | ErrorCode::InvalidUserId => Some(code::INVALID_PARAM),
        _ => None,
    };
    SdkError { code, message }
}

/// `login` for `user_id`, always asking for a resumable session (a server that does not offer
/// one ignores the request).
pub(crate) fn login_message(credentials: &Credentials, user_id: &str) -> ClientMessage {
    ClientMessage::Login {
        sdk_app_id: credentials.sdk_app_id,
        user_id: user_id.to_owned(),
        user_sig: credentials.user_sig.clone(),
        protocol_version: PROTOCOL_VERSION,
        resumable: true,
    }
}

pub(crate) fn heartbeat_timer() -> Effect {
    Effect::StartTimer {
        timer: Timer::Heartbeat,
        after_ms: PING_INTERVAL_SECS * 1000,
    }
}

impl Session {
    pub(crate) fn login(
        &mut self,
        request: RequestId,
        sdk_app_id: u64,
        user_id: String,
        user_sig: String,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        if self.login != Login::LoggedOut {
            return Err(CallError::AlreadyLoggedIn);
        }
        check_user_id(&user_id)?;
        let credentials = Credentials {
            sdk_app_id,
            user_sig,
        };
        out.push(Effect::Send(login_message(&credentials, &user_id)));
        // Kept for logging in again on our own when the session cannot be resumed.
        self.resumption.credentials = Some(credentials);
        self.login = Login::LoggingIn { request, user_id };
        Ok(())
    }

    /// The server's answer to `Login`.
    pub(crate) fn login_answer(&mut self, message: ServerMessage, out: &mut Vec<Effect>) {
        let Login::LoggingIn { request, user_id } = &self.login else {
            return;
        };
        let request = *request;
        match message {
            ServerMessage::LoginOk(LoginOk {
                ice_servers,
                resume,
                sfu,
                ..
            }) => {
                // The server names the session by the id we asked for; ours is authoritative.
                let user_id = user_id.clone();
                self.ice_servers = ice_servers;
                self.sfu_available = sfu;
                self.resumption.begin(resume);
                out.push(Effect::Resolve {
                    request,
                    reply: Reply::Login {
                        code: 0,
                        data: LoginData {
                            user_id: user_id.clone(),
                        },
                    },
                });
                out.push(Effect::Emit(AppEvent::SdkReady {
                    user_id: user_id.clone(),
                }));
                out.push(heartbeat_timer());
                self.login = Login::LoggedIn { user_id };
            }
            ServerMessage::Error(ErrorReply { message, .. }) => {
                out.push(Effect::Reject {
                    request,
                    error: SdkError {
                        code: None,
                        message,
                    },
                });
                self.login = Login::LoggedOut;
                self.resumption.reset();
            }
            _ => {}
        }
    }

    pub(crate) fn heartbeat(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        // A timer that fired just as the socket was lost: no pings until it is back.
        if let (Login::LoggedIn { .. }, false) = (&self.login, self.resumption.is_lost()) {
            if self.resumption.silent_too_long() {
                return self.socket_dead(now_ms, out);
            }
            self.resumption.pinged();
            out.push(Effect::Send(ClientMessage::Ping));
            out.push(heartbeat_timer());
        }
    }

    /// `logout()`, which resolves `{code: 0}` in every state: a call in progress is left as by
    /// `hangup()`, a login still waiting for the server is refused, and the socket closes.
    pub(crate) fn logout(&mut self, now_ms: u64, request: RequestId, out: &mut Vec<Effect>) {
        let farewell = self.farewell();
        match &self.login {
            Login::LoggedIn { .. } => {
                self.leave(now_ms, &left("logout()"), out);
                out.push(Effect::Send(ClientMessage::Logout));
            }
            Login::LoggingIn { request: login, .. } => out.push(Effect::Reject {
                request: *login,
                error: SdkError {
                    code: None,
                    message: "logout() was called before login finished".into(),
                },
            }),
            Login::LoggedOut => {}
        }
        self.end_session(out);
        out.push(Effect::Disconnect);
        out.extend(farewell.map(|resume| Effect::Farewell(vec![resume, ClientMessage::Logout])));
        out.push(Effect::Resolve {
            request,
            reply: Reply::Ok { code: 0 },
        });
    }

    /// The socket closed without us asking (the glue has stopped using it). A resumable
    /// session reconnects (see `reconnect`); otherwise the session ends here.
    pub(crate) fn signaling_closed(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        if self.me().is_some() && self.reconnect_on_close(now_ms, out) {
            return;
        }
        let reason = SdkError {
            code: Some(code::SIGNALING_LOST),
            message: "signaling connection lost".into(),
        };
        match std::mem::take(&mut self.login) {
            Login::LoggedOut => {}
            Login::LoggingIn { request, .. } => {
                out.push(Effect::Reject {
                    request,
                    error: SdkError {
                        code: None,
                        message: "the signaling server closed the connection before login finished"
                            .into(),
                    },
                });
                out.push(Effect::Disconnect);
            }
            Login::LoggedIn { user_id } => {
                // The login state was taken above; the call goes as if the server ended it.
                let lost = |call: &ActiveCall| lost_events(call, &user_id, now_ms);
                self.end_call(Tell::Nobody, lost, &reason, out);
                self.end_session(out);
                // The socket is gone; dropping it lets a later login open a new one.
                out.push(Effect::Disconnect);
                out.push(Effect::Emit(AppEvent::Error {
                    code: code::SIGNALING_LOST,
                    msg: reason.message,
                }));
            }
        }
    }

    /// The same user logged in elsewhere; the server already took us out of any call.
    pub(crate) fn kicked(&mut self, out: &mut Vec<Effect>) {
        let reason = left("a login elsewhere (kicked out)");
        self.end_call(Tell::Nobody, |_| Vec::new(), &reason, out);
        self.end_session(out);
        out.push(Effect::Emit(AppEvent::KickedOut {}));
        out.push(Effect::Disconnect);
    }

    pub(crate) fn end_session(&mut self, out: &mut Vec<Effect>) {
        out.push(Effect::CancelTimer(Timer::Heartbeat));
        if self.resumption.is_lost() {
            out.push(Effect::CancelTimer(Timer::Reconnect));
        }
        self.resumption.reset();
        self.login = Login::LoggedOut;
        self.take_call();
        self.abandoned.clear();
    }

    /// The server refused the request `request` (an `Invite` or `Accept`).
    pub(crate) fn request_failed(
        &mut self,
        request: RequestId,
        code: ErrorCode,
        message: String,
        out: &mut Vec<Effect>,
    ) {
        if let Some(i) = self.abandoned.iter().position(|r| *r == request) {
            self.abandoned.remove(i);
            return;
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let error = server_error(code, message);
        let is_accept = matches!(
            &call.phase,
            Phase::Incoming { answer: Answer::Joining { request: r }, .. } if *r == request
        );
        let invite = call.invites.iter().position(|i| i.request == request);
        let call_over = is_accept || (invite.is_some() && call.room_id.is_none());
        if call_over {
            // The call never came to be (first invitation refused, or the invitation we
            // accepted ended meanwhile): back to idle, rejecting that promise with the reason.
            self.end_call(Tell::Nobody, |_| Vec::new(), &error, out);
        } else if let Some(i) = invite {
            call.invites.remove(i);
            out.push(Effect::Reject { request, error });
        }
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::{CallType, Signal};
    use calling_protocol::{InviteSent, Invited, RelayedSignal};

    use super::*;
    use crate::{Command, Input};

    #[test]
    fn user_ids_follow_the_protocol_rule() {
        for good in ["a", "Z9", "a-b_c", "007"] {
            assert_eq!(check_user_id(good), Ok(()), "{good}");
        }
        let too_long = "x".repeat(calling_protocol::user_id::MAX_LEN + 1);
        for bad in ["", " a", "a b", "a.b", "a@b", "é", "a/b", &too_long] {
            assert!(
                matches!(check_user_id(bad), Err(CallError::InvalidParam(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parameter_errors_from_the_server_carry_65535() {
        assert_eq!(
            server_error(ErrorCode::InvalidParam, "x".into()).code,
            Some(65535)
        );
        assert_eq!(
            server_error(ErrorCode::InvalidUserId, "x".into()).code,
            Some(65535)
        );
        assert_eq!(server_error(ErrorCode::Busy, "x".into()).code, None);
    }

    #[test]
    fn heartbeat_pings_and_rearms_only_when_logged_in() {
        let mut call = Session::logged_in_as("alice");
        assert_eq!(
            call.ok(Input::Timer(Timer::Heartbeat)),
            vec![Effect::Send(ClientMessage::Ping), heartbeat_timer()]
        );
        assert_eq!(Session::new().ok(Input::Timer(Timer::Heartbeat)), vec![]);
    }

    #[test]
    fn logout_leaves_the_call_then_closes_the_session() {
        let mut call = Session::logged_in_as("alice");
        call.ok(Input::Command {
            request: 1,
            command: Command::Call {
                user_id: "bob".into(),
                call_type: CallType::Audio,
            },
        });
        call.ok(Input::Server(ServerMessage::InviteSent(InviteSent {
            request_id: 1,
            invite_id: "i".into(),
            room_id: 3,
            user_ids: vec!["bob".into()],
        })));
        let fx = call.ok(Input::Command {
            request: 2,
            command: Command::Logout,
        });
        assert_eq!(
            fx,
            vec![
                Effect::Send(ClientMessage::Hangup { room_id: 3 }),
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
                Effect::CloseMedia {
                    audio: true,
                    video: true
                },
                Effect::RemoveViews,
                Effect::Send(ClientMessage::Logout),
                Effect::CancelTimer(Timer::Heartbeat),
                Effect::Disconnect,
                Effect::Resolve {
                    request: 2,
                    reply: Reply::Ok { code: 0 }
                },
            ]
        );
        assert_eq!(call.user_id(), None);
        assert_eq!(call.room_id(), None);
    }

    #[test]
    fn kick_out_closes_locally_without_telling_the_server() {
        let mut call = Session::logged_in_as("alice");
        call.ok(Input::Server(ServerMessage::Invited(Invited {
            invite_id: "i".into(),
            room_id: 3,
            sponsor: "bob".into(),
            user_ids: vec!["alice".into()],
            call_type: CallType::Audio,
            is_group: false,
            group_id: None,
        })));
        let fx = call.ok(Input::Server(ServerMessage::Kicked));
        assert_eq!(
            fx,
            vec![
                Effect::ClosePeer {
                    user_id: "bob".into()
                },
                Effect::RemoveViews,
                Effect::CancelTimer(Timer::Heartbeat),
                Effect::Emit(AppEvent::KickedOut {}),
                Effect::Disconnect
            ]
        );
        assert_eq!(call.user_id(), None);
        let after = Input::Server(ServerMessage::Signal(RelayedSignal {
            room_id: 3,
            from: "bob".into(),
            signal: Signal::Media {
                audio: true,
                video: true,
            },
        }));
        assert_eq!(call.ok(after), vec![]);
    }
}
