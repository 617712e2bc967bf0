//! The app's event listeners (`on`/`off`): several per event, each called with its own `this`.
//!
//! Event names are free strings: a name no event uses is accepted and simply never fires.

use std::cell::RefCell;

use js_sys::{Function, Object};
use wasm_bindgen::JsValue;

use crate::log;

struct Listener {
    name: String,
    callback: Function,
    context: JsValue,
}

impl Listener {
    fn matches(&self, name: &str, callback: &Function, context: &JsValue) -> bool {
        self.name == name
            && Object::is(&self.callback, callback)
            && Object::is(&self.context, context)
    }
}

#[derive(Default)]
pub struct Listeners {
    list: RefCell<Vec<Listener>>,
}

impl Listeners {
    /// Adds a listener; the same (name, callback, context) is kept once.
    pub fn add(&self, name: String, callback: Function, context: JsValue) {
        let mut list = self.list.borrow_mut();
        if !list.iter().any(|l| l.matches(&name, &callback, &context)) {
            list.push(Listener {
                name,
                callback,
                context,
            });
        }
    }

    /// Removes that listener; an unknown one is a no-op.
    pub fn remove(&self, name: &str, callback: &Function, context: &JsValue) {
        self.list
            .borrow_mut()
            .retain(|l| !l.matches(name, callback, context));
    }

    /// Calls every listener of `name` with `payload`. A listener may call `on`/`off` or any SDK
    /// method, so the list is copied before the first call and no borrow is held meanwhile.
    pub fn emit(&self, name: &str, payload: &JsValue) {
        let targets: Vec<(Function, JsValue)> = self
            .list
            .borrow()
            .iter()
            .filter(|l| l.name == name)
            .map(|l| (l.callback.clone(), l.context.clone()))
            .collect();
        for (callback, context) in targets {
            // An exception in one app listener must not keep the others from running.
            if let Err(e) = callback.call1(&context, payload) {
                log::error(&format!(
                    "listener for {name} threw: {}",
                    crate::error::js_message(&e)
                ));
            }
        }
    }
}
