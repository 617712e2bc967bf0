//! Invitation flows: ringing, answers, busy, cancel, timeout, groups.

use super::*;

#[test]
fn invite_rings_the_invitee_and_answers_the_caller() {
    let mut f = Fixture::new();
    let out = f.invite(ALICE, &["bob"], None, 0);
    let (room, invite_id) = sent(&out);
    assert_eq!(
        out.deliveries,
        vec![
            (
                ALICE,
                ServerMessage::InviteSent(InviteSent {
                    request_id: 7,
                    invite_id: invite_id.clone(),
                    room_id: room,
                    user_ids: vec!["bob".into()],
                })
            ),
            (
                BOB,
                ServerMessage::Invited(Invited {
                    invite_id: invite_id.clone(),
                    room_id: room,
                    sponsor: "alice".into(),
                    user_ids: vec!["bob".into()],
                    call_type: CallType::Video,
                    is_group: false,
                    group_id: None,
                })
            ),
            (ALICE, list(room, &["bob"])),
        ]
    );
    assert_eq!(f.reg.call_count(), 1);
    assert_eq!(f.reg.next_deadline(), Some(f.t0 + RING));
}

#[test]
fn accept_joins_the_call_and_tells_the_caller() {
    let mut f = Fixture::new();
    let (room, invite_id) = f.ring_bob();
    let out = f.reg.accept(BOB, 9, &invite_id, f.at(2)).unwrap();
    assert_eq!(
        to(&out, BOB),
        vec![ServerMessage::Joined(Joined {
            request_id: 9,
            room_id: room,
            call_type: CallType::Video,
            members: vec!["alice".into()],
            pending: vec![],
        })]
    );
    assert_eq!(
        to(&out, ALICE),
        vec![
            ServerMessage::Accepted(Accepted {
                room_id: room,
                invite_id,
                user_id: "bob".into()
            }),
            list(room, &[]),
        ]
    );
    assert_eq!(
        f.reg.next_deadline(),
        None,
        "an answered batch stops ringing"
    );
}

#[test]
fn reject_tells_the_caller_and_ends_the_call() {
    let mut f = Fixture::new();
    let (room, invite_id) = f.ring_bob();
    let out = f.reg.reject(BOB, &invite_id, f.at(3)).unwrap();
    assert_eq!(to(&out, BOB), vec![]);
    assert_eq!(
        to(&out, ALICE),
        vec![
            ServerMessage::Rejected(Rejected {
                room_id: room,
                invite_id,
                user_id: "bob".into()
            }),
            list(room, &[]),
            ended(room, "bob", 0, EndReason::Rejected),
        ]
    );
    assert_eq!(f.reg.call_count(), 0);
    // Both are idle again: bob can call alice.
    let out = f.invite(BOB, &["alice"], None, 4);
    assert_eq!(to(&out, ALICE).len(), 1);
}

#[test]
fn a_ringing_or_connected_invitee_is_busy_and_sees_nothing() {
    let mut f = Fixture::new();
    let (_, _) = f.ring_bob();
    let out = f.invite(CAROL, &["bob"], None, 1);
    let (room, invite_id) = sent(&out);
    assert_eq!(to(&out, BOB), vec![]);
    assert_eq!(
        to(&out, CAROL)[1..],
        [
            ServerMessage::Busy(Busy {
                room_id: room,
                invite_id,
                user_id: "bob".into()
            }),
            ended(room, "bob", 0, EndReason::Busy),
        ]
    );
    assert_eq!(
        f.reg.call_count(),
        1,
        "carol's call is gone, alice's rings on"
    );
    // The caller is busy too, and so is a member of a connected call.
    let out = f.invite(CAROL, &["alice"], None, 2);
    assert!(matches!(to(&out, CAROL)[1], ServerMessage::Busy(_)));
}

#[test]
fn a_busy_sender_cannot_start_another_call() {
    let mut f = Fixture::new();
    f.ring_bob();
    for s in [ALICE, BOB] {
        let req = InviteRequest {
            request_id: 1,
            user_ids: vec!["carol".into()],
            call_type: CallType::Audio,
            is_group: false,
            group_id: None,
            room_id: None,
        };
        assert_eq!(
            f.reg.invite(s, req, f.t0).unwrap_err().code,
            ErrorCode::Busy
        );
    }
}

#[test]
fn caller_hangup_while_ringing_cancels() {
    let mut f = Fixture::new();
    let (room, invite_id) = f.ring_bob();
    let out = f.reg.hangup(ALICE, room, f.at(5)).unwrap();
    assert_eq!(
        out.deliveries,
        vec![(
            BOB,
            ServerMessage::Cancelled(Cancelled {
                room_id: room,
                invite_id: invite_id.clone(),
                sponsor: "alice".into()
            })
        )]
    );
    assert_eq!(f.reg.call_count(), 0);
    assert_eq!(f.reg.next_deadline(), None);
    assert_eq!(
        f.reg.accept(BOB, 1, &invite_id, f.at(6)).unwrap_err().code,
        ErrorCode::NoSuchInvitation
    );
}

#[test]
fn ring_timeout_reports_to_both_sides() {
    let mut f = Fixture::new();
    let (room, invite_id) = f.ring_bob();
    assert_eq!(f.reg.expire(f.at(29)), Outcome::default());
    let out = f.reg.expire(f.at(30));
    assert_eq!(
        to(&out, BOB),
        vec![ServerMessage::InviteTimeout(InviteTimeout {
            room_id: room,
            invite_id: invite_id.clone(),
            sponsor: "alice".into()
        })]
    );
    assert_eq!(
        to(&out, ALICE),
        vec![
            ServerMessage::NoResponse(NoResponse {
                room_id: room,
                invite_id,
                user_ids: vec!["bob".into()]
            }),
            list(room, &[]),
            ended(room, "bob", 0, EndReason::NoResponse),
        ]
    );
    assert_eq!(f.reg.call_count(), 0);
    assert_eq!(f.reg.expire(f.at(60)), Outcome::default());
}

#[test]
fn hangup_when_connected_ends_with_the_duration() {
    for (leaver, stayer, name) in [(BOB, ALICE, "bob"), (ALICE, BOB, "alice")] {
        let mut f = Fixture::new();
        let (room, _) = f.connected();
        let out = f.reg.hangup(leaver, room, f.at(66)).unwrap();
        assert_eq!(to(&out, leaver), vec![]);
        assert_eq!(
            to(&out, stayer),
            vec![
                ServerMessage::MemberLeft(MemberLeft {
                    room_id: room,
                    user_id: name.into()
                }),
                ended(room, name, 65, EndReason::Hangup),
            ]
        );
        assert_eq!(f.reg.call_count(), 0);
        assert_eq!(
            f.reg.hangup(stayer, room, f.at(67)).unwrap_err().code,
            ErrorCode::NotInCall
        );
    }
}

#[test]
fn group_call_with_mixed_outcomes() {
    let mut f = Fixture::new();
    f.reg.login(DAVE, APP, "dave", f.t0);
    // dave is busy: he is calling frank (offline) himself.
    sent(&f.invite(DAVE, &["frank"], None, 0));
    let out = f.invite(ALICE, &["bob", "carol", "dave", "gina", "bob"], None, 0);
    let (room, invite_id) = sent(&out);
    let ringing = ["bob", "carol", "gina"];
    assert!(
        matches!(&to(&out, ALICE)[0], ServerMessage::InviteSent(InviteSent { user_ids, .. })
        if *user_ids == ["bob", "carol", "dave", "gina"])
    );
    assert!(
        matches!(&to(&out, BOB)[0], ServerMessage::Invited(Invited { user_ids, is_group: true, .. })
        if *user_ids == ringing)
    );
    assert_eq!(to(&out, DAVE), vec![]);
    assert_eq!(
        to(&out, ALICE)[1..],
        [
            ServerMessage::Busy(Busy {
                room_id: room,
                invite_id: invite_id.clone(),
                user_id: "dave".into()
            }),
            list(room, &ringing),
        ]
    );
    // bob accepts: alice is told; bob learns who else is ringing.
    let out = f.reg.accept(BOB, 2, &invite_id, f.at(1)).unwrap();
    assert!(
        matches!(&to(&out, BOB)[0], ServerMessage::Joined(Joined { members, pending, .. })
        if *members == ["alice"] && *pending == ["carol", "gina"])
    );
    // carol rejects: alice (the inviter) gets Rejected, every member the new list.
    let out = f.reg.reject(CAROL, &invite_id, f.at(2)).unwrap();
    assert_eq!(to(&out, BOB), vec![list(room, &["gina"])]);
    assert_eq!(to(&out, ALICE)[1], list(room, &["gina"]));
    // gina (offline) never answers.
    let out = f.reg.expire(f.at(30));
    assert_eq!(
        to(&out, ALICE),
        vec![
            ServerMessage::NoResponse(NoResponse {
                room_id: room,
                invite_id: invite_id.clone(),
                user_ids: vec!["gina".into()]
            }),
            list(room, &[]),
        ]
    );
    assert_eq!(to(&out, BOB), vec![list(room, &[])]);
    // Two members remain: the call goes on until one leaves.
    let out = f.reg.hangup(ALICE, room, f.at(41)).unwrap();
    assert_eq!(
        to(&out, BOB),
        vec![
            ServerMessage::MemberLeft(MemberLeft {
                room_id: room,
                user_id: "alice".into()
            }),
            ended(room, "alice", 40, EndReason::Hangup),
        ]
    );
}

#[test]
fn offline_invitee_gets_the_invitation_at_login() {
    let mut f = Fixture::new();
    let out = f.invite(ALICE, &["dave"], None, 0);
    let (room, invite_id) = sent(&out);
    assert_eq!(out.deliveries.len(), 2, "InviteSent and InviteeList only");
    let out = f.reg.login(DAVE, APP, "dave", f.at(10));
    assert!(
        matches!(&to(&out, DAVE)[..], [ServerMessage::Invited(Invited { invite_id: i, room_id, sponsor, .. })]
        if *i == invite_id && *room_id == room && sponsor == "alice")
    );
    assert!(f.reg.accept(DAVE, 1, &invite_id, f.at(11)).is_ok());
}

#[test]
fn offline_invitee_who_comes_too_late_gets_nothing() {
    let mut f = Fixture::new();
    f.invite(ALICE, &["dave"], None, 0);
    let out = f.reg.expire(f.at(30));
    assert!(matches!(
        &to(&out, ALICE)[..],
        [ServerMessage::NoResponse(_), _, _]
    ));
    assert_eq!(f.reg.login(DAVE, APP, "dave", f.at(31)), Outcome::default());
}

#[test]
fn an_invitation_naming_too_many_users_is_refused_by_the_registry_itself() {
    let mut f = Fixture::new();
    // The same name over and over: checked by length before any deduplication, so no list's
    // cost under the lock can exceed the participant limit's.
    let names: Vec<String> = (0..=MAX_PARTICIPANTS).map(|_| "bob".to_string()).collect();
    let req = InviteRequest {
        request_id: 7,
        user_ids: names,
        call_type: CallType::Video,
        is_group: true,
        group_id: None,
        room_id: None,
    };
    let refusal = f.reg.invite(ALICE, req, f.at(0)).unwrap_err();
    assert_eq!(refusal.code, ErrorCode::InvalidParam);
    assert_eq!(f.reg.call_count(), 0, "nothing was started");
}

#[test]
fn repeated_names_and_the_sender_are_invited_once_in_the_order_given() {
    let mut f = Fixture::new();
    let out = f.invite(ALICE, &["carol", "alice", "bob", "carol", "bob"], None, 0);
    match &out.deliveries[0] {
        (ALICE, ServerMessage::InviteSent(sent)) => {
            assert_eq!(sent.user_ids, vec!["carol".to_string(), "bob".to_string()])
        }
        other => panic!("expected inviteSent to alice first, got {other:?}"),
    }
}
