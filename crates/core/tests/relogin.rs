//! A lost signaling session the server no longer holds: the SDK logs in again on its own and
//! the call that ended with the old session ends here once, through the usual events; an
//! invitation still ringing keeps ringing and can be accepted; a session a login elsewhere
//! ended is a kick-out; and when no session can be had, the SDK gives up with `ERROR` 60008.

mod support;

use std::time::Duration;

use calling_core::{code, AppEvent, CallStatus, Command, Reply, SdkError, Timer};
use calling_protocol::{CallType, ClientMessage, Signal};
use support::socket::Server;
use support::*;

/// A server keeping a dropped session for 10 s, well inside the 30 s ring.
fn short_grace() -> World {
    World::with_server(Server::with_grace(Duration::from_secs(10)))
}

/// alice calls bob (video) and it rings, in `w`; events cleared.
fn ringing_in(w: World) -> (World, usize, usize) {
    let (mut w, [a, b]) = w.with_users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(a);
    w.take_events(b);
    (w, a, b)
}

/// `client`'s socket drops while its network is down: the first attempt fails at once.
fn lose_network(w: &mut World, client: usize) {
    w.clients[client].network = false;
    w.drop_socket(client);
}

/// Time moves on until every suspended session's grace is over (and nothing else).
fn grace_ends(w: &mut World) {
    let end = w
        .server
        .next_deadline_ms()
        .expect("a session waits for a resume");
    w.expire_until(end);
}

fn calling_cancel() -> AppEvent {
    AppEvent::CallingCancel {
        invite_id: "invite-1".into(),
        sponsor: "alice".into(),
    }
}

fn offers_sent(w: &World, client: usize) -> usize {
    frames_received(w, client, |m| {
        matches!(
            m,
            ClientMessage::Relay {
                signal: Signal::Offer { .. },
                ..
            }
        )
    })
}

fn assert_released(w: &World, client: usize) {
    let browser = w.browser(client);
    assert!(browser.peers.is_empty(), "{:?}", browser.peers.keys());
    assert!(!browser.audio && !browser.video, "media left open");
    assert_eq!(w.clients[client].call.status(), CallStatus::Idle);
    w.assert_browsers_clean();
}

#[test]
fn a_call_whose_session_ended_ends_once_on_both_sides_and_the_sdk_logs_in_again() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(5_000);
    lose_network(&mut w, b);
    grace_ends(&mut w);
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 35)]
    );
    assert_eq!(w.take_events(b), vec![reconnecting(1)], "still trying");
    // The network comes back later still; the call ended when the server ended the session.
    w.advance(3_000);
    w.online(b);
    assert_eq!(
        w.take_events(b),
        vec![reconnecting(2), call_end("bob", 35), reconnected(false)]
    );
    assert_eq!(w.take_events(a), vec![]);
    assert_released(&w, b);
    assert_released(&w, a);
    assert_eq!(w.clients[b].call.user_id(), Some("bob"));
    assert!(w.clients[b].timers.contains(&Timer::Heartbeat));
    let logins = frames_received(&w, b, |m| {
        matches!(
            m,
            ClientMessage::Login {
                resumable: true,
                ..
            }
        )
    });
    assert_eq!(logins, 2, "logged in again with the stored credentials");
    // The new session works: alice calls again and bob hears it.
    w.command(a, call("bob", CallType::Audio));
    w.run();
    assert!(matches!(&w.take_events(b)[..], [AppEvent::Invited { .. }]));
}

#[test]
fn a_caller_whose_session_ended_hears_call_end_and_the_callee_calling_cancel() {
    let (mut w, a, b) = ringing_in(short_grace());
    lose_network(&mut w, a);
    grace_ends(&mut w);
    assert_eq!(w.take_events(b), vec![calling_cancel()]);
    w.online(a);
    assert_eq!(
        w.take_events(a),
        vec![
            reconnecting(1),
            reconnecting(2),
            call_end("alice", 0),
            reconnected(false)
        ]
    );
    assert_released(&w, a);
    assert_released(&w, b);
}

#[test]
fn a_ringing_callee_logged_in_again_keeps_ringing_and_can_accept_though_its_answer_was_lost() {
    let (mut w, [a, b]) = short_grace().with_users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    // bob's browser applies alice's offer; his answer is still on its way back from it when
    // his socket breaks, so the answer is lost, and with it his whole session.
    while w
        .browser(b)
        .peers
        .get("alice")
        .is_none_or(|p| p.remote.is_none())
    {
        assert!(w.step(), "bob never got the offer");
    }
    w.clients[b].network = false;
    w.cut(b);
    w.run();
    assert!(!w.browser(a).peers["bob"].connected, "alice has no answer");
    w.notice_close(b);
    grace_ends(&mut w);
    assert_eq!(w.take_events(a), vec![], "an invitee away is still invited");
    w.online(b);
    let heard = w.take_events(b);
    assert!(matches!(heard[0], AppEvent::Invited { .. }), "{heard:?}");
    assert_eq!(
        heard[1..],
        [reconnecting(1), reconnecting(2), reconnected(false)],
        "ringing on: no second INVITED, no CALLING_CANCEL"
    );
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);
    let accepting = w.command(b, Command::Accept);
    w.run();
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    assert_video_connect_events(&mut w, a, b);
    assert_eq!(offers_sent(&w, a), 2, "alice's unanswered offer went again");
    for (c, other) in [(a, "bob"), (b, "alice")] {
        let peer = &w.browser(c).peers[other];
        assert!(peer.connected && peer.media_arrived);
    }
    w.assert_browsers_clean();
}

#[test]
fn an_invitation_declined_on_reconnected_is_not_rung_again_by_its_redelivery() {
    let (mut w, a, b) = ringing_in(short_grace());
    lose_network(&mut w, b);
    grace_ends(&mut w);
    w.clients[b].network = true;
    w.inject(b, calling_core::Input::NetworkOnline);
    // The app declines from its RECONNECTED listener, before the server's copy of the
    // invitation (already on its way) is processed.
    while !w.clients[b].events.contains(&reconnected(false)) {
        assert!(w.step(), "never reconnected");
    }
    w.command(b, Command::Reject);
    w.run();
    assert_eq!(
        w.take_events(b),
        vec![reconnecting(1), reconnecting(2), reconnected(false)],
        "no second INVITED"
    );
    assert_released(&w, b);
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::Reject {
            user_id: "bob".into()
        }]
    );
}

#[test]
fn an_invitation_that_ended_while_away_is_withdrawn_once_after_logging_in_again() {
    let (mut w, a, b) = ringing_in(short_grace());
    lose_network(&mut w, b);
    w.command(a, Command::Hangup);
    w.run();
    grace_ends(&mut w);
    w.online(b);
    assert_eq!(
        w.take_events(b),
        vec![
            reconnecting(1),
            reconnecting(2),
            reconnected(false),
            calling_cancel()
        ]
    );
    assert_released(&w, b);
    assert_eq!(w.take_events(a), vec![]);
}

#[test]
fn an_accept_lost_with_the_old_session_is_made_again_in_the_new_one() {
    let (mut w, a, b) = ringing_in(short_grace());
    lose_network(&mut w, b);
    let accepting = w.command(b, Command::Accept);
    w.run();
    grace_ends(&mut w);
    assert_eq!(w.reply(b, accepting), None);
    w.online(b);
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    let heard = w.take_events(b);
    assert_eq!(
        heard[..3],
        [reconnecting(1), reconnecting(2), reconnected(false)]
    );
    assert_eq!(
        heard[3..],
        [
            user_enter("alice"),
            audio("alice", true),
            video("alice", true)
        ]
    );
    assert_eq!(
        w.take_events(a),
        vec![
            user_accept("bob"),
            user_enter("bob"),
            audio("bob", true),
            video("bob", true)
        ]
    );
    assert_eq!(
        frames_received(&w, b, |m| matches!(m, ClientMessage::Accept { .. })),
        1
    );
    w.assert_browsers_clean();
}

#[test]
fn a_call_made_while_reconnecting_fails_clearly_when_the_session_is_gone() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    lose_network(&mut w, a);
    let calling = w.command(a, call("bob", CallType::Audio));
    w.run();
    grace_ends(&mut w);
    w.online(a);
    let failed = w.reply(a, calling).and_then(|r| r.as_ref().err()).cloned();
    assert!(
        matches!(
            failed,
            Some(SdkError {
                code: Some(code::SIGNALING_LOST),
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(
        w.take_events(a),
        vec![reconnecting(1), reconnecting(2), reconnected(false)],
        "no CALL_END for a call the server never heard of"
    );
    assert_eq!(w.take_events(b), vec![]);
    assert_released(&w, a);
    // The line is free and the new session works.
    let again = w.command(a, call("bob", CallType::Audio));
    w.run();
    assert!(matches!(w.reply(a, again), Some(Ok(Reply::Call { .. }))));
}

#[test]
fn a_session_ended_by_a_login_elsewhere_is_a_kick_out_not_a_login_again() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(2_000);
    lose_network(&mut w, b);
    let b2 = w.logged_in("bob");
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 2)]
    );
    w.online(b);
    assert_eq!(
        w.take_events(b),
        vec![reconnecting(1), reconnecting(2), AppEvent::KickedOut {}]
    );
    assert_eq!(w.clients[b].call.user_id(), None);
    assert!(w.clients[b].timers.is_empty());
    assert_released(&w, b);
    // The newer login stays: it gets the next call, the kicked instance nothing.
    w.command(a, call("bob", CallType::Audio));
    w.run();
    assert!(matches!(&w.take_events(b2)[..], [AppEvent::Invited { .. }]));
    assert_eq!(w.take_events(b), vec![]);
}

#[test]
fn reconnecting_gives_up_after_two_minutes_with_60008() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(4_000);
    let lost_at = w.now_ms;
    lose_network(&mut w, b);
    while w.clients[b].timers.contains(&Timer::Reconnect) {
        let wait = w.clients[b].timer_log.last().map_or(0, |(_, ms)| *ms);
        let until = w.now_ms + u64::from(wait);
        // bob's grace ends on the server's clock, wherever it falls between two attempts.
        if let Some(end) = w.server.next_deadline_ms().filter(|end| *end <= until) {
            w.expire_until(end);
        }
        w.now_ms = until;
        w.fire(b, Timer::Reconnect);
    }
    assert!(w.now_ms - lost_at >= 120_000);
    let heard = w.take_events(b);
    let attempts = heard.len() - 2;
    let expected: Vec<AppEvent> = (1..=attempts as u32)
        .map(reconnecting)
        .chain([
            call_end("bob", 34),
            AppEvent::Error {
                code: 60008,
                msg: "the signaling connection was lost and could not be restored within 120 s"
                    .into(),
            },
        ])
        .collect();
    assert_eq!(heard, expected);
    assert!(attempts > 10, "{attempts} attempts");
    assert_eq!(w.clients[b].call.user_id(), None);
    assert!(w.clients[b].timers.is_empty());
    assert!(!w.clients[b].socket_open);
    assert_released(&w, b);
    // alice heard bob leave once, when his grace ended.
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 34)]
    );
}

#[test]
fn a_login_again_that_is_refused_gives_up_with_60008() {
    let (mut w, _a, b) = connected(CallType::Audio);
    w.advance(1_000);
    lose_network(&mut w, b);
    grace_ends(&mut w);
    w.server.sigs_expired = true;
    w.online(b);
    assert_eq!(
        w.take_events(b),
        vec![
            reconnecting(1),
            reconnecting(2),
            call_end("bob", 31),
            AppEvent::Error {
                code: 60008,
                msg: "the signaling session was lost and logging in again failed: UserSig expired"
                    .into()
            }
        ]
    );
    assert_eq!(w.clients[b].call.user_id(), None);
    assert!(w.clients[b].timers.is_empty());
    assert!(!w.clients[b].socket_open);
    assert_released(&w, b);
}
