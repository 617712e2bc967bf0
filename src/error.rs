//! SDK errors as the app sees them: a rejected promise carrying a JS `Error` whose `message` says
//! what went wrong and, where SPEC §5 defines one, a numeric `code` property.

use calling_core::{code, CallError, SdkError};
use wasm_bindgen::{JsCast, JsValue};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is missing or unusable (SPEC code 65535).
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    #[error("not logged in: call login() first")]
    NotLoggedIn,
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// The signaling server could not be reached at this URL.
    #[error("cannot reach the signaling server at {0}")]
    Unreachable(String),
    #[error("this browser lacks WebRTC (RTCPeerConnection)")]
    NoWebRtc,
    /// An error with a SPEC code or a message decided by the core.
    #[error("{}", .0.message)]
    Sdk(SdkError),
    /// A browser API failed; the message is the browser's.
    #[error("{0}")]
    Browser(String),
}

impl Error {
    /// The numeric `code` the JS error carries, if any.
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::InvalidParam(_) => Some(code::INVALID_PARAM),
            Error::NoWebRtc => Some(code::NO_WEBRTC),
            Error::Sdk(e) => e.code,
            _ => None,
        }
    }

    /// Converts into the JS `Error` a promise rejects with.
    pub fn into_js(self) -> JsValue {
        let err = js_sys::Error::new(&self.to_string());
        if let Some(code) = self.code() {
            // Setting a property on a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
        }
        err.into()
    }
}

impl From<SdkError> for Error {
    fn from(e: SdkError) -> Self {
        Error::Sdk(e)
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotLoggedIn => Error::NotLoggedIn,
            CallError::AlreadyLoggedIn => Error::AlreadyLoggedIn,
            CallError::InvalidParam(msg) => Error::InvalidParam(msg),
            other => Error::Sdk(other.into()),
        }
    }
}

impl From<JsValue> for Error {
    /// A browser exception: keep its message (DOMException and Error both have one).
    fn from(value: JsValue) -> Self {
        Error::Browser(js_message(&value))
    }
}

/// The message of a thrown JS value: `Error.message`, else its string form.
pub fn js_message(value: &JsValue) -> String {
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    if let Some(s) = value.as_string() {
        return s;
    }
    js_sys::Reflect::get(value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "unknown browser error".into())
}

/// The `name` of a thrown DOMException (`NotAllowedError`, …), if it has one.
pub fn js_name(value: &JsValue) -> Option<String> {
    js_sys::Reflect::get(value, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
}
