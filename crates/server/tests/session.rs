//! Sessions through a real server: login settings, kick-out, offline invitees, disconnects,
//! heartbeat silence and logout: how a connection's life reaches the registry and how the
//! registry's decisions close sockets. The session flows themselves are tested on the
//! registry (crates/registry).

mod common;

use std::time::{Duration, Instant};

use calling_protocol::{
    Accepted, ClientMessage, EndReason, IceServer, Invited, LoginOk, MemberLeft, ServerMessage,
};
use common::*;

#[tokio::test]
async fn login_ok_carries_the_server_settings() {
    let mut config = config();
    config.ring_timeout = Duration::from_millis(2500);
    config.ice_servers = vec![IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    }];
    let server = start(config).await;
    let mut c = Client::connect(server.addr).await;
    c.send(&login_msg("alice")).await;
    assert_eq!(
        c.recv().await,
        ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: vec![IceServer {
                urls: vec!["stun:127.0.0.1:3478".into()],
                username: None,
                credential: None,
            }],
            ring_timeout_secs: 3,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: false,
        })
    );
    c.send(&ClientMessage::Ping).await;
    assert_eq!(c.recv().await, ServerMessage::Pong);
}

#[tokio::test]
async fn a_new_login_kicks_the_old_session_out() {
    let server = start(config()).await;
    let (mut alice, mut bob, room, _) = connected_pair(&server).await;
    let mut bob2 = Client::login(server.addr, "bob").await;
    assert_eq!(bob.recv().await, ServerMessage::Kicked);
    assert_eq!(bob.closed().await, Closed::Code(1000));
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
    bob2.expect_nothing().await;
    // The new session is the one that counts.
    let (_, _) = alice.invite(&["bob"], None).await;
    assert!(matches!(bob2.recv().await, ServerMessage::Invited(_)));
}

#[tokio::test]
async fn offline_invitee_gets_the_invitation_at_login() {
    let server = start(config()).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let (room, invite_id) = alice.invite(&["dave"], None).await;
    assert_eq!(alice.recv().await, invitee_list(room, &["dave"]));
    let mut dave = Client::login(server.addr, "dave").await;
    assert!(
        matches!(dave.recv().await, ServerMessage::Invited(Invited { invite_id: i, sponsor, .. }) if i == invite_id && sponsor == "alice")
    );
    assert!(matches!(
        dave.accept(&invite_id).await,
        ServerMessage::Joined(_)
    ));
    assert!(
        matches!(alice.recv().await, ServerMessage::Accepted(Accepted { user_id, .. }) if user_id == "dave")
    );
}

#[tokio::test]
async fn disconnect_mid_call_is_a_hangup() {
    let server = start(config()).await;
    let (mut alice, bob, room, _) = connected_pair(&server).await;
    bob.vanish();
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
}

#[tokio::test]
async fn a_silent_session_is_dropped_and_leaves_its_call() {
    let mut config = config();
    config.heartbeat_timeout = Duration::from_millis(600);
    let server = start(config).await;
    // Taken before bob's last frame, so bob cannot be dropped earlier than the timeout after it.
    let started = Instant::now();
    let (mut alice, bob, room, _) = connected_pair(&server).await;
    // alice keeps her heartbeat going; bob stays silent with his socket open.
    let mut beat = tokio::time::interval(Duration::from_millis(150));
    let left = loop {
        beat.tick().await;
        alice.send(&ClientMessage::Ping).await;
        match alice.recv().await {
            ServerMessage::Pong => assert!(started.elapsed() < DEADLINE, "bob never dropped"),
            other => break other,
        }
    };
    assert_eq!(
        left,
        ServerMessage::MemberLeft(MemberLeft {
            room_id: room,
            user_id: "bob".into()
        })
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    // The pong of the ping in flight may come first.
    let mut next = alice.recv().await;
    if next == ServerMessage::Pong {
        next = alice.recv().await;
    }
    assert!(call_ended(room, "bob", EndReason::Hangup)(next));
    drop(bob);
}

#[tokio::test]
async fn a_client_that_only_answers_protocol_pings_stays_logged_in() {
    let mut config = config();
    config.heartbeat_timeout = Duration::from_millis(600);
    let server = start(config).await;
    let mut carol = Client::login(server.addr, "carol").await;
    // No application ping for several heartbeat timeouts; reading the socket is all carol does,
    // which answers the server's protocol pings as a browser's network stack would.
    let quiet = tokio::time::timeout(Duration::from_millis(2000), carol.recv()).await;
    assert!(quiet.is_err(), "nothing but pings expected, got {quiet:?}");
    carol.send(&ClientMessage::Ping).await;
    assert_eq!(carol.recv().await, ServerMessage::Pong, "still logged in");
}

#[tokio::test]
async fn logout_leaves_the_call_and_closes() {
    let server = start(config()).await;
    let (mut alice, mut bob, room, _) = connected_pair(&server).await;
    bob.send(&ClientMessage::Logout).await;
    assert_eq!(bob.closed().await, Closed::Code(1000));
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
    assert_eq!(server.hub.counts(), (1, 0));
}
