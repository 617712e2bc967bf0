//! Decoding server messages from parsed JSON. Hand-written on purpose: serde's derived
//! `Deserialize` for the internally tagged protocol enums buffers every message through its
//! generic `Content` machinery, which made up about a third of the shipped wasm. The mapping
//! mirrors `calling-protocol`'s serde attributes exactly; the unit test below checks it against
//! serde's own output for every variant.

use calling_protocol::{
    Accepted, Busy, CallEnded, CallType, Cancelled, EndReason, ErrorCode, ErrorReply, IceCandidate,
    IceServer, InviteSent, InviteTimeout, Invited, InviteeList, Joined, LoginOk, MemberLeft,
    NoResponse, Rejected, RelayedSignal, ServerMessage, Signal,
};
use js_sys::{Array, Reflect};
use wasm_bindgen::JsValue;

/// A field of a message object.
struct Obj<'a>(&'a JsValue);

impl Obj<'_> {
    fn get(&self, key: &str) -> JsValue {
        Reflect::get(self.0, &key.into()).unwrap_or(JsValue::UNDEFINED)
    }
    fn str(&self, key: &str) -> Option<String> {
        self.get(key).as_string()
    }
    fn opt_str(&self, key: &str) -> Option<Option<String>> {
        let v = self.get(key);
        if v.is_undefined() || v.is_null() {
            Some(None)
        } else {
            v.as_string().map(Some)
        }
    }
    fn num<T: TryFrom<u64>>(&self, key: &str) -> Option<T> {
        let n = self.get(key).as_f64()?;
        if n < 0.0 || n.fract() != 0.0 || n > 9_007_199_254_740_991.0 {
            return None;
        }
        T::try_from(n as u64).ok()
    }
    fn opt_num<T: TryFrom<u64>>(&self, key: &str) -> Option<Option<T>> {
        let v = self.get(key);
        if v.is_undefined() || v.is_null() {
            Some(None)
        } else {
            self.num(key).map(Some)
        }
    }
    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).as_bool()
    }
    fn strings(&self, key: &str) -> Option<Vec<String>> {
        let v = self.get(key);
        if !Array::is_array(&v) {
            return None;
        }
        Array::from(&v).iter().map(|s| s.as_string()).collect()
    }
    fn call_type(&self) -> Option<CallType> {
        match self.str("callType")?.as_str() {
            "audio" => Some(CallType::Audio),
            "video" => Some(CallType::Video),
            _ => None,
        }
    }
}

/// The message in `value`, or None when it does not have the fields its type requires.
pub fn server_message(value: &JsValue) -> Option<ServerMessage> {
    if !value.is_object() {
        return None;
    }
    let o = Obj(value);
    let kind = o.str("type")?;
    Some(match kind.as_str() {
        "loginOk" => ServerMessage::LoginOk(LoginOk {
            user_id: o.str("userId")?,
            ice_servers: ice_servers(&o.get("iceServers"))?,
            ring_timeout_secs: o.num("ringTimeoutSecs")?,
            heartbeat_timeout_secs: o.num("heartbeatTimeoutSecs")?,
            resume: None,
        }),
        "pong" => ServerMessage::Pong,
        "error" => ServerMessage::Error(ErrorReply {
            request_id: o.opt_num("requestId")?,
            code: error_code(&o.str("code")?),
            message: o.str("message")?,
        }),
        "inviteSent" => ServerMessage::InviteSent(InviteSent {
            request_id: o.num("requestId")?,
            invite_id: o.str("inviteId")?,
            room_id: o.num("roomId")?,
            user_ids: o.strings("userIds")?,
        }),
        "invited" => ServerMessage::Invited(Invited {
            invite_id: o.str("inviteId")?,
            room_id: o.num("roomId")?,
            sponsor: o.str("sponsor")?,
            user_ids: o.strings("userIds")?,
            call_type: o.call_type()?,
            is_group: o.bool("isGroup")?,
            group_id: o.opt_str("groupId")?,
        }),
        "joined" => ServerMessage::Joined(Joined {
            request_id: o.num("requestId")?,
            room_id: o.num("roomId")?,
            call_type: o.call_type()?,
            members: o.strings("members")?,
            pending: o.strings("pending")?,
        }),
        "accepted" | "rejected" | "busy" => {
            let (room_id, invite_id, user_id) =
                (o.num("roomId")?, o.str("inviteId")?, o.str("userId")?);
            match kind.as_str() {
                "accepted" => ServerMessage::Accepted(Accepted {
                    room_id,
                    invite_id,
                    user_id,
                }),
                "rejected" => ServerMessage::Rejected(Rejected {
                    room_id,
                    invite_id,
                    user_id,
                }),
                _ => ServerMessage::Busy(Busy {
                    room_id,
                    invite_id,
                    user_id,
                }),
            }
        }
        "noResponse" => ServerMessage::NoResponse(NoResponse {
            room_id: o.num("roomId")?,
            invite_id: o.str("inviteId")?,
            user_ids: o.strings("userIds")?,
        }),
        "cancelled" | "inviteTimeout" => {
            let (room_id, invite_id, sponsor) =
                (o.num("roomId")?, o.str("inviteId")?, o.str("sponsor")?);
            if kind == "cancelled" {
                ServerMessage::Cancelled(Cancelled {
                    room_id,
                    invite_id,
                    sponsor,
                })
            } else {
                ServerMessage::InviteTimeout(InviteTimeout {
                    room_id,
                    invite_id,
                    sponsor,
                })
            }
        }
        "inviteeList" => ServerMessage::InviteeList(InviteeList {
            room_id: o.num("roomId")?,
            user_ids: o.strings("userIds")?,
        }),
        "memberLeft" => ServerMessage::MemberLeft(MemberLeft {
            room_id: o.num("roomId")?,
            user_id: o.str("userId")?,
        }),
        "callEnded" => ServerMessage::CallEnded(CallEnded {
            room_id: o.num("roomId")?,
            user_id: o.str("userId")?,
            duration_secs: o.num("durationSecs")?,
            reason: match o.str("reason")?.as_str() {
                "hangup" => EndReason::Hangup,
                "rejected" => EndReason::Rejected,
                "busy" => EndReason::Busy,
                "noResponse" => EndReason::NoResponse,
                _ => return None,
            },
        }),
        "signal" => ServerMessage::Signal(RelayedSignal {
            room_id: o.num("roomId")?,
            from: o.str("from")?,
            signal: signal(&o.get("signal"))?,
        }),
        "kicked" => ServerMessage::Kicked,
        _ => ServerMessage::Unknown,
    })
}

fn ice_servers(v: &JsValue) -> Option<Vec<IceServer>> {
    if !Array::is_array(v) {
        return None;
    }
    Array::from(v)
        .iter()
        .map(|s| {
            let o = Obj(&s);
            Some(IceServer {
                urls: o.strings("urls")?,
                username: o.opt_str("username")?,
                credential: o.opt_str("credential")?,
            })
        })
        .collect()
}

fn signal(v: &JsValue) -> Option<Signal> {
    if !v.is_object() {
        return None;
    }
    let o = Obj(v);
    Some(match o.str("kind")?.as_str() {
        "offer" => Signal::Offer { sdp: o.str("sdp")? },
        "answer" => Signal::Answer { sdp: o.str("sdp")? },
        "candidate" => Signal::Candidate(IceCandidate {
            candidate: o.str("candidate")?,
            sdp_mid: o.opt_str("sdpMid")?,
            sdp_m_line_index: o.opt_num("sdpMLineIndex")?,
        }),
        "media" => Signal::Media {
            audio: o.bool("audio")?,
            video: o.bool("video")?,
        },
        "switchMode" => Signal::SwitchMode {
            call_type: o.call_type()?,
        },
        "switchModeAck" => Signal::SwitchModeAck {
            call_type: o.call_type()?,
            ok: o.bool("ok")?,
        },
        _ => Signal::Unknown,
    })
}

fn error_code(s: &str) -> ErrorCode {
    match s {
        "malformed" => ErrorCode::Malformed,
        "unknownType" => ErrorCode::UnknownType,
        "notLoggedIn" => ErrorCode::NotLoggedIn,
        "alreadyLoggedIn" => ErrorCode::AlreadyLoggedIn,
        "unsupportedVersion" => ErrorCode::UnsupportedVersion,
        "unknownApp" => ErrorCode::UnknownApp,
        "invalidUserId" => ErrorCode::InvalidUserId,
        "invalidUserSig" => ErrorCode::InvalidUserSig,
        "expiredUserSig" => ErrorCode::ExpiredUserSig,
        "invalidParam" => ErrorCode::InvalidParam,
        "busy" => ErrorCode::Busy,
        "notInCall" => ErrorCode::NotInCall,
        "noSuchInvitation" => ErrorCode::NoSuchInvitation,
        "notAParticipant" => ErrorCode::NotAParticipant,
        "rateLimited" => ErrorCode::RateLimited,
        _ => ErrorCode::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn s(x: &str) -> String {
        x.to_owned()
    }

    /// serde's JSON of `msg`, parsed by the browser, decodes back to `msg`.
    fn round_trip(msg: ServerMessage) {
        let value = serde_wasm_bindgen::to_value(&msg).expect("serialize");
        let text: String = js_sys::JSON::stringify(&value).expect("stringify").into();
        let parsed = js_sys::JSON::parse(&text).expect("parse");
        assert_eq!(server_message(&parsed), Some(msg), "{text}");
    }

    #[wasm_bindgen_test]
    fn every_server_message_decodes_as_serde_encodes_it() {
        let codes = [
            ErrorCode::Malformed,
            ErrorCode::UnknownType,
            ErrorCode::NotLoggedIn,
            ErrorCode::AlreadyLoggedIn,
            ErrorCode::UnsupportedVersion,
            ErrorCode::UnknownApp,
            ErrorCode::InvalidUserId,
            ErrorCode::InvalidUserSig,
            ErrorCode::ExpiredUserSig,
            ErrorCode::InvalidParam,
            ErrorCode::Busy,
            ErrorCode::NotInCall,
            ErrorCode::NoSuchInvitation,
            ErrorCode::NotAParticipant,
            ErrorCode::RateLimited,
        ];
        for (i, code) in codes.into_iter().enumerate() {
            round_trip(ServerMessage::Error(ErrorReply {
                request_id: (i % 2 == 0).then_some(i as u32),
                code,
                message: s("m"),
            }));
        }
        let signals = [
            Signal::Offer { sdp: s("o") },
            Signal::Answer { sdp: s("a") },
            Signal::Candidate(IceCandidate {
                candidate: s("candidate:1"),
                sdp_mid: Some(s("0")),
                sdp_m_line_index: Some(1),
            }),
            Signal::Candidate(IceCandidate {
                candidate: s("candidate:2"),
                sdp_mid: None,
                sdp_m_line_index: None,
            }),
            Signal::Media {
                audio: true,
                video: false,
            },
            Signal::SwitchMode {
                call_type: CallType::Audio,
            },
            Signal::SwitchModeAck {
                call_type: CallType::Video,
                ok: true,
            },
        ];
        for signal in signals {
            round_trip(ServerMessage::Signal(RelayedSignal {
                room_id: 9,
                from: s("bob"),
                signal,
            }));
        }
        let reasons = [
            EndReason::Hangup,
            EndReason::Rejected,
            EndReason::Busy,
            EndReason::NoResponse,
        ];
        for reason in reasons {
            round_trip(ServerMessage::CallEnded(CallEnded {
                room_id: 1,
                user_id: s("a"),
                duration_secs: 12,
                reason,
            }));
        }
        let ids = || vec![s("a"), s("b")];
        for msg in [
            ServerMessage::LoginOk(LoginOk {
                user_id: s("alice"),
                ice_servers: vec![
                    IceServer {
                        urls: vec![s("stun:127.0.0.1:3478")],
                        username: None,
                        credential: None,
                    },
                    IceServer {
                        urls: vec![s("turn:x"), s("turns:y")],
                        username: Some(s("u")),
                        credential: Some(s("c")),
                    },
                ],
                ring_timeout_secs: 30,
                heartbeat_timeout_secs: 10,
                resume: None,
            }),
            ServerMessage::Pong,
            ServerMessage::InviteSent(InviteSent {
                request_id: 3,
                invite_id: s("i"),
                room_id: 4_000_000_000,
                user_ids: ids(),
            }),
            ServerMessage::Invited(Invited {
                invite_id: s("i"),
                room_id: 5,
                sponsor: s("a"),
                user_ids: ids(),
                call_type: CallType::Video,
                is_group: true,
                group_id: Some(s("g")),
            }),
            ServerMessage::Invited(Invited {
                invite_id: s("i"),
                room_id: 5,
                sponsor: s("a"),
                user_ids: ids(),
                call_type: CallType::Audio,
                is_group: false,
                group_id: None,
            }),
            ServerMessage::Joined(Joined {
                request_id: 2,
                room_id: 5,
                call_type: CallType::Audio,
                members: ids(),
                pending: vec![],
            }),
            ServerMessage::Accepted(Accepted {
                room_id: 1,
                invite_id: s("i"),
                user_id: s("u"),
            }),
            ServerMessage::Rejected(Rejected {
                room_id: 1,
                invite_id: s("i"),
                user_id: s("u"),
            }),
            ServerMessage::Busy(Busy {
                room_id: 1,
                invite_id: s("i"),
                user_id: s("u"),
            }),
            ServerMessage::NoResponse(NoResponse {
                room_id: 1,
                invite_id: s("i"),
                user_ids: ids(),
            }),
            ServerMessage::Cancelled(Cancelled {
                room_id: 1,
                invite_id: s("i"),
                sponsor: s("a"),
            }),
            ServerMessage::InviteTimeout(InviteTimeout {
                room_id: 1,
                invite_id: s("i"),
                sponsor: s("a"),
            }),
            ServerMessage::InviteeList(InviteeList {
                room_id: 1,
                user_ids: ids(),
            }),
            ServerMessage::MemberLeft(MemberLeft {
                room_id: 1,
                user_id: s("u"),
            }),
            ServerMessage::Kicked,
        ] {
            round_trip(msg);
        }
    }

    #[wasm_bindgen_test]
    fn unknown_types_and_kinds_are_kept_as_unknown_and_bad_fields_refused() {
        let parse = |t: &str| server_message(&js_sys::JSON::parse(t).expect("json"));
        assert_eq!(
            parse(r#"{"type":"fromTheFuture","x":1}"#),
            Some(ServerMessage::Unknown)
        );
        assert_eq!(
            parse(r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"new"}}"#),
            Some(ServerMessage::Signal(RelayedSignal {
                room_id: 1,
                from: s("a"),
                signal: Signal::Unknown
            }))
        );
        assert_eq!(
            parse(r#"{"type":"error","code":"brandNew","message":"m"}"#),
            Some(ServerMessage::Error(ErrorReply {
                request_id: None,
                code: ErrorCode::Other,
                message: s("m")
            }))
        );
        assert_eq!(
            parse(r#"{"type":"memberLeft","roomId":-1,"userId":"u"}"#),
            None
        );
        assert_eq!(parse(r#"{"type":"memberLeft","roomId":1}"#), None);
        assert_eq!(
            parse(r#"{"type":"inviteeList","roomId":1,"userIds":[1]}"#),
            None
        );
        assert_eq!(parse(r#"[1]"#), None);
        assert_eq!(parse(r#"{"noType":1}"#), None);
    }
}
