//! Suspended sessions: kept whole through their grace, resumed by their own user only, ended
//! as a leave when the grace runs out, and never resumable once kicked or logged out.

use super::*;

/// The grace the fixture's registry keeps a suspended session (the default).
const GRACE: u64 = DEFAULT_RESUME_GRACE_SECS as u64;

fn left(room: RoomId, user: &str) -> ServerMessage {
    ServerMessage::MemberLeft(MemberLeft {
        room_id: room,
        user_id: user.into(),
    })
}

#[test]
fn a_member_away_within_its_grace_stays_in_the_call_and_still_gets_its_messages() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    f.reg.suspend(BOB, f.at(5));
    assert!(f.reg.is_away(BOB));
    // Nobody hears of it; signals and hangups are still addressed to bob's session.
    let signal = Signal::Media {
        audio: true,
        video: false,
    };
    let out = f.reg.relay(ALICE, room, "bob", signal.clone()).unwrap();
    assert_eq!(
        to(&out, BOB),
        vec![ServerMessage::Signal(RelayedSignal {
            room_id: room,
            from: "alice".into(),
            signal
        })]
    );
    assert_eq!(f.reg.expire(f.at(5 + GRACE - 1)), Outcome::default());
    assert_eq!(f.reg.resume(BOB, APP, "bob"), Ok(()));
    assert!(!f.reg.is_away(BOB));
    // Resumed: the old grace no longer ends it.
    assert_eq!(f.reg.expire(f.at(5 + GRACE + 1)), Outcome::default());
    assert_eq!(f.reg.call_count(), 1);
    let out = f.reg.hangup(BOB, room, f.at(60)).unwrap();
    assert_eq!(
        to(&out, ALICE),
        vec![left(room, "bob"), ended(room, "bob", 59, EndReason::Hangup)]
    );
}

#[test]
fn a_grace_that_runs_out_is_a_leave_and_ends_the_session() {
    let mut f = Fixture::new();
    let (room, _) = f.connected();
    f.reg.suspend(BOB, f.at(5));
    assert_eq!(f.reg.next_deadline(), Some(f.at(5 + GRACE)));
    let out = f.reg.expire(f.at(5 + GRACE));
    assert_eq!(
        to(&out, ALICE),
        vec![
            left(room, "bob"),
            ended(room, "bob", 4 + GRACE as u32, EndReason::Hangup)
        ]
    );
    assert_eq!(out.ended, vec![BOB]);
    assert_eq!(f.reg.user_of(BOB), None);
    assert_eq!(
        f.reg.resume(BOB, APP, "bob").map_err(|r| r.code),
        Err(ErrorCode::ResumeRefused)
    );
    assert_eq!(f.reg.next_deadline(), None);
}

#[test]
fn an_invitation_reaches_an_away_invitee_and_rings_on_the_servers_clock() {
    let mut f = Fixture::new();
    f.reg.resume_grace = RING * 2;
    f.reg.suspend(BOB, f.at(1));
    let out = f.invite(ALICE, &["bob"], None, 2);
    // The INVITED is addressed to bob's session, for the replay.
    assert!(matches!(&to(&out, BOB)[..], [ServerMessage::Invited(_)]));
    // The ring (30 s) ends within the grace: bob gets the timeout too, alice the no-answer.
    let out = f.reg.expire(f.at(2 + RING.as_secs()));
    assert!(matches!(
        &to(&out, BOB)[..],
        [ServerMessage::InviteTimeout(_)]
    ));
    assert!(to(&out, ALICE)
        .iter()
        .any(|m| matches!(m, ServerMessage::NoResponse(_))));
    assert!(out.ended.is_empty());
    assert_eq!(f.reg.resume(BOB, APP, "bob"), Ok(()));
}

#[test]
fn a_resume_is_refused_for_another_user_a_kicked_session_or_a_logged_out_one() {
    let mut f = Fixture::new();
    f.reg.suspend(BOB, f.at(0));
    for (app, user) in [(APP, "alice"), (APP + 1, "bob")] {
        assert_eq!(
            f.reg.resume(BOB, app, user).map_err(|r| r.code),
            Err(ErrorCode::ResumeRefused)
        );
    }
    // A login elsewhere kicks the away session: it cannot come back, and its grace is void.
    let out = f.reg.login(9, APP, "bob", f.at(1));
    assert_eq!(out.closes, vec![(BOB, CloseReason::Kicked)]);
    assert!(!f.reg.is_away(BOB));
    assert_eq!(
        f.reg.resume(BOB, APP, "bob").map_err(|r| r.code),
        Err(ErrorCode::ResumeRefused)
    );
    assert_eq!(f.reg.next_deadline(), None);
    // Logged out (left) sessions are gone too.
    f.reg.leave(CAROL, f.at(2));
    assert_eq!(
        f.reg.resume(CAROL, APP, "carol").map_err(|r| r.code),
        Err(ErrorCode::ResumeRefused)
    );
}

#[test]
fn a_caller_away_while_ringing_keeps_its_invitation_ringing() {
    let mut f = Fixture::new();
    let (room, invite) = f.ring_bob();
    f.reg.suspend(ALICE, f.at(1));
    // bob accepts while alice is away: alice's session is told, for the replay.
    let out = f.reg.accept(BOB, 1, &invite, f.at(2)).unwrap();
    assert!(to(&out, ALICE).iter().any(
        |m| matches!(m, ServerMessage::Accepted(Accepted { room_id, .. }) if *room_id == room)
    ));
    assert_eq!(f.reg.resume(ALICE, APP, "alice"), Ok(()));
    assert_eq!(f.reg.call_count(), 1);
}
