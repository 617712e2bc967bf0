//! The core's timers, as browser timeouts. Each pending timeout is owned here; replacing or
//! cancelling one drops it, which clears the browser timeout.

use std::cell::RefCell;

use calling_core::{Input, Timer};
use gloo_timers::callback::Timeout;

use crate::driver::Sink;

#[derive(Default)]
pub struct Timers {
    /// A list, not a map: there are only a few kinds of timer.
    pending: RefCell<Vec<(Timer, Timeout)>>,
}

impl Timers {
    /// (Re)starts `timer`; when it fires, [`Input::Timer`] is queued.
    pub fn start(&self, sink: Sink, timer: Timer, after_ms: u32) {
        let timeout = Timeout::new(after_ms, move || sink.queue(Input::Timer(timer)));
        // A Timeout replaced here may be the one whose callback is running (a heartbeat that
        // restarts itself); wasm-bindgen defers freeing a closure until its call returns.
        let old = self.take(timer);
        self.pending.borrow_mut().push((timer, timeout));
        drop(old);
    }

    pub fn cancel(&self, timer: Timer) {
        let old = self.take(timer);
        drop(old);
    }

    fn take(&self, timer: Timer) -> Option<Timeout> {
        let mut pending = self.pending.borrow_mut();
        let i = pending.iter().position(|(t, _)| *t == timer)?;
        Some(pending.swap_remove(i).1)
    }

    pub fn clear(&self) {
        let all: Vec<Timeout> = std::mem::take(&mut *self.pending.borrow_mut())
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        drop(all);
    }
}
