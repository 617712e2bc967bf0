//! 1:1 flows of SPEC §6 between two SDK instances, through the real registry and fake browsers:
//! accept, reject, busy, cancel, timeout, hangup by either side, kick-out, lost signaling.

mod support;

use calling_core::{AppEvent, CallStatus, Command, InviteData, Reply};
use calling_protocol::CallType;
use support::*;

fn invited_bob(call_type: u8) -> AppEvent {
    AppEvent::Invited {
        sponsor: "alice".into(),
        user_id_list: vec!["bob".into()],
        is_from_group: false,
        invite_data: InviteData {
            version: 4,
            call_type,
            room_id: FIRST_ROOM,
            call_end: 0,
        },
        invite_id: "invite-1".into(),
    }
}

fn assert_idle(w: &World, c: usize) {
    let client = &w.clients[c];
    assert_eq!(client.call.status(), CallStatus::Idle, "{}", client.user);
    assert_eq!(client.call.room_id(), None);
    assert!(
        client.browser.peers.is_empty(),
        "{}: peers left open",
        client.user
    );
    assert!(
        !client.browser.audio && !client.browser.video,
        "{}: media left open",
        client.user
    );
}

#[test]
fn accept_connects_both_sides_with_their_media() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    let calling = w.command(a, call("bob", CallType::Video));
    w.run();
    assert_eq!(
        w.reply(a, calling),
        Some(&Ok(Reply::Call {
            code: 0,
            invite_id: "invite-1".into(),
            room_id: FIRST_ROOM,
            user_id: "bob".into()
        }))
    );
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.take_events(b), vec![invited_bob(2)]);
    assert_eq!(w.clients[a].call.status(), CallStatus::Calling);
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);
    assert!(w.clients[a].call.is_inviter() && !w.clients[b].call.is_inviter());
    assert_eq!(w.clients[a].call.invitee_list(), vec!["bob".to_string()]);

    let accepting = w.command(b, Command::Accept);
    w.run();
    assert_eq!(
        w.reply(b, accepting),
        Some(&Ok(Reply::Accept {
            code: 0,
            room_id: FIRST_ROOM,
            call_type: 2
        }))
    );
    assert_video_connect_events(&mut w, a, b);
    for (c, other) in [(a, "bob"), (b, "alice")] {
        let client = &w.clients[c];
        assert_eq!(client.call.status(), CallStatus::Connected);
        assert_eq!(client.call.call_type(), Some(CallType::Video));
        assert_eq!(client.call.room_id(), Some(FIRST_ROOM));
        assert_eq!(client.browser.peers.len(), 1, "one connection");
        assert!(client.browser.peers[other].connected);
        assert!(client.browser.audio && client.browser.video);
    }
    assert!(w.browser(a).peers["bob"].initiator && !w.browser(b).peers["alice"].initiator);
    assert!(w.browser(b).peers["alice"].polite && !w.browser(a).peers["bob"].polite);
    assert_eq!(w.clients[a].call.invitee_list(), Vec::<String>::new());
    w.assert_browsers_clean();
}

#[test]
fn the_invitation_goes_out_before_devices_are_asked() {
    let (mut w, [a, _b]) = World::users(["alice", "bob"]);
    let effects = w.clients[a]
        .call
        .handle(
            w.now_ms,
            calling_core::Input::Command {
                request: 99,
                command: call("bob", CallType::Audio),
            },
        )
        .expect("call accepted");
    assert!(matches!(
        effects[0],
        calling_core::Effect::Send(calling_protocol::ClientMessage::Invite { .. })
    ));
    assert_eq!(
        effects[1],
        calling_core::Effect::OpenMedia {
            token: 0,
            audio: true,
            video: false
        }
    );
    assert_eq!(effects.len(), 2);
}

#[test]
fn reject_tells_the_caller_and_both_go_idle_without_call_end() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.take_events(b);
    let rejecting = w.command(b, Command::Reject);
    w.run();
    assert_eq!(w.reply(b, rejecting), Some(&Ok(ok0())));
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::Reject {
            user_id: "bob".into()
        }]
    );
    assert_eq!(w.take_events(b), vec![]);
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn ringing_callee_hangup_rejects() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.take_events(b);
    let hanging = w.command(b, Command::Hangup);
    w.run();
    assert_eq!(w.reply(b, hanging), Some(&Ok(ok0())));
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::Reject {
            user_id: "bob".into()
        }]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn busy_callee_is_reported_and_not_disturbed() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(c, call("bob", CallType::Audio));
    w.run();
    w.take_events(b);
    let calling = w.command(a, call("bob", CallType::Video));
    w.run();
    assert!(matches!(w.reply(a, calling), Some(Ok(Reply::Call { .. }))));
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::LineBusy {
            user_id: "bob".into(),
            sponsor: "alice".into()
        }]
    );
    assert_eq!(w.take_events(b), vec![]);
    assert_idle(&w, a);
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);
    assert_eq!(w.clients[c].call.status(), CallStatus::Calling);
}

#[test]
fn caller_hangup_while_ringing_cancels() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    let hanging = w.command(a, Command::Hangup);
    w.run();
    assert_eq!(w.reply(a, hanging), Some(&Ok(ok0())));
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(
        w.take_events(b),
        vec![AppEvent::CallingCancel {
            invite_id: "invite-1".into(),
            sponsor: "alice".into()
        }]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn ring_timeout_reports_no_response_and_timeout_then_call_end() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    w.ring_timeout();
    assert_eq!(
        w.take_events(a),
        vec![
            AppEvent::NoResp {
                user_id: "bob".into(),
                sponsor: "alice".into(),
                user_id_list: vec!["bob".into()]
            },
            // The server names who ended the call: bob, by not answering.
            call_end("bob", 0)
        ]
    );
    assert_eq!(
        w.take_events(b),
        vec![
            AppEvent::CallingTimeout {
                invite_id: "invite-1".into(),
                sponsor: "alice".into()
            },
            call_end("bob", 0)
        ]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn caller_hangup_when_connected_ends_the_call_for_both() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(7_500);
    let hanging = w.command(a, Command::Hangup);
    w.run();
    assert_eq!(w.reply(a, hanging), Some(&Ok(ok0())));
    assert_eq!(w.take_events(a), vec![call_end("alice", 7)]);
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 7)]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
    w.assert_browsers_clean();
}

#[test]
fn callee_hangup_when_connected_ends_the_call_for_both() {
    let (mut w, a, b) = connected(CallType::Audio);
    w.advance(2_000);
    w.command(b, Command::Hangup);
    w.run();
    assert_eq!(w.take_events(b), vec![call_end("bob", 2)]);
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 2)]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn hangup_when_idle_resolves_ok_msg_and_answers_without_invitation_are_undefined() {
    let (mut w, [a]) = World::users(["alice"]);
    let h = w.command(a, Command::Hangup);
    let acc = w.command(a, Command::Accept);
    let rej = w.command(a, Command::Reject);
    w.run();
    assert_eq!(
        w.reply(a, h),
        Some(&Ok(Reply::OkMsg {
            code: 0,
            msg: "ok".into()
        }))
    );
    assert_eq!(w.reply(a, acc), Some(&Ok(Reply::Undefined)));
    assert_eq!(w.reply(a, rej), Some(&Ok(Reply::Undefined)));
    assert_eq!(w.take_events(a), vec![]);
}

#[test]
fn kick_out_leaves_the_call_and_logs_out() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(3_000);
    let a2 = w.client("alice");
    let login2 = w.command(a2, login("alice"));
    w.run();
    assert!(matches!(w.reply(a2, login2), Some(Ok(Reply::Login { .. }))));
    assert_eq!(w.take_events(a), vec![AppEvent::KickedOut {}]);
    assert_eq!(w.clients[a].call.user_id(), None);
    assert!(!w.clients[a].socket_open, "the kicked instance disconnects");
    assert!(w.clients[a].timers.is_empty(), "heartbeat stopped");
    assert_idle(&w, a);
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 3)]
    );
    assert_idle(&w, b);
    assert_eq!(
        w.take_events(a2),
        vec![AppEvent::SdkReady {
            user_id: "alice".into()
        }]
    );
}

/// With a server that does not resume sessions (reconnecting is in `reconnect.rs`).
#[test]
fn lost_signaling_leaves_the_call_and_reports_it() {
    let (mut w, a, b) = connected_in(World::legacy(), CallType::Video);
    w.advance(4_000);
    w.drop_socket(a);
    assert_eq!(
        w.take_events(a),
        vec![
            call_end("alice", 4),
            AppEvent::Error {
                code: calling_core::code::SIGNALING_LOST,
                msg: "signaling connection lost".into()
            }
        ]
    );
    assert_eq!(w.clients[a].call.user_id(), None);
    assert_idle(&w, a);
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 4)]
    );
    let after = w.command(a, Command::SetMicMute(true));
    assert_eq!(
        w.reply(a, after)
            .and_then(|r| r.as_ref().err())
            .map(|e| e.code),
        Some(None),
        "logged out: commands reject"
    );
    // Cleanup still resolves.
    let hangup = w.command(a, Command::Hangup);
    assert!(
        matches!(w.reply(a, hangup), Some(Ok(Reply::OkMsg { code: 0, .. }))),
        "{:?}",
        w.reply(a, hangup)
    );
}

/// With a server that does not resume sessions.
#[test]
fn lost_signaling_while_ringing_as_callee_is_a_cancelled_invitation() {
    let (mut w, [a, b]) = World::legacy().with_users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    w.drop_socket(b);
    let events = w.take_events(b);
    assert_eq!(
        events[0],
        AppEvent::CallingCancel {
            invite_id: "invite-1".into(),
            sponsor: "alice".into()
        }
    );
    assert!(matches!(events[1], AppEvent::Error { code: 60008, .. }));
    assert_eq!(events.len(), 2);
}

#[test]
fn logout_during_a_call_tells_the_peer_and_closes_everything() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(1_000);
    let out = w.command(a, Command::Logout);
    w.run();
    assert_eq!(w.reply(a, out), Some(&Ok(ok0())));
    assert_eq!(w.take_events(a), vec![call_end("alice", 1)]);
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 1)]
    );
    assert_eq!(w.clients[a].call.user_id(), None);
    assert!(!w.clients[a].socket_open);
    assert!(w.clients[a].timers.is_empty());
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn refused_commands_change_nothing() {
    let (mut w, a, b) = connected(CallType::Video);
    let before = format!("{:?}", w.clients[a].call);
    let again = w.command(a, call("bob", CallType::Video));
    let err = w.reply(a, again).and_then(|r| r.as_ref().err()).cloned();
    assert_eq!(
        err.map(|e| (e.code, e.message)),
        Some((
            None,
            "call() needs an idle line; current status: connected".into()
        ))
    );
    let bad = w.command(a, call("bo b", CallType::Video));
    assert_eq!(
        w.reply(a, bad)
            .and_then(|r| r.as_ref().err())
            .and_then(|e| e.code),
        Some(65535)
    );
    w.run();
    assert_eq!(format!("{:?}", w.clients[a].call), before);
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.take_events(b), vec![]);
}

#[test]
fn hangup_before_the_server_confirms_still_withdraws_the_invitation() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    let calling = w.command(a, call("bob", CallType::Video));
    let hanging = w.command(a, Command::Hangup);
    assert_eq!(w.reply(a, hanging), Some(&Ok(ok0())));
    let err = w.reply(a, calling).and_then(|r| r.as_ref().err()).cloned();
    assert_eq!(
        err.map(|e| e.message),
        Some("the call was left by hangup() before this finished".into())
    );
    w.run();
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(
        w.take_events(b),
        vec![
            invited_bob(2),
            AppEvent::CallingCancel {
                invite_id: "invite-1".into(),
                sponsor: "alice".into()
            }
        ]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
}

#[test]
fn callee_hangup_while_joining_leaves_as_soon_as_joined() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.take_events(b);
    let accepting = w.command(b, Command::Accept);
    assert!(
        w.server.received[&b].contains(&calling_protocol::ClientMessage::Accept {
            request_id: accepting,
            invite_id: "invite-1".into()
        }),
        "bob's Accept goes out at once, before his microphone opens"
    );
    let hanging = w.command(b, Command::Hangup);
    assert_eq!(w.reply(b, hanging), Some(&Ok(ok0())));
    assert!(matches!(w.reply(b, accepting), Some(Err(_))));
    w.run();
    assert_eq!(w.take_events(b), vec![]);
    // bob's microphone was live on the connection made while ringing for a moment: its first
    // packets reached alice before his hangup did.
    assert_eq!(
        w.take_events(a),
        vec![
            user_accept("bob"),
            user_enter("bob"),
            user_leave("bob"),
            call_end("bob", 0)
        ]
    );
    assert_idle(&w, a);
    assert_idle(&w, b);
    assert!(
        w.server.received[&b].contains(&calling_protocol::ClientMessage::Hangup {
            room_id: FIRST_ROOM
        })
    );
}

#[test]
fn the_other_side_leaving_ends_a_1to1_call_at_once() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(5_000);
    w.command(b, Command::Hangup);
    // alice hears of bob leaving before the server's end of the call: that is the end.
    while !w.clients[a]
        .events
        .iter()
        .any(|e| matches!(e, AppEvent::CallEnd { .. }))
    {
        assert!(w.step(), "no CALL_END");
    }
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 5)]
    );
    assert_idle(&w, a);
    let ended = w.take_queued(a, |i| {
        matches!(
            server_message(i),
            Some(calling_protocol::ServerMessage::CallEnded(_))
        )
    });
    assert_eq!(ended.len(), 1, "callEnded was still on its way");
    for input in ended {
        w.inject(a, input);
    }
    w.run();
    assert_eq!(w.take_events(a), vec![], "the late callEnded is ignored");
    assert_idle(&w, b);
}
