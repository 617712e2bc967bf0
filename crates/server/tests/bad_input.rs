//! Bad input: refused logins, malformed or unknown frames, oversized frames, floods and relays
//! outside one's call. Each gets a clear error or a clean close and leaves other calls alone.

mod common;

use calling_protocol::{
    ClientMessage, ErrorCode, ErrorReply, RelayedSignal, ServerMessage, Signal, MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use calling_server::{usersig, AppCredential, Config};
use common::*;

/// SPEC §7's known-answer vector: valid signature, long expired.
const KAT_APP: u64 = 1_400_000_000;
const KAT_KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const KAT_SIG: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMiUZOamKlkZmqGKplYUZBaBxE1NTY3gosWZ6UpWSoZRpgF56S5Z7omlaanBmQH5TqUVKR6R5q7exl4hKY5ZvgGWxsEm3mVhxr62SrUAnj0xuw__";

fn two_apps() -> Config {
    Config::new(vec![
        AppCredential {
            sdk_app_id: APP,
            secret_key: KEY.into(),
        },
        AppCredential {
            sdk_app_id: KAT_APP,
            secret_key: KAT_KEY.into(),
        },
    ])
}

/// Sends a login and expects it refused with `code`, then a 1008 close.
async fn refused_login(
    addr: std::net::SocketAddr,
    login: ClientMessage,
    code: ErrorCode,
) -> String {
    let mut c = Client::connect(addr).await;
    c.send(&login).await;
    let (got, _, message) = c.expect_error().await;
    assert_eq!(got, code, "{message}");
    assert_eq!(c.closed().await, Closed::Code(1008));
    message
}

fn login(app: u64, user: &str, sig: &str, version: u32) -> ClientMessage {
    ClientMessage::Login {
        sdk_app_id: app,
        user_id: user.into(),
        user_sig: sig.into(),
        protocol_version: version,
        resumable: false,
    }
}

#[tokio::test]
async fn bad_logins_are_refused_with_a_reason() {
    let server = start(two_apps()).await;
    let addr = server.addr;
    let v = PROTOCOL_VERSION;
    let message = refused_login(
        addr,
        login(KAT_APP, "xiaojun", KAT_SIG, v),
        ErrorCode::ExpiredUserSig,
    )
    .await;
    assert!(message.contains("expired"), "{message}");
    // Signed with another key.
    let forged = usersig::generate(APP, "not-the-key", "alice", now_unix(), 3600, None);
    refused_login(
        addr,
        login(APP, "alice", &forged, v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    // A valid sig for another user or another app.
    refused_login(
        addr,
        login(APP, "bob", &sig("alice"), v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    let other_app = usersig::generate(KAT_APP, KAT_KEY, "alice", now_unix(), 3600, None);
    refused_login(
        addr,
        login(APP, "alice", &other_app, v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    // Tampered: one character changed.
    let mut tampered: Vec<char> = sig("alice").chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    refused_login(
        addr,
        login(APP, "alice", &tampered, v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    refused_login(
        addr,
        login(APP, "alice", "garbage", v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    refused_login(
        addr,
        login(7, "alice", &sig("alice"), v),
        ErrorCode::UnknownApp,
    )
    .await;
    for bad_id in ["al ice", "alice!", "", "ali.ce", &"a".repeat(33)] {
        refused_login(
            addr,
            login(APP, bad_id, &sig("alice"), v),
            ErrorCode::InvalidUserId,
        )
        .await;
    }
    refused_login(
        addr,
        login(APP, "alice", &sig("alice"), v + 1),
        ErrorCode::UnsupportedVersion,
    )
    .await;
    assert_eq!(server.hub.counts(), (0, 0));
    // The same connection rules still let a good login through afterwards.
    Client::login(addr, "alice").await;
}

#[tokio::test]
async fn user_sigs_from_the_future_or_too_long_lived_are_refused() {
    let mut config = config();
    config.sig_policy.max_lifetime_secs = Some(7 * 86_400);
    let server = start(config).await;
    let v = PROTOCOL_VERSION;
    let skew = server.hub.config.sig_policy.max_clock_skew_secs;
    let ahead = usersig::generate(APP, KEY, "alice", now_unix() + skew + 60, 3600, None);
    let message = refused_login(
        server.addr,
        login(APP, "alice", &ahead, v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    assert!(message.contains("future"), "{message}");
    let forever = usersig::generate(APP, KEY, "alice", now_unix(), 10 * 365 * 86_400, None);
    let message = refused_login(
        server.addr,
        login(APP, "alice", &forever, v),
        ErrorCode::InvalidUserSig,
    )
    .await;
    assert!(message.contains("lifetime"), "{message}");
    // A little ahead (clocks differ) and a week-long sig are fine.
    let mut c = Client::connect(server.addr).await;
    let slightly_ahead = usersig::generate(APP, KEY, "alice", now_unix() + 30, 7 * 86_400, None);
    c.send(&login(APP, "alice", &slightly_ahead, v)).await;
    assert!(matches!(c.recv().await, ServerMessage::LoginOk { .. }));
}

#[tokio::test]
async fn nothing_but_login_before_login() {
    let server = start(config()).await;
    let mut c = Client::connect(server.addr).await;
    for msg in [
        ClientMessage::Ping,
        ClientMessage::Hangup { room_id: 1 },
        ClientMessage::Reject {
            invite_id: "x".into(),
        },
        ClientMessage::Logout,
    ] {
        c.send(&msg).await;
        assert_eq!(c.expect_error().await.0, ErrorCode::NotLoggedIn);
    }
    // The connection stays usable for a login.
    c.send(&login_msg("alice")).await;
    assert!(matches!(c.recv().await, ServerMessage::LoginOk(_)));
    c.send(&login_msg("alice")).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::AlreadyLoggedIn);
}

#[tokio::test]
async fn malformed_unknown_and_binary_frames_get_errors() {
    let server = start(config()).await;
    let mut c = Client::login(server.addr, "alice").await;
    for text in [
        "not json",
        "{",
        "[]",
        "42",
        r#"{"no":"type"}"#,
        r#"{"type":"invite","requestId":9}"#,
    ] {
        c.send_text(text).await;
        let (code, request_id, message) = c.expect_error().await;
        assert_eq!(code, ErrorCode::Malformed, "{text}: {message}");
        if text.contains("requestId") {
            assert_eq!(request_id, Some(9), "the error names the request");
        }
    }
    // Ill-typed field.
    c.send_text(r#"{"type":"hangup","roomId":"seven"}"#).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::Malformed);
    c.send_text(r#"{"type":"teleport","to":"mars"}"#).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::UnknownType);
    c.send_binary(vec![1, 2, 3]).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::Malformed);
    // Still logged in and working.
    c.expect_nothing().await;
}

#[tokio::test]
async fn requests_outside_ones_call_are_refused() {
    let server = start(config()).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    let mut carol = Client::login(server.addr, "carol").await;
    let (room, _) = alice.invite(&["bob"], None).await;
    alice.recv().await; // inviteeList
    bob.invited().await;
    carol
        .relay(room, "bob", Signal::Offer { sdp: "x".into() })
        .await;
    assert_eq!(carol.expect_error().await.0, ErrorCode::NotInCall);
    alice
        .relay(room, "carol", Signal::Offer { sdp: "x".into() })
        .await;
    assert_eq!(alice.expect_error().await.0, ErrorCode::NotAParticipant);
    carol.send(&ClientMessage::Hangup { room_id: room }).await;
    assert_eq!(carol.expect_error().await.0, ErrorCode::NotInCall);
    carol
        .send(&ClientMessage::Invite {
            request_id: 4,
            user_ids: vec!["dave".into()],
            call_type: calling_protocol::CallType::Audio,
            is_group: false,
            group_id: None,
            room_id: Some(room),
        })
        .await;
    assert_eq!(carol.expect_error().await.0, ErrorCode::NotInCall);
    // alice is ringing: she cannot start a second call.
    alice
        .send(&ClientMessage::Invite {
            request_id: 5,
            user_ids: vec!["carol".into()],
            call_type: calling_protocol::CallType::Audio,
            is_group: false,
            group_id: None,
            room_id: None,
        })
        .await;
    assert_eq!(
        alice.expect_error().await,
        (
            ErrorCode::Busy,
            Some(5),
            "you are already ringing or in a call".into()
        )
    );
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_nothing().await;
    }
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let server = start(config()).await;
    // A frame far over the limit is refused on its header; the client, still writing it, may
    // see the 1009 close or a reset. The server goes on serving everyone else.
    let mut huge = Client::login(server.addr, "carol").await;
    huge.try_send_text(&"x".repeat(4 * 1024 * 1024)).await;
    assert!(matches!(huge.next_frame().await, Frame::Closed(_)));
    let mut c = Client::login(server.addr, "alice").await;
    let big = format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES)
    );
    c.send_text(&big).await;
    assert_eq!(c.closed().await, Closed::Code(1009));
    // Just under the limit is fine.
    let mut d = Client::login(server.addr, "bob").await;
    let pad = MAX_FRAME_BYTES - r#"{"type":"ping","pad":""}"#.len();
    d.send_text(&format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(pad)))
        .await;
    assert_eq!(d.recv().await, ServerMessage::Pong);
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed_with_1008() {
    let server = start(config()).await;
    let mut c = Client::login(server.addr, "alice").await;
    for _ in 0..600 {
        c.send(&ClientMessage::Ping).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    let closed = loop {
        match c.next_frame().await {
            Frame::Message(ServerMessage::Pong) => pongs += 1,
            Frame::Message(ServerMessage::Error(ErrorReply {
                code: ErrorCode::RateLimited,
                ..
            })) => limited += 1,
            Frame::Message(other) => panic!("unexpected {other:?}"),
            Frame::Closed(how) => break how,
        }
    };
    assert_eq!(closed, Closed::Code(1008));
    // The burst allowance (200, the login included) plus what refills meanwhile.
    assert!((195..300).contains(&pongs), "{pongs} pongs");
    assert!(limited > 0, "no rateLimited error");
}

#[tokio::test]
async fn bad_input_does_not_disturb_other_calls() {
    let server = start(config()).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    alice.recv().await;
    bob.invited().await;
    assert!(matches!(
        bob.accept(&invite_id).await,
        ServerMessage::Joined(_)
    ));
    alice.recv().await;
    alice.recv().await;

    // Abuse from other connections, all at once.
    let addr = server.addr;
    let abusers = (0..4).map(|i| {
        tokio::spawn(async move {
            let mut c = Client::login(addr, &format!("mallory{i}")).await;
            // Once the server closes for the flood, further sends may fail: that is the point.
            let ping = serde_json::to_string(&ClientMessage::Ping).unwrap();
            c.try_send_text("{oops").await;
            c.try_send_text(
                r#"{"type":"relay","roomId":1,"to":"bob","signal":{"kind":"offer","sdp":"evil"}}"#,
            )
            .await;
            for _ in 0..400 {
                c.try_send_text(&ping).await;
            }
            c.try_send_text(&"x".repeat(MAX_FRAME_BYTES + 1)).await;
            let mut raw = Client::connect(addr).await;
            raw.send_text("not json").await;
            raw.vanish();
        })
    });
    for task in abusers {
        task.await.unwrap();
    }
    // The call is untouched and still relays.
    alice
        .relay(room, "bob", Signal::Offer { sdp: "v=0".into() })
        .await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Signal(RelayedSignal {
            room_id: room,
            from: "alice".into(),
            signal: Signal::Offer { sdp: "v=0".into() }
        })
    );
    alice.expect_nothing().await;
    bob.expect_nothing().await;
}
