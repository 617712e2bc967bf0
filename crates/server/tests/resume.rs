//! Resumable sessions over real sockets: a socket lost without a close frame keeps the session
//! for the grace, a new socket takes it over with its token and gets exactly what it missed,
//! and the other side of the call never notices; past the grace, or after a kick, a logout or
//! a deliberate close, the session is gone as before.

mod common;

use std::time::Duration;

use calling_protocol::{
    Accepted, CallType, ClientMessage, ErrorCode, Invited, Joined, MemberLeft, RelayedSignal,
    Resumed, ServerMessage, Signal,
};
use common::*;

fn offer() -> Signal {
    Signal::Offer {
        sdp: "v=0 offer".into(),
    }
}

fn signal(room: u32, from: &str, signal: Signal) -> ServerMessage {
    ServerMessage::Signal(RelayedSignal {
        room_id: room,
        from: from.into(),
        signal,
    })
}

/// alice (plain) calls bob (resumable), bob accepts. Returns bob's token and the seq of the
/// last message bob read (his `joined`).
async fn call_bob(server: &Server) -> (Client, Client, u32, String, u64) {
    let mut alice = Client::login(server.addr, "alice").await;
    let (mut bob, grant) = Client::login_resumable(server.addr, "bob").await;
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    let (seq, invited) = bob.recv_numbered().await;
    assert_eq!(seq, Some(1));
    assert!(matches!(invited, ServerMessage::Invited(_)));
    bob.send(&ClientMessage::Accept {
        request_id: 12,
        invite_id: invite_id.clone(),
    })
    .await;
    let (seq, joined) = bob.recv_numbered().await;
    assert_eq!(seq, Some(2));
    assert!(matches!(joined, ServerMessage::Joined(Joined { room_id, .. }) if room_id == room));
    assert!(matches!(
        alice.recv().await,
        ServerMessage::Accepted(Accepted { .. })
    ));
    assert_eq!(alice.recv().await, invitee_list(room, &[]));
    (alice, bob, room, grant.token, 2)
}

#[tokio::test]
async fn a_member_whose_socket_drops_resumes_and_the_other_side_notices_nothing() {
    let server = start(config()).await;
    let (mut alice, mut bob, room, token, last_seq) = call_bob(&server).await;
    bob.relay(
        room,
        "alice",
        Signal::Media {
            audio: true,
            video: true,
        },
    )
    .await;
    assert!(matches!(alice.recv().await, ServerMessage::Signal(_)));
    bob.vanish();
    // Meanwhile alice renegotiates: her offer is kept for bob, and nobody leaves.
    alice.relay(room, "bob", offer()).await;
    alice.expect_nothing().await;

    let mut bob = Client::resume(server.addr, "bob", &token, last_seq).await;
    // Two frames of bob's were processed: the accept and the media signal.
    assert_eq!(
        bob.recv_numbered().await,
        (None, ServerMessage::Resumed(Resumed { received: 2 }))
    );
    assert_eq!(
        bob.recv_numbered().await,
        (Some(3), signal(room, "alice", offer()))
    );
    bob.expect_nothing().await;
    alice.expect_nothing().await;
    // The call goes on: relay both ways, then bob's hangup ends it for alice.
    bob.relay(room, "alice", offer()).await;
    assert_eq!(alice.recv().await, signal(room, "bob", offer()));
    bob.send(&ClientMessage::Hangup { room_id: room }).await;
    assert_eq!(
        alice.recv().await,
        ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "bob".into()
        })
    );
    assert!(call_ended(room, "bob", calling_protocol::EndReason::Hangup)(alice.recv().await));
}

#[tokio::test]
async fn a_resume_replays_everything_after_the_last_processed_message_once_in_order() {
    let server = start(config()).await;
    let (mut alice, bob, room, token, _) = call_bob(&server).await;
    bob.vanish();
    alice.relay(room, "bob", offer()).await;
    alice.expect_nothing().await;
    // bob had processed only the invitation: the joined and the offer come again, in order.
    let mut bob = Client::resume(server.addr, "bob", &token, 1).await;
    assert!(matches!(
        bob.recv_numbered().await,
        (None, ServerMessage::Resumed(_))
    ));
    let (seq, joined) = bob.recv_numbered().await;
    assert_eq!(seq, Some(2));
    assert!(matches!(joined, ServerMessage::Joined(_)));
    assert_eq!(
        bob.recv_numbered().await,
        (Some(3), signal(room, "alice", offer()))
    );
    bob.expect_nothing().await;
    // A later message continues the numbering.
    alice.relay(room, "bob", offer()).await;
    assert_eq!(bob.recv_numbered().await.0, Some(4));
}

#[tokio::test]
async fn an_invitation_to_a_user_away_reaches_them_once_when_they_resume() {
    let server = start(config()).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let (bob, grant) = Client::login_resumable(server.addr, "bob").await;
    bob.vanish();
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    let mut bob = Client::resume(server.addr, "bob", &grant.token, 0).await;
    assert!(matches!(
        bob.recv_numbered().await,
        (None, ServerMessage::Resumed(Resumed { received: 0 }))
    ));
    assert_eq!(
        bob.recv_numbered().await,
        (
            Some(1),
            ServerMessage::Invited(Invited {
                invite_id: invite_id.clone(),
                room_id: room,
                sponsor: "alice".into(),
                user_ids: vec!["bob".into()],
                call_type: CallType::Video,
                is_group: false,
                group_id: None,
            })
        )
    );
    bob.expect_nothing().await;
    assert!(matches!(
        bob.accept(&invite_id).await,
        ServerMessage::Joined(_)
    ));
    assert!(matches!(alice.recv().await, ServerMessage::Accepted(_)));
}

#[tokio::test]
async fn a_takeover_closes_the_old_socket_and_its_late_frames_change_nothing() {
    let server = start(config()).await;
    let (mut alice, mut old, room, token, last_seq) = call_bob(&server).await;
    // The server has not seen the old socket die (it has not): a resume takes over anyway.
    let mut bob = Client::resume(server.addr, "bob", &token, last_seq).await;
    assert!(matches!(
        bob.recv_numbered().await,
        (None, ServerMessage::Resumed(Resumed { received: 1 }))
    ));
    assert_eq!(old.closed().await, Closed::Code(1000));
    // Nothing the old link might still send is applied; the new one works.
    let _ = old
        .try_send_text(&serde_json::to_string(&ClientMessage::Hangup { room_id: room }).unwrap())
        .await;
    alice.expect_nothing().await;
    bob.relay(room, "alice", offer()).await;
    assert_eq!(alice.recv().await, signal(room, "bob", offer()));
}

#[tokio::test]
async fn past_the_grace_the_member_leaves_and_its_token_is_refused_but_it_can_log_in() {
    let mut config = config();
    config.resume_grace = Duration::from_millis(300);
    let server = start(config).await;
    let (mut alice, bob, room, token, last_seq) = call_bob(&server).await;
    bob.vanish();
    assert_eq!(
        alice.recv().await,
        ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "bob".into()
        })
    );
    assert!(call_ended(room, "bob", calling_protocol::EndReason::Hangup)(alice.recv().await));
    let mut bob = Client::resume(server.addr, "bob", &token, last_seq).await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::ResumeRefused);
    // The refusal leaves the socket open for a login.
    bob.send(&login_msg("bob")).await;
    assert!(matches!(bob.recv().await, ServerMessage::LoginOk(_)));
}

#[tokio::test]
async fn a_close_frame_leaves_at_once_and_cannot_be_resumed() {
    let server = start(config()).await;
    let (mut alice, bob, room, token, last_seq) = call_bob(&server).await;
    // Well within the 30 s grace: a page that closes its socket on purpose has gone.
    bob.close().await;
    assert_eq!(
        alice.recv().await,
        ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "bob".into()
        })
    );
    let mut bob = Client::resume(server.addr, "bob", &token, last_seq).await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::ResumeRefused);
}

#[tokio::test]
async fn a_kicked_session_is_told_it_was_kicked_and_a_logged_out_one_is_refused() {
    let server = start(config()).await;
    let (away, grant) = Client::login_resumable(server.addr, "bob").await;
    away.vanish();
    // A login elsewhere takes the user: the away session is kicked for good, and its SDK is
    // told so (not refused, which would make it log in and kick the newer login in turn).
    let mut bob = Client::login(server.addr, "bob").await;
    let mut again = Client::resume(server.addr, "bob", &grant.token, 0).await;
    assert_eq!(again.recv().await, ServerMessage::Kicked);
    assert_eq!(again.closed().await, Closed::Code(1000));
    bob.expect_nothing().await;

    let (mut carol, grant) = Client::login_resumable(server.addr, "carol").await;
    carol.send(&ClientMessage::Logout).await;
    assert_eq!(carol.closed().await, Closed::Code(1000));
    let mut again = Client::resume(server.addr, "carol", &grant.token, 0).await;
    assert_eq!(again.expect_error().await.0, ErrorCode::ResumeRefused);
}

#[tokio::test]
async fn a_token_resumes_only_its_own_users_session() {
    let server = start(config()).await;
    let (bob, grant) = Client::login_resumable(server.addr, "bob").await;
    bob.vanish();
    let mut mallory = Client::resume(server.addr, "mallory", &grant.token, 0).await;
    assert_eq!(mallory.expect_error().await.0, ErrorCode::ResumeRefused);
    let mut guess = Client::resume(server.addr, "bob", "00000000000000000000000000000000", 0).await;
    assert_eq!(guess.expect_error().await.0, ErrorCode::ResumeRefused);
    // The session is still there for its owner.
    let mut bob = Client::resume(server.addr, "bob", &grant.token, 0).await;
    assert!(matches!(
        bob.recv_numbered().await,
        (None, ServerMessage::Resumed(_))
    ));
}

#[tokio::test]
async fn a_resume_whose_missed_messages_are_no_longer_kept_ends_the_session_as_a_leave() {
    let mut config = config();
    // Room for a few relayed offers only, so an absence with more loses the oldest.
    config.limits.outbox_bytes = 300;
    let server = start(config).await;
    let (mut alice, bob, room, token, last_seq) = call_bob(&server).await;
    bob.vanish();
    for _ in 0..6 {
        alice.relay(room, "bob", offer()).await;
    }
    alice.expect_nothing().await;
    let mut bob = Client::resume(server.addr, "bob", &token, last_seq).await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::ResumeRefused);
    // The session could not go on consistently: it is gone, and alice hears bob leave.
    assert_eq!(
        alice.recv().await,
        ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "bob".into()
        })
    );
    bob.send(&login_msg("bob")).await;
    assert!(matches!(bob.recv().await, ServerMessage::LoginOk(_)));
}

#[tokio::test]
async fn a_socket_the_sdk_abandons_to_reconnect_keeps_the_session_for_its_resume() {
    let server = start(config()).await;
    let (mut alice, bob, room, token, last_seq) = call_bob(&server).await;
    // Unlike a page going away (a plain close), this close says "reconnecting".
    bob.close_with(calling_protocol::RECONNECT_CLOSE_CODE).await;
    alice.relay(room, "bob", offer()).await;
    alice.expect_nothing().await;
    let mut bob = Client::resume(server.addr, "bob", &token, last_seq).await;
    assert!(matches!(
        bob.recv_numbered().await,
        (None, ServerMessage::Resumed(_))
    ));
    assert_eq!(
        bob.recv_numbered().await,
        (Some(3), signal(room, "alice", offer()))
    );
}
