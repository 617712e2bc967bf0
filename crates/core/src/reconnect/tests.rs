//! Single transitions of reconnecting, pinned to their exact effects. The flows between two
//! SDKs through the registry are in `tests/reconnect.rs`.

use calling_protocol::{
    CallType, ErrorCode, InviteSent, LoginOk, MemberLeft, ResumeGrant, RESUME_WINDOW,
};

use super::*;
use crate::backoff::{nominal_delay_ms, MAX_RETRY_MS};
use crate::{Command, Input, Reply, RequestId};

const TOKEN: &str = "t-1";

fn command(request: RequestId, command: Command) -> Input {
    Input::Command { request, command }
}

fn login_ok(resume: Option<ResumeGrant>) -> Input {
    Input::Server(ServerMessage::LoginOk(LoginOk {
        user_id: "alice".into(),
        ice_servers: vec![],
        ring_timeout_secs: 30,
        heartbeat_timeout_secs: 10,
        resume,
        sfu: false,
    }))
}

fn grant() -> Option<ResumeGrant> {
    Some(ResumeGrant {
        token: TOKEN.into(),
        grace_secs: 30,
    })
}

/// alice, logged in at time 0 with a resumable session.
fn resumable() -> Session {
    let mut s = Session::with_seed(1);
    s.ok(command(
        1,
        Command::Login {
            sdk_app_id: 7,
            user_id: "alice".into(),
            user_sig: "sig".into(),
        },
    ));
    s.ok(login_ok(grant()));
    s
}

/// `resumable`, having called bob (request 2; the invitation rings in room 3).
fn calling() -> Session {
    let mut s = resumable();
    s.ok(command(2, call_bob()));
    s.ok(sequenced(1, invite_sent(2)));
    s
}

fn call_bob() -> Command {
    Command::Call {
        user_id: "bob".into(),
        call_type: CallType::Audio,
    }
}

fn invite_sent(request: RequestId) -> ServerMessage {
    ServerMessage::InviteSent(InviteSent {
        request_id: request,
        invite_id: "i".into(),
        room_id: 3,
        user_ids: vec!["bob".into()],
    })
}

fn sequenced(seq: u64, message: ServerMessage) -> Input {
    Input::Sequenced { seq, message }
}

fn at(s: &mut Session, now_ms: u64, input: Input) -> Vec<Effect> {
    match s.handle(now_ms, input) {
        Ok(effects) => effects,
        Err(err) => panic!("refused: {err}"),
    }
}

fn sent(effects: &[Effect]) -> Vec<&ClientMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(frame) => Some(frame),
            _ => None,
        })
        .collect()
}

fn resume_frame(last_seq: u64) -> ClientMessage {
    ClientMessage::Resume {
        sdk_app_id: 7,
        user_id: "alice".into(),
        token: TOKEN.into(),
        last_seq,
        protocol_version: PROTOCOL_VERSION,
    }
}

#[test]
fn login_asks_for_a_resumable_session() {
    let mut s = Session::new();
    let fx = s.ok(command(
        1,
        Command::Login {
            sdk_app_id: 7,
            user_id: "alice".into(),
            user_sig: "sig".into(),
        },
    ));
    assert!(
        matches!(
            &fx[..],
            [Effect::Send(ClientMessage::Login {
                resumable: true,
                ..
            })]
        ),
        "{fx:?}"
    );
}

#[test]
fn a_lost_socket_keeps_the_call_and_asks_for_a_new_one_at_once() {
    let mut s = calling();
    let before = format!("{:?}", s.call);
    let fx = at(&mut s, 100, Input::SignalingClosed);
    assert_eq!(
        fx,
        vec![
            Effect::CancelTimer(Timer::Heartbeat),
            Effect::Emit(AppEvent::Reconnecting { attempt: 1 }),
            Effect::OpenSignaling,
        ]
    );
    assert_eq!(format!("{:?}", s.call), before, "the call is untouched");
    assert!(s.is_reconnecting());
    assert_eq!(s.user_id(), Some("alice"));
    assert_eq!(s.ok(Input::Timer(Timer::Heartbeat)), vec![], "no ping now");
}

#[test]
fn the_resume_names_the_last_message_processed_and_duplicates_are_dropped() {
    let mut s = calling();
    let left = |user: &str| {
        sequenced(
            2,
            ServerMessage::MemberLeft(MemberLeft {
                room_id: 3,
                user_id: user.into(),
            }),
        )
    };
    // seq 1 again (InviteSent) and a stale 2 after the real 2: nothing happens.
    assert_eq!(s.ok(sequenced(1, invite_sent(2))), vec![]);
    s.ok(left("carol"));
    assert_eq!(s.ok(left("bob")), vec![], "seq 2 was processed already");
    assert_eq!(s.status(), crate::CallStatus::Calling);
    s.ok(Input::SignalingClosed);
    let fx = s.ok(Input::SignalingOpened);
    assert_eq!(fx, vec![Effect::Send(resume_frame(2))]);
    // Late messages of the old socket are neither processed nor counted.
    assert_eq!(s.ok(sequenced(3, invite_sent(2))), vec![]);
    assert_eq!(s.resumption.last_seq, 2);
}

#[test]
fn frames_are_held_while_lost_and_follow_the_ones_the_server_missed() {
    let mut s = calling();
    // Frame 1 was the Invite, which the server answered. Frame 2 invites carol and is lost
    // in flight; frame 3, the hangup, is made while the socket is known to be lost: held.
    let fx = s.ok(command(
        3,
        Command::GroupCall {
            user_ids: vec!["carol".into()],
            call_type: CallType::Audio,
            group_id: None,
        },
    ));
    let invite_carol = ClientMessage::Invite {
        request_id: 3,
        user_ids: vec!["carol".into()],
        call_type: CallType::Audio,
        is_group: true,
        group_id: None,
        room_id: Some(3),
    };
    assert_eq!(sent(&fx), vec![&invite_carol], "live: out at once");
    s.ok(Input::SignalingClosed);
    let fx = s.ok(command(4, Command::Hangup));
    assert!(sent(&fx).is_empty(), "{fx:?}");
    assert!(fx.contains(&Effect::Resolve {
        request: 4,
        reply: Reply::Ok { code: 0 }
    }));
    s.ok(Input::SignalingOpened);
    let fx = s.ok(Input::Server(ServerMessage::Resumed(Resumed {
        received: 1,
    })));
    assert_eq!(
        fx,
        vec![
            heartbeat_timer(),
            Effect::Emit(AppEvent::Reconnected { resumed: true }),
            Effect::Send(invite_carol),
            Effect::Send(ClientMessage::Hangup { room_id: 3 }),
        ]
    );
    // Live again: a new frame (4) goes out at once, and a resume after the server got it
    // sends nothing again.
    assert_eq!(sent(&s.ok(command(5, call_bob()))).len(), 1);
    s.ok(Input::SignalingClosed);
    s.ok(Input::SignalingOpened);
    let fx = s.ok(Input::Server(ServerMessage::Resumed(Resumed {
        received: 4,
    })));
    assert_eq!(sent(&fx), Vec::<&ClientMessage>::new());
}

#[test]
fn frames_beyond_the_window_cannot_be_resumed_so_the_session_is_closed_and_logged_in_afresh() {
    let mut s = resumable();
    // More frames than the window, none of which the server got.
    for request in 0..=RESUME_WINDOW as u32 {
        s.ok(command(10 + request, call_bob()));
        s.ok(command(10_000 + request, Command::Hangup));
    }
    s.ok(Input::SignalingClosed);
    s.ok(Input::SignalingOpened);
    let fx = s.ok(Input::Server(ServerMessage::Resumed(Resumed {
        received: 0,
    })));
    assert_eq!(
        fx,
        vec![
            Effect::Disconnect,
            Effect::Emit(AppEvent::Reconnecting { attempt: 2 }),
            Effect::OpenSignaling,
        ]
    );
    let fx = s.ok(Input::SignalingOpened);
    assert!(
        matches!(
            &sent(&fx)[..],
            [ClientMessage::Login {
                resumable: true,
                ..
            }]
        ),
        "{fx:?}"
    );
}

#[test]
fn a_refused_resume_logs_in_again_on_the_same_socket_and_ends_the_call() {
    let mut s = calling();
    s.ok(Input::SignalingClosed);
    s.ok(Input::SignalingOpened);
    let refused = ServerMessage::Error(ErrorReply {
        request_id: None,
        code: ErrorCode::ResumeRefused,
        message: "gone".into(),
    });
    let fx = s.ok(Input::Server(refused));
    assert_eq!(
        fx,
        vec![Effect::Send(ClientMessage::Login {
            sdk_app_id: 7,
            user_id: "alice".into(),
            user_sig: "sig".into(),
            protocol_version: PROTOCOL_VERSION,
            resumable: true,
        })]
    );
    let fx = s.ok(login_ok(grant()));
    // Our ring ended with the old session: the app hears CALL_END, then RECONNECTED.
    let heard: Vec<&AppEvent> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(event) => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(
        heard,
        vec![
            &AppEvent::CallEnd {
                user_id: "alice".into(),
                call_end: 0
            },
            &AppEvent::Reconnected { resumed: false }
        ]
    );
    assert!(sent(&fx).is_empty(), "the old session's frames are gone");
    assert_eq!(s.status(), crate::CallStatus::Idle);
    assert_eq!(fx.last(), Some(&heartbeat_timer()));
    assert!(!s.is_reconnecting());
}

#[test]
fn failed_attempts_wait_longer_each_time_then_give_up_after_two_minutes() {
    let mut s = calling();
    let mut now = 1_000;
    at(&mut s, now, Input::SignalingClosed);
    let mut waits = Vec::new();
    loop {
        let fx = at(&mut s, now, Input::SignalingClosed);
        let Some(Effect::StartTimer {
            timer: Timer::Reconnect,
            after_ms,
        }) = fx.first()
        else {
            // Given up: the call is left, the app hears why, the session is over.
            assert_eq!(
                fx,
                vec![
                    Effect::Emit(AppEvent::CallEnd {
                        user_id: "alice".into(),
                        call_end: 0
                    }),
                    Effect::ClosePeer {
                        user_id: "bob".into()
                    },
                    Effect::CloseMedia {
                        audio: true,
                        video: true
                    },
                    Effect::RemoveViews,
                    Effect::CancelTimer(Timer::Heartbeat),
                    Effect::CancelTimer(Timer::Reconnect),
                    Effect::Disconnect,
                    Effect::Emit(AppEvent::Error {
                        code: 60008,
                        msg: "the signaling connection was lost and could not be restored \
                              within 120 s"
                            .into()
                    }),
                ],
                "{fx:?}"
            );
            break;
        };
        waits.push(*after_ms);
        now += u64::from(*after_ms);
        let fx = at(&mut s, now, Input::Timer(Timer::Reconnect));
        let attempt = waits.len() as u32 + 1;
        assert_eq!(
            fx,
            vec![
                Effect::Emit(AppEvent::Reconnecting { attempt }),
                Effect::OpenSignaling
            ]
        );
    }
    assert!(now - 1_000 >= GIVE_UP_AFTER_MS);
    for (i, wait) in waits.iter().enumerate() {
        let nominal = nominal_delay_ms(i as u32 + 1);
        assert!(
            *wait >= nominal * 3 / 4 && *wait <= nominal * 5 / 4,
            "{waits:?}"
        );
    }
    assert!(waits[1] > waits[0] && waits[4] > waits[3], "{waits:?}");
    assert!(waits.iter().all(|w| *w <= MAX_RETRY_MS * 5 / 4));
    assert_eq!(s.user_id(), None);
    assert!(!s.is_reconnecting());
}

#[test]
fn the_network_coming_back_skips_the_wait_but_not_an_attempt_under_way() {
    let mut s = resumable();
    s.ok(Input::SignalingClosed);
    assert_eq!(s.ok(Input::NetworkOnline), vec![], "attempt 1 is under way");
    s.ok(Input::SignalingClosed);
    assert_eq!(
        s.ok(Input::NetworkOnline),
        vec![
            Effect::CancelTimer(Timer::Reconnect),
            Effect::Emit(AppEvent::Reconnecting { attempt: 2 }),
            Effect::OpenSignaling,
        ]
    );
    assert_eq!(s.ok(Input::Timer(Timer::Reconnect)), vec![], "stale timer");
    // Not lost: the socket is only probed (see below).
    assert!(!resumable()
        .ok(Input::NetworkOnline)
        .contains(&Effect::OpenSignaling));
}

#[test]
fn logout_while_lost_resolves_says_farewell_on_a_throwaway_socket_and_stops_trying() {
    let mut s = calling();
    s.ok(Input::SignalingClosed);
    s.ok(Input::SignalingClosed); // attempt 1 failed: the retry timer runs
    let fx = s.ok(command(5, Command::Logout));
    assert!(sent(&fx).is_empty(), "no socket to send on: {fx:?}");
    assert!(fx.contains(&Effect::CancelTimer(Timer::Reconnect)));
    assert!(fx.contains(&Effect::Disconnect));
    // The session the server still holds is named, to be ended at once.
    assert!(
        fx.contains(&Effect::Farewell(vec![
            resume_frame(1),
            ClientMessage::Logout
        ])),
        "{fx:?}"
    );
    assert_eq!(
        fx.last(),
        Some(&Effect::Resolve {
            request: 5,
            reply: Reply::Ok { code: 0 }
        })
    );
    assert_eq!(s.user_id(), None);
    assert!(!s.is_reconnecting());
    assert_eq!(s.ok(Input::Timer(Timer::Reconnect)), vec![]);
    assert_eq!(s.ok(Input::SignalingOpened), vec![]);
}

#[test]
fn a_session_without_a_grant_ends_on_a_lost_socket_as_before() {
    let mut s = Session::new();
    s.ok(command(
        1,
        Command::Login {
            sdk_app_id: 7,
            user_id: "alice".into(),
            user_sig: "sig".into(),
        },
    ));
    s.ok(login_ok(None));
    let fx = s.ok(Input::SignalingClosed);
    assert_eq!(
        fx,
        vec![
            Effect::CancelTimer(Timer::Heartbeat),
            Effect::Disconnect,
            Effect::Emit(AppEvent::Error {
                code: 60008,
                msg: "signaling connection lost".into()
            })
        ]
    );
    assert_eq!(s.user_id(), None);
}

#[test]
fn reconnect_events_have_their_names_and_payloads() {
    let reconnecting = AppEvent::Reconnecting { attempt: 2 };
    let reconnected = AppEvent::Reconnected { resumed: false };
    assert_eq!(reconnecting.name(), "onReconnecting");
    assert_eq!(reconnected.name(), "onReconnected");
    assert_eq!(
        serde_json::to_string(&reconnecting).ok().as_deref(),
        Some(r#"{"attempt":2}"#)
    );
    assert_eq!(
        serde_json::to_string(&reconnected).ok().as_deref(),
        Some(r#"{"resumed":false}"#)
    );
    for (key, value) in [
        ("RECONNECTING", "onReconnecting"),
        ("RECONNECTED", "onReconnected"),
    ] {
        assert!(crate::EVENT_NAMES.contains(&(key, value)), "{key}");
    }
}

#[test]
fn a_socket_silent_for_two_pings_is_replaced_as_if_it_had_closed() {
    let mut s = calling();
    let ping = vec![
        Effect::Send(ClientMessage::Ping),
        Effect::StartTimer {
            timer: Timer::Heartbeat,
            after_ms: calling_protocol::PING_INTERVAL_SECS * 1000,
        },
    ];
    assert_eq!(at(&mut s, 3_000, Input::Timer(Timer::Heartbeat)), ping);
    // An answer (any message) keeps it alive.
    at(&mut s, 3_100, Input::Server(ServerMessage::Pong));
    assert_eq!(at(&mut s, 6_000, Input::Timer(Timer::Heartbeat)), ping);
    assert_eq!(at(&mut s, 9_000, Input::Timer(Timer::Heartbeat)), ping);
    // Two pings without a word back: the path died without anyone closing it.
    let fx = at(&mut s, 12_000, Input::Timer(Timer::Heartbeat));
    assert!(fx.contains(&Effect::OpenSignaling), "{fx:?}");
    assert!(fx.contains(&Effect::Emit(AppEvent::Reconnecting { attempt: 1 })));
    assert!(s.is_reconnecting());
    assert!(s.call.is_some(), "the call stays");
}

#[test]
fn a_socket_of_a_session_without_a_grant_is_left_to_the_servers_timeout() {
    let mut s = Session::new();
    s.ok(command(
        1,
        Command::Login {
            sdk_app_id: 7,
            user_id: "alice".into(),
            user_sig: "sig".into(),
        },
    ));
    s.ok(login_ok(None));
    for t in 1..=4 {
        let fx = at(&mut s, t * 3_000, Input::Timer(Timer::Heartbeat));
        assert_eq!(sent(&fx), vec![&ClientMessage::Ping]);
    }
}

#[test]
fn coming_back_online_probes_a_live_socket_and_replaces_it_if_unanswered() {
    let mut s = calling();
    let probe = vec![
        Effect::Send(ClientMessage::Ping),
        Effect::StartTimer {
            timer: Timer::Probe,
            after_ms: PROBE_TIMEOUT_MS,
        },
    ];
    assert_eq!(at(&mut s, 1_000, Input::NetworkOnline), probe);
    // A second signal while probing sends no second probe.
    assert_eq!(at(&mut s, 1_100, Input::NetworkOnline), vec![]);
    // Answered: the probe's end changes nothing.
    at(&mut s, 1_200, Input::Server(ServerMessage::Pong));
    assert_eq!(at(&mut s, 4_000, Input::Timer(Timer::Probe)), vec![]);
    assert!(!s.is_reconnecting());
    // Unanswered: the socket is dead, replaced at once.
    assert_eq!(at(&mut s, 5_000, Input::NetworkOnline), probe);
    let fx = at(&mut s, 8_000, Input::Timer(Timer::Probe));
    assert!(fx.contains(&Effect::OpenSignaling), "{fx:?}");
    assert!(s.is_reconnecting());
}

#[test]
fn going_offline_probes_a_live_socket_but_does_not_hurry_a_waiting_reconnect() {
    let mut s = calling();
    let fx = at(&mut s, 1_000, Input::NetworkOffline);
    assert_eq!(
        fx,
        vec![
            Effect::Send(ClientMessage::Ping),
            Effect::StartTimer {
                timer: Timer::Probe,
                after_ms: PROBE_TIMEOUT_MS,
            },
        ]
    );
    let fx = at(&mut s, 4_000, Input::Timer(Timer::Probe));
    assert!(fx.contains(&Effect::OpenSignaling), "{fx:?}");
    // The first attempt failed: the next waits for its backoff, offline or not.
    at(&mut s, 4_100, Input::SignalingClosed);
    assert_eq!(at(&mut s, 4_200, Input::NetworkOffline), vec![]);
    assert!(s.is_reconnecting());
}
