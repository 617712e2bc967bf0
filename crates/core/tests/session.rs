//! The signaling session: login, heartbeat, refusals before login, server errors for requests.

mod support;

use calling_core::{
    AppEvent, CallError, CallStatus, Command, Effect, Input, Reply, SdkError, Session, Timer,
};
use calling_protocol::{
    CallType, ClientMessage, ErrorCode, ErrorReply, LoginOk, ServerMessage, PROTOCOL_VERSION,
};
use support::*;

#[test]
fn login_resolves_emits_ready_and_starts_the_heartbeat() {
    let mut w = World::new();
    let a = w.client("alice");
    let r = w.command(a, login("alice"));
    w.run();
    assert_eq!(
        w.reply(a, r),
        Some(&Ok(Reply::Login {
            code: 0,
            data: calling_core::LoginData {
                user_id: "alice".into()
            }
        }))
    );
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::SdkReady {
            user_id: "alice".into()
        }]
    );
    assert_eq!(w.clients[a].call.user_id(), Some("alice"));
    assert_eq!(
        w.server.received[&a][0],
        ClientMessage::Login {
            sdk_app_id: 1_400_000_000,
            user_id: "alice".into(),
            user_sig: "sig".into(),
            protocol_version: PROTOCOL_VERSION,
            resumable: true,
        }
    );
    w.fire(a, Timer::Heartbeat);
    w.fire(a, Timer::Heartbeat);
    let pings = w.server.received[&a]
        .iter()
        .filter(|m| **m == ClientMessage::Ping)
        .count();
    assert_eq!(pings, 2);
    assert!(
        w.clients[a].timers.contains(&Timer::Heartbeat),
        "the heartbeat re-arms"
    );
}

#[test]
fn heartbeat_interval_is_the_protocol_ping_interval() {
    let mut c = Session::new();
    let login_cmd = Input::Command {
        request: 1,
        command: login("alice"),
    };
    c.handle(0, login_cmd).expect("login");
    let fx = c
        .handle(
            0,
            Input::Server(ServerMessage::LoginOk(LoginOk {
                user_id: "alice".into(),
                ice_servers: vec![],
                ring_timeout_secs: 30,
                heartbeat_timeout_secs: 10,
                resume: None,
                sfu: false,
            })),
        )
        .expect("login ok");
    assert_eq!(
        fx.last(),
        Some(&Effect::StartTimer {
            timer: Timer::Heartbeat,
            after_ms: calling_protocol::PING_INTERVAL_SECS * 1000
        })
    );
}

#[test]
fn login_refused_by_the_server_rejects_with_its_message() {
    let mut w = World::new();
    let a = w.client("alice");
    let r = w.command(
        a,
        Command::Login {
            sdk_app_id: 1,
            user_id: "alice".into(),
            user_sig: "bad".into(),
        },
    );
    w.run();
    assert_eq!(
        w.reply(a, r),
        Some(&Err(SdkError {
            code: None,
            message: "invalid UserSig".into()
        }))
    );
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.clients[a].call.user_id(), None);
    assert!(w.clients[a].timers.is_empty());
}

#[test]
fn login_checks_the_user_id_and_refuses_a_second_login() {
    let mut w = World::new();
    let a = w.client("alice");
    for bad in ["", "al ice", "a.b", "ä"] {
        let r = w.command(
            a,
            Command::Login {
                sdk_app_id: 1,
                user_id: bad.into(),
                user_sig: "sig".into(),
            },
        );
        let err = w.reply(a, r).and_then(|r| r.as_ref().err()).cloned();
        assert_eq!(err.and_then(|e| e.code), Some(65535), "{bad:?}");
    }
    assert!(
        !w.server.received.contains_key(&a),
        "nothing sent for an invalid id"
    );
    w.command(a, login("a-1_B"));
    w.run();
    let again = w.command(a, login("a-1_B"));
    assert_eq!(
        w.reply(a, again)
            .and_then(|r| r.as_ref().err())
            .map(|e| e.message.clone()),
        Some("already logged in (or logging in): call logout() first".into())
    );
}

#[test]
fn every_command_but_login_and_cleanup_needs_a_session() {
    let mut c = Session::new();
    let commands = [
        call("bob", CallType::Audio),
        group(&["bob"], CallType::Audio),
        Command::Accept,
        Command::Reject,
        Command::SetMicMute(true),
        Command::OpenCamera,
        Command::CloseCamera,
        Command::SwitchToAudio,
        Command::SwitchToVideo,
    ];
    for command in commands {
        let input = Input::Command {
            request: 1,
            command,
        };
        assert_eq!(c.handle(0, input), Err(CallError::NotLoggedIn));
    }
    let err: SdkError = CallError::NotLoggedIn.into();
    assert_eq!(err.message, "not logged in: call login() first");
    assert_eq!(c.status(), CallStatus::Idle);
}

#[test]
fn socket_closing_during_login_rejects_it() {
    let mut c = Session::new();
    let input = Input::Command {
        request: 4,
        command: login("alice"),
    };
    c.handle(0, input).expect("login");
    let fx = c.handle(0, Input::SignalingClosed).expect("closed");
    assert!(matches!(
        &fx[..],
        [Effect::Reject { request: 4, .. }, Effect::Disconnect]
    ));
    assert_eq!(c.user_id(), None);
}

#[test]
fn server_refusing_the_first_invitation_rejects_call_and_frees_the_line() {
    let mut w = World::new();
    let a = w.logged_in("alice");
    let r = w.command(a, call("bob", CallType::Audio));
    // Answer the invitation ourselves before the server's reply is processed.
    w.clients[a].replies.clear();
    let fx = w.clients[a]
        .call
        .handle(
            0,
            Input::Server(ServerMessage::Error(ErrorReply {
                request_id: Some(r),
                code: ErrorCode::InvalidParam,
                message: "too many invitees".into(),
            })),
        )
        .expect("error");
    assert_eq!(
        fx[0],
        Effect::Reject {
            request: r,
            error: SdkError {
                code: Some(65535),
                message: "too many invitees".into()
            }
        }
    );
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
}

#[test]
fn accept_of_an_invitation_that_just_ended_rejects() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    // The ring times out on the server while the notice is still on its way to bob; his
    // Accept (sent at once, as his devices start opening) comes too late.
    let late = w.ring_deadline_passes();
    let accepting = w.command(b, Command::Accept);
    w.run();
    let reply = w.reply(b, accepting).cloned();
    assert!(
        matches!(reply, Some(Err(SdkError { code: None, .. }))),
        "{reply:?}"
    );
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
    assert!(!w.browser(b).audio, "media released");
    // The timeout notice that crossed the Accept finds nothing ringing any more.
    w.deliver(late);
    w.run();
    assert_eq!(w.take_events(b)[1..], []);
}
