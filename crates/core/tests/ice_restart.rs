//! Calls that survive the network: a media connection whose path breaks is interrupted, ICE
//! restarts (the impolite side first, the polite side as a fallback) bring it back through
//! the server's relay, and one that never comes back is given up after 30 s, exactly once.
//! "alice" < "bob" < "carol": alice is impolite towards both, bob towards carol.

mod support;

use calling_core::{code, AppEvent, CallStatus, Command, Input, PeerEvent, PeerState, Timer};
use calling_protocol::{CallType, ClientMessage, Signal};
use support::browser::is_restart;
use support::*;

fn interrupted(user: &str) -> AppEvent {
    AppEvent::PeerMediaInterrupted {
        user_id: user.into(),
    }
}

fn restored(user: &str) -> AppEvent {
    AppEvent::PeerMediaRestored {
        user_id: user.into(),
    }
}

fn lost(user: &str) -> AppEvent {
    AppEvent::Error {
        code: code::PEER_CONNECTION_FAILED,
        msg: format!("the media connection to {user} was lost and could not be restored"),
    }
}

/// How many messages `c` has sent to the server so far.
fn sent(w: &World, c: usize) -> usize {
    w.server.received.get(&c).map_or(0, Vec::len)
}

/// The offers and answers `c` relayed since it had sent `since` messages.
fn sdp_since(w: &World, c: usize, since: usize) -> (Vec<String>, Vec<String>) {
    let (mut offers, mut answers) = (Vec::new(), Vec::new());
    for message in w.server.received.get(&c).into_iter().flatten().skip(since) {
        match message {
            ClientMessage::Relay {
                signal: Signal::Offer { sdp },
                ..
            } => offers.push(sdp.clone()),
            ClientMessage::Relay {
                signal: Signal::Answer { sdp },
                ..
            } => answers.push(sdp.clone()),
            _ => {}
        }
    }
    (offers, answers)
}

/// The hangups `c` sent since it had sent `since` messages.
fn hangups_since(w: &World, c: usize, since: usize) -> usize {
    let received = w.server.received.get(&c).into_iter().flatten().skip(since);
    received
        .filter(|m| matches!(m, ClientMessage::Hangup { .. }))
        .count()
}

fn restarts(w: &World, c: usize, user: &str) -> u32 {
    w.browser(c).peers.get(user).map_or(0, |p| p.ice_restarts)
}

fn status(w: &World, c: usize) -> CallStatus {
    w.clients[c].call.status()
}

fn health_timer_running(w: &World, c: usize) -> bool {
    w.clients[c].timers.contains(&Timer::PeerHealth)
}

/// Nothing more happens for a minute: no event, no timer left for the links.
fn assert_quiet(w: &mut World, clients: &[usize]) {
    w.elapse(60_000);
    for &c in clients {
        assert_eq!(w.take_events(c), vec![], "{}", w.clients[c].user);
        assert!(!health_timer_running(w, c), "{}", w.clients[c].user);
    }
    w.assert_browsers_clean();
}

#[test]
fn a_dropped_link_heals_with_one_restart_offer_from_the_impolite_side() {
    let (mut w, a, b) = connected(CallType::Video);
    let (since_a, since_b) = (sent(&w, a), sent(&w, b));
    w.cut_path(a, b);
    assert_eq!(w.take_events(a), vec![interrupted("bob")]);
    assert_eq!(w.take_events(b), vec![interrupted("alice")]);
    assert!(health_timer_running(&w, a) && health_timer_running(&w, b));

    // The network is back after a second, but the old ICE candidates are gone with it.
    w.elapse(1_000);
    w.mend(a, b);
    assert_eq!(restarts(&w, a, "bob"), 0, "two seconds of grace first");
    w.elapse(1_000);
    assert_eq!(w.take_events(a), vec![restored("bob")]);
    assert_eq!(w.take_events(b), vec![restored("alice")]);

    // One restart offer crossed, through the server, and was answered; bob never restarted.
    let (offers, answers) = sdp_since(&w, a, since_a);
    assert_eq!(answers, Vec::<String>::new());
    let [offer] = offers.as_slice() else {
        panic!("one offer from alice: {offers:?}")
    };
    assert!(is_restart(offer), "{offer}");
    assert_eq!(w.browser(b).peers["alice"].remote.as_ref(), Some(offer));
    let (offers, answers) = sdp_since(&w, b, since_b);
    assert_eq!(offers, Vec::<String>::new());
    let [answer] = answers.as_slice() else {
        panic!("one answer from bob: {answers:?}")
    };
    assert!(is_restart(answer), "{answer}");
    assert_eq!(w.browser(a).peers["bob"].remote.as_ref(), Some(answer));
    assert_eq!(restarts(&w, a, "bob"), 1);
    assert_eq!(
        restarts(&w, b, "alice"),
        0,
        "the polite fallback was not needed"
    );
    assert!(w.browser(a).peers["bob"].connected && w.browser(b).peers["alice"].connected);
    // Each side asked the other for a fresh key frame, once, as the link came back.
    assert_eq!(w.browser(a).peers["bob"].key_frames, 1);
    assert_eq!(w.browser(b).peers["alice"].key_frames, 1);

    assert_quiet(&mut w, &[a, b]);
    assert_eq!(status(&w, a), CallStatus::Connected);
    assert_eq!(status(&w, b), CallStatus::Connected);
    assert_eq!(
        hangups_since(&w, a, since_a) + hangups_since(&w, b, since_b),
        0
    );
}

#[test]
fn the_network_coming_back_restarts_ice_at_once_from_the_side_that_saw_it() {
    let (mut w, a, b) = connected(CallType::Video);
    let since_b = sent(&w, b);
    w.cut_path(a, b);
    w.take_events(a);
    w.take_events(b);
    w.elapse(500);
    w.mend(a, b);
    // Bob's browser is online again (his Wi-Fi is back): he restarts now, not at his turn.
    w.inject(b, Input::NetworkOnline);
    w.run();
    assert_eq!(restarts(&w, b, "alice"), 1);
    assert_eq!(restarts(&w, a, "bob"), 0, "alice's turn has not come");
    assert_eq!(w.take_events(a), vec![restored("bob")]);
    assert_eq!(w.take_events(b), vec![restored("alice")]);
    assert_eq!(sdp_since(&w, b, since_b).0.len(), 1, "one restart offer");
    assert!(w.browser(a).peers["bob"].connected && w.browser(b).peers["alice"].connected);
    assert_quiet(&mut w, &[a, b]);
    assert_eq!(restarts(&w, a, "bob") + restarts(&w, b, "alice"), 1);
}

#[test]
fn the_network_coming_back_restarts_nothing_on_a_healthy_link() {
    let (mut w, a, b) = connected(CallType::Audio);
    w.inject(b, Input::NetworkOnline);
    w.run();
    assert_eq!(restarts(&w, a, "bob") + restarts(&w, b, "alice"), 0);
    assert_quiet(&mut w, &[a, b]);
}

#[test]
fn a_blip_that_recovers_by_itself_restarts_nothing() {
    let (mut w, a, b) = connected(CallType::Audio);
    let (since_a, since_b) = (sent(&w, a), sent(&w, b));
    w.cut_path(a, b);
    w.elapse(1_500);
    w.recover(a, b);
    assert_eq!(w.take_events(a), vec![interrupted("bob"), restored("bob")]);
    assert_eq!(
        w.take_events(b),
        vec![interrupted("alice"), restored("alice")]
    );
    assert_quiet(&mut w, &[a, b]);
    assert_eq!(restarts(&w, a, "bob") + restarts(&w, b, "alice"), 0);
    assert_eq!(
        sdp_since(&w, a, since_a).0.len() + sdp_since(&w, b, since_b).0.len(),
        0
    );
}

#[test]
fn when_only_the_polite_side_notices_its_fallback_restart_heals_the_link() {
    let (mut w, a, b) = connected(CallType::Video);
    let (since_a, since_b) = (sent(&w, a), sent(&w, b));
    w.sever(a, b);
    w.sever(b, a);
    w.peer_event(
        b,
        "alice",
        PeerEvent::ConnectionState(PeerState::Disconnected),
    );
    w.run();
    w.mend(a, b);
    w.elapse(3_999);
    assert_eq!(
        restarts(&w, b, "alice"),
        0,
        "the polite side waits 2 s more"
    );
    w.elapse(1);
    assert_eq!(restarts(&w, b, "alice"), 1);
    assert_eq!(w.take_events(a), vec![], "alice never saw it stop");
    assert_eq!(
        w.take_events(b),
        vec![interrupted("alice"), restored("alice")]
    );
    assert_eq!(sdp_since(&w, b, since_b).0.len(), 1);
    assert_eq!(sdp_since(&w, a, since_a).0.len(), 0);
    assert_quiet(&mut w, &[a, b]);
}

#[test]
fn a_link_that_never_heals_ends_the_call_on_both_sides_once() {
    let (mut w, a, b) = connected(CallType::Audio);
    let (since_a, since_b) = (sent(&w, a), sent(&w, b));
    w.cut_path(a, b);
    w.elapse(29_999);
    assert_eq!(w.take_events(a), vec![interrupted("bob")]);
    assert_eq!(w.take_events(b), vec![interrupted("alice")]);
    // Every 3 s: alice at 2, 5, … 29 s; bob, as a fallback, at 4, 7, … 28 s. Each restart
    // offer went through the server and was answered over a path that stayed dead.
    assert_eq!(restarts(&w, a, "bob"), 10);
    assert_eq!(restarts(&w, b, "alice"), 9);
    let (offers, answers) = sdp_since(&w, a, since_a);
    assert_eq!((offers.len(), answers.len()), (10, 9));
    assert_eq!(status(&w, a), CallStatus::Connected);

    // Both give up at the same moment, before either hears of the other's hangup.
    w.elapse(1);
    assert_eq!(
        w.take_events(a),
        vec![lost("bob"), user_leave("bob"), call_end("bob", 30)]
    );
    assert_eq!(
        w.take_events(b),
        vec![lost("alice"), user_leave("alice"), call_end("alice", 30)]
    );
    assert_eq!(status(&w, a), CallStatus::Idle);
    assert_eq!(status(&w, b), CallStatus::Idle);
    assert_eq!(hangups_since(&w, a, since_a), 1);
    assert_eq!(hangups_since(&w, b, since_b), 1);
    assert_eq!(w.browser(a).closed, vec!["bob".to_string()]);
    assert_eq!(w.browser(b).closed, vec!["alice".to_string()]);
    assert_quiet(&mut w, &[a, b]);
}

#[test]
fn the_side_that_gives_up_first_ends_the_call_and_the_other_hears_a_plain_leave() {
    let (mut w, a, b) = connected(CallType::Audio);
    let (since_a, since_b) = (sent(&w, a), sent(&w, b));
    w.sever(a, b);
    w.sever(b, a);
    w.peer_event(
        a,
        "bob",
        PeerEvent::ConnectionState(PeerState::Disconnected),
    );
    w.run();
    w.elapse(5_000);
    // bob's browser notices five seconds later.
    w.peer_event(
        b,
        "alice",
        PeerEvent::ConnectionState(PeerState::Disconnected),
    );
    w.run();
    w.elapse(24_999);
    assert_eq!(w.take_events(a), vec![interrupted("bob")]);
    assert_eq!(w.take_events(b), vec![interrupted("alice")]);
    w.elapse(1);
    assert_eq!(
        w.take_events(a),
        vec![lost("bob"), user_leave("bob"), call_end("bob", 30)]
    );
    // bob hears alice hang up through the server, as for any hangup: no 60009 of his own.
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 30)]
    );
    assert_eq!(status(&w, b), CallStatus::Idle);
    assert!(!health_timer_running(&w, b), "stopped with the call");
    assert_eq!(hangups_since(&w, a, since_a), 1);
    assert_eq!(hangups_since(&w, b, since_b), 0);
    assert_quiet(&mut w, &[a, b]);
}

/// alice calls bob and carol, both accept; the path between bob and carol breaks for good
/// and both give up on each other. Events so far are cleared; returns when each client had
/// sent how many messages before the break.
fn group_split() -> (World, [usize; 3], [usize; 3]) {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(a, group(&["bob", "carol"], CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    w.command(c, Command::Accept);
    w.run();
    for client in [a, b, c] {
        w.take_events(client);
    }
    let since = [a, b, c].map(|client| sent(&w, client));
    w.cut_path(b, c);
    w.elapse(30_000);
    (w, [a, b, c], since)
}

#[test]
fn in_a_group_call_only_the_dead_link_is_given_up_and_the_call_goes_on() {
    let (mut w, [a, b, c], since) = group_split();
    assert_eq!(w.take_events(a), vec![], "alice's links are fine");
    assert_eq!(
        w.take_events(b),
        vec![interrupted("carol"), lost("carol"), user_leave("carol")]
    );
    assert_eq!(
        w.take_events(c),
        vec![interrupted("bob"), lost("bob"), user_leave("bob")]
    );
    for (client, since) in [a, b, c].into_iter().zip(since) {
        assert_eq!(status(&w, client), CallStatus::Connected);
        assert_eq!(
            hangups_since(&w, client, since),
            0,
            "nobody leaves the call"
        );
        assert!(!health_timer_running(&w, client));
    }
    assert_eq!(w.browser(b).closed, vec!["carol".to_string()]);
    assert_eq!(w.browser(c).closed, vec!["bob".to_string()]);
    assert_eq!(w.browser(a).peers.len(), 2);

    // bob hangs up: alice hears it; carol, who gave him up already, hears nothing twice.
    w.command(b, Command::Hangup);
    w.run();
    assert_eq!(w.take_events(a), vec![user_leave("bob")]);
    assert_eq!(w.take_events(c), vec![]);
    assert_eq!(status(&w, a), CallStatus::Connected);
    assert_eq!(status(&w, c), CallStatus::Connected);
    assert_quiet(&mut w, &[a, c]);
}

#[test]
fn the_member_both_sides_still_reach_leaving_a_split_group_call_ends_it_for_both() {
    let (mut w, [a, b, c], since) = group_split();
    for client in [a, b, c] {
        w.take_events(client);
    }
    w.command(a, Command::Hangup);
    w.run();
    assert_eq!(w.take_events(a), vec![call_end("alice", 30)]);
    // The server still counts bob and carol as two members; each ends the call for itself.
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 30)]
    );
    assert_eq!(
        w.take_events(c),
        vec![user_leave("alice"), call_end("alice", 30)]
    );
    for (client, since) in [a, b, c].into_iter().zip(since) {
        assert_eq!(status(&w, client), CallStatus::Idle);
        assert_eq!(hangups_since(&w, client, since), 1);
    }
    assert_quiet(&mut w, &[a, b, c]);
}

#[test]
fn a_call_that_never_finds_a_path_ends_on_both_sides_once_with_an_error() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.clients[a].browser.no_path = true;
    w.clients[b].browser.no_path = true;
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    // Retried silently: there never was media to call interrupted.
    w.elapse(29_000);
    for c in [a, b] {
        let events = w.take_events(c);
        assert!(
            !events.iter().any(|e| matches!(
                e,
                AppEvent::PeerMediaInterrupted { .. }
                    | AppEvent::Error { .. }
                    | AppEvent::CallEnd { .. }
            )),
            "{}: {events:?}",
            w.clients[c].user
        );
        assert_eq!(status(&w, c), CallStatus::Connected);
    }
    assert!(restarts(&w, a, "bob") >= 2 && restarts(&w, b, "alice") >= 2);
    w.elapse(2_000);
    for (c, other) in [(a, "bob"), (b, "alice")] {
        let events = w.take_events(c);
        let error = AppEvent::Error {
            code: code::PEER_CONNECTION_FAILED,
            msg: format!("the media connection to {other} could not be established"),
        };
        assert_eq!(events[..2], [error, user_leave(other)], "{events:?}");
        assert!(
            matches!(events[2..], [AppEvent::CallEnd { .. }]),
            "{events:?}"
        );
        assert_eq!(status(&w, c), CallStatus::Idle);
    }
    assert_quiet(&mut w, &[a, b]);
}

/// alice's group call with bob (who accepted) and carol (still ringing), split by a dead
/// link between alice and bob that both gave up on; `carol_answers` is carol's part.
fn split_while_carol_rings(carol_answers: impl FnOnce(&mut World, usize)) {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(a, group(&["bob", "carol"], CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    let since = [sent(&w, a), sent(&w, b)];
    w.cut_path(a, b);
    w.elapse(31_000);
    // Each gave the other up; carol still rings, so the call goes on for both.
    for (client, other) in [(a, "bob"), (b, "alice")] {
        let events = w.take_events(client);
        assert!(events.contains(&user_leave(other)), "{events:?}");
        assert_eq!(status(&w, client), CallStatus::Connected);
    }
    carol_answers(&mut w, c);
    // Nobody alice can reach is left: she ends the call and tells the server, which then
    // ends it for bob, its only member left.
    for client in [a, b] {
        let events = w.take_events(client);
        let ends = events
            .iter()
            .filter(|e| matches!(e, AppEvent::CallEnd { .. }))
            .count();
        assert_eq!(ends, 1, "{}: {events:?}", w.clients[client].user);
        assert!(matches!(events.last(), Some(AppEvent::CallEnd { .. })));
        assert_eq!(status(&w, client), CallStatus::Idle);
    }
    assert_eq!(hangups_since(&w, a, since[0]), 1);
    assert_eq!(
        hangups_since(&w, b, since[1]),
        0,
        "the server ended it for bob"
    );
    w.take_events(c);
    assert_quiet(&mut w, &[a, b, c]);
}

#[test]
fn a_group_call_split_by_a_dead_link_ends_when_the_last_invitee_declines() {
    split_while_carol_rings(|w, c| {
        w.command(c, Command::Reject);
        w.run();
    });
}

#[test]
fn a_group_call_split_by_a_dead_link_ends_when_the_last_invitee_never_answers() {
    split_while_carol_rings(|w, _| w.ring_timeout());
}
