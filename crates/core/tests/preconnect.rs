//! Connecting while an invitation rings: the caller offers to each invitee as soon as the
//! invitation is confirmed and the callee answers without opening a device, so the connection
//! is up before anyone accepts; tracks go on it only once the call is accepted between the
//! two sides; any end of the ring closes it on both sides.

mod support;

use calling_core::{AppEvent, CallStatus, Command, Input, Reply};
use calling_protocol::{CallType, ClientMessage, Signal};
use support::*;

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
fn the_connection_is_up_while_ringing_and_carries_nothing() {
    let (w, a, b) = ringing();
    let (caller, callee) = (&w.browser(a).peers["bob"], &w.browser(b).peers["alice"]);
    assert!(caller.initiator && !callee.initiator);
    assert!(
        caller.connected && callee.connected,
        "ICE/DTLS during the ring"
    );
    assert!(
        !caller.attached && !callee.attached,
        "no track before accept"
    );
    // The caller's own devices open at call() (a local preview); the callee's stay closed.
    assert!(w.browser(a).audio && w.browser(a).video);
    assert!(
        !w.browser(b).audio && !w.browser(b).video,
        "callee device opened"
    );
    assert!(!w.browser(a).sends_any() && !w.browser(b).sends_any());
    // Not even the media state goes out before accept: nobody hears of the other's media.
    for c in [a, b] {
        let media_signals = w.server.received[&c]
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    ClientMessage::Relay {
                        signal: Signal::Media { .. },
                        ..
                    }
                )
            })
            .count();
        assert_eq!(media_signals, 0, "{}", w.clients[c].user);
    }
    w.assert_browsers_clean();
}

#[test]
fn tracks_attach_on_accept_each_side_at_its_own_moment() {
    let (mut w, a, b) = ringing();
    let accepting = w.command(b, Command::Accept);
    // Accept is out and bob's devices are opening: his side sends from now on; alice's does not
    // until the server tells her bob accepted.
    assert!(w.server.received[&b].contains(&ClientMessage::Accept {
        request_id: accepting,
        invite_id: "invite-1".into()
    }));
    assert!(w.browser(b).peers["alice"].attached);
    assert!(!w.browser(a).peers["bob"].attached);
    w.run();
    assert!(w.browser(a).peers["bob"].attached);
    assert_eq!(
        w.reply(b, accepting),
        Some(&Ok(Reply::Accept {
            code: 0,
            room_id: FIRST_ROOM,
            call_type: 2
        }))
    );
    assert_video_connect_events(&mut w, a, b);
    for c in [a, b] {
        assert_eq!(
            w.browser(c).peers.len(),
            1,
            "the ringing connection is kept"
        );
        assert!(w.browser(c).closed.is_empty());
        assert_eq!(w.clients[c].call.status(), CallStatus::Connected);
    }
    w.assert_browsers_clean();
}

#[test]
fn accept_settles_once_the_devices_opened_even_if_joined_came_first() {
    let (mut w, _a, b) = ringing();
    // bob's devices are slow: the Media outcome is withheld until after Joined.
    let accepting = w.command(b, Command::Accept);
    let media = w.take_queued(b, |i| matches!(i, Input::Media { .. }));
    assert_eq!(media.len(), 1);
    w.run();
    assert_eq!(w.clients[b].call.status(), CallStatus::Connected);
    assert_eq!(w.reply(b, accepting), None, "waits for the devices");
    for input in media {
        w.inject(b, input);
    }
    w.run();
    assert!(matches!(
        w.reply(b, accepting),
        Some(Ok(Reply::Accept { .. }))
    ));
    w.assert_browsers_clean();
}

#[test]
fn every_end_of_the_ring_closes_the_connection_on_both_sides() {
    type End = fn(&mut World, usize, usize);
    let ends: [(&str, End); 3] = [
        ("cancel", |w, a, _| {
            w.command(a, Command::Hangup);
        }),
        ("reject", |w, _, b| {
            w.command(b, Command::Reject);
        }),
        ("timeout", |w, _, _| w.ring_timeout()),
    ];
    for (how, end) in ends {
        let (mut w, a, b) = ringing();
        end(&mut w, a, b);
        w.run();
        for c in [a, b] {
            let browser = w.browser(c);
            let user = &w.clients[c].user;
            assert!(browser.peers.is_empty(), "{how}: {user} kept a peer");
            assert_eq!(browser.closed.len(), 1, "{how}: {user}");
            assert!(!browser.audio && !browser.video, "{how}: media left open");
            assert_eq!(w.clients[c].call.status(), CallStatus::Idle, "{how}");
        }
        w.assert_browsers_clean();
    }
}

#[test]
fn a_kicked_callee_closes_its_connection_and_the_ring_moves_to_its_new_login() {
    let (mut w, a, b) = ringing();
    let again = w.client("bob");
    w.command(again, login("bob"));
    w.run();
    assert_eq!(w.take_events(b), vec![AppEvent::KickedOut {}]);
    let kicked = w.browser(b);
    assert!(kicked.peers.is_empty() && kicked.closed == ["alice"]);
    assert!(!kicked.audio && !kicked.video, "media left open");
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
    // The server keeps the invitation for bob, not for one connection: it rings on.
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.clients[a].call.status(), CallStatus::Calling);
    assert!(matches!(
        w.take_events(again).as_slice(),
        [AppEvent::SdkReady { .. }, AppEvent::Invited { sponsor, .. }] if sponsor == "alice"
    ));
    w.assert_browsers_clean();
}

#[test]
fn a_busy_invitee_gets_no_connection_and_the_callers_is_closed() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(c, call("bob", CallType::Audio));
    w.run();
    w.command(a, call("bob", CallType::Video));
    w.run();
    assert!(w.browser(a).peers.is_empty());
    assert_eq!(w.browser(b).peers.keys().collect::<Vec<_>>(), ["carol"]);
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    w.assert_browsers_clean();
}

#[test]
fn the_caller_is_idle_when_reject_fires_and_may_call_again_from_it() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.take_events(b);
    w.command(b, Command::Reject);
    // Step until alice hears the rejection; the server's end of the call is still queued.
    while !w.clients[a].events.contains(&AppEvent::Reject {
        user_id: "bob".into(),
    }) {
        assert!(w.step(), "no REJECT");
    }
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    assert_eq!(w.clients[a].call.room_id(), None);
    // What an app's REJECT handler may do: call someone else at once.
    let again = w.command(a, call("carol", CallType::Audio));
    w.run();
    assert!(matches!(
        w.reply(a, again),
        Some(Ok(Reply::Call { room_id, .. })) if *room_id != FIRST_ROOM
    ));
    assert_eq!(w.clients[a].call.status(), CallStatus::Calling);
    assert_eq!(w.clients[a].call.invitee_list(), vec!["carol".to_string()]);
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::Reject {
            user_id: "bob".into()
        }],
        "the old call's end is ignored: no CALL_END"
    );
    assert_eq!(w.browser(a).peers.keys().collect::<Vec<_>>(), ["carol"]);
    assert!(matches!(
        w.take_events(c).as_slice(),
        [AppEvent::Invited { .. }]
    ));
    w.assert_browsers_clean();
}

#[test]
fn group_invitees_connect_to_the_inviter_only_until_they_accept() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(a, group(&["bob", "carol"], CallType::Audio));
    w.run();
    let peers = |w: &World, x: usize| w.browser(x).peers.keys().cloned().collect::<Vec<_>>();
    assert_eq!(peers(&w, a), ["bob", "carol"]);
    assert_eq!(peers(&w, b), ["alice"]);
    assert_eq!(peers(&w, c), ["alice"]);
    w.command(b, Command::Accept);
    w.run();
    assert!(w.browser(a).peers["bob"].attached);
    assert!(
        !w.browser(a).peers["carol"].attached,
        "carol still rings: nothing goes to her"
    );
    assert_eq!(
        peers(&w, c),
        ["alice"],
        "bob connects to carol once she accepts"
    );
    w.command(c, Command::Accept);
    w.run();
    assert_eq!(peers(&w, b), ["alice", "carol"]);
    assert_eq!(peers(&w, c), ["alice", "bob"]);
    for x in [a, b, c] {
        assert!(w
            .browser(x)
            .peers
            .values()
            .all(|p| p.attached && p.connected));
    }
    w.assert_browsers_clean();
}

#[test]
fn joining_after_the_inviter_left_drops_the_connection_made_to_it() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(a, group(&["bob", "carol"], CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    // alice leaves; bob stays, so carol's invitation still rings.
    w.command(a, Command::Hangup);
    w.run();
    w.command(c, Command::Accept);
    w.run();
    assert_eq!(w.clients[c].call.status(), CallStatus::Connected);
    assert_eq!(
        w.browser(c).peers.keys().collect::<Vec<_>>(),
        ["bob"],
        "carol connects to the members only"
    );
    assert_eq!(w.browser(c).closed, ["alice"]);
    w.assert_browsers_clean();
}
