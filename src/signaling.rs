//! The WebSocket to `calling-server`. Messages are JSON built from the protocol types through
//! `serde-wasm-bindgen` and the browser's own `JSON`, which keeps serde_json out of the wasm.

use std::rc::Weak;

use calling_core::Input;
use calling_protocol::{ClientMessage, ServerMessage};
use gloo_events::EventListener;
use js_sys::{Function, Promise, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, WebSocket};

use crate::driver::Driver;
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
    pub async fn connect(url: &str, driver: Weak<Driver>) -> Result<Signaling, Error> {
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

        let d = driver.clone();
        let on_message = EventListener::new(&ws, "message", move |e| {
            let Some(text) = e
                .dyn_ref::<MessageEvent>()
                .and_then(|e| e.data().as_string())
            else {
                return;
            };
            match parse(&text) {
                Ok(msg) => {
                    if let Some(d) = d.upgrade() {
                        d.dispatch(Input::Server(msg));
                    }
                }
                Err(e) => log::warn(&format!("ignoring unreadable server message: {e}")),
            }
        });
        let on_close = EventListener::new(&ws, "close", move |_| {
            if let Some(d) = driver.upgrade() {
                d.signaling_lost();
            }
        });
        Ok(Signaling {
            ws,
            _listeners: [on_message, on_close],
        })
    }

    pub fn send(&self, msg: &ClientMessage) -> Result<(), Error> {
        let value = serde_wasm_bindgen::to_value(msg)?;
        let text: String = JSON::stringify(&value)?.into();
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
