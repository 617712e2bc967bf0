//! Working sets: a registry loaded with only the entries a request names decides it exactly as
//! the whole registry does, and its entries afterwards are the whole registry's.

use super::*;
use crate::view::{PresenceView, UserView};

/// A registry holding only these users and calls of `full`, as a shared store would hand them.
fn working_set(full: &Registry, users: &[&str], rooms: &[RoomId]) -> Registry {
    let mut ws = Registry::new(RING, SequentialIds::default());
    for user in users {
        if let Some(view) = full.user_view(APP, user) {
            ws.insert_user(view);
        }
    }
    for room in rooms {
        if let Some(view) = full.call_view(*room) {
            ws.insert_call(view);
        }
    }
    ws
}

/// Every entry of `a` is the same in `b`, and `b` holds no other.
fn same_entries(a: &Registry, b: &Registry) {
    let mut users = a.user_keys();
    users.sort();
    let mut others = b.user_keys();
    others.sort();
    assert_eq!(users, others);
    for (app, user) in &users {
        assert_eq!(a.user_view(*app, user), b.user_view(*app, user), "{user}");
    }
    let mut rooms = a.rooms();
    rooms.sort();
    let mut other_rooms = b.rooms();
    other_rooms.sort();
    assert_eq!(rooms, other_rooms);
    for room in rooms {
        assert_eq!(a.call_view(room), b.call_view(room));
    }
}

#[test]
fn an_accept_on_a_working_set_matches_the_whole_registry() {
    let mut f = Fixture::new();
    let (room, invite) = f.ring_bob();
    let mut ws = working_set(&f.reg, &["alice", "bob"], &[room]);
    let now = f.at(2);
    let whole = f.reg.accept(BOB, 9, &invite, now).unwrap();
    let part = ws.accept(BOB, 9, &invite, now).unwrap();
    assert_eq!(part, whole);
    assert_eq!(part.decided.accepted, 1);
    // carol was never loaded, so compare the entries the request named.
    for user in ["alice", "bob"] {
        assert_eq!(ws.user_view(APP, user), f.reg.user_view(APP, user));
    }
    assert_eq!(ws.call_view(room), f.reg.call_view(room));
    assert_eq!(
        ws.user_view(APP, "bob").map(|v| v.presence),
        Some(PresenceView::Member(room))
    );
}

#[test]
fn a_ring_timeout_and_a_hangup_on_working_sets_match() {
    let mut f = Fixture::new();
    let out = f.invite(ALICE, &["bob", "carol"], None, 0);
    let (room, invite) = sent(&out);
    f.reg.accept(BOB, 1, &invite, f.at(1)).unwrap();
    // The ring deadline comes from the loaded call's batch.
    let mut ws = working_set(&f.reg, &["alice", "bob", "carol"], &[room]);
    assert_eq!(ws.next_deadline(), f.reg.next_deadline());
    let late = f.at(31);
    let whole = f.reg.expire(late);
    assert_eq!(ws.expire(late), whole);
    assert_eq!(whole.decided.timed_out, 1);
    same_entries(&ws, &f.reg);
    let mut ws = working_set(&f.reg, &["alice", "bob"], &[room]);
    let whole = f.reg.hangup(ALICE, room, f.at(40)).unwrap();
    assert_eq!(ws.hangup(ALICE, room, f.at(40)).unwrap(), whole);
    assert_eq!(ws.call_view(room), None, "the call is over");
    same_entries(&ws, &working_set(&f.reg, &["alice", "bob"], &[room]));
}

#[test]
fn a_login_on_a_working_set_kicks_the_session_it_names() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    let mut ws = working_set(&f.reg, &["alice", "bob"], &[room]);
    let whole = f.reg.login(DAVE, APP, "bob", f.at(5));
    assert_eq!(ws.login(DAVE, APP, "bob", f.at(5)), whole);
    assert_eq!(whole.closes, vec![(BOB, CloseReason::Kicked)]);
    same_entries(&ws, &working_set(&f.reg, &["alice", "bob"], &[room]));
}

#[test]
fn a_users_grace_survives_the_round_trip() {
    let mut f = Fixture::new();
    f.reg.suspend(BOB, f.at(0));
    let view = f.reg.user_view(APP, "bob").unwrap();
    assert!(view.away_until.is_some());
    let mut ws = Registry::new(RING, SequentialIds::default());
    ws.insert_user(view.clone());
    assert!(ws.is_away(BOB));
    assert_eq!(ws.user_view(APP, "bob"), Some(view));
    let view = UserView {
        app: APP,
        user: "erin".into(),
        session: None,
        presence: PresenceView::Invited(5),
        away_until: None,
    };
    ws.insert_user(view.clone());
    assert_eq!(ws.user_view(APP, "erin"), Some(view));
}
