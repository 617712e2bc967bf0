//! The SDK's browser tests, built as one wasm test binary and run in one headless Chromium page
//! against the real `calling-server` (`scripts/browser-test.sh`). Tests run one at a time; each
//! module below is one area of the API, and a name filter selects a module (`kick::`) or a test.
//!
//! All modules share one page, so anything a test changes in it (a wrapped browser function, a
//! hidden API) is undone by that test; page-wide recorders (`connections`) are installed once.

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;
mod connections;
mod video;

mod api;
mod blocked_worker;
mod call_audio;
mod call_video;
mod cleanup;
mod cluster;
mod devices;
mod drain;
mod group;
mod kick;
mod media_errors;
mod mode_switch;
mod offline;
mod preconnect;
mod quality;
mod reconnect;
mod ringing;
