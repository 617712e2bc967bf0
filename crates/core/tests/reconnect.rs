//! A signaling socket lost and resumed within the server's grace: the other side notices
//! nothing, the call and its media go on, whatever happened meanwhile arrives once after the
//! resume, frames lost in flight are sent again once, and app methods called meanwhile take
//! effect after it.

mod support;

use calling_core::{AppEvent, CallStatus, Command, Input, Reply, Timer};
use calling_protocol::{CallType, ClientMessage};
use support::*;

/// Both sides connected with their media, as after `connected`.
fn assert_media_up(w: &World, a: usize, b: usize) {
    for (c, other) in [(a, "bob"), (b, "alice")] {
        let peer = &w.browser(c).peers[other];
        assert!(peer.connected && peer.attached && peer.media_arrived);
        assert!(w.browser(c).closed.is_empty(), "a peer was closed");
        assert_eq!(w.clients[c].call.status(), CallStatus::Connected);
    }
    w.assert_browsers_clean();
}

/// alice calls bob (video) and it rings; events cleared.
fn ringing() -> (World, usize, usize) {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(a);
    w.take_events(b);
    (w, a, b)
}

#[test]
fn a_blip_mid_call_is_unseen_by_the_other_side_and_signals_meanwhile_arrive_after_it() {
    let (mut w, a, b) = connected(CallType::Video);
    let before = format!("{:?}", w.browser(b).peers);
    // alice mutes; her signal is on its way to bob when his socket breaks, so it is lost in
    // flight. She turns her camera off while bob is away: that one waits in his journal.
    w.command(a, Command::SetMicMute(true));
    w.cut(b);
    w.command(a, Command::CloseCamera);
    w.run();
    assert_eq!(
        w.take_events(b),
        vec![],
        "bob heard nothing of either change"
    );
    w.notice_close(b);
    assert_eq!(
        w.take_events(b),
        vec![
            reconnecting(1),
            reconnected(true),
            audio("alice", false),
            video("alice", false)
        ]
    );
    assert_eq!(w.take_events(a), vec![], "alice noticed nothing");
    assert_eq!(
        format!("{:?}", w.browser(b).peers),
        before,
        "bob's peer untouched"
    );
    assert!(
        w.browser(b).audio && w.browser(b).video,
        "bob's media stayed"
    );
    assert_media_up(&w, a, b);
    assert!(w.clients[b].timers.contains(&Timer::Heartbeat));
    assert_eq!(w.clients[b].opens, 1);
    // The call goes on as before.
    w.advance(2_000);
    w.command(b, Command::Hangup);
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 2)]
    );
    assert_eq!(w.take_events(b), vec![call_end("bob", 2)]);
}

#[test]
fn the_other_side_hanging_up_while_away_is_heard_once_after_the_resume() {
    let (mut w, a, b) = connected(CallType::Audio);
    w.advance(3_000);
    w.cut(b);
    w.command(a, Command::Hangup);
    w.run();
    assert_eq!(w.take_events(a), vec![call_end("alice", 3)]);
    w.advance(1_000);
    w.notice_close(b);
    // bob counts the call until he heard it ended, a second after alice left.
    assert_eq!(
        w.take_events(b),
        vec![
            reconnecting(1),
            reconnected(true),
            user_leave("alice"),
            call_end("alice", 4)
        ]
    );
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
    assert!(w.browser(b).peers.is_empty() && !w.browser(b).audio);
    w.assert_browsers_clean();
}

#[test]
fn a_reject_while_our_invitation_rings_and_we_are_away_is_heard_once() {
    let (mut w, a, b) = ringing();
    w.drop_socket(a);
    assert_eq!(w.take_events(a), vec![reconnecting(1), reconnected(true)]);
    // A second blip, during which bob declines.
    w.cut(a);
    w.command(b, Command::Reject);
    w.run();
    w.notice_close(a);
    assert_eq!(
        w.take_events(a),
        vec![reconnecting(1), reconnected(true), reject("bob")]
    );
    assert_eq!(w.take_events(b), vec![]);
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    assert!(w.browser(a).peers.is_empty() && !w.browser(a).audio);
    w.assert_browsers_clean();
}

#[test]
fn an_invitation_that_arrives_while_away_rings_once_after_the_resume_and_connects() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.cut(b);
    let calling = w.command(a, call("bob", CallType::Video));
    w.run();
    assert!(matches!(w.reply(a, calling), Some(Ok(Reply::Call { .. }))));
    w.notice_close(b);
    assert_eq!(
        w.take_events(b),
        vec![reconnecting(1), reconnected(true), invited_alice()]
    );
    // The offer relayed while bob was away came with the replay: the connection is up.
    assert!(w.browser(b).peers["alice"].connected);
    let accepting = w.command(b, Command::Accept);
    w.run();
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    w.take_events(a);
    w.take_events(b);
    assert_media_up(&w, a, b);
}

#[test]
fn a_message_already_processed_is_never_processed_again() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    // Catch bob's copy of the invitation with its seq before it is processed.
    let invited = w.take_queued(b, |i| {
        matches!(
            server_message(i),
            Some(calling_protocol::ServerMessage::Invited(_))
        )
    });
    assert!(
        matches!(&invited[..], [Input::Sequenced { .. }]),
        "{invited:?}"
    );
    for input in invited.iter().chain(&invited).cloned() {
        w.inject(b, input);
    }
    w.run();
    assert_eq!(w.take_events(b), vec![invited_alice()], "INVITED once");
    let before = format!("{:?}", w.clients[b].call);
    w.inject(b, invited[0].clone());
    w.run();
    assert_eq!(w.take_events(b), vec![]);
    assert_eq!(format!("{:?}", w.clients[b].call), before);
}

#[test]
fn an_accept_lost_in_flight_is_sent_again_exactly_once() {
    let (mut w, a, b) = ringing();
    w.cut(b);
    let accepting = w.command(b, Command::Accept);
    w.run();
    assert_eq!(w.reply(b, accepting), None, "the server never heard it");
    assert_eq!(
        frames_received(&w, b, |m| matches!(m, ClientMessage::Accept { .. })),
        0
    );
    w.notice_close(b);
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    assert_eq!(
        frames_received(&w, b, |m| matches!(m, ClientMessage::Accept { .. })),
        1
    );
    assert_eq!(w.take_events(b)[..2], [reconnecting(1), reconnected(true)]);
    let heard = w.take_events(a);
    let accepts = heard.iter().filter(|e| **e == user_accept("bob")).count();
    assert_eq!(accepts, 1, "{heard:?}");
    assert_media_up(&w, a, b);
}

#[test]
fn hangup_while_reconnecting_leaves_at_once_and_the_other_side_hears_it_after_the_resume() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(2_000);
    w.clients[b].network = false;
    w.drop_socket(b);
    assert!(!w.clients[b].timers.contains(&Timer::Heartbeat), "paused");
    let hanging = w.command(b, Command::Hangup);
    assert_eq!(w.reply(b, hanging), Some(&Ok(ok0())));
    assert_eq!(w.take_events(b), vec![reconnecting(1), call_end("bob", 2)]);
    assert!(w.browser(b).peers.is_empty() && !w.browser(b).audio && !w.browser(b).video);
    w.run();
    assert_eq!(w.take_events(a), vec![], "not yet: bob's hangup is held");
    w.advance(1_000);
    w.online(b);
    assert_eq!(w.take_events(b), vec![reconnecting(2), reconnected(true)]);
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 3)]
    );
    assert!(w.clients[b].timers.contains(&Timer::Heartbeat), "resumed");
    w.assert_browsers_clean();
}

#[test]
fn a_call_made_while_reconnecting_goes_out_after_the_resume_and_settles() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.clients[a].network = false;
    w.drop_socket(a);
    let calling = w.command(a, call("bob", CallType::Audio));
    w.run();
    assert_eq!(w.reply(a, calling), None);
    assert_eq!(w.take_events(b), vec![]);
    w.online(a);
    assert_eq!(
        w.reply(a, calling),
        Some(&Ok(Reply::Call {
            code: 0,
            invite_id: "invite-1".into(),
            room_id: FIRST_ROOM,
            user_id: "bob".into()
        }))
    );
    assert_eq!(
        w.take_events(a),
        vec![reconnecting(1), reconnecting(2), reconnected(true)]
    );
    assert!(matches!(&w.take_events(b)[..], [AppEvent::Invited { .. }]));
}

#[test]
fn an_accept_made_while_reconnecting_goes_out_after_the_resume_and_connects() {
    let (mut w, a, b) = ringing();
    w.clients[b].network = false;
    w.drop_socket(b);
    let accepting = w.command(b, Command::Accept);
    w.run();
    assert_eq!(w.reply(b, accepting), None);
    assert!(!w.browser(b).peers["alice"].attached, "nothing sent yet");
    assert_eq!(w.take_events(a), vec![]);
    w.online(b);
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    let heard = w.take_events(b);
    assert_eq!(
        heard[..3],
        [reconnecting(1), reconnecting(2), reconnected(true)]
    );
    // No media went to alice before she heard that bob accepted.
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
        heard[3..],
        [
            user_enter("alice"),
            audio("alice", true),
            video("alice", true)
        ]
    );
    assert_media_up(&w, a, b);
}

#[test]
fn logout_while_reconnecting_stops_trying_and_the_other_side_hears_it_when_the_grace_ends() {
    let (mut w, a, b) = connected(CallType::Video);
    w.advance(2_000);
    w.clients[b].network = false;
    w.drop_socket(b);
    let out = w.command(b, Command::Logout);
    w.run();
    assert_eq!(w.reply(b, out), Some(&Ok(ok0())));
    assert_eq!(w.take_events(b), vec![reconnecting(1), call_end("bob", 2)]);
    assert_eq!(w.clients[b].call.user_id(), None);
    assert!(w.clients[b].timers.is_empty(), "no retry, no heartbeat");
    assert!(w.browser(b).peers.is_empty() && !w.browser(b).audio);
    // Nothing more is tried, even when the network comes back.
    w.online(b);
    assert_eq!(w.clients[b].opens, 1);
    assert_eq!(w.take_events(b), vec![]);
    // The server never heard the logout: alice hears bob leave when his grace ends, 30 s
    // after his socket dropped, 2 s into the call.
    assert_eq!(w.take_events(a), vec![]);
    let grace_end = w.server.next_deadline_ms().expect("bob's grace");
    w.expire_until(grace_end);
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 32)]
    );
}

#[test]
fn the_network_coming_back_retries_at_once_and_waits_grow_capped_and_jittered() {
    let waits = |seed_world: fn() -> (World, usize, usize)| {
        let (mut w, _a, b) = seed_world();
        w.clients[b].network = false;
        w.drop_socket(b);
        for _ in 0..9 {
            w.fire(b, Timer::Reconnect);
        }
        let opens = w.clients[b].opens;
        // The network is back: no waiting for the timer.
        w.online(b);
        assert_eq!(w.clients[b].opens, opens + 1);
        assert!(!w.clients[b].timers.contains(&Timer::Reconnect));
        let events = w.take_events(b);
        assert_eq!(events.last(), Some(&reconnected(true)));
        assert_eq!(events.len(), 12, "attempts 1 to 11, then back: {events:?}");
        let log = &w.clients[b].timer_log;
        log.iter()
            .filter(|(t, _)| *t == Timer::Reconnect)
            .map(|(_, ms)| *ms)
            .collect::<Vec<u32>>()
    };
    let first = waits(|| connected(CallType::Audio));
    let nominal = [
        500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 10_000, 10_000,
    ];
    assert_eq!(first.len(), nominal.len(), "{first:?}");
    for (wait, nominal) in first.iter().zip(nominal) {
        assert!(
            *wait >= nominal * 3 / 4 && *wait <= nominal * 5 / 4,
            "{first:?}"
        );
    }
    assert!(
        first[5..].iter().any(|w| *w != first[5]),
        "capped waits are jittered: {first:?}"
    );
    assert_eq!(
        waits(|| connected(CallType::Audio)),
        first,
        "same seed, same waits"
    );
}

fn invited_alice() -> AppEvent {
    AppEvent::Invited {
        sponsor: "alice".into(),
        user_id_list: vec!["bob".into()],
        is_from_group: false,
        invite_data: calling_core::InviteData {
            version: calling_core::INVITE_DATA_VERSION,
            call_type: 2,
            room_id: FIRST_ROOM,
            call_end: 0,
        },
        invite_id: "invite-1".into(),
    }
}

fn reject(user: &str) -> AppEvent {
    AppEvent::Reject {
        user_id: user.into(),
    }
}
