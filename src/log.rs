//! Console logging with trtc-calling-js's levels: -1 debug, 0 normal, 1 release, 2 warn,
//! 3 error, 4 none. The level is per page, as in trtc-calling-js.

use std::cell::Cell;

thread_local! {
    static LEVEL: Cell<i32> = const { Cell::new(0) };
}

pub fn set_level(level: i32) {
    LEVEL.with(|l| l.set(level.clamp(-1, 4)));
}

fn enabled(at: i32) -> bool {
    LEVEL.with(|l| at >= l.get())
}

pub fn debug(msg: &str) {
    if enabled(-1) {
        web_sys::console::debug_1(&format!("[TRTCCalling] {msg}").into());
    }
}

pub fn info(msg: &str) {
    if enabled(0) {
        web_sys::console::info_1(&format!("[TRTCCalling] {msg}").into());
    }
}

pub fn warn(msg: &str) {
    if enabled(2) {
        web_sys::console::warn_1(&format!("[TRTCCalling] {msg}").into());
    }
}

pub fn error(msg: &str) {
    if enabled(3) {
        web_sys::console::error_1(&format!("[TRTCCalling] {msg}").into());
    }
}
