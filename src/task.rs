//! Background tasks. Every future goes through one boxed type, so wasm-bindgen-futures' task
//! machinery is compiled once rather than once per future, which keeps the wasm small.

use std::future::Future;
use std::pin::Pin;

use js_sys::Promise;
use wasm_bindgen::JsValue;

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;

/// Runs `f` to completion in the background.
pub fn spawn(f: impl Future<Output = ()> + 'static) {
    let f: Boxed<()> = Box::pin(f);
    wasm_bindgen_futures::spawn_local(f);
}

/// Runs `f` as a promise that settles with its result.
pub fn promise(f: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    let f: Boxed<Result<JsValue, JsValue>> = Box::pin(f);
    wasm_bindgen_futures::future_to_promise(f)
}
