//! Group calls: a full mesh of three, members leaving while others stay, per-invitee outcomes,
//! and inviting more users into a call in progress.

mod support;

use calling_core::{AppEvent, CallStatus, Command, InviteData, Reply};
use calling_protocol::CallType;
use support::*;

fn list(users: &[&str]) -> AppEvent {
    AppEvent::GroupCallInviteeListUpdate {
        user_id_list: users.iter().map(|u| u.to_string()).collect(),
    }
}

fn assert_mesh(w: &World, members: &[usize]) {
    for &c in members {
        let others: Vec<String> = members
            .iter()
            .filter(|&&o| o != c)
            .map(|&o| w.clients[o].user.clone())
            .collect();
        let peers: Vec<String> = w.browser(c).peers.keys().cloned().collect();
        assert_eq!(peers, others, "{}'s connections", w.clients[c].user);
        for p in w.browser(c).peers.values() {
            assert!(p.connected);
        }
        assert_eq!(w.clients[c].call.status(), CallStatus::Connected);
        assert!(w.clients[c].call.is_group_call());
    }
    w.assert_browsers_clean();
}

#[test]
fn three_connect_in_a_full_mesh_and_one_leaves() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    let inviting = w.command(a, group(&["bob", "carol"], CallType::Video));
    w.run();
    assert_eq!(
        w.reply(a, inviting),
        Some(&Ok(Reply::GroupCall {
            code: 0,
            invite_id: "invite-1".into(),
            room_id: FIRST_ROOM,
            group_id: Some("team".into())
        }))
    );
    let invited = AppEvent::Invited {
        sponsor: "alice".into(),
        user_id_list: vec!["bob".into(), "carol".into()],
        is_from_group: true,
        invite_data: InviteData {
            version: 4,
            call_type: 2,
            room_id: FIRST_ROOM,
            call_end: 0,
        },
        invite_id: "invite-1".into(),
    };
    assert_eq!(w.take_events(a), vec![list(&["bob", "carol"])]);
    assert_eq!(w.take_events(b), vec![invited.clone()]);
    assert_eq!(w.take_events(c), vec![invited]);
    assert!(w.clients[a].call.is_group_call() && w.clients[b].call.is_group_call());

    w.command(b, Command::Accept);
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![
            user_accept("bob"),
            list(&["carol"]),
            user_enter("bob"),
            audio("bob", true),
            video("bob", true),
        ]
    );
    // bob learns who still rings from the server's `joined`, with no list event of his own.
    assert_eq!(
        w.take_events(b),
        vec![
            user_enter("alice"),
            audio("alice", true),
            video("alice", true)
        ]
    );
    assert_eq!(w.clients[b].call.invitee_list(), vec!["carol".to_string()]);

    let accepting = w.command(c, Command::Accept);
    w.run();
    assert!(matches!(
        w.reply(c, accepting),
        Some(Ok(Reply::Accept { call_type: 2, .. }))
    ));
    // Every earlier member hears of carol and connects to her; she connects to each of them.
    for (member, other) in [(a, "bob"), (b, "alice")] {
        let events = w.take_events(member);
        assert_eq!(events[..2], [user_accept("carol"), list(&[])], "{other}");
        let mut rest = events[2..].to_vec();
        rest.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            rest,
            vec![
                audio("carol", true),
                user_enter("carol"),
                video("carol", true)
            ]
        );
    }
    let mut carol = w.take_events(c);
    carol.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        carol,
        vec![
            audio("alice", true),
            audio("bob", true),
            user_enter("alice"),
            user_enter("bob"),
            video("alice", true),
            video("bob", true),
        ]
    );
    assert_mesh(&w, &[a, b, c]);
    assert_eq!(w.clients[a].call.invitee_list(), Vec::<String>::new());

    // carol leaves; alice and bob stay connected.
    w.advance(10_000);
    w.command(c, Command::Hangup);
    w.run();
    assert_eq!(w.take_events(c), vec![call_end("carol", 10)]);
    assert_eq!(w.take_events(a), vec![user_leave("carol")]);
    assert_eq!(w.take_events(b), vec![user_leave("carol")]);
    assert_mesh(&w, &[a, b]);

    // bob leaves too: alice is the last one, the call ends for her.
    w.advance(5_000);
    w.command(b, Command::Hangup);
    w.run();
    assert_eq!(w.take_events(b), vec![call_end("bob", 15)]);
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 15)]
    );
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    assert!(w.browser(a).peers.is_empty());
}

#[test]
fn nine_who_accept_at_once_connect_in_a_full_mesh_and_leave_one_by_one() {
    let names = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"];
    let (mut w, everyone) = World::users(names);
    w.command(everyone[0], group(&names[1..], CallType::Audio));
    w.run();
    // All eight answer before any answer reaches the server: each joins a call whose members
    // offer to it while it may itself still be waiting to hear who is in.
    for &m in &everyone[1..] {
        w.command(m, Command::Accept);
    }
    w.run();
    assert_mesh(&w, &everyone);
    for &c in &everyone {
        let entered: Vec<AppEvent> = w
            .take_events(c)
            .into_iter()
            .filter(|e| matches!(e, AppEvent::UserEnter { .. }))
            .collect();
        assert_eq!(entered.len(), 8, "{}: {entered:?}", names[c]);
    }

    // They leave one by one; the others stay connected to each other, until the last but
    // one's leaving ends the call for the last.
    for i in 0..8 {
        w.command(everyone[i], Command::Hangup);
        w.run();
        for &later in &everyone[i + 1..] {
            assert!(
                w.take_events(later).contains(&user_leave(names[i])),
                "{} not told {} left",
                names[later],
                names[i]
            );
        }
        if i < 7 {
            assert_mesh(&w, &everyone[i + 1..]);
        }
    }
    assert_eq!(w.clients[everyone[8]].call.status(), CallStatus::Idle);
    assert!(w.browser(everyone[8]).peers.is_empty());
    w.assert_browsers_clean();
}

#[test]
fn each_invitees_outcome_is_reported_to_the_caller() {
    let (mut w, [a, b, c, _d, e]) = World::users(["alice", "bob", "carol", "dave", "erin"]);
    w.command(e, call("dave", CallType::Audio));
    w.run();
    w.command(a, group(&["bob", "carol", "dave"], CallType::Audio));
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![
            AppEvent::LineBusy {
                user_id: "dave".into(),
                sponsor: "alice".into()
            },
            list(&["bob", "carol"]),
        ]
    );
    w.command(b, Command::Reject);
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![
            AppEvent::Reject {
                user_id: "bob".into()
            },
            list(&["carol"])
        ]
    );
    assert_eq!(w.clients[a].call.status(), CallStatus::Calling);
    w.ring_timeout();
    let events = w.take_events(a);
    assert_eq!(
        events[0],
        AppEvent::NoResp {
            user_id: "carol".into(),
            sponsor: "alice".into(),
            user_id_list: vec!["carol".into()]
        }
    );
    // The server names who ended the call: carol, by not answering.
    assert_eq!(events.last(), Some(&call_end("carol", 0)));
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    let carol = w.take_events(c);
    assert!(matches!(carol[1], AppEvent::CallingTimeout { .. }));
    assert_eq!(carol[2], call_end("carol", 0));
}

#[test]
fn a_connected_member_invites_one_more_into_the_same_call() {
    let (mut w, [a, b, c]) = World::users(["alice", "bob", "carol"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    assert!(!w.clients[a].call.is_group_call());
    w.take_events(a);
    w.take_events(b);
    let adding = w.command(b, group(&["carol"], CallType::Video));
    w.run();
    assert_eq!(
        w.reply(b, adding),
        Some(&Ok(Reply::GroupCall {
            code: 0,
            invite_id: "invite-2".into(),
            room_id: FIRST_ROOM,
            group_id: Some("team".into())
        }))
    );
    let invited = w.take_events(c);
    assert!(matches!(
        &invited[..],
        [AppEvent::Invited { sponsor, is_from_group: true, invite_data: InviteData { call_type: 1, room_id: FIRST_ROOM, .. }, .. }]
            if sponsor == "bob"
    ));
    w.command(c, Command::Accept);
    w.run();
    assert_mesh(&w, &[a, b, c]);
    assert!(w.take_events(a).contains(&user_accept("carol")));
    assert!(w.take_events(b).contains(&user_accept("carol")));
}

#[test]
fn group_call_needs_users_and_a_free_line() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    let empty = w.command(a, group(&[], CallType::Audio));
    assert_eq!(
        w.reply(a, empty)
            .and_then(|r| r.as_ref().err())
            .and_then(|e| e.code),
        Some(65535)
    );
    w.command(a, call("bob", CallType::Audio));
    w.run();
    let while_ringing = w.command(b, group(&["carol"], CallType::Audio));
    let err = w
        .reply(b, while_ringing)
        .and_then(|r| r.as_ref().err())
        .cloned();
    assert!(err.is_some_and(|e| e.message.starts_with("groupCall() needs an idle line")));
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);
}
