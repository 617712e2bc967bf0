//! Session flows (login, kick, disconnect), relay and request checks.

use super::*;

#[test]
fn new_login_kicks_the_old_session_out_of_its_call() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    let out = f.reg.login(9, APP, "bob", f.at(11));
    assert_eq!(to(&out, BOB), vec![ServerMessage::Kicked]);
    assert_eq!(out.closes, vec![(BOB, CloseReason::Kicked)]);
    assert_eq!(
        to(&out, ALICE),
        vec![
            ServerMessage::MemberLeft(MemberLeft {
                room_id: room,
                user_id: "bob".into()
            }),
            ended(room, "bob", 10, EndReason::Hangup),
        ]
    );
    assert_eq!(to(&out, 9), vec![]);
    assert_eq!(f.reg.user_of(BOB), None);
    assert_eq!(f.reg.user_of(9), Some((APP, "bob")));
    // The old session's late disconnect must not log the new one out.
    assert_eq!(f.reg.leave(BOB, f.at(12)), Outcome::default());
    assert_eq!(f.reg.user_of(9), Some((APP, "bob")));
}

#[test]
fn kicked_ringing_invitee_gets_the_invitation_on_the_new_session() {
    let mut f = Fixture::new();
    let (_, invite_id) = f.ring_bob();
    let out = f.reg.login(9, APP, "bob", f.at(1));
    assert_eq!(to(&out, BOB), vec![ServerMessage::Kicked]);
    assert_eq!(to(&out, ALICE), vec![]);
    assert!(
        matches!(&to(&out, 9)[..], [ServerMessage::Invited(Invited { invite_id: i, .. })] if *i == invite_id)
    );
}

#[test]
fn disconnect_mid_call_is_a_hangup() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    let out = f.reg.leave(ALICE, f.at(5));
    assert_eq!(
        to(&out, BOB),
        vec![
            ServerMessage::MemberLeft(MemberLeft {
                room_id: room,
                user_id: "alice".into()
            }),
            ended(room, "alice", 4, EndReason::Hangup),
        ]
    );
    assert_eq!(f.reg.session_count(), 2);
    assert_eq!(f.reg.call_count(), 0);
}

#[test]
fn caller_vanishing_while_ringing_cancels_and_a_vanished_invitee_stays_invited() {
    let mut f = Fixture::new();
    let (room, invite_id) = f.ring_bob();
    // bob's connection drops and comes back: still invited.
    assert_eq!(f.reg.leave(BOB, f.at(1)), Outcome::default());
    let out = f.reg.login(8, APP, "bob", f.at(2));
    assert!(matches!(&to(&out, 8)[..], [ServerMessage::Invited(_)]));
    // alice's connection drops: bob's invitation is cancelled.
    let out = f.reg.leave(ALICE, f.at(3));
    assert_eq!(
        out.deliveries,
        vec![(
            8,
            ServerMessage::Cancelled(Cancelled {
                room_id: room,
                invite_id,
                sponsor: "alice".into()
            })
        )]
    );
    assert_eq!(f.reg.call_count(), 0);
    assert_eq!(f.reg.next_deadline(), None);
}

#[test]
fn relay_only_between_participants() {
    let mut f = Fixture::new();
    let (room, _) = f.ring_bob();
    let offer = Signal::Offer { sdp: "v=0".into() };
    // Pre-connecting to a ringing invitee is allowed, both ways.
    let out = f.reg.relay(ALICE, room, "bob", offer.clone()).unwrap();
    assert_eq!(
        out.deliveries,
        vec![(
            BOB,
            ServerMessage::Signal(RelayedSignal {
                room_id: room,
                from: "alice".into(),
                signal: offer.clone()
            })
        )]
    );
    assert!(f.reg.relay(BOB, room, "alice", offer.clone()).is_ok());
    let refused = |r: Result<Outcome, Refusal>| r.unwrap_err().code;
    assert_eq!(
        refused(f.reg.relay(ALICE, room, "carol", offer.clone())),
        ErrorCode::NotAParticipant
    );
    assert_eq!(
        refused(f.reg.relay(ALICE, room, "alice", offer.clone())),
        ErrorCode::NotAParticipant
    );
    assert_eq!(
        refused(f.reg.relay(ALICE, room, "bob", Signal::Unknown)),
        ErrorCode::UnknownType
    );
    assert_eq!(
        refused(f.reg.relay(CAROL, room, "bob", offer.clone())),
        ErrorCode::NotInCall
    );
    assert_eq!(
        refused(f.reg.relay(ALICE, room.wrapping_add(1), "bob", offer)),
        ErrorCode::NotInCall
    );
}

#[test]
fn invite_parameters_are_checked() {
    let mut f = Fixture::new();
    let req = |reg: &mut Registry, users: &[&str], room| {
        let r = InviteRequest {
            request_id: 3,
            user_ids: users.iter().map(|s| s.to_string()).collect(),
            call_type: CallType::Audio,
            is_group: true,
            group_id: Some("g".into()),
            room_id: room,
        };
        reg.invite(ALICE, r, Instant::now())
            .map(|_| ())
            .map_err(|e| e.code)
    };
    assert_eq!(req(&mut f.reg, &[], None), Err(ErrorCode::InvalidParam));
    assert_eq!(
        req(&mut f.reg, &["alice"], None),
        Err(ErrorCode::InvalidParam)
    );
    assert_eq!(
        req(&mut f.reg, &["bad id"], None),
        Err(ErrorCode::InvalidParam)
    );
    let nine: Vec<String> = (0..9).map(|i| format!("u{i}")).collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    assert_eq!(req(&mut f.reg, &nine, None), Err(ErrorCode::InvalidParam));
    assert_eq!(
        req(&mut f.reg, &["bob"], Some(5)),
        Err(ErrorCode::NotInCall)
    );
    assert_eq!(f.reg.call_count(), 0, "a refused invite creates nothing");
    assert_eq!(req(&mut f.reg, &nine[..8], None), Ok(()));
}

#[test]
fn a_member_invites_more_users_into_a_running_call() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    // bob (not the original caller) invites carol; alice is dropped as already a member.
    let out = f.invite(BOB, &["alice", "carol"], Some(room), 5);
    let (room2, invite_id) = sent(&out);
    assert_eq!(room2, room);
    assert!(
        matches!(&to(&out, BOB)[..], [ServerMessage::InviteSent(InviteSent { user_ids, .. }), _] if *user_ids == ["carol"])
    );
    assert!(
        matches!(&to(&out, CAROL)[..], [ServerMessage::Invited(Invited { sponsor, user_ids, .. })]
        if sponsor == "bob" && *user_ids == ["carol"])
    );
    assert_eq!(to(&out, ALICE), vec![list(room, &["carol"])]);
    let out = f.reg.accept(CAROL, 4, &invite_id, f.at(6)).unwrap();
    assert!(
        matches!(&to(&out, CAROL)[..], [ServerMessage::Joined(Joined { members, .. })] if *members == ["alice", "bob"])
    );
    // alice leaves: bob and carol go on.
    let out = f.reg.hangup(ALICE, room, f.at(7)).unwrap();
    assert_eq!(to(&out, BOB).len(), 1);
    assert_eq!(to(&out, CAROL).len(), 1);
    assert_eq!(f.reg.call_count(), 1);
}

#[test]
fn a_call_left_with_one_member_ends_when_the_last_invitee_answers() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    let out = f.invite(ALICE, &["carol"], Some(room), 2);
    let (_, invite_id) = sent(&out);
    // alice (the inviter) leaves; bob stays while carol rings.
    let out = f.reg.hangup(ALICE, room, f.at(3)).unwrap();
    assert_eq!(
        to(&out, BOB),
        vec![ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "alice".into()
        })]
    );
    assert_eq!(to(&out, CAROL), vec![]);
    // carol declines: the inviter is gone, bob is alone and the call ends.
    let out = f.reg.reject(CAROL, &invite_id, f.at(4)).unwrap();
    assert_eq!(to(&out, ALICE), vec![]);
    assert_eq!(
        to(&out, BOB),
        vec![
            list(room, &[]),
            ended(room, "carol", 3, EndReason::Rejected)
        ]
    );
}

#[test]
fn answers_need_a_matching_invitation() {
    let mut f = Fixture::new();
    let (room, invite_id) = f.ring_bob();
    let code = |r: Result<Outcome, Refusal>| r.unwrap_err().code;
    assert_eq!(
        code(f.reg.accept(BOB, 1, "nope", f.t0)),
        ErrorCode::NoSuchInvitation
    );
    assert_eq!(
        code(f.reg.accept(CAROL, 1, &invite_id, f.t0)),
        ErrorCode::NoSuchInvitation
    );
    assert_eq!(
        code(f.reg.reject(CAROL, &invite_id, f.t0)),
        ErrorCode::NoSuchInvitation
    );
    assert_eq!(
        code(f.reg.accept(99, 1, &invite_id, f.t0)),
        ErrorCode::NotLoggedIn
    );
    // A ringing invitee's hangup declines.
    let out = f.reg.hangup(BOB, room, f.at(1)).unwrap();
    assert!(matches!(&to(&out, ALICE)[0], ServerMessage::Rejected(_)));
}

#[test]
fn apps_are_separate() {
    let mut f = Fixture::new();
    f.reg.login(DAVE, APP + 1, "bob", f.t0);
    let out = f.invite(ALICE, &["bob"], None, 0);
    assert_eq!(to(&out, DAVE), vec![]);
    assert_eq!(to(&out, BOB).len(), 1);
    assert_eq!(f.reg.user_of(BOB), Some((APP, "bob")));
}
