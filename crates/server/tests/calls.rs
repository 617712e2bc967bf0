//! Each call flow of SPEC §6 once through a real server and real WebSocket clients: requests
//! reach the registry, its deliveries and refusals reach the right sockets, the ring timer
//! runs. The flows' every detail is tested on the registry itself (crates/registry).

mod common;

use std::time::{Duration, Instant};

use calling_protocol::{
    Accepted, Busy, CallType, Cancelled, ClientMessage, EndReason, IceCandidate, InviteTimeout,
    Invited, Joined, MemberLeft, NoResponse, Rejected, RelayedSignal, ServerMessage, Signal,
};
use common::*;

#[tokio::test]
async fn one_to_one_accept_relays_signals_both_ways() {
    let server = start(config()).await;
    let (mut alice, mut bob, room, _) = connected_pair(&server).await;
    let signals = [
        Signal::Offer {
            sdp: "v=0 offer".into(),
        },
        Signal::Answer {
            sdp: "v=0 answer".into(),
        },
        Signal::Candidate(IceCandidate {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }),
        Signal::Media {
            audio: true,
            video: false,
        },
        Signal::SwitchMode {
            call_type: CallType::Audio,
        },
        Signal::SwitchModeAck {
            call_type: CallType::Audio,
            ok: true,
        },
    ];
    for signal in signals {
        alice.relay(room, "bob", signal.clone()).await;
        assert_eq!(
            bob.recv().await,
            ServerMessage::Signal(RelayedSignal {
                room_id: room,
                from: "alice".into(),
                signal: signal.clone()
            })
        );
        bob.relay(room, "alice", signal.clone()).await;
        assert_eq!(
            alice.recv().await,
            ServerMessage::Signal(RelayedSignal {
                room_id: room,
                from: "bob".into(),
                signal
            })
        );
    }
    alice.expect_nothing().await;
    bob.expect_nothing().await;
}

#[tokio::test]
async fn hangup_ends_the_call_for_the_other_and_frees_both() {
    let server = start(config()).await;
    let (mut alice, mut bob, room, _) = connected_pair(&server).await;
    bob.send(&ClientMessage::Hangup { room_id: room }).await;
    assert_eq!(
        alice.recv().await,
        ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "bob".into()
        })
    );
    assert!(call_ended(room, "bob", EndReason::Hangup)(
        alice.recv().await
    ));
    bob.expect_nothing().await;
    alice.expect_nothing().await;
    // Both are idle again: a new call between them rings.
    let (room2, _) = bob.invite(&["alice"], None).await;
    assert_ne!(room2, room);
    assert!(matches!(alice.recv().await, ServerMessage::Invited(_)));
}

#[tokio::test]
async fn reject_tells_the_caller() {
    let server = start(config()).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    assert_eq!(bob.invited().await, invite_id);
    bob.send(&ClientMessage::Reject {
        invite_id: invite_id.clone(),
    })
    .await;
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    assert_eq!(
        alice.recv().await,
        ServerMessage::Rejected(Rejected {
            room_id: room,
            invite_id,
            user_id: "bob".into()
        })
    );
    assert_eq!(alice.recv().await, invitee_list(room, &[]));
    assert!(call_ended(room, "bob", EndReason::Rejected)(
        alice.recv().await
    ));
    bob.expect_nothing().await;
    alice.expect_nothing().await;
}

#[tokio::test]
async fn busy_invitee_is_not_disturbed() {
    let server = start(config()).await;
    let (mut alice, mut bob, _, _) = connected_pair(&server).await;
    let mut carol = Client::login(server.addr, "carol").await;
    let (room, invite_id) = carol.invite(&["bob"], None).await;
    assert_eq!(
        carol.recv().await,
        ServerMessage::Busy(Busy {
            room_id: room,
            invite_id,
            user_id: "bob".into()
        })
    );
    assert!(call_ended(room, "bob", EndReason::Busy)(carol.recv().await));
    bob.expect_nothing().await;
    alice.expect_nothing().await;
}

#[tokio::test]
async fn caller_hangup_while_ringing_cancels() {
    let server = start(config()).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    bob.invited().await;
    alice.send(&ClientMessage::Hangup { room_id: room }).await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Cancelled(Cancelled {
            room_id: room,
            invite_id: invite_id.clone(),
            sponsor: "alice".into()
        })
    );
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    alice.expect_nothing().await;
    // Accepting the cancelled invitation is refused.
    bob.send(&ClientMessage::Accept {
        request_id: 5,
        invite_id,
    })
    .await;
    let (code, request_id, _) = bob.expect_error().await;
    assert_eq!(
        (code, request_id),
        (calling_protocol::ErrorCode::NoSuchInvitation, Some(5))
    );
}

#[tokio::test]
async fn ring_timeout_is_decided_by_the_server() {
    let ring = Duration::from_millis(400);
    let server = start_ringing(ring).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    let started = Instant::now();
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    bob.invited().await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::InviteTimeout(InviteTimeout {
            room_id: room,
            invite_id: invite_id.clone(),
            sponsor: "alice".into()
        })
    );
    assert!(
        started.elapsed() >= ring,
        "timed out after {:?}",
        started.elapsed()
    );
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    assert_eq!(
        alice.recv().await,
        ServerMessage::NoResponse(NoResponse {
            room_id: room,
            invite_id,
            user_ids: vec!["bob".into()]
        })
    );
    assert_eq!(alice.recv().await, invitee_list(room, &[]));
    assert!(call_ended(room, "bob", EndReason::NoResponse)(
        alice.recv().await
    ));
    alice.expect_nothing().await;
    bob.expect_nothing().await;
    assert_eq!(server.hub.counts(), (2, 0));
}

#[tokio::test]
async fn a_member_invites_more_users_into_a_running_call() {
    let server = start(config()).await;
    let (mut alice, mut bob, room, _) = connected_pair(&server).await;
    let mut carol = Client::login(server.addr, "carol").await;
    let (room2, invite_id) = bob.invite(&["carol"], Some(room)).await;
    assert_eq!(room2, room);
    assert!(
        matches!(carol.recv().await, ServerMessage::Invited(Invited { sponsor, .. }) if sponsor == "bob")
    );
    assert_eq!(alice.recv().await, invitee_list(room, &["carol"]));
    assert_eq!(bob.recv().await, invitee_list(room, &["carol"]));
    match carol.accept(&invite_id).await {
        ServerMessage::Joined(Joined { members, .. }) => assert_eq!(members, ["alice", "bob"]),
        other => panic!("{other:?}"),
    }
    for member in [&mut alice, &mut bob] {
        assert!(
            matches!(member.recv().await, ServerMessage::Accepted(Accepted { user_id, .. }) if user_id == "carol")
        );
        assert_eq!(member.recv().await, invitee_list(room, &[]));
    }
    // alice leaves; bob and carol stay connected.
    alice.send(&ClientMessage::Hangup { room_id: room }).await;
    for member in [&mut bob, &mut carol] {
        assert_eq!(
            member.recv().await,
            ServerMessage::MemberLeft(MemberLeft {
                room_id: room,
                user_id: "alice".into()
            })
        );
        member.expect_nothing().await;
    }
    carol
        .relay(room, "bob", Signal::Offer { sdp: "x".into() })
        .await;
    assert!(matches!(bob.recv().await, ServerMessage::Signal(_)));
}

#[tokio::test]
async fn a_call_holds_nine_a_tenth_is_refused_at_once_or_later() {
    let server = start(config()).await;
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let mut clients = Vec::new();
    for name in &names {
        clients.push(Client::login(server.addr, name).await);
    }
    let (host, rest) = clients.split_first_mut().unwrap();
    let ids: Vec<&str> = names[1..].iter().map(String::as_str).collect();

    // The host and nine invitees: one too many, refused before anything rings.
    host.send(&ClientMessage::Invite {
        request_id: 5,
        user_ids: ids.iter().map(|s| s.to_string()).collect(),
        call_type: CallType::Audio,
        is_group: true,
        group_id: None,
        room_id: None,
    })
    .await;
    let (_, request, message) = host.expect_error().await;
    assert_eq!(request, Some(5));
    assert!(message.contains("at most 9"), "{message}");
    for c in rest.iter_mut() {
        c.expect_nothing().await;
    }

    // Eight invitees make nine, who all join...
    let (room, invite_id) = host.invite(&ids[..8], None).await;
    let (members, tenth) = rest.split_at_mut(8);
    for m in members.iter_mut() {
        assert_eq!(m.invited().await, invite_id);
    }
    for (i, m) in members.iter_mut().enumerate() {
        match m.accept(&invite_id).await {
            ServerMessage::Joined(Joined { members, .. }) => {
                assert_eq!(members.len(), i + 1, "{}: everyone in before", names[i + 1])
            }
            other => panic!("{other:?}"),
        }
    }
    // ...and no member can add a tenth.
    let tenth = &mut tenth[0];
    members[3]
        .send(&ClientMessage::Invite {
            request_id: 6,
            user_ids: vec!["p9".into()],
            call_type: CallType::Audio,
            is_group: true,
            group_id: None,
            room_id: Some(room),
        })
        .await;
    loop {
        match members[3].recv().await {
            ServerMessage::Error(e) => {
                assert_eq!(e.request_id, Some(6));
                assert!(e.message.contains("at most 9"), "{}", e.message);
                break;
            }
            // Earlier members' joins still being announced.
            ServerMessage::Accepted(_) | ServerMessage::InviteeList(_) => {}
            other => panic!("{other:?}"),
        }
    }
    tenth.expect_nothing().await;
}
