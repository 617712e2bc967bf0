//! The WebSocket to `calling-server`. Outgoing messages are serde_json text of the protocol
//! types; incoming ones are parsed by the browser's own `JSON` and decoded by `wire`.

use calling_core::Input;
use calling_protocol::{ClientMessage, ServerMessage};
use gloo_events::EventListener;
use js_sys::{Function, Promise, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, WebSocket};

use crate::driver::Sink;
use crate::error::Error;
use crate::log;

/// An open socket and its listeners. Dropping it unregisters them first, then closes the
/// socket, so a deliberate close is never reported as a lost connection.
pub struct Signaling {
    ws: WebSocket,
    _listeners: [EventListener; 2],
}

impl Signaling {
    /// Opens the socket and waits for it to be open; fails if it closes first.
    /// Every message and the close are queued on `sink` as inputs.
    pub async fn connect(url: &str, sink: Sink) -> Result<Signaling, Error> {
        let unreachable = || Error::Unreachable(url.to_owned());
        let ws = WebSocket::new(url).map_err(|_| unreachable())?;
        let mut settle: Option<(Function, Function)> = None;
        let opened = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let (resolve, reject) = settle.ok_or_else(unreachable)?;
        let on_open = EventListener::once(&ws, "open", move |_| {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        });
        // An `error` event is always followed by `close`, so `close` alone settles failure.
        let on_close = EventListener::once(&ws, "close", move |_| {
            let _ = reject.call0(&JsValue::UNDEFINED);
        });
        let result = JsFuture::from(opened).await;
        drop((on_open, on_close));
        result.map_err(|_| unreachable())?;

        let d = sink.clone();
        let on_message = EventListener::new(&ws, "message", move |e| {
            let Some(text) = e
                .dyn_ref::<MessageEvent>()
                .and_then(|e| e.data().as_string())
            else {
                return;
            };
            match parse(&text) {
                Ok(msg) => d.queue(Input::Server(msg)),
                Err(e) => log::warn(&format!("ignoring unreadable server message: {e}")),
            }
        });
        // The core answers with `Disconnect`, which drops this socket.
        let on_close =
            EventListener::new(&ws, "close", move |_| sink.queue(Input::SignalingClosed));
        Ok(Signaling {
            ws,
            _listeners: [on_message, on_close],
        })
    }

    pub fn send(&self, msg: &ClientMessage) -> Result<(), Error> {
        let text = serde_json::to_string(msg).map_err(|_| unencodable())?;
        self.ws.send_with_str(&text)?;
        Ok(())
    }
}

fn parse(text: &str) -> Result<ServerMessage, Error> {
    let value = JSON::parse(text)?;
    crate::wire::server_message(&value)
        .ok_or_else(|| Error::Browser(format!("malformed message: {text}")))
}

impl Drop for Signaling {
    fn drop(&mut self) {
        // The `close` event is queued, not fired synchronously; the listeners (dropped right
        // after this) are gone by the time it runs.
        let _ = self.ws.close();
    }
}

/// `v` as a JS value: its JSON text parsed by the browser. Smaller in wasm than building the
/// value through serde-wasm-bindgen, and the same JSON the protocol's golden tests pin.
pub fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, Error> {
    // serde_json fails only on maps with non-string keys, which no protocol type has; its
    // error text would cost more wasm than it tells.
    let text = serde_json::to_string(v).map_err(|_| unencodable())?;
    Ok(JSON::parse(&text)?)
}

fn unencodable() -> Error {
    Error::Browser("cannot encode as JSON".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use calling_core::{AppEvent, InviteData, LoginData, Reply, VoiceVolume};
    use calling_protocol::{CallType, IceCandidate, IceServer, Signal};
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// `to_js` builds the same JS value as serde-wasm-bindgen, which the SDK used before.
    fn same_as_serde_wasm_bindgen<T: serde::Serialize>(v: &T) {
        let ours = to_js(v).expect("to_js");
        let theirs = serde_wasm_bindgen::to_value(v).expect("serde-wasm-bindgen");
        let text = |v: &JsValue| String::from(JSON::stringify(v).expect("stringify"));
        assert_eq!(text(&ours), text(&theirs));
    }

    #[wasm_bindgen_test]
    fn events_replies_and_messages_convert_as_before() {
        let s = |x: &str| x.to_owned();
        same_as_serde_wasm_bindgen(&AppEvent::Invited {
            sponsor: s("a\"b"),
            user_id_list: vec![s("x"), s("é\n")],
            is_from_group: true,
            invite_data: InviteData {
                version: 4,
                call_type: 2,
                room_id: u32::MAX,
                call_end: 0,
            },
            invite_id: s("i"),
        });
        same_as_serde_wasm_bindgen(&AppEvent::UserVoiceVolume {
            volume_map: vec![VoiceVolume {
                user_id: s("u"),
                audio_volume: 100,
            }],
        });
        same_as_serde_wasm_bindgen(&AppEvent::KickedOut {});
        same_as_serde_wasm_bindgen(&Reply::Login {
            code: 0,
            data: LoginData { user_id: s("u") },
        });
        same_as_serde_wasm_bindgen(&Reply::GroupCall {
            code: 0,
            invite_id: s("i"),
            room_id: 7,
            group_id: Some(s("g")),
        });
        same_as_serde_wasm_bindgen(&ClientMessage::Login {
            sdk_app_id: 1_400_000_000,
            user_id: s("u"),
            user_sig: s("sig"),
            protocol_version: 1,
            resumable: false,
        });
        same_as_serde_wasm_bindgen(&ClientMessage::Relay {
            room_id: 3,
            to: s("v"),
            signal: Signal::Candidate(IceCandidate {
                candidate: s("candidate:1"),
                sdp_mid: Some(s("0")),
                sdp_m_line_index: Some(0),
            }),
        });
        same_as_serde_wasm_bindgen(&ClientMessage::Invite {
            request_id: 1,
            user_ids: vec![s("v")],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
            room_id: None,
        });
        same_as_serde_wasm_bindgen(&vec![IceServer {
            urls: vec![s("stun:127.0.0.1")],
            username: None,
            credential: Some(s("c")),
        }]);
    }

    /// A missing candidate field goes out as `null`, the form the protocol's golden tests pin
    /// (serde-wasm-bindgen left the key out; the server reads both as absent).
    #[wasm_bindgen_test]
    fn a_candidate_without_sdp_mid_is_sent_as_the_golden_json() {
        let msg = ClientMessage::Relay {
            room_id: 3,
            to: "v".into(),
            signal: Signal::Candidate(IceCandidate {
                candidate: String::new(),
                sdp_mid: None,
                sdp_m_line_index: None,
            }),
        };
        let text = String::from(JSON::stringify(&to_js(&msg).expect("to_js")).expect("stringify"));
        assert_eq!(
            text,
            r#"{"type":"relay","roomId":3,"to":"v","signal":{"kind":"candidate","candidate":"","sdpMid":null,"sdpMLineIndex":null}}"#
        );
    }

    #[wasm_bindgen_test]
    fn a_group_call_without_group_id_resolves_group_id_undefined() {
        let reply = to_js(&Reply::GroupCall {
            code: 0,
            invite_id: "i".into(),
            room_id: 7,
            group_id: None,
        })
        .expect("to_js");
        let group_id = js_sys::Reflect::get(&reply, &"groupID".into()).expect("get");
        assert!(group_id.is_undefined());
    }
}
