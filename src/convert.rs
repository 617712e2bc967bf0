//! Rust values to the JS values apps receive (event payloads, promise results), through
//! serde-wasm-bindgen, as plain objects and arrays: the objects `JSON.parse` would give for the
//! value's JSON, which is what trtc-calling-js hands out.

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::error::Error;

/// Plain objects rather than `Map`s, and `null` for a `None` that is not skipped.
const PLAIN: serde_wasm_bindgen::Serializer = serde_wasm_bindgen::Serializer::json_compatible();

/// `v` as a JS value.
pub fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, Error> {
    v.serialize(&PLAIN)
        .map_err(|_| Error::Browser("cannot convert to a JS value".into()))
}

/// `obj[key]`, or undefined when `obj` is not an object or reading it throws.
pub fn field(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calling_core::{AppEvent, InviteData, LoginData, Reply, VoiceVolume};
    use wasm_bindgen::JsCast;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// `to_js` gives the object `JSON.parse` makes of serde_json's text: plain objects and
    /// arrays, the same keys, `null` where the JSON has it.
    fn as_json_would<T: Serialize>(v: &T) {
        let ours = to_js(v).expect("to_js");
        assert!(!ours.is_instance_of::<js_sys::Map>());
        let text = String::from(js_sys::JSON::stringify(&ours).expect("stringify"));
        assert_eq!(text, serde_json::to_string(v).expect("json"));
    }

    #[wasm_bindgen_test]
    fn events_and_replies_are_plain_objects() {
        let s = |x: &str| x.to_owned();
        as_json_would(&AppEvent::Invited {
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
        as_json_would(&AppEvent::UserVoiceVolume {
            volume_map: vec![VoiceVolume {
                user_id: s("u"),
                audio_volume: 100,
            }],
        });
        as_json_would(&AppEvent::KickedOut {});
        as_json_would(&Reply::Login {
            code: 0,
            data: LoginData { user_id: s("u") },
        });
        as_json_would(&Reply::GroupCall {
            code: 0,
            invite_id: s("i"),
            room_id: 7,
            group_id: Some(s("g")),
        });
        as_json_would(&vec![calling_protocol::IceServer {
            urls: vec![s("stun:127.0.0.1")],
            username: None,
            credential: Some(s("c")),
        }]);
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
        assert!(field(&reply, "groupID").is_undefined());
        assert_eq!(field(&reply, "roomID").as_f64(), Some(7.0));
    }
}
