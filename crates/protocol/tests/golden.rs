//! Golden JSON tests: the exact wire form of every message in both directions.
//!
//! Each case serializes a value and compares the JSON text byte for byte, then parses that text
//! back and compares the value. Changing the wire format breaks these on purpose: update the
//! SDK, the server and the README together.

use calling_protocol::{
    Accepted, Busy, CallEnded, CallType, Cancelled, ClientMessage, EndReason, ErrorCode,
    ErrorReply, GoAway, IceCandidate, IceServer, IceServersUpdate, InviteSent, InviteTimeout,
    Invited, InviteeList, Joined, LoginOk, MemberLeft, NoResponse, Rejected, RelayedSignal,
    RenderedView, ResumeGrant, Resumed, Sequenced, ServerMessage, SfuSignal, Signal,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T, json: &str) {
    assert_eq!(
        serde_json::to_string(&value).unwrap(),
        json,
        "serialize {value:?}"
    );
    assert_eq!(
        serde_json::from_str::<T>(json).unwrap(),
        value,
        "parse {json}"
    );
}

/// Decodes `json` the way the SDK does: read the `type` tag, then hand the whole object to
/// [`ServerMessage::from_tagged`].
fn decode(json: &str) -> Result<ServerMessage, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let tag = value
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or("no type tag")?
        .to_owned();
    ServerMessage::from_tagged(&tag, value).map_err(|e| e.to_string())
}

/// [`golden`] for a server message, which must also decode through its tag.
fn golden_server(value: ServerMessage, json: &str) {
    golden(value.clone(), json);
    assert_eq!(decode(json), Ok(value), "decode {json}");
}

fn parse_fails<T: DeserializeOwned + Debug>(json: &str) {
    let parsed = serde_json::from_str::<T>(json);
    assert!(parsed.is_err(), "{json} parsed as {parsed:?}");
}

// ---- client → server ----

#[test]
fn login() {
    golden(
        ClientMessage::Login {
            sdk_app_id: 1400000000,
            user_id: "alice".into(),
            user_sig: "eJyrVgrx".into(),
            protocol_version: 1,
            resumable: false,
        },
        r#"{"type":"login","sdkAppId":1400000000,"userId":"alice","userSig":"eJyrVgrx","protocolVersion":1}"#,
    );
    golden(
        ClientMessage::Login {
            sdk_app_id: 1400000000,
            user_id: "alice".into(),
            user_sig: "eJyrVgrx".into(),
            protocol_version: 1,
            resumable: true,
        },
        r#"{"type":"login","sdkAppId":1400000000,"userId":"alice","userSig":"eJyrVgrx","protocolVersion":1,"resumable":true}"#,
    );
}

#[test]
fn resume() {
    golden(
        ClientMessage::Resume {
            sdk_app_id: 1400000000,
            user_id: "alice".into(),
            token: "3f2a".into(),
            last_seq: 17,
            protocol_version: 1,
        },
        r#"{"type":"resume","sdkAppId":1400000000,"userId":"alice","token":"3f2a","lastSeq":17,"protocolVersion":1}"#,
    );
    golden_server(
        ServerMessage::Resumed(Resumed { received: 9 }),
        r#"{"type":"resumed","received":9}"#,
    );
    golden_server(
        ServerMessage::Error(ErrorReply {
            request_id: None,
            code: ErrorCode::ResumeRefused,
            message: "no such session".into(),
        }),
        r#"{"type":"error","code":"resumeRefused","message":"no such session"}"#,
    );
    golden_server(
        ServerMessage::Error(ErrorReply {
            request_id: Some(4),
            code: ErrorCode::Unavailable,
            message: "try again".into(),
        }),
        r#"{"type":"error","requestId":4,"code":"unavailable","message":"try again"}"#,
    );
}

#[test]
fn sequenced_messages_carry_seq_beside_their_own_fields() {
    let left = ServerMessage::MemberLeft(MemberLeft {
        room_id: 7,
        user_id: "bob".into(),
    });
    let json = serde_json::to_string(&Sequenced {
        seq: 12,
        message: &left,
    })
    .unwrap();
    assert_eq!(
        json,
        r#"{"seq":12,"type":"memberLeft","roomId":7,"userId":"bob"}"#
    );
    // The SDK reads `seq` beside the tag; the message itself decodes as without it.
    assert_eq!(decode(&json), Ok(left));
    let kicked = serde_json::to_string(&Sequenced {
        seq: 13,
        message: &ServerMessage::Kicked,
    })
    .unwrap();
    assert_eq!(kicked, r#"{"seq":13,"type":"kicked"}"#);
    assert_eq!(decode(&kicked), Ok(ServerMessage::Kicked));
    assert_eq!(
        serde_json::from_str::<ServerMessage>(&kicked).unwrap(),
        ServerMessage::Kicked
    );
}

#[test]
fn ping_and_logout() {
    golden(ClientMessage::Ping, r#"{"type":"ping"}"#);
    golden(ClientMessage::Logout, r#"{"type":"logout"}"#);
}

#[test]
fn invite() {
    golden(
        ClientMessage::Invite {
            request_id: 3,
            user_ids: vec!["bob".into()],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
            room_id: None,
        },
        r#"{"type":"invite","requestId":3,"userIds":["bob"],"callType":"video","isGroup":false}"#,
    );
    golden(
        ClientMessage::Invite {
            request_id: 4,
            user_ids: vec!["bob".into(), "carol".into()],
            call_type: CallType::Audio,
            is_group: true,
            group_id: Some("team".into()),
            room_id: Some(77),
        },
        r#"{"type":"invite","requestId":4,"userIds":["bob","carol"],"callType":"audio","isGroup":true,"groupId":"team","roomId":77}"#,
    );
    // isGroup may be left out and defaults to false.
    assert_eq!(
        serde_json::from_str::<ClientMessage>(
            r#"{"type":"invite","requestId":3,"userIds":["bob"],"callType":"video"}"#
        )
        .unwrap(),
        ClientMessage::Invite {
            request_id: 3,
            user_ids: vec!["bob".into()],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
            room_id: None,
        }
    );
}

#[test]
fn accept_reject_hangup() {
    golden(
        ClientMessage::Accept {
            request_id: 5,
            invite_id: "a1b2".into(),
        },
        r#"{"type":"accept","requestId":5,"inviteId":"a1b2"}"#,
    );
    golden(
        ClientMessage::Reject {
            invite_id: "a1b2".into(),
        },
        r#"{"type":"reject","inviteId":"a1b2"}"#,
    );
    golden(
        ClientMessage::Hangup { room_id: 77 },
        r#"{"type":"hangup","roomId":77}"#,
    );
}

#[test]
fn relay() {
    golden(
        ClientMessage::Relay {
            room_id: 77,
            to: "bob".into(),
            signal: Signal::Offer {
                sdp: "v=0\r\n".into(),
            },
        },
        r#"{"type":"relay","roomId":77,"to":"bob","signal":{"kind":"offer","sdp":"v=0\r\n"}}"#,
    );
}

#[test]
fn sfu() {
    golden(
        ClientMessage::Sfu {
            room_id: 77,
            signal: Signal::Offer {
                sdp: "v=0\r\n".into(),
            },
            join: true,
        },
        r#"{"type":"sfu","roomId":77,"signal":{"kind":"offer","sdp":"v=0\r\n"},"join":true}"#,
    );
    golden(
        ClientMessage::Sfu {
            room_id: 77,
            signal: Signal::Offer {
                sdp: "v=0\r\n".into(),
            },
            join: false,
        },
        r#"{"type":"sfu","roomId":77,"signal":{"kind":"offer","sdp":"v=0\r\n"}}"#,
    );
    golden(
        ClientMessage::Sfu {
            room_id: 77,
            signal: Signal::Answer { sdp: "a".into() },
            join: false,
        },
        r#"{"type":"sfu","roomId":77,"signal":{"kind":"answer","sdp":"a"}}"#,
    );
}

#[test]
fn sfu_views() {
    golden(
        ClientMessage::SfuViews {
            room_id: 77,
            views: vec![RenderedView {
                user_id: "bob".into(),
                width: 640,
                height: 360,
            }],
        },
        r#"{"type":"sfuViews","roomId":77,"views":[{"userId":"bob","width":640,"height":360}]}"#,
    );
}

#[test]
fn unknown_client_type_is_unknown() {
    assert_eq!(
        serde_json::from_str::<ClientMessage>(r#"{"type":"teleport","to":"mars"}"#).unwrap(),
        ClientMessage::Unknown
    );
}

#[test]
fn client_messages_with_missing_or_ill_typed_fields_fail() {
    for json in [
        r#"{"type":"login","sdkAppId":1,"userId":"a","userSig":"s"}"#,
        r#"{"type":"login","sdkAppId":"1","userId":"a","userSig":"s","protocolVersion":1}"#,
        r#"{"type":"invite","requestId":1,"callType":"video"}"#,
        r#"{"type":"invite","requestId":1,"userIds":["b"],"callType":"hologram"}"#,
        r#"{"type":"accept","inviteId":"x"}"#,
        r#"{"type":"reject"}"#,
        r#"{"type":"hangup"}"#,
        r#"{"type":"hangup","roomId":-1}"#,
        r#"{"type":"relay","roomId":1,"to":"b"}"#,
        r#"{"type":"relay","roomId":1,"signal":{"kind":"offer","sdp":"x"}}"#,
        r#"{"type":"relay","roomId":1,"to":"b","signal":{"kind":"offer"}}"#,
        r#"{"type":"sfu","roomId":1}"#,
        r#"{"type":"sfu","signal":{"kind":"offer","sdp":"x"}}"#,
        r#"{"roomId":1}"#,
        r#"[]"#,
        r#"not json"#,
    ] {
        parse_fails::<ClientMessage>(json);
    }
}

#[test]
fn unknown_fields_are_ignored() {
    assert_eq!(
        serde_json::from_str::<ClientMessage>(r#"{"type":"ping","sentAt":123}"#).unwrap(),
        ClientMessage::Ping
    );
    assert_eq!(
        serde_json::from_str::<ServerMessage>(r#"{"type":"pong","extra":true}"#).unwrap(),
        ServerMessage::Pong
    );
    assert_eq!(
        decode(r#"{"type":"memberLeft","roomId":1,"userId":"u","extra":[1]}"#),
        Ok(ServerMessage::MemberLeft(MemberLeft {
            room_id: 1,
            user_id: "u".into()
        }))
    );
}

// ---- signals ----

#[test]
fn signals() {
    golden(
        Signal::Answer { sdp: "v=0".into() },
        r#"{"kind":"answer","sdp":"v=0"}"#,
    );
    golden(
        Signal::Candidate(IceCandidate {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }),
        r#"{"kind":"candidate","candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}"#,
    );
    golden(
        Signal::Candidate(IceCandidate {
            candidate: "".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
        }),
        r#"{"kind":"candidate","candidate":"","sdpMid":null,"sdpMLineIndex":null}"#,
    );
    golden(
        Signal::Media {
            audio: true,
            video: false,
        },
        r#"{"kind":"media","audio":true,"video":false}"#,
    );
    golden(
        Signal::SwitchMode {
            call_type: CallType::Audio,
        },
        r#"{"kind":"switchMode","callType":"audio"}"#,
    );
    golden(
        Signal::SwitchModeAck {
            call_type: CallType::Video,
            ok: false,
        },
        r#"{"kind":"switchModeAck","callType":"video","ok":false}"#,
    );
    // A browser candidate without sdpMid/sdpMLineIndex still parses.
    assert_eq!(
        serde_json::from_str::<Signal>(r#"{"kind":"candidate","candidate":"c"}"#).unwrap(),
        Signal::Candidate(IceCandidate {
            candidate: "c".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
        })
    );
    assert_eq!(
        serde_json::from_str::<Signal>(r#"{"kind":"hologram","x":1}"#).unwrap(),
        Signal::Unknown
    );
    parse_fails::<Signal>(r#"{"kind":"media","audio":true}"#);
    parse_fails::<Signal>(r#"{"kind":"candidate"}"#);
    parse_fails::<Signal>(r#"{"sdp":"v=0"}"#);
}

/// A relayed signal is decoded through `RelayedSignal`'s own by-kind decoder: every signal
/// above reads as the derived `Signal` decoder reads it, with its fields in any order, and the
/// same signals fail.
#[test]
fn relayed_signals_decode_like_signals() {
    let relayed =
        |signal: &str| format!(r#"{{"type":"signal","roomId":1,"from":"a","signal":{signal}}}"#);
    for signal in [
        r#"{"kind":"offer","sdp":"v=0\r\n"}"#,
        r#"{"sdp":"v=0","kind":"answer"}"#,
        r#"{"kind":"candidate","candidate":"c","sdpMid":"0","sdpMLineIndex":3}"#,
        r#"{"sdpMLineIndex":null,"candidate":"c","kind":"candidate","sdpMid":null}"#,
        r#"{"kind":"candidate","candidate":"c"}"#,
        r#"{"video":true,"audio":false,"kind":"media"}"#,
        r#"{"kind":"switchMode","callType":"video"}"#,
        r#"{"ok":true,"callType":"audio","kind":"switchModeAck"}"#,
        r#"{"kind":"hologram","x":1}"#,
        r#"{"kind":"offer","sdp":"x","future":[1,{"a":null}]}"#,
    ] {
        let expected = ServerMessage::Signal(RelayedSignal {
            room_id: 1,
            from: "a".into(),
            signal: serde_json::from_str::<Signal>(signal).unwrap(),
        });
        let json = relayed(signal);
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&json).unwrap(),
            expected,
            "{json}"
        );
        // serde_json's `Value` hands the fields over sorted by name, `kind` among them.
        assert_eq!(decode(&json), Ok(expected), "{json}");
    }
    for signal in [
        r#"{"kind":"media","audio":true}"#,
        r#"{"kind":"candidate"}"#,
        r#"{"sdp":"v=0"}"#,
        r#"{"kind":"offer","sdp":7}"#,
        r#"{"kind":"switchModeAck","callType":"audio","ok":"yes"}"#,
        r#"{"kind":"switchMode","callType":"hologram"}"#,
        r#"{"kind":"candidate","candidate":"c","sdpMLineIndex":70000}"#,
        r#""offer""#,
    ] {
        parse_fails::<Signal>(signal);
        parse_fails::<ServerMessage>(&relayed(signal));
        assert!(decode(&relayed(signal)).is_err(), "{signal}");
    }
}

// ---- server → client ----

#[test]
fn login_ok() {
    golden_server(
        ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.example.com:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:turn.example.com:3478".into()],
                    username: Some("u".into()),
                    credential: Some("p".into()),
                },
            ],
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: false,
        }),
        r#"{"type":"loginOk","userId":"alice","iceServers":[{"urls":["stun:stun.example.com:3478"]},{"urls":["turn:turn.example.com:3478"],"username":"u","credential":"p"}],"ringTimeoutSecs":30,"heartbeatTimeoutSecs":10}"#,
    );
    golden_server(
        ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: vec![],
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: Some(ResumeGrant {
                token: "3f2a".into(),
                grace_secs: 30,
            }),
            sfu: false,
        }),
        r#"{"type":"loginOk","userId":"alice","iceServers":[],"ringTimeoutSecs":30,"heartbeatTimeoutSecs":10,"resume":{"token":"3f2a","graceSecs":30}}"#,
    );
    // A server running an SFU says so; without it the field is absent (read as false).
    golden_server(
        ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: vec![],
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: true,
        }),
        r#"{"type":"loginOk","userId":"alice","iceServers":[],"ringTimeoutSecs":30,"heartbeatTimeoutSecs":10,"sfu":true}"#,
    );
}

#[test]
fn ice_servers_update() {
    golden_server(
        ServerMessage::IceServers(IceServersUpdate {
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.example.com:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec![
                        "turn:turn.example.com:3478?transport=udp".into(),
                        "turns:turn.example.com:5349?transport=tcp".into(),
                    ],
                    username: Some("1767225600:alice".into()),
                    credential: Some("c2VjcmV0LWhtYWMtb2YtdGhlLXVzZXI=".into()),
                },
            ],
        }),
        r#"{"type":"iceServers","iceServers":[{"urls":["stun:stun.example.com:3478"]},{"urls":["turn:turn.example.com:3478?transport=udp","turns:turn.example.com:5349?transport=tcp"],"username":"1767225600:alice","credential":"c2VjcmV0LWhtYWMtb2YtdGhlLXVzZXI="}]}"#,
    );
    // Sequenced would put a `seq` beside the type; the server never does for this message,
    // but the SDK must read it either way.
    assert_eq!(
        decode(r#"{"type":"iceServers","iceServers":[],"seq":4}"#),
        Ok(ServerMessage::IceServers(IceServersUpdate {
            ice_servers: vec![]
        }))
    );
}

#[test]
fn go_away() {
    golden_server(
        ServerMessage::GoAway(GoAway {
            within_ms: 5000,
            session_shared: false,
        }),
        r#"{"type":"goAway","withinMs":5000}"#,
    );
    // A cluster node: the session (call and all) resumes on the next node.
    golden_server(
        ServerMessage::GoAway(GoAway {
            within_ms: 2000,
            session_shared: true,
        }),
        r#"{"type":"goAway","withinMs":2000,"sessionShared":true}"#,
    );
    // Never sequenced by the server, but read either way, like `iceServers`.
    assert_eq!(
        decode(r#"{"type":"goAway","withinMs":0,"seq":9}"#),
        Ok(ServerMessage::GoAway(GoAway {
            within_ms: 0,
            session_shared: false
        }))
    );
}

#[test]
fn pong_and_kicked() {
    golden_server(ServerMessage::Pong, r#"{"type":"pong"}"#);
    golden_server(ServerMessage::Kicked, r#"{"type":"kicked"}"#);
}

#[test]
fn error() {
    golden_server(
        ServerMessage::Error(ErrorReply {
            request_id: Some(4),
            code: ErrorCode::InvalidParam,
            message: "nobody to invite".into(),
        }),
        r#"{"type":"error","requestId":4,"code":"invalidParam","message":"nobody to invite"}"#,
    );
    golden_server(
        ServerMessage::Error(ErrorReply {
            request_id: None,
            code: ErrorCode::NotLoggedIn,
            message: "log in first".into(),
        }),
        r#"{"type":"error","code":"notLoggedIn","message":"log in first"}"#,
    );
}

#[test]
fn error_codes() {
    let all = [
        (ErrorCode::Malformed, "malformed"),
        (ErrorCode::UnknownType, "unknownType"),
        (ErrorCode::NotLoggedIn, "notLoggedIn"),
        (ErrorCode::AlreadyLoggedIn, "alreadyLoggedIn"),
        (ErrorCode::UnsupportedVersion, "unsupportedVersion"),
        (ErrorCode::UnknownApp, "unknownApp"),
        (ErrorCode::InvalidUserId, "invalidUserId"),
        (ErrorCode::InvalidUserSig, "invalidUserSig"),
        (ErrorCode::ExpiredUserSig, "expiredUserSig"),
        (ErrorCode::InvalidParam, "invalidParam"),
        (ErrorCode::Busy, "busy"),
        (ErrorCode::NotInCall, "notInCall"),
        (ErrorCode::NoSuchInvitation, "noSuchInvitation"),
        (ErrorCode::NotAParticipant, "notAParticipant"),
        (ErrorCode::RateLimited, "rateLimited"),
        (ErrorCode::NoSfu, "noSfu"),
        (ErrorCode::SfuRejoin, "sfuRejoin"),
        (ErrorCode::Other, "other"),
    ];
    for (code, name) in all {
        golden(code, &format!("\"{name}\""));
    }
    assert_eq!(
        serde_json::from_str::<ErrorCode>(r#""quotaExceeded""#).unwrap(),
        ErrorCode::Other
    );
}

#[test]
fn invite_sent_and_invited() {
    golden_server(
        ServerMessage::InviteSent(InviteSent {
            request_id: 3,
            invite_id: "a1b2".into(),
            room_id: 77,
            user_ids: vec!["bob".into()],
        }),
        r#"{"type":"inviteSent","requestId":3,"inviteId":"a1b2","roomId":77,"userIds":["bob"]}"#,
    );
    golden_server(
        ServerMessage::Invited(Invited {
            invite_id: "a1b2".into(),
            room_id: 77,
            sponsor: "alice".into(),
            user_ids: vec!["bob".into()],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
        }),
        r#"{"type":"invited","inviteId":"a1b2","roomId":77,"sponsor":"alice","userIds":["bob"],"callType":"video","isGroup":false}"#,
    );
    golden_server(
        ServerMessage::Invited(Invited {
            invite_id: "c3".into(),
            room_id: 78,
            sponsor: "alice".into(),
            user_ids: vec!["bob".into(), "carol".into()],
            call_type: CallType::Audio,
            is_group: true,
            group_id: Some("team".into()),
        }),
        r#"{"type":"invited","inviteId":"c3","roomId":78,"sponsor":"alice","userIds":["bob","carol"],"callType":"audio","isGroup":true,"groupId":"team"}"#,
    );
}

#[test]
fn joined_and_accepted() {
    golden_server(
        ServerMessage::Joined(Joined {
            request_id: 5,
            room_id: 77,
            call_type: CallType::Video,
            members: vec!["alice".into()],
            pending: vec!["carol".into()],
        }),
        r#"{"type":"joined","requestId":5,"roomId":77,"callType":"video","members":["alice"],"pending":["carol"]}"#,
    );
    golden_server(
        ServerMessage::Accepted(Accepted {
            room_id: 77,
            invite_id: "a1b2".into(),
            user_id: "bob".into(),
        }),
        r#"{"type":"accepted","roomId":77,"inviteId":"a1b2","userId":"bob"}"#,
    );
}

#[test]
fn invitation_outcomes() {
    golden_server(
        ServerMessage::Rejected(Rejected {
            room_id: 77,
            invite_id: "a1b2".into(),
            user_id: "bob".into(),
        }),
        r#"{"type":"rejected","roomId":77,"inviteId":"a1b2","userId":"bob"}"#,
    );
    golden_server(
        ServerMessage::Busy(Busy {
            room_id: 77,
            invite_id: "a1b2".into(),
            user_id: "bob".into(),
        }),
        r#"{"type":"busy","roomId":77,"inviteId":"a1b2","userId":"bob"}"#,
    );
    golden_server(
        ServerMessage::NoResponse(NoResponse {
            room_id: 77,
            invite_id: "a1b2".into(),
            user_ids: vec!["bob".into(), "carol".into()],
        }),
        r#"{"type":"noResponse","roomId":77,"inviteId":"a1b2","userIds":["bob","carol"]}"#,
    );
    golden_server(
        ServerMessage::Cancelled(Cancelled {
            room_id: 77,
            invite_id: "a1b2".into(),
            sponsor: "alice".into(),
        }),
        r#"{"type":"cancelled","roomId":77,"inviteId":"a1b2","sponsor":"alice"}"#,
    );
    golden_server(
        ServerMessage::InviteTimeout(InviteTimeout {
            room_id: 77,
            invite_id: "a1b2".into(),
            sponsor: "alice".into(),
        }),
        r#"{"type":"inviteTimeout","roomId":77,"inviteId":"a1b2","sponsor":"alice"}"#,
    );
}

#[test]
fn call_changes() {
    golden_server(
        ServerMessage::InviteeList(InviteeList {
            room_id: 77,
            user_ids: vec![],
        }),
        r#"{"type":"inviteeList","roomId":77,"userIds":[]}"#,
    );
    golden_server(
        ServerMessage::MemberLeft(MemberLeft {
            room_id: 77,
            user_id: "bob".into(),
        }),
        r#"{"type":"memberLeft","roomId":77,"userId":"bob"}"#,
    );
    for (reason, name) in [
        (EndReason::Hangup, "hangup"),
        (EndReason::Rejected, "rejected"),
        (EndReason::Busy, "busy"),
        (EndReason::NoResponse, "noResponse"),
    ] {
        golden_server(
            ServerMessage::CallEnded(CallEnded {
                room_id: 77,
                user_id: "bob".into(),
                duration_secs: 65,
                reason,
            }),
            &format!(
                r#"{{"type":"callEnded","roomId":77,"userId":"bob","durationSecs":65,"reason":"{name}"}}"#
            ),
        );
    }
}

#[test]
fn signal_relayed() {
    golden_server(
        ServerMessage::Signal(RelayedSignal {
            room_id: 77,
            from: "alice".into(),
            signal: Signal::Media {
                audio: false,
                video: true,
            },
        }),
        r#"{"type":"signal","roomId":77,"from":"alice","signal":{"kind":"media","audio":false,"video":true}}"#,
    );
}

#[test]
fn sfu_signals() {
    golden_server(
        ServerMessage::Sfu(SfuSignal {
            room_id: 77,
            signal: Signal::Answer {
                sdp: "v=0\r\n".into(),
            },
        }),
        r#"{"type":"sfu","roomId":77,"signal":{"kind":"answer","sdp":"v=0\r\n"}}"#,
    );
    golden_server(
        ServerMessage::Sfu(SfuSignal {
            room_id: 77,
            signal: Signal::Offer { sdp: "o".into() },
        }),
        r#"{"type":"sfu","roomId":77,"signal":{"kind":"offer","sdp":"o"}}"#,
    );
    // The server's sfu message is decoded by kind like a relayed signal: a kind this version
    // does not know reads as unknown, a known kind without its fields fails.
    assert_eq!(
        decode(r#"{"type":"sfu","roomId":1,"signal":{"kind":"hologram"}}"#),
        Ok(ServerMessage::Sfu(SfuSignal {
            room_id: 1,
            signal: Signal::Unknown
        }))
    );
    assert!(decode(r#"{"type":"sfu","roomId":1,"signal":{"kind":"offer"}}"#).is_err());
}

#[test]
fn unknown_server_type_is_unknown() {
    assert_eq!(
        serde_json::from_str::<ServerMessage>(r#"{"type":"roomMoved","to":5}"#).unwrap(),
        ServerMessage::Unknown
    );
    // The decoder never fails on a tag it does not know, whatever the payload looks like.
    assert_eq!(
        decode(r#"{"type":"roomMoved","to":5}"#),
        Ok(ServerMessage::Unknown)
    );
    assert_eq!(
        ServerMessage::from_tagged("roomMoved", serde_json::json!([1, 2])).unwrap(),
        ServerMessage::Unknown
    );
    // Nor on a relayed signal of a kind it does not know.
    assert_eq!(
        decode(r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"hologram"}}"#),
        Ok(ServerMessage::Signal(RelayedSignal {
            room_id: 1,
            from: "a".into(),
            signal: Signal::Unknown
        }))
    );
}

#[test]
fn every_server_message_type_decodes_by_its_tag() {
    // One message of every type; the match has no wildcard, so a new variant does not compile
    // until it is listed here and in `ServerMessage::from_tagged`.
    let all = [
        r#"{"type":"loginOk","userId":"a","iceServers":[],"ringTimeoutSecs":30,"heartbeatTimeoutSecs":10}"#,
        r#"{"type":"pong"}"#,
        r#"{"type":"resumed","received":3}"#,
        r#"{"type":"error","code":"busy","message":"m"}"#,
        r#"{"type":"inviteSent","requestId":1,"inviteId":"i","roomId":1,"userIds":[]}"#,
        r#"{"type":"invited","inviteId":"i","roomId":1,"sponsor":"s","userIds":[],"callType":"video","isGroup":false}"#,
        r#"{"type":"joined","requestId":1,"roomId":1,"callType":"video","members":[],"pending":[]}"#,
        r#"{"type":"accepted","roomId":1,"inviteId":"i","userId":"u"}"#,
        r#"{"type":"rejected","roomId":1,"inviteId":"i","userId":"u"}"#,
        r#"{"type":"busy","roomId":1,"inviteId":"i","userId":"u"}"#,
        r#"{"type":"noResponse","roomId":1,"inviteId":"i","userIds":[]}"#,
        r#"{"type":"cancelled","roomId":1,"inviteId":"i","sponsor":"s"}"#,
        r#"{"type":"inviteTimeout","roomId":1,"inviteId":"i","sponsor":"s"}"#,
        r#"{"type":"inviteeList","roomId":1,"userIds":[]}"#,
        r#"{"type":"memberLeft","roomId":1,"userId":"u"}"#,
        r#"{"type":"callEnded","roomId":1,"userId":"u","durationSecs":1,"reason":"hangup"}"#,
        r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"answer","sdp":"x"}}"#,
        r#"{"type":"sfu","roomId":1,"signal":{"kind":"offer","sdp":"x"}}"#,
        r#"{"type":"kicked"}"#,
        r#"{"type":"iceServers","iceServers":[]}"#,
        r#"{"type":"goAway","withinMs":1}"#,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for json in all {
        let derived = serde_json::from_str::<ServerMessage>(json).unwrap();
        assert_eq!(decode(json), Ok(derived.clone()), "{json}");
        assert_eq!(serde_json::to_string(&derived).unwrap(), json);
        let variant = match derived {
            ServerMessage::LoginOk(_) => "loginOk",
            ServerMessage::Pong => "pong",
            ServerMessage::Resumed(_) => "resumed",
            ServerMessage::Error(_) => "error",
            ServerMessage::InviteSent(_) => "inviteSent",
            ServerMessage::Invited(_) => "invited",
            ServerMessage::Joined(_) => "joined",
            ServerMessage::Accepted(_) => "accepted",
            ServerMessage::Rejected(_) => "rejected",
            ServerMessage::Busy(_) => "busy",
            ServerMessage::NoResponse(_) => "noResponse",
            ServerMessage::Cancelled(_) => "cancelled",
            ServerMessage::InviteTimeout(_) => "inviteTimeout",
            ServerMessage::InviteeList(_) => "inviteeList",
            ServerMessage::MemberLeft(_) => "memberLeft",
            ServerMessage::CallEnded(_) => "callEnded",
            ServerMessage::Signal(_) => "signal",
            ServerMessage::Sfu(_) => "sfu",
            ServerMessage::Kicked => "kicked",
            ServerMessage::IceServers(_) => "iceServers",
            ServerMessage::GoAway(_) => "goAway",
            ServerMessage::Unknown => "unknown",
        };
        assert!(json.contains(&format!(r#""type":"{variant}""#)), "{json}");
        seen.insert(variant);
    }
    assert_eq!(seen.len(), all.len(), "one message per type");
}

#[test]
fn server_messages_with_missing_fields_fail() {
    for json in [
        r#"{"type":"loginOk","userId":"a"}"#,
        r#"{"type":"error","message":"m"}"#,
        r#"{"type":"inviteSent","requestId":1,"roomId":1,"userIds":[]}"#,
        r#"{"type":"invited","inviteId":"i","roomId":1,"userIds":[],"callType":"video","isGroup":false}"#,
        r#"{"type":"joined","requestId":1,"roomId":1,"callType":"video","members":[]}"#,
        r#"{"type":"accepted","roomId":1,"inviteId":"i"}"#,
        r#"{"type":"rejected","roomId":1,"userId":"u"}"#,
        r#"{"type":"busy","inviteId":"i","userId":"u"}"#,
        r#"{"type":"noResponse","roomId":1,"inviteId":"i"}"#,
        r#"{"type":"cancelled","roomId":1,"inviteId":"i"}"#,
        r#"{"type":"inviteTimeout","roomId":1,"sponsor":"s"}"#,
        r#"{"type":"inviteeList","roomId":1}"#,
        r#"{"type":"memberLeft","userId":"u"}"#,
        r#"{"type":"callEnded","roomId":1,"userId":"u","durationSecs":1}"#,
        r#"{"type":"callEnded","roomId":1,"userId":"u","durationSecs":1,"reason":"meteor"}"#,
        r#"{"type":"signal","roomId":1,"from":"a"}"#,
        r#"{"type":"sfu","roomId":1}"#,
        r#"{"type":"sfu","signal":{"kind":"offer","sdp":"x"}}"#,
        r#"{"type":"iceServers"}"#,
        r#"{"type":"iceServers","iceServers":[{"username":"u"}]}"#,
        r#"{"type":"goAway"}"#,
        r#"{"type":"goAway","withinMs":-1}"#,
        r#"{"userId":"a"}"#,
    ] {
        parse_fails::<ServerMessage>(json);
        if json.contains("type") {
            assert!(
                decode(json).is_err(),
                "{json} decoded as {:?}",
                decode(json)
            );
        }
    }
}

#[test]
fn call_type_numbers() {
    golden(CallType::Audio, r#""audio""#);
    golden(CallType::Video, r#""video""#);
    assert_eq!(CallType::Audio.as_number(), 1);
    assert_eq!(CallType::Video.as_number(), 2);
    assert_eq!(CallType::from_number(1), Some(CallType::Audio));
    assert_eq!(CallType::from_number(2), Some(CallType::Video));
    assert_eq!(CallType::from_number(0), None);
    assert_eq!(CallType::from_number(3), None);
}
