//! Reading the plain option objects apps pass (`{userID, type}`, …) without ever throwing:
//! a missing or ill-typed field is an `InvalidParam` error that rejects the method's promise.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::error::Error;

/// `obj[key]`, or undefined when `obj` is not an object.
pub fn field(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// A required non-empty string field.
pub fn string(obj: &JsValue, key: &str) -> Result<String, Error> {
    match field(obj, key).as_string() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(Error::InvalidParam(format!(
            "{key} must be a non-empty string"
        ))),
    }
}

/// An optional string field (absent, null or not a string: None).
pub fn opt_string(obj: &JsValue, key: &str) -> Option<String> {
    field(obj, key).as_string()
}

/// A userID as the server accepts it: letters, digits, `-` and `_`.
pub fn user_id(obj: &JsValue, key: &str) -> Result<String, Error> {
    let id = string(obj, key)?;
    if calling_protocol::user_id::is_valid(&id) {
        Ok(id)
    } else {
        Err(Error::InvalidParam(format!(
            "{key} must be {}",
            calling_protocol::user_id::RULE
        )))
    }
}

/// A required number field that is a non-negative integer.
pub fn integer(obj: &JsValue, key: &str) -> Result<u64, Error> {
    match field(obj, key).as_f64() {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 => Ok(n as u64),
        _ => Err(Error::InvalidParam(format!("{key} must be a number"))),
    }
}
