//! Local media in calls: mute and camera, the 1:1 call-mode switch both ways, and what each
//! getUserMedia failure means for the call (SPEC §5).

mod support;

use calling_core::{
    code, AppEvent, CallStatus, Command, Effect, Input, MediaOutcome, Reply, SdkError, Session,
};
use calling_protocol::{CallType, ClientMessage, InviteSent, LoginOk, ServerMessage};
use support::*;

fn media_error(code: u32, message: &str) -> SdkError {
    SdkError {
        code: Some(code),
        message: message.into(),
    }
}

fn error_event(code: u32, msg: &str) -> AppEvent {
    AppEvent::Error {
        code,
        msg: msg.into(),
    }
}

fn changed(call_type: u8) -> AppEvent {
    AppEvent::CallTypeChanged { call_type }
}

#[test]
fn mute_and_camera_reach_the_other_side() {
    let (mut w, a, b) = connected(CallType::Video);
    let mute = w.command(a, Command::SetMicMute(true));
    w.run();
    assert_eq!(w.reply(a, mute), Some(&Ok(ok0())));
    assert!(w.browser(a).muted);
    assert_eq!(w.take_events(b), vec![audio("alice", false)]);
    w.command(a, Command::SetMicMute(false));
    w.command(a, Command::CloseCamera);
    w.run();
    assert!(!w.browser(a).video);
    assert_eq!(
        w.take_events(b),
        vec![audio("alice", true), video("alice", false)]
    );
    let open = w.command(a, Command::OpenCamera);
    w.run();
    assert_eq!(w.reply(a, open), Some(&Ok(ok0())));
    assert!(w.browser(a).video);
    assert_eq!(w.take_events(b), vec![video("alice", true)]);
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.clients[a].call.call_type(), Some(CallType::Video));
}

#[test]
fn camera_in_an_audio_call_keeps_the_call_type() {
    let (mut w, a, b) = connected(CallType::Audio);
    assert_eq!(w.take_events(b), vec![]);
    w.command(a, Command::OpenCamera);
    w.run();
    assert_eq!(w.take_events(b), vec![video("alice", true)]);
    assert_eq!(w.clients[a].call.call_type(), Some(CallType::Audio));
    assert_eq!(w.clients[b].call.call_type(), Some(CallType::Audio));
}

#[test]
fn media_commands_need_a_call() {
    let (mut w, [a]) = World::users(["alice"]);
    for command in [
        Command::SetMicMute(true),
        Command::OpenCamera,
        Command::CloseCamera,
    ] {
        let r = w.command(a, command);
        let err = w.reply(a, r).and_then(|r| r.as_ref().err()).cloned();
        assert!(
            err.is_some_and(|e| e
                .message
                .ends_with("needs a call in progress; current status: idle")),
            "{:?}",
            w.reply(a, r)
        );
    }
    assert!(!w.browser(a).muted);
}

#[test]
fn switch_to_audio_and_back_to_video() {
    let (mut w, a, b) = connected(CallType::Video);
    let to_audio = w.command(a, Command::SwitchToAudio);
    w.run();
    assert_eq!(w.reply(a, to_audio), Some(&Ok(ok0())));
    assert_eq!(w.take_events(a), vec![changed(1), video("bob", false)]);
    assert_eq!(w.take_events(b), vec![changed(1), video("alice", false)]);
    for c in [a, b] {
        assert_eq!(w.clients[c].call.call_type(), Some(CallType::Audio));
        assert!(!w.browser(c).video && w.browser(c).audio);
    }

    let to_video = w.command(b, Command::SwitchToVideo);
    w.run();
    assert_eq!(w.reply(b, to_video), Some(&Ok(ok0())));
    assert_eq!(w.take_events(b), vec![changed(2), video("alice", true)]);
    assert_eq!(w.take_events(a), vec![changed(2), video("bob", true)]);
    for c in [a, b] {
        assert_eq!(w.clients[c].call.call_type(), Some(CallType::Video));
        assert!(w.browser(c).video);
    }
    w.assert_browsers_clean();
}

#[test]
fn switch_outside_a_connected_1to1_call_is_an_error_event() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    let idle = w.command(a, Command::SwitchToVideo);
    assert_eq!(
        w.reply(a, idle)
            .and_then(|r| r.as_ref().err())
            .and_then(|e| e.code),
        Some(code::SWITCH_TO_VIDEO_FAILED)
    );
    assert!(matches!(
        w.take_events(a)[..],
        [AppEvent::Error { code: 60002, .. }]
    ));

    w.command(a, group(&["bob", "carol"], CallType::Video));
    w.run();
    w.command(b, Command::Accept);
    w.command(c, Command::Accept);
    w.run();
    w.take_events(a);
    let in_group = w.command(a, Command::SwitchToAudio);
    w.run();
    assert_eq!(
        w.reply(a, in_group)
            .and_then(|r| r.as_ref().err())
            .and_then(|e| e.code),
        Some(code::SWITCH_TO_AUDIO_FAILED)
    );
    assert_eq!(
        w.take_events(a),
        vec![error_event(
            60001,
            "switchToAudioCall() needs a connected 1:1 call; current status: connected, group call"
        )]
    );
    assert_eq!(w.clients[a].call.call_type(), Some(CallType::Video));
}

#[test]
fn switch_the_other_side_cannot_follow_fails_on_both_sides() {
    let (mut w, a, b) = connected(CallType::Audio);
    w.clients[b].browser.media_failure = Some(media_error(60004, "no camera"));
    let to_video = w.command(a, Command::SwitchToVideo);
    w.run();
    let expected = "the other side could not switch to a video call";
    assert_eq!(
        w.reply(a, to_video),
        Some(&Err(SdkError {
            code: Some(60002),
            message: expected.into()
        }))
    );
    assert_eq!(w.take_events(a), vec![error_event(60002, expected)]);
    assert_eq!(
        w.take_events(b),
        vec![error_event(
            60002,
            "could not follow the switch to a video call: no camera"
        )]
    );
    assert_eq!(w.clients[a].call.call_type(), Some(CallType::Audio));
    assert_eq!(w.clients[b].call.call_type(), Some(CallType::Audio));
}

#[test]
fn caller_media_failure_after_the_invitation_is_an_error_and_a_hangup() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.clients[a].browser.media_failure = Some(media_error(60003, "no microphone"));
    let calling = w.command(a, call("bob", CallType::Audio));
    w.run();
    // The invitation was confirmed before the devices answered, so the promise resolved.
    assert!(matches!(w.reply(a, calling), Some(Ok(Reply::Call { .. }))));
    assert_eq!(w.take_events(a), vec![error_event(60003, "no microphone")]);
    let bob = w.take_events(b);
    assert!(matches!(
        bob[..],
        [AppEvent::Invited { .. }, AppEvent::CallingCancel { .. }]
    ));
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
}

fn logged_in_call(user: &str) -> Session {
    let mut c = Session::new();
    c.handle(
        0,
        Input::Command {
            request: 1,
            command: login(user),
        },
    )
    .expect("login");
    c.handle(
        0,
        Input::Server(ServerMessage::LoginOk(LoginOk {
            user_id: user.into(),
            ice_servers: vec![],
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: false,
        })),
    )
    .expect("login ok");
    c
}

#[test]
fn caller_media_failure_before_the_invitation_is_confirmed_rejects_call() {
    let mut c = logged_in_call("alice");
    c.handle(
        0,
        Input::Command {
            request: 2,
            command: call("bob", CallType::Video),
        },
    )
    .expect("call");
    let denied = media_error(60005, "Permission denied");
    let fx = c
        .handle(
            0,
            Input::Media {
                token: 0,
                outcome: MediaOutcome::Failed(denied.clone()),
            },
        )
        .expect("media outcome");
    assert_eq!(
        fx,
        vec![
            Effect::Reject {
                request: 2,
                error: denied
            },
            Effect::CloseMedia {
                audio: true,
                video: true
            },
            Effect::RemoveViews
        ]
    );
    assert_eq!(c.status(), CallStatus::Idle);
    // The server confirms the invitation we gave up on: it is withdrawn at once.
    let fx = c
        .handle(
            0,
            Input::Server(ServerMessage::InviteSent(InviteSent {
                request_id: 2,
                invite_id: "i".into(),
                room_id: 9,
                user_ids: vec!["bob".into()],
            })),
        )
        .expect("invite sent");
    assert_eq!(fx, vec![Effect::Send(ClientMessage::Hangup { room_id: 9 })]);
    assert_eq!(c.status(), CallStatus::Idle);
}

#[test]
fn insecure_page_calls_receive_only() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    let insecure = media_error(60007, "publishing needs a secure context");
    w.clients[a].browser.media_failure = Some(insecure);
    w.command(a, call("bob", CallType::Video));
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![error_event(60007, "publishing needs a secure context")]
    );
    assert_eq!(w.clients[a].call.status(), CallStatus::Calling);
    w.take_events(b);
    w.command(b, Command::Accept);
    w.run();
    assert!(w.take_events(a).contains(&video("bob", true)));
    let bob = w.take_events(b);
    assert!(bob.contains(&audio("alice", false)) && bob.contains(&video("alice", false)));
    assert!(bob.contains(&user_enter("alice")));
    w.assert_browsers_clean();
}

#[test]
fn callee_media_failure_rejects_accept_and_leaves_the_call() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    let denied = media_error(60005, "Permission denied");
    w.clients[b].browser.media_failure = Some(denied.clone());
    let accepting = w.command(b, Command::Accept);
    w.run();
    assert_eq!(w.reply(b, accepting), Some(&Err(denied)));
    assert_eq!(w.take_events(b), vec![]);
    // Accept went out before the devices failed: to the caller, bob joined and hung up.
    assert_eq!(
        w.take_events(a),
        vec![user_accept("bob"), user_leave("bob"), call_end("bob", 0)]
    );
    assert!(
        !w.browser(a).sends_any() && !w.browser(b).sends_any(),
        "nothing was ever sent"
    );
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
}

#[test]
fn insecure_callee_accepts_receive_only() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    w.clients[b].browser.media_failure = Some(media_error(60007, "insecure"));
    let accepting = w.command(b, Command::Accept);
    w.run();
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    let bob = w.take_events(b);
    assert_eq!(bob[0], error_event(60007, "insecure"));
    assert!(bob.contains(&user_enter("alice")));
    assert!(w.take_events(a).contains(&audio("bob", false)));
    assert_eq!(w.clients[b].call.status(), CallStatus::Connected);
}

#[test]
fn media_arriving_after_the_call_ended_is_released() {
    let mut c = logged_in_call("alice");
    let call_input = Input::Command {
        request: 2,
        command: call("bob", CallType::Video),
    };
    c.handle(0, call_input).expect("call");
    let hangup = Input::Command {
        request: 3,
        command: Command::Hangup,
    };
    c.handle(0, hangup).expect("hangup");
    let fx = c
        .handle(
            0,
            Input::Media {
                token: 0,
                outcome: MediaOutcome::Opened {
                    audio: true,
                    video: true,
                },
            },
        )
        .expect("late media");
    assert_eq!(
        fx,
        vec![Effect::CloseMedia {
            audio: true,
            video: true
        }]
    );
}

/// alice called bob (video; her capture is token 0, still unsettled), hung up, and calls
/// carol with `call_type` (request 4, token 1).
fn after_a_left_video_call(call_type: CallType) -> Session {
    let mut c = logged_in_call("alice");
    let cmd = |request, command| Input::Command { request, command };
    c.handle(0, cmd(2, call("bob", CallType::Video)))
        .expect("call bob");
    c.handle(0, cmd(3, Command::Hangup)).expect("hangup");
    c.handle(0, cmd(4, call("carol", call_type)))
        .expect("call carol");
    c
}

#[test]
fn a_left_calls_media_outcome_is_not_taken_for_the_next_call() {
    let mut c = after_a_left_video_call(CallType::Video);
    // The first call's getUserMedia (token 0) fails only now, after the second call's
    // (token 1) was asked for: the call to carol must not suffer.
    let late = MediaOutcome::Failed(media_error(60005, "denied"));
    let late = Input::Media {
        token: 0,
        outcome: late,
    };
    assert_eq!(c.handle(0, late.clone()), Ok(vec![]));
    assert_eq!(c.status(), CallStatus::Calling);
    let own = MediaOutcome::Failed(media_error(60004, "no camera"));
    let fx = c
        .handle(
            0,
            Input::Media {
                token: 1,
                outcome: own,
            },
        )
        .expect("media");
    assert!(fx.contains(&Effect::Reject {
        request: 4,
        error: media_error(60004, "no camera")
    }));
    assert_eq!(c.status(), CallStatus::Idle);
    // A stale outcome repeated changes nothing either.
    assert_eq!(c.handle(0, late), Ok(vec![]));
}

#[test]
fn a_left_video_calls_late_camera_is_closed_in_the_next_audio_call() {
    let mut c = after_a_left_video_call(CallType::Audio);
    // The video call's capture (token 0: camera and microphone) settles only now.
    let late = Input::Media {
        token: 0,
        outcome: MediaOutcome::Opened {
            audio: true,
            video: true,
        },
    };
    let fx = c.handle(0, late).expect("late media");
    // The camera stops at once; the microphone serves this call.
    assert_eq!(
        fx,
        vec![Effect::CloseMedia {
            audio: false,
            video: true
        }]
    );
    assert_eq!(c.status(), CallStatus::Calling);
}
