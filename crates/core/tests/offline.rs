//! An invitee who was offline when invited: the server drops the offer and candidates relayed
//! to it while it rang and re-delivers only the invitation at login, so the caller sends its
//! unanswered offer again when the invitee accepts. A callee that did get the first copy drops
//! the second one.

mod support;

use calling_core::{AppEvent, CallStatus, Command, Reply};
use calling_protocol::{CallType, ClientMessage, Signal};
use support::*;

/// How many relayed offers and answers `client` sent.
fn sdp_sent(w: &World, client: usize) -> (usize, usize) {
    let signals = w.server.received.get(&client).into_iter().flatten();
    signals.fold((0, 0), |(offers, answers), m| match m {
        ClientMessage::Relay {
            signal: Signal::Offer { .. },
            ..
        } => (offers + 1, answers),
        ClientMessage::Relay {
            signal: Signal::Answer { .. },
            ..
        } => (offers, answers + 1),
        _ => (offers, answers),
    })
}

/// Both sides are connected and each got the other's media.
fn assert_media_both_ways(w: &mut World, a: usize, b: usize) {
    assert_video_connect_events(w, a, b);
    for (c, other) in [(a, "bob"), (b, "alice")] {
        let peer = &w.browser(c).peers[other];
        assert!(peer.connected && peer.attached && peer.media_arrived);
        assert_eq!(w.clients[c].call.status(), CallStatus::Connected);
    }
    w.assert_browsers_clean();
}

#[test]
fn an_invitee_offline_when_invited_gets_media_after_login_and_accept() {
    let mut w = World::new();
    let a = w.logged_in("alice");
    let b = w.client("bob");
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(a);
    assert!(
        !w.browser(a).peers["bob"].connected,
        "the offer went nowhere"
    );

    let login = w.command(b, login("bob"));
    w.run();
    assert!(matches!(w.reply(b, login), Some(Ok(Reply::Login { .. }))));
    let events = w.take_events(b);
    assert!(
        matches!(&events[..], [AppEvent::SdkReady { .. }, AppEvent::Invited { sponsor, .. }] if sponsor == "alice"),
        "{events:?}"
    );

    let accepting = w.command(b, Command::Accept);
    w.run();
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    assert_media_both_ways(&mut w, a, b);
    assert_eq!(sdp_sent(&w, a), (2, 0), "the offer went out again");
    assert_eq!(sdp_sent(&w, b), (0, 1));
}

#[test]
fn an_answered_offer_is_not_sent_again_on_accept() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    w.command(b, Command::Accept);
    w.run();
    assert_media_both_ways(&mut w, a, b);
    assert_eq!(sdp_sent(&w, a), (1, 0));
}

#[test]
fn an_accept_before_the_answer_sends_a_copy_the_callee_drops() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Video));
    // bob accepts the moment he is invited, before alice's offer reaches him: alice hears of
    // the accept while her offer still waits for its answer and sends it again.
    while w.clients[b].events.is_empty() {
        assert!(w.step(), "bob was never invited");
    }
    w.take_events(b);
    w.command(b, Command::Accept);
    w.run();
    assert_media_both_ways(&mut w, a, b);
    assert_eq!(sdp_sent(&w, a), (2, 0), "the offer went out again");
    assert_eq!(sdp_sent(&w, b), (0, 1), "the copy is not answered");
    assert_eq!(w.browser(b).peers["alice"].rollbacks, 0);
}
