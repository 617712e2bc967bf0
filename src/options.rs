//! The plain option objects apps pass (`new TRTCCalling({SDKAppID})`, `call({userID, type})`,
//! …). Each field a method uses is read on its own through serde-wasm-bindgen, so an error
//! names the field, and one conversion per Rust type serves every method. A missing or
//! ill-typed field is an `InvalidParam` error (code 65535) that rejects the method's promise;
//! nothing here throws.

use calling_core::privacy::is_relay_url;
use calling_core::ConnectPolicy;
use calling_protocol::CallType;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;

use crate::convert::field;
use crate::error::{js_message, Error};

/// `options[key]` as a `T`; `None` when it is undefined or null, or `options` is no object.
pub fn optional<T: DeserializeOwned>(options: &JsValue, key: &str) -> Result<Option<T>, Error> {
    serde_wasm_bindgen::from_value(field(options, key))
        .map_err(|e| Error::InvalidParam(format!("{key}: {}", js_message(&e.into()))))
}

/// `options[key]` as a `T`, which must be there.
pub fn required<T: DeserializeOwned>(options: &JsValue, key: &str) -> Result<T, Error> {
    optional(options, key)?.ok_or_else(|| Error::InvalidParam(format!("{key} is required")))
}

/// A required non-empty string.
pub fn non_empty(options: &JsValue, key: &str) -> Result<String, Error> {
    let value: String = required(options, key)?;
    if value.is_empty() {
        return Err(Error::InvalidParam(format!("{key} must not be empty")));
    }
    Ok(value)
}

/// A required userID, as the server accepts it (`calling_protocol::user_id`).
pub fn user_id(options: &JsValue, key: &str) -> Result<String, Error> {
    let id: String = required(options, key)?;
    check_user_id(key, &id)?;
    Ok(id)
}

fn check_user_id(key: &str, id: &str) -> Result<(), Error> {
    if calling_protocol::user_id::is_valid(id) {
        Ok(())
    } else {
        Err(Error::InvalidParam(format!(
            "{key} must be {}",
            calling_protocol::user_id::RULE
        )))
    }
}

/// `userIDList`: a non-empty array of userIDs.
pub fn user_ids(options: &JsValue) -> Result<Vec<String>, Error> {
    let ids: Vec<String> = required(options, "userIDList")?;
    if ids.is_empty() {
        return Err(Error::InvalidParam("userIDList must not be empty".into()));
    }
    for id in &ids {
        check_user_id("userIDList", id)?;
    }
    Ok(ids)
}

/// `type`: trtc-calling-js's call type number, 1 audio or 2 video.
pub fn call_type(options: &JsValue) -> Result<CallType, Error> {
    // Read as the protocol's u32 numbers are, so no conversion just for u8 is compiled in.
    let n: u32 = required(options, "type")?;
    u8::try_from(n)
        .ok()
        .and_then(CallType::from_number)
        .ok_or_else(|| Error::InvalidParam("type must be 1 (audio) or 2 (video)".into()))
}

/// What `new TRTCCalling(options)` uses; other fields (`tim`, …) are ignored.
#[derive(Default)]
pub struct Constructor {
    pub sdk_app_id: Option<u64>,
    pub signaling_url: Option<String>,
    /// The app's `RTCIceServer[]`, the JS value the browser takes (`urls` may be a string or an
    /// array); anything but an array is ignored.
    pub ice_servers: Option<JsValue>,
    /// `iceTransportPolicy` and `preconnect`: what connections may reveal (`calling_core::privacy`).
    pub policy: ConnectPolicy,
}

impl Constructor {
    pub fn read(options: &JsValue) -> Result<Constructor, Error> {
        let ice = field(options, "iceServers");
        let ice_servers = js_sys::Array::is_array(&ice).then_some(ice);
        let relay_only = match optional::<String>(options, "iceTransportPolicy")?.as_deref() {
            None | Some("all") => false,
            Some("relay") => true,
            Some(_) => {
                return Err(Error::InvalidParam(
                    "iceTransportPolicy must be 'all' or 'relay'".into(),
                ))
            }
        };
        Ok(Constructor {
            sdk_app_id: app_id(options)?,
            signaling_url: optional(options, "signalingUrl")?,
            policy: ConnectPolicy {
                relay_only,
                preconnect: optional(options, "preconnect")?.unwrap_or(true),
                app_lists_relay: ice_servers.as_ref().map(lists_relay),
            },
            ice_servers,
        })
    }
}

/// Whether an `RTCIceServer[]` names a TURN server (`urls` a string or an array of them).
fn lists_relay(servers: &JsValue) -> bool {
    js_sys::Array::from(servers).iter().any(|server| {
        let urls = field(&server, "urls");
        let urls = if js_sys::Array::is_array(&urls) {
            js_sys::Array::from(&urls).iter().collect()
        } else {
            vec![urls]
        };
        urls.iter()
            .filter_map(JsValue::as_string)
            .any(|url| is_relay_url(&url))
    })
}

/// `SDKAppID`: a number, or its decimal string as some apps keep it. It is read as a u32, the
/// type TRTC gives it (`TRTCParams.sdkAppId` in its native SDKs), which also leaves the
/// converter's BigInt path for 64-bit integers out of the wasm.
fn app_id(options: &JsValue) -> Result<Option<u64>, Error> {
    let id = optional::<u32>(options, "SDKAppID").or_else(|e| {
        let text = optional::<String>(options, "SDKAppID").map_err(|_| e)?;
        match text.map(|s| s.trim().parse()) {
            Some(Ok(n)) => Ok(Some(n)),
            _ => Err(Error::InvalidParam(
                "SDKAppID must be a number or a string of digits".into(),
            )),
        }
    })?;
    Ok(id.map(u64::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn js(text: &str) -> JsValue {
        js_sys::JSON::parse(text).expect("json")
    }

    /// The message of an `InvalidParam`; any other outcome fails the test.
    fn refusal<T>(result: Result<T, Error>) -> String {
        match result {
            Err(Error::InvalidParam(why)) => why,
            Err(e) => panic!("not InvalidParam: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[wasm_bindgen_test]
    fn constructor_options() {
        let o = Constructor::read(&js(
            r#"{"SDKAppID":1400000000,"signalingUrl":"ws://h/ws","iceServers":[{"urls":"stun:h"}],"tim":{"a":1}}"#,
        ))
        .expect("full");
        assert_eq!(o.sdk_app_id, Some(1_400_000_000));
        assert_eq!(o.signaling_url.as_deref(), Some("ws://h/ws"));
        // Kept as the app's own value, `urls` string and all.
        let ice = o.ice_servers.expect("iceServers");
        assert_eq!(
            String::from(js_sys::JSON::stringify(&ice).expect("stringify")),
            r#"[{"urls":"stun:h"}]"#
        );
        let o = Constructor::read(&js(r#"{"SDKAppID":" 1400000000 ","iceServers":{}}"#))
            .expect("string id");
        assert_eq!(o.sdk_app_id, Some(1_400_000_000));
        assert!(o.signaling_url.is_none() && o.ice_servers.is_none());
        for empty in ["{}", "null", "7"] {
            let o = Constructor::read(&js(empty)).expect(empty);
            assert_eq!(o.sdk_app_id, None, "{empty}");
        }
        for bad in [
            r#"{"SDKAppID":-1}"#,
            r#"{"SDKAppID":1.5}"#,
            r#"{"SDKAppID":"abc"}"#,
            r#"{"SDKAppID":true}"#,
            r#"{"SDKAppID":4294967296}"#,
            r#"{"SDKAppID":"4294967296"}"#,
        ] {
            assert!(
                refusal(Constructor::read(&js(bad))).starts_with("SDKAppID"),
                "{bad}"
            );
        }
        let why = refusal(Constructor::read(&js(r#"{"SDKAppID":1,"signalingUrl":5}"#)));
        assert!(why.starts_with("signalingUrl: invalid type"), "{why}");
    }

    #[wasm_bindgen_test]
    fn connect_policy_options() {
        let o = Constructor::read(&js("{}")).expect("defaults");
        assert_eq!(o.policy, ConnectPolicy::default());
        let o = Constructor::read(&js(
            r#"{"iceTransportPolicy":"relay","preconnect":false,"iceServers":[{"urls":["stun:s","TURNS:t:443"]}]}"#,
        ))
        .expect("all set");
        let expected = ConnectPolicy {
            relay_only: true,
            preconnect: false,
            app_lists_relay: Some(true),
        };
        assert_eq!(o.policy, expected);
        let o = Constructor::read(&js(
            r#"{"iceTransportPolicy":"all","iceServers":[{"urls":"stun:turn.example"}]}"#,
        ))
        .expect("stun only");
        assert_eq!(o.policy.app_lists_relay, Some(false));
        assert!(!o.policy.relay_only);
        let why = refusal(Constructor::read(&js(r#"{"iceTransportPolicy":"none"}"#)));
        assert_eq!(why, "iceTransportPolicy must be 'all' or 'relay'");
        let why = refusal(Constructor::read(&js(r#"{"preconnect":"no"}"#)));
        assert!(why.starts_with("preconnect: invalid type"), "{why}");
    }

    #[wasm_bindgen_test]
    fn strings_and_user_ids() {
        let o = js(r#"{"userID":"a-1_B","userSig":"s","empty":"","n":7,"bad":"not valid!"}"#);
        assert_eq!(user_id(&o, "userID").expect("valid"), "a-1_B");
        assert_eq!(non_empty(&o, "userSig").expect("sig"), "s");
        assert_eq!(refusal(non_empty(&o, "empty")), "empty must not be empty");
        assert_eq!(refusal(non_empty(&o, "missing")), "missing is required");
        // A wrong type names the field and says what was wrong.
        let why = refusal(non_empty(&o, "n"));
        assert!(
            why.starts_with("n: invalid type") && why.contains("string"),
            "{why}"
        );
        assert!(refusal(user_id(&o, "bad")).starts_with("bad must be 1-32 letters"));
        assert!(refusal(user_id(&js("null"), "userID")).contains("required"));
        assert_eq!(optional::<String>(&o, "missing").expect("absent"), None);
    }

    #[wasm_bindgen_test]
    fn call_types_and_lists() {
        let video = js(r#"{"type":2,"userIDList":["b","c"]}"#);
        assert_eq!(call_type(&video).expect("video"), CallType::Video);
        assert_eq!(user_ids(&video).expect("list"), ["b", "c"]);
        for bad in [
            r#"{"type":3}"#,
            r#"{"type":1.5}"#,
            r#"{"type":"2"}"#,
            r#"{"type":300}"#,
            "{}",
        ] {
            assert!(refusal(call_type(&js(bad))).contains("type"), "{bad}");
        }
        for bad in [
            r#"{"userIDList":"b"}"#,
            r#"{"userIDList":[]}"#,
            r#"{"userIDList":["b",1]}"#,
            r#"{"userIDList":["b","c d"]}"#,
        ] {
            assert!(
                refusal(user_ids(&js(bad))).starts_with("userIDList"),
                "{bad}"
            );
        }
    }
}
