//! The SDK core under arbitrary sequences of server messages, interleaved with app commands and
//! browser events. The server and the other participants are not trusted, so whatever arrives:
//! no panic, a refused command changes nothing, a call exists only while logged in, and every
//! promise settles at most once, and only if it was asked for.
//!
//! Server messages are built as wire JSON (the format the golden tests pin) and decoded like the
//! SDK decodes them, so the target follows the protocol, not the Rust shape of its types.

#![no_main]

use std::collections::HashSet;

use arbitrary::{Result, Unstructured};
use calling_core::{
    CallStatus, Command, Effect, Input, MediaOutcome, PeerEvent, PeerState, SdkError, SdpKind,
    Session, SessionDescription, Timer,
};
use calling_protocol::{CallType, IceCandidate, ServerMessage};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// Few names, so that messages often refer to the users, rooms and invitations of each other.
const USERS: &[&str] = &["alice", "bob", "carol", "dave", ""];
const INVITES: &[&str] = &["i1", "i2", ""];
const ROOMS: &[u64] = &[1, 2, 4_294_967_295];

fn user(u: &mut Unstructured) -> Result<String> {
    Ok(u.choose(USERS)?.to_string())
}

fn users(u: &mut Unstructured) -> Result<Vec<String>> {
    let n = u.int_in_range(0..=3)?;
    (0..n).map(|_| user(u)).collect()
}

fn call_type(u: &mut Unstructured) -> Result<CallType> {
    Ok(if u.arbitrary()? {
        CallType::Audio
    } else {
        CallType::Video
    })
}

fn call_type_json(u: &mut Unstructured) -> Result<&'static str> {
    Ok(*u.choose(&["audio", "video"])?)
}

fn signal(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=6)? {
        0 => json!({"kind": "offer", "sdp": "v=0"}),
        1 => json!({"kind": "answer", "sdp": "v=0"}),
        2 => json!({"kind": "candidate", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                    "sdpMid": "0", "sdpMLineIndex": 0}),
        3 => {
            json!({"kind": "media", "audio": u.arbitrary::<bool>()?, "video": u.arbitrary::<bool>()?})
        }
        4 => json!({"kind": "switchMode", "callType": call_type_json(u)?}),
        5 => {
            json!({"kind": "switchModeAck", "callType": call_type_json(u)?, "ok": u.arbitrary::<bool>()?})
        }
        _ => json!({"kind": "teleport"}),
    })
}

/// One server message, as wire JSON.
fn server_message(u: &mut Unstructured, requests: u32) -> Result<Value> {
    let room = *u.choose(ROOMS)?;
    let invite = *u.choose(INVITES)?;
    // Replies mostly name requests that were really made.
    let request = u.int_in_range(0..=requests + 1)?;
    Ok(match u.int_in_range(0..=18)? {
        0 => json!({"type": "loginOk", "userId": user(u)?, "iceServers": [],
                    "ringTimeoutSecs": 30, "heartbeatTimeoutSecs": 10}),
        1 => json!({"type": "pong"}),
        2 => {
            let code = *u.choose(&[
                "malformed",
                "notLoggedIn",
                "invalidUserSig",
                "expiredUserSig",
                "invalidParam",
                "busy",
                "notInCall",
                "noSuchInvitation",
                "rateLimited",
                "unknownApp",
            ])?;
            if u.arbitrary()? {
                json!({"type": "error", "requestId": request, "code": code, "message": "no"})
            } else {
                json!({"type": "error", "code": code, "message": "no"})
            }
        }
        3 => json!({"type": "inviteSent", "requestId": request, "inviteId": invite,
                    "roomId": room, "userIds": users(u)?}),
        4 => json!({"type": "invited", "inviteId": invite, "roomId": room, "sponsor": user(u)?,
                    "userIds": users(u)?, "callType": call_type_json(u)?,
                    "isGroup": u.arbitrary::<bool>()?}),
        5 => json!({"type": "joined", "requestId": request, "roomId": room,
                    "callType": call_type_json(u)?, "members": users(u)?, "pending": users(u)?}),
        6 => json!({"type": "accepted", "roomId": room, "inviteId": invite, "userId": user(u)?}),
        7 => json!({"type": "rejected", "roomId": room, "inviteId": invite, "userId": user(u)?}),
        8 => json!({"type": "busy", "roomId": room, "inviteId": invite, "userId": user(u)?}),
        9 => {
            json!({"type": "noResponse", "roomId": room, "inviteId": invite, "userIds": users(u)?})
        }
        10 => json!({"type": "cancelled", "roomId": room, "inviteId": invite, "sponsor": user(u)?}),
        11 => {
            json!({"type": "inviteTimeout", "roomId": room, "inviteId": invite, "sponsor": user(u)?})
        }
        12 => json!({"type": "inviteeList", "roomId": room, "userIds": users(u)?}),
        13 => json!({"type": "memberLeft", "roomId": room, "userId": user(u)?}),
        14 => {
            let reason = *u.choose(&["hangup", "rejected", "busy", "noResponse"])?;
            json!({"type": "callEnded", "roomId": room, "userId": user(u)?,
                   "durationSecs": u.arbitrary::<u32>()?, "reason": reason})
        }
        15 => json!({"type": "signal", "roomId": room, "from": user(u)?, "signal": signal(u)?}),
        16 => json!({"type": "kicked"}),
        _ => json!({"type": "fromTheFuture", "roomId": room}),
    })
}

fn command(u: &mut Unstructured) -> Result<Command> {
    Ok(match u.int_in_range(0..=11)? {
        0 => Command::Login {
            sdk_app_id: 1_400_000_000,
            user_id: user(u)?,
            user_sig: "sig".into(),
        },
        1 => Command::Logout,
        2 => Command::Call {
            user_id: user(u)?,
            call_type: call_type(u)?,
        },
        3 => Command::GroupCall {
            user_ids: users(u)?,
            call_type: call_type(u)?,
            group_id: None,
        },
        4 => Command::Accept,
        5 => Command::Reject,
        6 => Command::Hangup,
        7 => Command::SetMicMute(u.arbitrary()?),
        8 => Command::OpenCamera,
        9 => Command::CloseCamera,
        10 => Command::SwitchToAudio,
        _ => Command::SwitchToVideo,
    })
}

fn peer_event(u: &mut Unstructured) -> Result<PeerEvent> {
    let kind = if u.arbitrary()? {
        SdpKind::Offer
    } else {
        SdpKind::Answer
    };
    Ok(match u.int_in_range(0..=6)? {
        0 => PeerEvent::LocalDescription(SessionDescription {
            kind,
            sdp: "v=0".into(),
        }),
        1 => PeerEvent::LocalCandidate(IceCandidate {
            candidate: "candidate:1".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }),
        2 => PeerEvent::RemoteDescriptionApplied,
        3 => PeerEvent::NegotiationNeeded,
        4 => PeerEvent::RemoteMedia,
        5 => PeerEvent::ConnectionState(*u.choose(&[
            PeerState::Connecting,
            PeerState::Connected,
            PeerState::Disconnected,
            PeerState::Failed,
            PeerState::Closed,
        ])?),
        _ => PeerEvent::Failed("boom".into()),
    })
}

/// What the app can observe of the state (the getters trtc-calling-js has).
#[derive(Debug, PartialEq)]
struct Observed {
    status: CallStatus,
    call_type: Option<CallType>,
    inviter: bool,
    group: bool,
    invitees: Vec<String>,
    user: Option<String>,
    room: Option<u32>,
}

fn observe(call: &Session) -> Observed {
    Observed {
        status: call.status(),
        call_type: call.call_type(),
        inviter: call.is_inviter(),
        group: call.is_group_call(),
        invitees: call.invitee_list(),
        user: call.user_id().map(str::to_string),
        room: call.room_id(),
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut call = Session::new();
    let mut now: u64 = 0;
    let mut requests: u32 = 0;
    let mut pending: HashSet<u32> = HashSet::new();
    while !u.is_empty() {
        now += u64::from(u.arbitrary::<u16>()?);
        let input = match u.int_in_range(0..=9)? {
            0..=2 => {
                requests += 1;
                pending.insert(requests);
                Input::Command {
                    request: requests,
                    command: command(u)?,
                }
            }
            3..=6 => {
                let json = server_message(u, requests)?;
                match serde_json::from_value::<ServerMessage>(json) {
                    Ok(msg) => Input::Server(msg),
                    // A message this protocol version cannot read is dropped before the core.
                    Err(_) => continue,
                }
            }
            7 => Input::Peer {
                user_id: user(u)?,
                event: peer_event(u)?,
            },
            8 => Input::Media {
                // Tokens of requests made, not yet made, and long gone.
                token: u.int_in_range(0..=4)?,
                outcome: if u.arbitrary()? {
                    MediaOutcome::Opened {
                        audio: u.arbitrary()?,
                        video: u.arbitrary()?,
                    }
                } else {
                    MediaOutcome::Failed(SdkError {
                        code: Some(60003),
                        message: "denied".into(),
                    })
                },
            },
            _ => {
                if u.arbitrary()? {
                    Input::SignalingClosed
                } else {
                    Input::Timer(Timer::Heartbeat)
                }
            }
        };
        let command_request = match &input {
            Input::Command { request, .. } => Some(*request),
            _ => None,
        };
        let before = observe(&call);
        match call.handle(now, input.clone()) {
            Ok(effects) => {
                for effect in &effects {
                    if let Effect::Resolve { request, .. } | Effect::Reject { request, .. } = effect
                    {
                        assert!(
                            pending.remove(request),
                            "request {request} settled twice or never asked for: {input:?} -> {effects:?}"
                        );
                    }
                }
            }
            Err(_) => {
                assert_eq!(
                    observe(&call),
                    before,
                    "a refused {input:?} changed the state"
                );
                // The glue rejects the promise of a refused command itself.
                if let Some(request) = command_request {
                    pending.remove(&request);
                }
            }
        }
        let state = observe(&call);
        if state.status == CallStatus::Idle {
            assert_eq!(
                (state.call_type, state.room, state.inviter, state.group),
                (None, None, false, false),
                "idle with call state after {input:?}"
            );
            assert!(
                state.invitees.is_empty(),
                "idle with invitees after {input:?}"
            );
        } else {
            assert!(
                state.user.is_some(),
                "a call while logged out after {input:?}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
